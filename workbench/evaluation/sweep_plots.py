"""A robustness sweep's words and files: Du-Harpur et al.'s form of a point, the key
lines, sweep.json (everything), sweep.md (a table per transformation with the 95%
intervals and the Du-Harpur-form line of each point), sweep.csv (one row per point) and
sweep_<transformation>.png (accuracy, sensitivity and false negatives against the
parameter, 95% interval bands), drawn with matplotlib's Agg backend (no display, no Qt)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from .plots import save_figure
from .summary import _fmt

SERIES_COLOURS = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue", "": "tab:purple"}
METRICS = ("accuracy", "sensitivity", "specificity", "false_negatives", "fn_change")
CSV_FIELDS = ("transform", "series", "value", "label", "identity", "n", "n_positive",
              *(f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")),
              "fn_change_percent", "du_harpur")


def plain_json(obj: Any) -> Any:
    """NaN (an undefined rate, e.g. sensitivity without positives) as null: valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: plain_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain_json(v) for v in obj]
    return obj


def _count(m: dict[str, Any], signed: bool = False) -> str:
    v, lo, hi = m["value"], m["ci_low"], m["ci_high"]
    if math.isnan(lo) or math.isnan(hi):
        return f"{v:+.0f}" if signed else f"{v:.0f}"
    return f"{v:+.0f} [{lo:+.0f}, {hi:+.0f}]" if signed else f"{v:.0f} [{lo:.1f}, {hi:.1f}]"


def du_harpur_line(point: dict[str, Any], baseline: dict[str, Any]) -> str:
    """"green −10: false negatives 9 → 14, +56%" (Du-Harpur et al.'s way of saying it)."""
    before = baseline["false_negatives"]["value"]
    after = point["false_negatives"]["value"]
    if before == 0:
        change = "none at baseline" if after else "+0%"
    else:
        pct = 100.0 * (after - before) / before
        change = f"{'+' if pct >= 0 else '−'}{abs(pct):.0f}%"
    return f"{point['label']}: false negatives {before} → {after}, {change}"


def markdown(result: dict[str, Any]) -> str:
    base, data, model = result["baseline"], result["data"], result["model"]
    counts = ", ".join(f"{v} {k}" for k, v in data["counts"].items())
    lines = [f"# Robustness sweep: {model['card_name']} on {data['n']} images "
             f"({data['split']} split; {counts})", "",
             f"Positive class: {model['positive_class']}. Baseline (untransformed): "
             f"accuracy {_fmt(base['accuracy'], True)}, sensitivity "
             f"{_fmt(base['sensitivity'], True)}, specificity {_fmt(base['specificity'], True)}"
             f", false negatives {base['false_negatives']['value']} of "
             f"{base['n_positive']} positives.", ""]
    units = result["settings"]["units"]
    for name in result["settings"]["transforms"]:
        lines += [f"## {name}: {units[name]}", "",
                  "| Point | Accuracy | Sensitivity | Specificity | False negatives | "
                  "Change in FN | Du-Harpur form |", "|---|---|---|---|---|---|---|"]
        for p in (p for p in result["points"] if p["transform"] == name):
            lines.append(f"| {p['label']} | {_fmt(p['accuracy'], True)} | "
                         f"{_fmt(p['sensitivity'], True)} | {_fmt(p['specificity'], True)} | "
                         f"{_count(p['false_negatives'])} | {_count(p['fn_change'], True)} | "
                         f"{p['du_harpur']} |")
        lines.append("")
    s = result["settings"]
    lines += ["## How to read this", "",
              f"- Intervals are 95% percentile-bootstrap intervals over images "
              f"({s['bootstrap_resamples']} resamples, seed {s['seed']}); false negatives: "
              "the miss rate's interval times the number of positives; change in FN: paired "
              "(the same resamples for the point and the baseline).",
              "- Du-Harpur form: false negatives at baseline → at the point, and the change "
              "in percent of the baseline's (Du-Harpur et al. 2020: green −10 raised theirs "
              "68 → 160, +135%, which they reported as a 235% increase).",
              f"- Pixels: {s['pixels']}. Rotation and translation fill the uncovered edges "
              f"by {'reflection' if s['fill'] == 'reflect' else 'black (constant 0)'}.",
              f"- Device {s['device']}; {result['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, result: dict[str, Any]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for p in [result["baseline"], *result["points"]]:
            row: dict[str, Any] = {k: p.get(k) for k in CSV_FIELDS}
            for m in METRICS:
                for suffix, key in (("", "value"), ("_ci_low", "ci_low"),
                                    ("_ci_high", "ci_high")):
                    row[m + suffix] = (p.get(m) or {}).get(key)
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v
                        for v in row.values()])
    return path


def write_plots(out: Path, result: dict[str, Any]) -> list[Path]:
    """One PNG per transformation: accuracy, sensitivity and false negatives against the
    parameter (one line per channel for colour), 95% bands, the baseline dashed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    base = result["baseline"]
    panels = (("accuracy", "accuracy", 100.0), ("sensitivity", "sensitivity", 100.0),
              ("false_negatives", "false negatives", 1.0))
    for name in result["settings"]["transforms"]:
        pts = [p for p in result["points"] if p["transform"] == name]
        fig, axes = plt.subplots(3, 1, figsize=(6.4, 8.0), dpi=110, sharex=True)
        for ax, (key, title, scale) in zip(axes, panels, strict=True):
            for series in dict.fromkeys(p["series"] for p in pts):
                ps = sorted((p for p in pts if p["series"] == series), key=lambda p: p["value"])
                x = np.array([p["value"] for p in ps])
                v, lo, hi = (np.array([p[key][k] for p in ps], dtype=float) * scale
                             for k in ("value", "ci_low", "ci_high"))
                colour = SERIES_COLOURS.get(series)
                ax.plot(x, v, marker="o", ms=3.5, color=colour, label=series or name)
                ax.fill_between(x, lo, hi, color=colour, alpha=0.15, lw=0)
            ax.axhline(base[key]["value"] * scale, color="0.4", lw=0.9, ls="--",
                       label="baseline")
            ax.set_ylabel(f"{title} (%)" if scale == 100.0 else f"{title} (of "
                          f"{base['n_positive']})")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="best")
        axes[-1].set_xlabel(result["settings"]["units"][name])
        if name == "jpeg":
            axes[-1].invert_xaxis()  # stronger compression to the right, like the others
        fig.suptitle(f"{name}: {result['model']['card_name']} on {result['data']['n']} "
                     f"images, 95% bootstrap bands", fontsize=10)
        fig.tight_layout()
        written.append(save_figure(fig, out / f"sweep_{name}.png"))
    return written


def key_lines(result: dict[str, Any]) -> list[str]:
    """Du-Harpur's own cases (green −10, rotations 45° and 180°) where the grid has them,
    then per transformation its worst points: the most false negatives (their concern),
    and the lowest accuracy, which can be elsewhere (a point that calls everything
    positive misses no melanoma and fails every nevus)."""
    pts, base = result["points"], result["baseline"]
    wanted = [("colour", "green", -10.0), ("rotation", "", 45.0), ("rotation", "", 180.0)]
    lines = [p["du_harpur"] for w in wanted for p in pts
             if (p["transform"], p["series"], p["value"]) == w]
    for name in dict.fromkeys(p["transform"] for p in pts):
        mine = [p for p in pts if p["transform"] == name]
        mine = [p for p in mine if not p["identity"]] or mine
        most = max(mine, key=lambda p: (p["false_negatives"]["value"], -p["accuracy"]["value"]))
        low = min(mine, key=lambda p: (p["accuracy"]["value"], -p["false_negatives"]["value"]))
        lines.append(f"worst {name}: {most['du_harpur']}; lowest accuracy {low['label']}: "
                     f"{100 * base['accuracy']['value']:.1f}% → "
                     f"{100 * low['accuracy']['value']:.1f}%")
    return lines


def write_outputs(out: str | Path, result: dict[str, Any]) -> list[Path]:
    """sweep.json, sweep.md, sweep.csv and the PNGs in ``out`` (created)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(plain_json(result), indent=1, allow_nan=False)
                                    + "\n", encoding="utf-8")
    (out / "sweep.md").write_text(markdown(result), encoding="utf-8")
    return [out / "sweep.json", out / "sweep.md", write_csv(out / "sweep.csv", result),
            *write_plots(out, result)]
