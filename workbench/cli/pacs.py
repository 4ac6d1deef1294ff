"""``workbench pacs find|get``: a PACS over DICOMweb (QIDO-RS, WADO-RS).

    workbench pacs find --url http://pacs:8042/dicom-web [--patient ID] [--date RANGE]
        [--modality CT] [--json]                  # studies
    workbench pacs find --url URL --study UID      # that study's series
    workbench pacs get --url URL --study UID [--series UID] --out DIR

Retrieved instances are the archive's own bytes (never transcoded), written as
DIR/<study>/<series>/<instance>.dcm; Ctrl+C stops between instances and keeps the complete
ones.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from .plumbing import EXIT_FAILED, EXIT_OK, CommandError, ProgressBar, print_json_line


def _archive(url: str):  # -> DicomWeb
    from ..pacs.dicomweb import DicomWeb

    return DicomWeb(url)


def cmd_pacs(args: argparse.Namespace) -> int:
    if args.action == "find":
        return _find(args)
    return _get(args)


def _find(args: argparse.Namespace) -> int:
    archive = _archive(args.url)
    if args.study:
        rows = archive.find_series(args.study)
        if args.json:
            for row in rows:
                print_json_line(row.to_json())
            return EXIT_OK
        print(f"{'series':<8} {'modality':<8} {'instances':>9}  description / series UID")
        for row in rows:
            print(f"{row.number or '-':<8} {row.modality or '-':<8} {row.instances:>9}  "
                  f"{row.description or '-'}  {row.series_uid}")
        print(f"{len(rows)} series in study {args.study}")
        return EXIT_OK
    rows = archive.find_studies(patient_id=args.patient, date=args.date,
                                modality=args.modality, limit=args.limit)
    if args.json:
        for row in rows:
            print_json_line(row.to_json())
        return EXIT_OK
    print(f"{'date':<10} {'patient ID':<16} {'modalities':<10} {'series':>6} {'inst.':>6}  "
          "description / study UID")
    for row in rows:
        print(f"{row.date or '-':<10} {row.patient_id or '-':<16} {row.modalities or '-':<10} "
              f"{row.series:>6} {row.instances:>6}  {row.description or '-'}  {row.study_uid}")
    print(f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'}")
    return EXIT_OK


def _get(args: argparse.Namespace) -> int:
    from ..pacs.retrieve import retrieve

    if not args.study:
        raise CommandError("name the study to retrieve with --study UID "
                           "(workbench pacs find lists them)")
    archive = _archive(args.url)
    refs = archive.instances(args.study, args.series)
    if not refs:
        raise CommandError(f"the PACS has no instances of {args.series or args.study}")
    bar = ProgressBar("retrieving")
    cancel = threading.Event()
    try:
        got = retrieve(archive, refs, args.out, progress=bar.update, cancel=cancel)
    except KeyboardInterrupt:  # between two instances: every file written is complete
        cancel.set()
        raise
    for ref, problem in got.failed:
        print(f"{ref.name}: not retrieved: {problem}")
    print(f"{len(got.files)} of {len(refs)} instance(s) retrieved into {args.out}")
    return EXIT_OK if not got.failed else EXIT_FAILED


def verify_pacs(args: argparse.Namespace, ledger: Any, bar: Any) -> list:
    """Every instance of the study (or of studies dated --since or later, or of the whole
    archive) verified where it lives."""
    import threading

    from ..pacs.dicomweb import DicomWeb
    from ..pacs.verify_archive import verify_archive

    archive = DicomWeb(args.pacs)
    since = args.since.replace("-", "") if args.since else None
    if since is not None and not (len(since) == 8 and since.isdigit()):
        raise CommandError(f"--since {args.since}: expected a date, YYYY-MM-DD or YYYYMMDD")
    refs = archive.instances(args.study, since=since)
    if not refs:
        raise CommandError(f"the PACS at {args.pacs} has no instances"
                           + (f" of study {args.study}" if args.study else "")
                           + (f" dated {args.since} or later" if since else ""))
    cancel = threading.Event()
    try:
        return verify_archive(archive, refs, ledger=ledger if ledger is not None else False,
                              engine=args.engine, address=args.address, workers=args.workers,
                              progress=bar.update if bar else None, cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise


def _pacs_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (__doc__ or "").split("\n\n")[0]
    p.add_argument("action", choices=("find", "get"))
    p.add_argument("--url", required=True, metavar="URL",
                   help="the archive's DICOMweb root, e.g. http://host:8042/dicom-web")
    p.add_argument("--study", metavar="UID", help="find: list its series; get: retrieve it")
    p.add_argument("--series", metavar="UID", help="get: only this series of --study")
    p.add_argument("--patient", metavar="ID", help="find: Patient ID (wildcards * ?)")
    p.add_argument("--date", metavar="RANGE",
                   help="find: study date YYYYMMDD, YYYYMMDD-, -YYYYMMDD or a range")
    p.add_argument("--modality", metavar="CODE", help="find: a modality in the study (CT)")
    p.add_argument("--limit", type=int, metavar="N", help="find: at most N studies")
    p.add_argument("--json", action="store_true", help="find: one JSON object per row")
    p.add_argument("--out", default=".", metavar="DIR", help="get: folder to write into")
    p.set_defaults(handler=cmd_pacs)


def user_errors() -> tuple[type[Exception], ...]:
    from ..pacs.dicomweb import PacsError

    return (PacsError,)


ARGUMENTS = {"pacs": _pacs_arguments}
