"""The score as Markdown (score.md, and what ``workbench study score`` prints)."""

from __future__ import annotations

from typing import Any


def _p(prop: dict[str, Any] | None) -> str:
    """'0.700 (0.397-0.892) 7/10', or '-' when nothing was counted."""
    if not prop or prop.get("value") is None:
        return "–"
    lo, hi = prop["ci95"]
    return f"{prop['value']:.3f} ({lo:.3f}–{hi:.3f}) {prop['k']}/{prop['n']}"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _test(t: dict[str, Any]) -> str:
    if t.get("p") is None:
        return "–"
    stat = "" if t.get("statistic") is None else f", statistic {_num(t['statistic'])}"
    disc = f" (b={t['b']}, c={t['c']})" if "b" in t else ""
    odds = f", odds ratio {_num(t['odds_ratio'])}" if t.get("odds_ratio") is not None else ""
    return f"{t['test']}{disc}{stat}{odds}, p = {t['p']:.4g}"


def _rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = list(summary["readers"].items())
    return rows + ([("pooled", summary["pooled"])] if len(rows) > 1 else [])


def markdown(summary: dict[str, Any]) -> str:
    """The whole score as Markdown tables."""
    lines = [
        "# Reader study score", "",
        f"{summary['study']}: {summary['design']} design, {summary['cases']} images "
        f"({summary['manipulated']} manipulated), {len(summary['readers'])} reader(s). "
        "Proportions with Wilson 95% intervals.", "",
        "## Authenticity (real or manipulated)", "",
        "| reader | answered | accuracy | manipulated called manipulated | real called "
        "manipulated | mean confidence | median seconds |",
        "|---|---:|---|---|---|---:|---:|"]
    for name, s in _rows(summary):
        lines.append(f"| {name} | {s['answered']} | {_p(s['authenticity'])} | "
                     f"{_p(s['detected'])} | {_p(s['false_alarms'])} | "
                     f"{_num(s['mean_confidence'], 2)} | {_num(s['median_seconds'], 1)} |")
    lines += ["", "## Diagnosis: originals against manipulated images", "",
              "| reader | originals | manipulated | test |", "|---|---|---|---|"]
    for name, s in _rows(summary):
        d = s["diagnosis"]
        lines.append(f"| {name} | {_p(d['originals'])} | {_p(d['manipulated'])} | "
                     f"{_test(d['comparison'])} |")
    m = summary["model"]
    lines.append(f"| model {m['name']} (every shown image) | {_p(m['originals'])} | "
                 f"{_p(m['manipulated'])} | {_test(m['comparison'])} |")
    paired = m["comparison"].get("paired_on")
    lines += ["", f"Paired on {paired}." if paired else
              "Single design: each lesion was shown once, so originals and manipulated "
              "images are different lesions and Fisher's exact test compares them "
              "(nothing is paired within a reader).", "",
              "## Reader against model on the same images", "",
              "b = reader right and model wrong, c = model right and reader wrong.", "",
              "| reader | originals | manipulated |", "|---|---|---|"]
    for name, s in _rows(summary):
        v = s["reader_vs_model"]
        lines.append(f"| {name} | {_test(v['originals'])} | {_test(v['manipulated'])} |")
    lines += ["", "## Agreement between readers (Fleiss' kappa)", ""]
    a = summary["agreement"]
    if "note" in a:
        lines.append(a["note"])
    else:
        lines.append(f"On the {a['cases']} case(s) all {a['readers']} readers answered: "
                     f"authenticity kappa {_num(a['authentic']['kappa'])}, diagnosis kappa "
                     f"{_num(a['diagnosis']['kappa'])}.")
    lines += ["", "## By attack (all readers)", "",
              "| attack | images | called manipulated | reader diagnosis | model right | "
              "pixel-identical |", "|---|---:|---|---|---|---:|"]
    for name, t in summary["by_attack"].items():
        lines.append(f"| {name} | {t['images']} | {_p(t['detected'])} | "
                     f"{_p(t['reader_diagnosis'])} | {_p(t['model'])} | {t['unchanged']} |")
    if summary["notes"]:
        lines += ["", "## Notes", "", *[f"- {n}" for n in summary["notes"]]]
    return "\n".join(lines) + "\n"
