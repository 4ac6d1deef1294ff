"""File > Export Evidence as DICOM: the pair shown in the Compare tab (its reference as the
signed original, its suspect) as a Parametric Map of the perturbation and a Segmentation
of the changed pixels (workbench.report.dicom_evidence), written to a folder and, on
request, stored to a PACS. Built off the GUI thread; the status bar names what was
written and what the PACS answered.

The case report is not embedded here: File > Export Report writes it, and
``workbench evidence --report`` wraps it as Encapsulated PDF (Qt's PDF writer belongs to
the GUI thread, which must not wait for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit

from ..session.jobs import Job, JobFailed


def _pair(window: Any) -> tuple[str, str] | None:
    view = window.comparison
    ref, sus = view.paths.get(view.left), view.paths.get(view.right)
    return (ref, sus) if ref and sus else None


def export_evidence(window: Any, out_dir: str | None = None, send: str | None = None,
                    *, ask: bool = True) -> Job | None:
    """Start the export of the compared pair; returns its job (None when nothing to do).
    ``send``: AE@HOST:PORT of the PACS to store to (asked for when ``ask``)."""
    pair = _pair(window)
    if pair is None:
        window.statusBar().showMessage("Compare the suspect with its original first "
                                       "(Compare tab), then export the evidence", 8000)
        return None
    reference, suspect = pair
    if out_dir is None:
        out_dir = QFileDialog.getExistingDirectory(
            window, "Folder for the evidence objects", str(Path(suspect).parent))
        if not out_dir:
            return None
    if send is None and ask:
        text, ok = QInputDialog.getText(
            window, "Store to PACS", "Also store them to a PACS (AE@host:port; empty: only "
            "write the folder):", QLineEdit.EchoMode.Normal, "")
        if not ok:
            return None
        send = text.strip() or None

    def work(job: Job) -> dict:
        from ..gateway.server import Peer
        from ..report.dicom_evidence import (
            EvidenceError,
            load_pair,
            store_instances,
            write_evidence,
        )

        try:
            peer = Peer.parse(send) if send else None
            job.progress(0.1, "comparing the pixels…")
            result = write_evidence(load_pair(reference, suspect), out_dir)
            stored = []
            if peer is not None:
                job.progress(0.7, f"storing to {send}…")
                stored = store_instances(result.files, ae_title=peer.ae_title,
                                         host=peer.host, port=peer.port)
        except (EvidenceError, ValueError, OSError) as exc:
            raise JobFailed(f"{Path(suspect).name}: cannot export the evidence ({exc})") \
                from None
        return {"result": result, "stored": stored}

    def done(out: dict) -> None:
        result, stored = out["result"], out["stored"]
        window.last_evidence = out
        names = ", ".join(p.name for p in result.files)
        told = ""
        if stored:
            refused = [s for s in stored if not s.ok]
            told = (f"; stored to {send}" if not refused else
                    f"; the PACS refused {', '.join(s.path.name for s in refused)}")
        changed = (f"{result.changed_pixels} changed pixel(s)" if result.changed_pixels
                   else "no pixel differs")
        window.statusBar().showMessage(f"Evidence of {Path(suspect).name} ({changed}): "
                                       f"{names} in {out_dir}{told}", 15000)

    job = Job("Export evidence as DICOM", work, on_result=done,
              on_error=lambda m: window.show_error(m, "Cannot export the evidence"),
              subject=suspect)
    return window.runner.start(job)
