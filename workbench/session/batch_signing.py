"""Signing a folder at the speed of its hashing and its disk: the signing policy of
``signing_policy`` applied to many files, with the work spread over processes and the
ledger's fsync shared by a batch.

Where the time went, signing one file after another (benchmarks/fingerprint.py): decoding
and fingerprinting are Python work on one core; each ledger append is a commit with its
own fsync, which on a real disk costs more than the fingerprints of a small image. So:

- **Preparing** a file (the policy's decision, the decode and the unsigned record with
  its fingerprints) runs in worker processes when there are enough files for their start
  to pay. Workers never see the private key: the main process signs (Ed25519 is
  microseconds).
- **Committing** is grouped: a batch's sidecars are first written beside their images as
  temporary files, then the batch's records go into the ledger in one transaction (one
  fsync), then the sidecars are put in place. The rule of ``sign_image`` holds for every
  file: a sidecar never exists without its ledger entry, and an unwritable folder fails
  before the ledger holds anything of that file. A batch the ledger refuses is retried
  one record at a time, so one bad record fails alone.

Results come back in the order of the files, one outcome per file; one bad file never
stops the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNED, SKIPPED, REFUSED, FAILED = "signed", "skipped", "refused", "failed"

#: below this many files one process is faster than starting workers (~1 s each)
PARALLEL_FROM = 24
#: at most this many records per ledger transaction, and at most this long a wait
BATCH_RECORDS = 64
BATCH_SECONDS = 0.5


@dataclass
class Prepared:
    """What a worker made of one file: the decision and, to sign, the unsigned record;
    or why it failed. ``notes``: library warnings raised while reading it."""

    path: str
    status: str  # SIGNED (to be signed), SKIPPED, REFUSED or FAILED
    message: str = ""
    record: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    path: str
    status: str  # SIGNED, SKIPPED, REFUSED or FAILED
    message: str = ""
    notes: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None


def prepare(path: str, force: bool = False) -> Prepared:
    """The policy's decision on ``path`` and, when it is to be signed, its unsigned
    record. Never raises: a failure is a FAILED result naming the file."""
    from ..imaging.errors import ImageLoadError
    from ..imaging.loader import load_image
    from ..imaging.warning_notes import warnings_as_notes
    from ..provenance.records.record import build_record
    from .signing_policy import REFUSE, SKIP, decide_signing

    with warnings_as_notes() as notes:
        try:
            decision = decide_signing(path, force=force)
            if decision.action == SKIP:
                out = Prepared(path, SKIPPED, decision.reason)
            elif decision.action == REFUSE:
                out = Prepared(path, REFUSED, decision.reason)
            else:
                out = Prepared(path, SIGNED, record=build_record(load_image(path)))
        except ImageLoadError as exc:
            out = Prepared(path, FAILED, str(exc))
        except OSError as exc:
            out = Prepared(path, FAILED, f"{path}: cannot read it ({exc.strerror or exc})")
        except Exception as exc:  # whatever else: this file fails, the rest go on
            first = (str(exc).strip().splitlines() or [""])[0]
            out = Prepared(path, FAILED, f"{path}: cannot sign ({type(exc).__name__}: "
                                         f"{first})")
    out.notes = list(notes)
    return out


def _prepared(files: list[Path], force: bool, workers: int) -> Iterator[Prepared]:
    """Each file's Prepared, in order, made by ``workers`` processes: this one and
    ``workers - 1`` spawned ones (this one signs and commits too, but that is a fifth of
    the work of preparing)."""
    if workers <= 1:
        for f in files:
            yield prepare(str(f), force)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: the caller may hold threads (a GUI, sqlite) that fork would copy
    # in whatever state they are in
    with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            yield from _in_order_with_help(pool, files, force)
        finally:  # cancelled or failed: drop what has not started
            pool.shutdown(wait=True, cancel_futures=True)


def _in_order_with_help(pool: Any, files: list[Path], force: bool) -> Iterator[Prepared]:
    """The pool's results in file order, this process preparing files too whenever the
    next one is not ready: it takes a file no worker has taken yet (a future it can still
    cancel). A spawned worker needs about a second to import what it needs; without this
    help, 200 small files signed slower on two workers than in one process."""
    futures = [pool.submit(prepare, str(f), force) for f in files]
    ours: dict[int, Prepared] = {}
    steal = 0  # futures before this one are taken by a worker, done, or ours
    for i, future in enumerate(futures):
        while i not in ours and not future.done():
            steal = max(steal, i)
            while steal < len(futures) and not futures[steal].cancel():
                steal += 1  # a worker has it: the pool hands files out in order
            if steal == len(futures):
                break  # nothing left to take: wait for the worker
            ours[steal] = prepare(str(files[steal]), force)
            steal += 1
        yield ours.pop(i) if i in ours else future.result()


def default_workers(n_files: int) -> int:
    """Processes preparing files, this one included: one per core, up to 4, from
    PARALLEL_FROM files on."""
    if n_files < PARALLEL_FROM:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


class _Committer:
    """Sidecars staged beside their images, committed with their ledger entries a batch
    at a time."""

    def __init__(self, ledger: Any, emit: Callable[[Outcome], None]) -> None:
        self.ledger, self.emit = ledger, emit
        self.pending: list[tuple[Outcome, Path, Path]] = []  # (outcome, tmp, sidecar)
        self.since = 0.0

    def add(self, outcome: Outcome) -> None:
        from ..provenance.durable import write_synced
        from ..provenance.records.canonical_json import canonical_json
        from ..provenance.records.record import sidecar_path

        side = sidecar_path(outcome.path)
        tmp = side.with_name(side.name + ".tmp")
        try:
            data = canonical_json(outcome.record) + b"\n"
            if self.ledger is None:  # the sidecar is the record's only copy (write_sidecar)
                write_synced(tmp, data)
            else:
                tmp.write_bytes(data)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            outcome.status, outcome.record = FAILED, None
            outcome.message = f"{outcome.path}: cannot write the sidecar ({exc})"
            self.emit(outcome)
            return
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append((outcome, tmp, side))
        if len(self.pending) >= BATCH_RECORDS or \
                time.monotonic() - self.since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        if self.ledger is not None:
            try:
                self.ledger.append_many([o.record for o, _t, _s in batch])
            except Exception:
                for item in batch:  # one record at a time: the bad one fails alone
                    self._commit_one(item)
                return
        for item in batch:
            self._put_in_place(item)
        if self.ledger is None:  # the renames of the only copies, on disk
            from ..provenance.durable import fsync_dir

            for folder in {side.parent for _o, _t, side in batch}:
                fsync_dir(folder)

    def _commit_one(self, item: tuple[Outcome, Path, Path]) -> None:
        outcome, tmp, _side = item
        try:
            self.ledger.append(outcome.record)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            outcome.status, outcome.record = FAILED, None
            outcome.message = f"{outcome.path}: the ledger refused its record ({exc})"
            self.emit(outcome)
            return
        self._put_in_place(item)

    def _put_in_place(self, item: tuple[Outcome, Path, Path]) -> None:
        outcome, tmp, side = item
        try:
            os.replace(tmp, side)
        except OSError as exc:  # the entry is in the ledger: say so, the sidecar is not
            tmp.unlink(missing_ok=True)
            outcome.status = FAILED
            outcome.message = (f"{outcome.path}: its ledger entry was written but the "
                               f"sidecar could not be put in place ({exc})")
        self.emit(outcome)


def sign_files(files: list[Path], private_key: Any, *, ledger: Any = None,
               force: bool = False, workers: int | None = None,
               progress: Callable[[int, int, str], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> list[Outcome]:
    """Sign, skip or refuse each file as the signing policy decides. Returns one outcome
    per file that was reached, in file order (fewer when cancelled: what was signed up
    to then is committed). ``workers``: processes preparing files (default: one per
    core, up to 4, from PARALLEL_FROM files on)."""
    from ..provenance.records.record import sign_record

    n = len(files)
    results: dict[str, Outcome] = {}

    def emit(o: Outcome) -> None:
        results[o.path] = o

    committer = _Committer(ledger, emit)
    stream = _prepared(files, force, default_workers(n) if workers is None else workers)
    try:
        for done, p in enumerate(stream, 1):
            if cancelled is not None and cancelled():
                break
            outcome = Outcome(p.path, p.status, p.message, p.notes)
            if p.status != SIGNED:
                emit(outcome)
            else:
                try:
                    outcome.record = sign_record(p.record, private_key)
                    committer.add(outcome)
                except Exception as exc:
                    outcome.status, outcome.message = FAILED, f"{p.path}: cannot sign ({exc})"
                    emit(outcome)
            if progress is not None:  # prepared and signed; committed with its batch
                progress(done, n, Path(p.path).name)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        committer.flush()
    return [results[str(f)] for f in files if str(f) in results]
