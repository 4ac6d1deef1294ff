"""Verify an archive where it lives: each instance is pulled from the PACS (its stored
bytes), verified against its capture record exactly as a folder is, and named by its
WADO-RS address. Instances come and go in chunks, so disk use stays bounded however large
the archive; with Ray each chunk is spread over the cluster."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .dicomweb import DicomWeb, InstanceRef
from .retrieve import retrieve

CHUNK = 500  # instances on disk at a time


def instance_url(archive: DicomWeb, ref: InstanceRef) -> str:
    return (f"{archive.url}/studies/{ref.study_uid}/series/{ref.series_uid}"
            f"/instances/{ref.sop_uid}")


def _renamed(result: Any, temp: str, url: str) -> Any:
    """The result as if the instance had been verified in place: its URL, not the
    temporary file, in the path and every message."""
    result.path = url
    result.summary = result.summary.replace(temp, url)
    for check in result.checks:
        check.message = check.message.replace(temp, url)
    result.notes = [n.replace(temp, url) for n in result.notes]
    return result


def verify_archive(archive: DicomWeb, refs: Sequence[InstanceRef], *, ledger: Any = None,
                   engine: str = "inprocess", address: str | None = None,
                   workers: int | None = None,
                   progress: Callable[[int, int, str], None] | None = None,
                   cancel: threading.Event | None = None, chunk: int = CHUNK) -> list[Any]:
    """One VerificationResult per instance, in ``refs`` order. An instance the PACS cannot
    send is an ``error`` result naming why; the rest are still verified."""
    from ..provenance.records.verify import (
        ERROR,
        FAIL,
        Check,
        VerificationResult,
        verify_paths,
    )

    results: list[Any] = []
    total = len(refs)
    for start in range(0, total, chunk):
        if cancel is not None and cancel.is_set():
            break
        batch = refs[start:start + chunk]
        with tempfile.TemporaryDirectory(prefix="workbench-pacs-") as temp:
            got = retrieve(archive, batch, temp, cancel=cancel)
            by_ref = {ref: str(path) for ref, path in got.files}
            failed = dict(got.failed)
            paths = [by_ref[r] for r in batch if r in by_ref]
            done_before = start

            def step(done: int, _total: int, name: str, base: int = done_before) -> None:
                if progress is not None:
                    progress(base + done, total, name)

            if engine == "ray":
                from ..provenance.records.verify_batch import verify_paths_on_ray

                verified = verify_paths_on_ray(paths, ledger=ledger, address=address,
                                               workers=workers, progress=step) if paths else []
            else:
                verified = verify_paths(paths, ledger=ledger, progress=step)
            by_path = {r.path: r for r in verified}
            for ref in batch:
                url = instance_url(archive, ref)
                if ref in failed:
                    message = f"{url}: not retrieved ({failed[ref]})"
                    results.append(VerificationResult(url, ERROR, message,
                                                      [Check("image", FAIL, message)]))
                elif ref in by_ref and by_ref[ref] in by_path:
                    results.append(_renamed(by_path[by_ref[ref]], by_ref[ref], url))
    return results
