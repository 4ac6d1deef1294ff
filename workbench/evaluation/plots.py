"""The run's pictures, drawn with matplotlib's Agg backend (no display, no Qt):
roc.png (the positive-class ROC per condition), confidence.png (confidence in the
predicted class per condition) and detector_matrix.png (AUROC of each detector against
each attack condition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .metrics import roc_curve

PLOTS = ("roc.png", "confidence.png", "detector_matrix.png")


def write_plots(out: Path, config: dict[str, Any], summary: dict[str, Any],
                rows: list[dict[str, Any]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    positive = int(config["positive_index"])
    conds = list(summary["conditions"])
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=110)
    for cond in conds:
        rs = [r for r in rows if r["condition"] == cond]
        fpr, tpr = roc_curve([r["p_positive"] for r in rs], [r["label"] == positive for r in rs])
        auc = summary["conditions"][cond]["auroc"]["value"]
        ax.plot(fpr, tpr, label=f"{cond} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate",
           title=f"ROC for {summary['positive_class']}", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    written.append(save_figure(fig, out / "roc.png"))

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    bins = np.linspace(0.5 if len(config["class_names"]) == 2 else 0.0, 1.0, 21)
    for cond in conds:
        ax.hist([r["confidence"] for r in rows if r["condition"] == cond], bins=bins,
                histtype="step", lw=1.5, label=cond)
    ax.set(xlabel="confidence in the predicted class", ylabel="images",
           title="Confidence per condition")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(save_figure(fig, out / "confidence.png"))

    detectors = summary["detectors"]
    attacks = [c for c in conds if c != "clean"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(attacks) + 2.5),
                                    max(2.5, 0.55 * len(detectors) + 1.5)), dpi=110)
    if detectors and attacks:
        grid = np.array([[detectors[d]["conditions"].get(a, {}).get("auroc", np.nan)
                          for a in attacks] for d in detectors], dtype=float)
        im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(detectors)), list(detectors), fontsize=8)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = grid[i, j]
                rate = detectors[list(detectors)[i]]["conditions"].get(attacks[j], {}).get(
                    "detection_rate")
                text = "–" if np.isnan(v) else f"{v:.2f}" + (
                    f"\n{100 * rate:.0f}%" if rate is not None else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if (np.isnan(v) or v < 0.6) else "black")
        fig.colorbar(im, ax=ax, label="AUROC clean vs attacked")
        ax.set_title("Detector × attack: AUROC (detection rate at threshold)", fontsize=9)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no detectors or no attacks in this run", ha="center")
    fig.tight_layout()
    written.append(save_figure(fig, out / "detector_matrix.png"))
    return written


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` and free it (pyplot keeps every open figure)."""
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return path
