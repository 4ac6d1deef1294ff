"""Two evaluation runs side by side: a hardened model against its parent (or any two
models on the same data), condition by condition: accuracy with its 95% interval, the
attack's success rate and, for the colour and rotation attacks, Du-Harpur et al.'s flip
rate, before and after, with the change. Defences are judged by what they cost on clean
images as much as by what they buy under attack, so the clean row comes first.

Runs are compared only when they evaluated the same images at the same size (their
configuration's image lists agree); otherwise the comparison says so and stops, since a
difference would then mean nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .summary import _fmt, _num


class ComparisonError(ValueError):
    """Two runs that cannot be compared; the message says why."""


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary, run record) of an evaluation folder."""
    run = Path(run_dir)
    try:
        summary = json.loads((run / "summary.json").read_text())
        record = json.loads((run / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise ComparisonError(f"{run}: not a finished evaluation run ({exc})") from None
    return summary, record


def _images(record: dict[str, Any]) -> Any:
    """What identifies the evaluated images: the data's fingerprint (ids and labels)."""
    return (record.get("data") or {}).get("fingerprint")


def _model(record: dict[str, Any]) -> str:
    victim = (record.get("models") or {}).get("victim") or {}
    return str(victim.get("name") or victim.get("card") or "?")


def compare(before: tuple[dict, dict], after: tuple[dict, dict]) -> dict[str, Any]:
    (s0, r0), (s1, r1) = before, after
    if (_images(r0) is None or _images(r0) != _images(r1)
            or s0.get("image_size") != s1.get("image_size")):
        raise ComparisonError("the two runs did not evaluate the same images at the same "
                              "size: their figures cannot be compared")
    rows = []
    for cond in [c for c in s0["conditions"] if c in s1["conditions"]]:
        a, b = s0["conditions"][cond], s1["conditions"][cond]
        row = {"condition": cond, "n": b["n"], "accuracy_before": a["accuracy"],
               "accuracy_after": b["accuracy"],
               "accuracy_change": b["accuracy"]["value"] - a["accuracy"]["value"]}
        for key in ("success_rate", "flip_rate_correct_positives"):
            if a.get(key) is not None and b.get(key) is not None:
                row[f"{key}_before"], row[f"{key}_after"] = a[key], b[key]
                row[f"{key}_change"] = b[key] - a[key]
        rows.append(row)
    only = sorted(set(s0["conditions"]) ^ set(s1["conditions"]))
    return {"rows": rows, "only_in_one": only, "models": [_model(r0), _model(r1)]}


def comparison_markdown(c: dict[str, Any], labels: tuple[str, str] = ("parent", "hardened")
                        ) -> str:
    a, b = labels
    lines = [f"## {b.capitalize()} ({c['models'][1]}) against {a} ({c['models'][0]}): "
             "Table 1 side by side", "",
             f"| Condition | n | Accuracy, {a} | Accuracy, {b} | Change | Success, {a} | "
             f"Success, {b} | Flip rate (correct positives), {a} → {b} |",
             "|---|---|---|---|---|---|---|---|"]
    for r in c["rows"]:
        flip = (f"{_num(r['flip_rate_correct_positives_before'], pct=True)} → "
                f"{_num(r['flip_rate_correct_positives_after'], pct=True)}"
                if "flip_rate_correct_positives_before" in r else "–")
        lines.append(
            f"| {r['condition']} | {r['n']} | {_fmt(r['accuracy_before'], True)} | "
            f"{_fmt(r['accuracy_after'], True)} | {100 * r['accuracy_change']:+.1f} pts | "
            f"{_num(r.get('success_rate_before'), pct=True)} | "
            f"{_num(r.get('success_rate_after'), pct=True)} | {flip} |")
    clean = next((r for r in c["rows"] if r["condition"] == "clean"), None)
    if clean is not None:
        lines += ["", f"Clean accuracy {'lost' if clean['accuracy_change'] < 0 else 'gained'}"
                  f": {abs(100 * clean['accuracy_change']):.1f} points."]
    if c["only_in_one"]:
        lines += ["", "Conditions in only one run (not compared): " +
                  ", ".join(c["only_in_one"])]
    return "\n".join(lines) + "\n"
