"""``workbench evidence ORIGINAL SUSPECT --out DIR``: what SUSPECT changed, as DICOM.

    workbench evidence signed.dcm seen.dcm --out evidence/ [--report] \\
        [--send PACS@127.0.0.1:4242 [--calling-ae WORKBENCH]]

Writes a Parametric Map of SUSPECT - ORIGINAL (perturbation_pm.dcm), a Segmentation of the
changed pixels (changed_seg.dcm) and, with --report, the case report of both images as
Encapsulated PDF (report_pdf.dcm), all in SUSPECT's patient and study (see
workbench.report.dicom_evidence and docs/evidence_dicom.md). --send stores each to a
PACS with C-STORE and prints its status; a store that fails exits non-zero.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from .plumbing import EXIT_OK, CommandError


def user_errors() -> tuple[type[Exception], ...]:
    from ..report.dicom_evidence import EvidenceError

    return (EvidenceError,)


def cmd_evidence(args: argparse.Namespace) -> int:
    from ..report.dicom_evidence import load_pair, store_instances, write_evidence

    peer = None
    if args.send:
        from ..gateway.server import Peer

        try:
            peer = Peer.parse(args.send)
        except ValueError as exc:
            raise CommandError(f"--send {exc}") from None
    pair = load_pair(args.original, args.suspect)  # one-line errors before any work
    pdf = _report_pdf(pair) if args.report else None
    result = write_evidence(pair, args.out, report_pdf=pdf)
    for note in result.notes:
        print(f"note: {note}")
    if result.changed_pixels == 0:
        print(f"no pixel differs between {args.original} and {args.suspect}: the "
              "segment is empty and the map is zero")
    else:
        print(f"{result.changed_pixels} pixel(s) differ between {args.original} and "
              f"{args.suspect}")
    for path in result.files:
        print(f"wrote {path}")
    if peer is None:
        return EXIT_OK
    results = store_instances(result.files, ae_title=peer.ae_title, host=peer.host,
                              port=peer.port, calling_ae=args.calling_ae)
    where = f"{peer.ae_title}@{peer.host}:{peer.port}"
    for r in results:
        code = "no answer" if r.status is None else f"0x{r.status:04X}"
        print(f"stored {r.path.name} to {where}: status {code} ({r.category})")
    failed = [r for r in results if not r.ok]
    if failed or len(results) < len(result.files):
        first = failed[0].path.name if failed else result.files[len(results)].name
        raise CommandError(f"PACS {where} did not store {first}"
                           + (f" (status {failed[0].category})" if failed else ""))
    return EXIT_OK


def _report_pdf(pair: Any) -> bytes:
    """The case report of ORIGINAL and SUSPECT (provenance and identity; no model and no
    detectors, so that the evidence does not wait for them) as PDF bytes, made with Qt's
    PDF writer offscreen, as ``workbench report`` makes it."""
    from ..gui.report_pdf import html_to_pdf
    from ..report.case_report import build_case, render_html

    cases = [build_case(p, model=None, detectors=[])
             for p in (pair.original.path, pair.suspect.path)]
    html = render_html(cases, title=f"Evidence: {Path(pair.suspect.path).name} against "
                                    f"the signed original {Path(pair.original.path).name}")
    with tempfile.TemporaryDirectory(prefix="workbench-evidence-") as tmp:
        return html_to_pdf(html, Path(tmp) / "report.pdf").read_bytes()


def _evidence_arguments(e: argparse.ArgumentParser) -> None:
    e.description = ("What SUSPECT changed from the signed ORIGINAL, as DICOM: a Parametric "
                     "Map, a Segmentation and, with --report, an Encapsulated PDF "
                     "(docs/evidence_dicom.md).")
    e.add_argument("original", metavar="ORIGINAL", help="the signed original DICOM instance")
    e.add_argument("suspect", metavar="SUSPECT",
                   help="the DICOM instance a classifier saw (same rows, columns, frames)")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the objects")
    e.add_argument("--report", action="store_true",
                   help="also the case report as Encapsulated PDF (report_pdf.dcm)")
    e.add_argument("--send", metavar="AE@HOST:PORT", help="C-STORE the objects to this PACS")
    e.add_argument("--calling-ae", default="WORKBENCH", metavar="AE",
                   help="our AE title when sending (default WORKBENCH)")
    e.set_defaults(handler=cmd_evidence)


ARGUMENTS = {"evidence": _evidence_arguments}
