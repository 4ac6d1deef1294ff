"""What leaves the workbench from the GUI: an attacked image saved as a new file (never
over the original; DICOM gets a new UID and says it is derived) and case reports (HTML,
or PDF printed by Qt). Both name the file they write in the status bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from ..session import actions


def save_adversarial(window: Any, run: Any, source_path: str | None,
                     target: str | None = None) -> str | None:
    """Save the adversarial image of ``run`` (an AttackRun) and open it in the study."""
    from .. import __version__
    from ..imaging.export import describe_attack, save_derived

    if run is None or run.mapping is None:
        return None
    source = Path(source_path or "image")
    outcome = run.outcome
    if not target:
        suffix = ".dcm" if run.image.kind == "dicom" else ".png"
        suggestion = source.with_name(f"{source.stem}_{outcome.plugin}{suffix}")
        target, _ = QFileDialog.getSaveFileName(window, "Save adversarial image",
                                                str(suggestion))
        if not target:
            return None
    description = describe_attack(outcome.plugin, outcome.plugin_version, outcome.params,
                                  __version__)
    try:
        saved = save_derived(run.image, outcome.adversarial[0].numpy(), run.mapping, target,
                             description, run.frame)
    except (OSError, ValueError) as exc:
        window.show_error(f"{target}: {exc}", title="Cannot save")
        return None
    window.open_paths([saved])
    window.statusBar().showMessage(f"Saved {Path(saved).name} (adversarial copy of "
                                   f"{source.name})", 8000)
    return str(saved)


def export_report(window: Any, target: str | None = None) -> bool:
    """A case report (HTML or PDF) of the selected images, built off the GUI thread."""
    study = window.study
    paths = [p for p in window.study_list.selected_paths()
             if study.get(p) is not None and study.get(p).image is not None]
    if not paths and study.current is not None and study.current.image is not None:
        paths = [study.current.path]
    if not paths:
        window.statusBar().showMessage("Open an image to report on first", 5000)
        return False
    if not target:
        target, _ = QFileDialog.getSaveFileName(window, "Export report", "report.html",
                                                "HTML (*.html);;PDF (*.pdf)")
        if not target:
            return False
    detectors = [p.create() for p in window.registry.plugins if p.kind == "detector" and p.ok]
    job = actions.report(paths, target, study.model, study.model_name, detectors)
    job.on_result = lambda html: _written(window, html, target)
    job.on_error = lambda message: (window.show_error(message, title="Report"),
                                    setattr(window, "report_task", None))
    window.report_task = job
    window.statusBar().showMessage("Building the report…")
    window.runner.start(job, priority=1)
    return True


def _written(window: Any, html: str, target: str) -> None:
    if html:  # a PDF: Qt's text document prints on the GUI thread
        from ..report.case_report import fingerprint_report
        from .report_pdf import html_to_pdf

        html_to_pdf(html, target)
        fingerprint_report(target)
    window.report_task = None
    window.statusBar().showMessage(f"Report written to {target}", 10000)
