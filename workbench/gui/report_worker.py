"""Build a case report off the GUI thread (detectors and the model run while it builds)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal


class ReportSignals(QObject):
    done = Signal(str)  # the report's path
    failed = Signal(str)


class ReportTask(QRunnable):
    def __init__(self, paths: list[str], out: str, model: Any, model_name: str,
                 detectors: list[Any]) -> None:
        super().__init__()
        self.paths, self.out, self.model, self.model_name = paths, out, model, model_name
        self.detectors = detectors
        self.signals = ReportSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            from ..report.case_report import build_case, fingerprint_report, render_html

            cases = [build_case(p, model=self.model, model_name=self.model_name,
                                detectors=self.detectors) for p in self.paths]
            html = render_html(cases)
            if self.out.lower().endswith(".pdf"):
                # QTextDocument must live in the GUI thread for printing; hand back HTML
                self.signals.done.emit("html:" + html)
                return
            with open(self.out, "w", encoding="utf-8") as fh:
                fh.write(html)
            fingerprint_report(self.out)
            self.signals.done.emit(self.out)
        except Exception as exc:  # reported in a dialog; the window keeps working
            self.signals.failed.emit(f"{self.out}: cannot write the report ({exc})")
