"""The score's pictures, drawn with matplotlib's Agg backend (no display, no Qt), in the
evaluator's style: authenticity.png (each reader's authenticity accuracy with its Wilson
95% interval, chance at 0.5) and diagnosis.png (diagnostic accuracy on originals and on
manipulated images, per reader and for the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evaluation.plots import save_figure

PLOTS = ("authenticity.png", "diagnosis.png")


def _bar(ax: Any, x: float, prop: dict[str, Any] | None, width: float, **kw: Any) -> None:
    if not prop or prop.get("value") is None:
        return
    v, (lo, hi) = prop["value"], prop["ci95"]
    ax.bar(x, v, width, yerr=[[v - lo], [hi - v]], capsize=3, **kw)


def write_plots(out: Path, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = list(summary["readers"].items())
    if len(rows) > 1:
        rows.append(("pooled", summary["pooled"]))
    names, stats = [n for n, _ in rows], [s for _, s in rows]
    written = []

    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 2.5), 4.2), dpi=110)
    for i, s in enumerate(stats):
        _bar(ax, i, s["authenticity"], 0.6, color="C0" if i < len(summary["readers"]) else "0.5")
    ax.axhline(0.5, color="0.6", lw=0.8, ls="--", label="chance (0.5)")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.15), ylabel="accuracy (Wilson 95% CI)",
           title="Real or manipulated: authenticity accuracy")
    ax.legend(fontsize=7, loc="upper center")  # above the bars: 1.0 is the top of data
    fig.tight_layout()
    written.append(save_figure(fig, out / "authenticity.png"))

    labels = [*names, f"model {summary['model']['name']}"]
    groups = [*(s["diagnosis"] for s in stats), summary["model"]]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 * len(labels) + 2.5), 4.2), dpi=110)
    for i, g in enumerate(groups):
        _bar(ax, i - 0.18, g["originals"], 0.34, color="C2",
             label="originals" if i == 0 else None)
        _bar(ax, i + 0.18, g["manipulated"], 0.34, color="C3",
             label="manipulated" if i == 0 else None)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.15), ylabel="diagnostic accuracy (Wilson 95% CI)",
           title="Diagnosis: originals against manipulated images")
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    fig.tight_layout()
    written.append(save_figure(fig, out / "diagnosis.png"))
    return written

