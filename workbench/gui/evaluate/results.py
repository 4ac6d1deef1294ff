"""The evaluator's results: Table 1 with bootstrap intervals, the detector x attack
matrix, the run's notes and the plots, filled from the summary dict ``evaluate()``
returns (and writes as summary.json)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .plots import PLOTS, PlotLabel

TABLE1_COLUMNS = ("Condition", "n", "Accuracy [95% CI]", "Before rounding",
                  "AUROC [95% CI]", "Confidence [95% CI]", "L2", "L∞", "Flip rate", "Queries",
                  "Paper acc / AUROC")
TABLE1_TIPS = ("Clean, or attack/mode (white: crafted on the model; black: on the "
               "surrogate; query: score-based; transfer: needs the surrogate)",
               "Images", "Accuracy on the 8-bit pictures (attacked copies rounded to whole "
               "8-bit steps within their budget, as a saved image is)",
               "Accuracy on the unrounded attack tensors, which papers measuring float "
               "tensors report; the saved pictures are what the Accuracy column counts",
               "AUROC for the positive class",
               "Mean confidence in the predicted class", "Mean L2 norm of the perturbation",
               "Mean L∞ norm of the perturbation",
               "Du-Harpur et al.: of the positives the model got right, how many flipped",
               "Mean model queries per image (score-based attacks)",
               "Finlayson et al. 2019, Table 1, dermoscopy column")
DETECTOR_COLUMNS = ("Detector", "Threshold", "FPR (clean)", "Condition", "AUROC",
                    "Detection rate", "… of successful")


# --- formatting ---------------------------------------------------------------------------
def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_ci(m: dict[str, Any] | None, pct: bool = False) -> str:
    """``value [low, high]``; the interval is left out when the bootstrap gave none."""
    if not m or _is_missing(m.get("value")):
        return "–"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    lo, hi = m.get("ci_low"), m.get("ci_high")
    ci = "" if _is_missing(lo) or _is_missing(hi) else f" [{f(lo)}, {f(hi)}]"
    return f"{f(m['value'])}{ci}"


def fmt_num(v: Any, digits: int = 4, pct: bool = False) -> str:
    """A number, a percentage, or a dash for a value the run could not measure."""
    if _is_missing(v):
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.{digits}g}"


def fmt_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 07 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def table1_rows(summary: dict[str, Any]) -> list[list[str]]:
    """One row of Table 1 per condition (clean, attack/mode)."""
    rows = []
    for cond, m in summary.get("conditions", {}).items():
        paper = m.get("paper", m.get("paper_dermoscopy"))
        rows.append([
            cond, str(m.get("n", "")), fmt_ci(m.get("accuracy"), pct=True),
            fmt_num(m.get("accuracy_unrounded"), pct=True), fmt_ci(m.get("auroc")),
            fmt_ci(m.get("mean_confidence")),
            fmt_num(m.get("mean_l2")), fmt_num(m.get("mean_linf")),
            fmt_num(m.get("flip_rate_correct_positives"), pct=True),
            fmt_num(m.get("mean_queries"), 6),
            f"{100 * paper[0]:.1f}% / {paper[1]:.3f}" if paper else "–"])
    return rows


def detector_rows(summary: dict[str, Any]) -> list[tuple[list[str], str]]:
    """(cells, tooltip) per detector and condition; a detector with no threshold gets one
    row of dashes, so that its absence from the matrix is visible rather than silent."""
    rows = []
    for name, d in summary.get("detectors", {}).items():
        source = str(d.get("threshold_source", ""))
        head = [name, fmt_num(d.get("threshold")), fmt_num(d.get("fpr_clean"), pct=True)]
        if d.get("threshold") is None or not d.get("conditions"):
            rows.append(([*head, "–", "–", "–", "–"], source))
            continue
        for cond, c in d["conditions"].items():
            rows.append(([*head, cond, fmt_num(c.get("auroc"), 3),
                          fmt_num(c.get("detection_rate"), pct=True),
                          fmt_num(c.get("detection_rate_successful"), pct=True)],
                         f"threshold from {source}"))
    return rows


def run_notes(summary: dict[str, Any]) -> list[str]:
    """The evaluator's notes, then where each detector's threshold came from."""
    notes = list(summary.get("notes", []))
    notes += [f"{name}: threshold from {d.get('threshold_source', '?')}"
              if d.get("threshold") is not None else
              f"{name}: no threshold ({d.get('threshold_source', '?')})"
              for name, d in summary.get("detectors", {}).items()]
    return notes


# --- widgets ------------------------------------------------------------------------------
def _fit_height(table: QTableWidget, max_rows: int = 10) -> None:
    """As tall as its rows (at most ``max_rows``, then it scrolls), so short tables leave
    no empty band and the plots below get the room."""
    rows = min(table.rowCount(), max_rows)
    h = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
    h += sum(table.rowHeight(r) for r in range(rows)) if rows else 24
    if table.horizontalScrollBar().isVisible() or (
            table.horizontalHeader().length() > table.viewport().width()):
        h += table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(h)


def _table(columns: tuple[str, ...]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setAlternatingRowColors(True)
    t.setWordWrap(False)
    t.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return t


def _set_row(table: QTableWidget, row: int, cells: list[str], tooltip: str = "") -> None:
    for col, text in enumerate(cells):
        item = QTableWidgetItem(text)
        if col > 0 and text[:1] in "0123456789–-":  # numbers line up on the right
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if tooltip:
            item.setToolTip(tooltip)
        table.setItem(row, col, item)


class EvaluationResults(QTabWidget):
    """An Overview tab (caption, the two tables, notes, the plots small) and one tab per
    plot. The tables are only as tall as their rows; the space left shows the plots small
    (click one for its own tab), so one glance at the overview gives the whole run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = _table(TABLE1_COLUMNS)
        self.table.setObjectName("table1")
        for c, tip in enumerate(TABLE1_TIPS):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.detector_table = _table(DETECTOR_COLUMNS)
        self.detector_table.setObjectName("detector_table")
        self.caption = QLabel("No results yet: set up a run and press Start.")
        self.caption.setWordWrap(True)
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.notes_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.thumb_labels: dict[str, PlotLabel] = {}
        self.plot_labels: dict[str, PlotLabel] = {}
        overview = QWidget()
        layout = QVBoxLayout(overview)
        layout.addWidget(self.caption)
        layout.addWidget(QLabel("<b>Table 1</b> (Finlayson et al. 2019), with 95% bootstrap "
                                "intervals"))
        layout.addWidget(self.table)
        layout.addWidget(QLabel("<b>Detector × attack</b>"))
        layout.addWidget(self.detector_table)
        layout.addWidget(self.notes_label)
        self.addTab(overview, "Overview")
        layout.addLayout(self._plot_tabs(), 1)
        self.fit_tables()

    def _plot_tabs(self) -> QHBoxLayout:
        """One tab per plot, and the row of thumbnails for the overview."""
        thumbs = QHBoxLayout()
        for k, (name, title) in enumerate(PLOTS):
            label = PlotLabel()
            label.setObjectName(f"plot_{name.removesuffix('.png')}")
            self.plot_labels[name] = label
            self.addTab(label, title)
            thumb = PlotLabel()
            thumb.setToolTip(f"{title}: click to enlarge")
            thumb.clicked.connect(lambda k=k: self.setCurrentIndex(k + 1))
            self.thumb_labels[name] = thumb
            thumbs.addWidget(thumb, 1)
        return thumbs

    def clear_results(self, caption: str = "Running…") -> None:
        self.table.setRowCount(0)
        self.detector_table.setRowCount(0)
        self.notes_label.setText("")
        self.caption.setText(caption)
        for label in (*self.plot_labels.values(), *self.thumb_labels.values()):
            label.reset()
        self.fit_tables()

    def fit_tables(self) -> None:
        for t in (self.table, self.detector_table):
            t.resizeColumnsToContents()  # with no rows: the headers' widths
            t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            _fit_height(t)

    def show_summary(self, summary: dict[str, Any], run_dir: Path | None = None) -> None:
        """Fill the tables from a summary dict and load the plots from ``run_dir``."""
        table1 = table1_rows(summary)
        self.table.setRowCount(len(table1))
        for r, cells in enumerate(table1):
            _set_row(self.table, r, cells)
        matrix = detector_rows(summary)
        self.detector_table.setRowCount(len(matrix))
        for r, (cells, tip) in enumerate(matrix):
            _set_row(self.detector_table, r, cells, tip)
        self.fit_tables()
        from ...evaluation.summary import models_line

        models = models_line(summary)
        self.caption.setText(
            (f"{models}: " if models else "")
            + f"{summary.get('n_images', '?')} images at {summary.get('image_size', '?')} px, "
            f"positive class {summary.get('positive_class', '?')}, seed "
            f"{summary.get('seed', '?')}" + (f" — {run_dir}" if run_dir else ""))
        self.notes_label.setText("\n".join(f"• {n}" for n in run_notes(summary)))
        if run_dir is not None:
            for name, label in self.plot_labels.items():
                label.load(run_dir / name)
                self.thumb_labels[name].load(run_dir / name)
