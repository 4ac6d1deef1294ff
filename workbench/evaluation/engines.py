"""Where units run: in this process (default), or as Ray tasks.

The Ray engine submits each unit as a task (one GPU per task when the cluster has GPUs,
one CPU otherwise) to a local instance or an existing cluster (``address``); results come
back to this process, which writes them, so resuming works the same for both engines.
Ray is an optional extra (``pip install .[cluster]``); no distribution layer of our own.
``ray_session`` is shared with ``workbench verify --engine ray``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .units import Unit, compute_unit

RAY_MISSING = "the Ray engine needs Ray: pip install 'workbench[cluster]'"


class RayEngineError(Exception):
    """Ray is missing, cannot start or connect, or a task failed; the message says why."""


def run_units(spec: Any, config: dict[str, Any], units: list[Unit],
              on_result: Callable[[dict[str, Any]], None], *,
              unit_progress: Callable[[float, str], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> None:
    if not units:
        return
    if spec.engine == "ray":
        run_on_ray(config, units, on_result, address=spec.address, workers=spec.workers,
                   cancelled=cancelled)
    else:
        run_in_process(config, units, on_result, unit_progress=unit_progress,
                       cancelled=cancelled)


def run_in_process(config: dict[str, Any], units: list[Unit],
                   on_result: Callable[[dict[str, Any]], None], *,
                   unit_progress: Callable[[float, str], None] | None = None,
                   cancelled: Callable[[], bool] | None = None) -> None:
    from ..engine.attack_runner import AttackCancelled
    from ..engine.detector_runner import DetectorCancelled
    from .runner import EvaluationCancelled, EvaluationError

    for unit in units:
        if cancelled is not None and cancelled():
            raise EvaluationCancelled("cancelled; finished units are kept")
        try:
            result = compute_unit(config, unit.to_json(), progress=unit_progress,
                                  cancelled=cancelled)
        except (AttackCancelled, DetectorCancelled):
            raise EvaluationCancelled("cancelled; finished units are kept") from None
        except Exception as exc:
            raise EvaluationError(f"unit {unit.id} failed: {str(exc).splitlines()[0]}"
                                  ) from exc
        result["pid"] = os.getpid()  # which process computed it (the same for every unit)
        on_result(result)


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


def run_on_ray(config: dict[str, Any], units: list[Unit],
               on_result: Callable[[dict[str, Any]], None], *, address: str | None = None,
               workers: int | None = None,
               cancelled: Callable[[], bool] | None = None) -> None:
    from .runner import EvaluationCancelled, EvaluationError

    try:
        with ray_session(address, workers) as ray:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                              max_retries=1)(_ray_unit)
            cfg = dict(config, device="cuda" if gpus else "cpu")
            ref_config = ray.put(cfg)
            pending = {task.remote(ref_config, u.to_json()): u for u in units}
            while pending:
                if cancelled is not None and cancelled():
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    raise EvaluationCancelled("cancelled; finished units are kept")
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    unit = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:
                        for other in pending:
                            ray.cancel(other, force=True)
                        raise EvaluationError(f"unit {unit.id} failed on Ray: "
                                              f"{ray_error_message(exc)}") from None
                    on_result(result)
    except RayEngineError as exc:
        raise EvaluationError(str(exc)) from None


def _ray_unit(config: dict[str, Any], unit_json: dict[str, Any]) -> dict[str, Any]:
    import torch

    if config.get("device") == "cpu":
        # A worker uses one core: Ray's parallelism is across tasks, so torch's own
        # threads would only fight over the same cores.
        torch.set_num_threads(1)
    result = compute_unit(config, unit_json)
    result["pid"] = os.getpid()  # the worker's: shows where each unit was computed
    return result
