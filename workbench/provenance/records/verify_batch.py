"""Verifying an archive as Ray tasks (``workbench verify --engine ray``), for auditors with
a cluster. Same files, same order and same results as ``verify_paths`` in this process.

Files go to the workers in chunks (one task per ``chunk_size`` files: a task costs a few
milliseconds of scheduling, a file a few of hashing). Workers read the archive and the
ledger by path, so on a cluster both must be at the same paths on every node (a shared
filesystem); a worker that cannot see them fails the command rather than report files as
unreadable or records as missing from the ledger. The trust store is the one of this
process, sent with every task: who is trusted is the auditor's decision, not a node's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .verify import Check, VerificationResult, list_files

CHUNK_SIZE = 16


class VerifyBatchError(Exception):
    """Ray is missing or unreachable, or a task failed; the message says why."""


def result_from_json(d: dict[str, Any]) -> VerificationResult:
    """A VerificationResult back from ``dataclasses.asdict`` (what a worker returns)."""
    return VerificationResult(d["path"], d["verdict"], d["summary"],
                              [Check(**c) for c in d["checks"]], d["record_source"],
                              d["record_id"])


def _ledger_path(ledger: Any) -> str | None:
    """The ledger file the workers open: as ``verify_paths`` chooses it (a Ledger given,
    None for the default one when it exists, False for none)."""
    if ledger is False:
        return None
    if ledger is not None:
        return str(Path(ledger.path).resolve())
    from ...home import ledger_file

    return str(ledger_file().resolve()) if ledger_file().is_file() else None


def _trust_store() -> dict[str, str]:
    """This process's trusted public keys, file name -> contents."""
    from ...home import trust_store_dir

    return {f.name: f.read_text() for f in sorted(trust_store_dir().glob("*.json"))}


def verify_paths_on_ray(paths: list[str | os.PathLike[str]], *, ledger: Any = None,
                        address: str | None = None, workers: int | None = None,
                        chunk_size: int = CHUNK_SIZE,
                        progress: Callable[[int, int, str], None] | None = None,
                        cancelled: Callable[[], bool] | None = None
                        ) -> list[VerificationResult]:
    """``verify_paths`` with the files verified as Ray tasks on the cluster at ``address``
    (default: a local instance of ``workers`` CPUs). Results come back in file order;
    ``progress(done, total, name)`` counts files as their chunk finishes."""
    from ...runtime.ray_tasks import RayEngineError, RayTaskFailed, ray_session, run_tasks

    shown = list_files(paths)  # results name files as given, like verify_paths
    files = [str(f.resolve()) for f in shown]
    if not files:
        return []
    chunks = [list(range(i, min(i + chunk_size, len(files))))
              for i in range(0, len(files), chunk_size)]
    ledger_path, trust = _ledger_path(ledger), _trust_store()
    results: dict[int, list[dict[str, Any]]] = {}
    done = 0

    def chunk_done(k: int, chunk_results: list[dict[str, Any]]) -> None:
        nonlocal done
        results[k] = chunk_results
        for i in chunks[k]:
            done += 1
            if progress:
                progress(done, len(files), shown[i].name)

    try:
        with ray_session(address, workers) as ray:
            task = ray.remote(num_cpus=1)(_verify_chunk)
            trust_ref = ray.put(trust)
            run_tasks(ray, task, ((k, ([files[i] for i in c], ledger_path, trust_ref))
                                  for k, c in enumerate(chunks)),
                      chunk_done, cancelled=cancelled)
    except RayTaskFailed as exc:
        raise VerifyBatchError(f"verifying {shown[chunks[exc.key][0]].name} and the files "
                               f"after it failed on Ray: {exc.reason}") from None
    except RayEngineError as exc:
        raise VerifyBatchError(str(exc)) from None
    out = []
    for k, chunk in enumerate(chunks):
        if k not in results:
            break  # cancelled: the finished prefix, as verify_paths stops early
        for i, d in zip(chunk, results[k], strict=True):
            out.append(_as_given(result_from_json(d), files[i], str(shown[i])))
    return out


def _as_given(r: VerificationResult, resolved: str, given: str) -> VerificationResult:
    """Name the file as given (workers get absolute paths: their working folder is not
    ours), also in messages that quote it ("<file>: <reason>"), as in this process."""
    r.path = given
    r.summary = r.summary.replace(resolved, given)
    for c in r.checks:
        c.message = c.message.replace(resolved, given)
    return r


def _verify_chunk(files: list[str], ledger_path: str | None,
                  trust: dict[str, str]) -> list[dict[str, Any]]:
    """Runs on a worker: each file's result as plain data (``dataclasses.asdict``)."""
    import socket
    import tempfile
    from dataclasses import asdict

    from ...home import ENV_VAR
    from ..ledger.store import Ledger
    from .verify import verify_one_safely

    node = socket.gethostname()
    unseen = [f for f in files if not os.path.exists(f)]
    if unseen:
        raise FileNotFoundError(f"{unseen[0]} is not visible on node {node}: the archive "
                                "must be on a filesystem shared by every node")
    if ledger_path and not os.path.isfile(ledger_path):
        # Opening it would create an empty ledger and report every record as missing.
        raise FileNotFoundError(f"the ledger {ledger_path} is not visible on node {node}")
    # The trust store is read from WORKBENCH_HOME: point it at a private copy of the
    # driver's for this task (workers run one task at a time), then put it back.
    with tempfile.TemporaryDirectory(prefix="workbench-verify-") as home:
        trust_dir = Path(home) / "trust"
        trust_dir.mkdir(mode=0o700)
        for name, text in trust.items():
            (trust_dir / name).write_text(text)
        before = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = home
        led = None
        try:
            led = Ledger(ledger_path) if ledger_path else None
            return [asdict(verify_one_safely(f, led)) for f in files]
        finally:
            if led is not None:
                led.close()
            if before is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = before
