"""Ray, for the commands that can spread their work over a cluster (``workbench verify
--engine ray``, ``workbench evaluate --engine ray``): a session connected to a local instance
or an existing cluster, and the loop that runs a batch of tasks on it.

Ray is an optional extra (``pip install 'workbench[cluster]'``) and is imported only when a
session starts; no distribution layer of our own. Both commands get results back in this
process, which writes them, so resuming and ordering work the same as in process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

RAY_MISSING = "the Ray engine needs Ray: pip install 'workbench[cluster]'"


class RayEngineError(Exception):
    """Ray is missing, cannot start or connect; the message says why."""


class RayTaskFailed(Exception):
    """One task of a batch raised; ``key`` names it and ``reason`` is one line saying why
    (the task's own exception, see ray_error_message)."""

    def __init__(self, key: Any, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _worker_pythonpath() -> str | None:
    """PYTHONPATH for the workers of a local instance, so they can import ``workbench``
    when this process imported it from a source tree (pytest's ``pythonpath``, a
    ``sys.path`` entry) rather than an installed package. Ray only hands workers the
    driver's script folder and current directory, so a driver started elsewhere would
    get workers that fail to unpickle every task."""
    import workbench

    root = Path(workbench.__file__).resolve().parents[1]
    if root.name in ("site-packages", "dist-packages"):
        return None  # installed: workers find it already; never put site-packages first
    return os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)


@contextmanager
def ray_session(address: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to Ray already initialised in this process (left
    running), else to the cluster at ``address``, else to a fresh local instance with
    ``workers`` CPUs (default: all); a session started here is shut down on exit.

    Raises RayEngineError (never ImportError) when Ray is missing or will not start."""
    try:
        import ray
    except ImportError:
        raise RayEngineError(RAY_MISSING) from None
    if ray.is_initialized():
        yield ray
        return
    # Quiet and quick: no dashboard (seconds of start-up, a port), no worker output
    # copied onto our console (it would break the progress bar and --json), and Ray
    # leaves the logging configuration of this process alone.
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "configure_logging": False}
    if address:
        _check_reachable(address)
        kwargs["address"] = address
    else:
        if workers:
            kwargs["num_cpus"] = int(workers)
        path = None if os.environ.get("RAY_ADDRESS") else _worker_pythonpath()
        if path:
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    try:
        ray.init(**kwargs)
    except Exception as exc:
        with suppress(Exception):  # whatever half-started; the first problem is reported
            ray.shutdown()
        where = f"connect to the Ray cluster at {address}" if address else "start Ray"
        raise RayEngineError(f"cannot {where}: {ray_error_message(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens at a ``host:port`` address: ray.init itself retries
    a cluster that is not there for many minutes, logging warnings all the while."""
    import socket

    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" and the like: Ray's to resolve
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise RayEngineError(f"cannot connect to the Ray cluster at {address}: nothing "
                             f"answers there ({exc.strerror or exc})") from None


def ray_error_message(exc: BaseException) -> str:
    """One line saying what went wrong: a task's own exception rather than Ray's wrapper,
    whose first line only names the task, its pid and node."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [s for s in str(exc).splitlines() if s.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_tasks(ray: Any, task: Any, calls: Iterable[tuple[Hashable, tuple[Any, ...]]],
              on_result: Callable[[Any, Any], None], *,
              cancelled: Callable[[], bool] | None = None) -> bool:
    """Submit ``task.remote(*args)`` for each ``(key, args)`` of ``calls`` on the session
    ``ray``, and hand each result to ``on_result(key, result)`` as its task finishes (in
    finishing order, not submission order).

    Returns True when every task finished, False when ``cancelled()`` said stop (checked
    twice a second; unfinished tasks are cancelled). The first task that fails cancels the
    others and raises RayTaskFailed: a batch is all or nothing, as in process."""
    pending = {task.remote(*args): key for key, args in calls}
    while pending:
        if cancelled is not None and cancelled():
            for ref in pending:
                ray.cancel(ref, force=True)
            return False
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            key = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:
                for other in pending:
                    ray.cancel(other, force=True)
                raise RayTaskFailed(key, ray_error_message(exc)) from None
            on_result(key, result)
    return True
