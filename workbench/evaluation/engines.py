"""Where units run: in this process (default), or as Ray tasks.

The Ray engine submits each unit as a task (one GPU per task when the cluster has GPUs,
one CPU otherwise) to a local instance or an existing cluster (``address``); results come
back to this process, which writes them, so resuming works the same for both engines.
Ray is an optional extra (``pip install .[cluster]``); the session and the task loop are
``workbench.runtime.ray_tasks``, shared with ``workbench verify --engine ray``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .units import Unit, compute_unit


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


def run_on_ray(config: dict[str, Any], units: list[Unit],
               on_result: Callable[[dict[str, Any]], None], *, address: str | None = None,
               workers: int | None = None,
               cancelled: Callable[[], bool] | None = None) -> None:
    from ..runtime.ray_tasks import RayEngineError, RayTaskFailed, ray_session, run_tasks
    from .runner import EvaluationCancelled, EvaluationError

    try:
        with ray_session(address, workers) as ray:
            gpus = ray.cluster_resources().get("GPU", 0)
            task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                              max_retries=1)(_ray_unit)
            cfg = dict(config, device="cuda" if gpus else "cpu")
            ref_config = ray.put(cfg)
            finished = run_tasks(ray, task, ((u, (ref_config, u.to_json())) for u in units),
                                 lambda _unit, result: on_result(result),
                                 cancelled=cancelled)
    except RayTaskFailed as exc:
        raise EvaluationError(f"unit {exc.key.id} failed on Ray: {exc.reason}") from None
    except RayEngineError as exc:
        raise EvaluationError(str(exc)) from None
    if not finished:
        raise EvaluationCancelled("cancelled; finished units are kept")


def _ray_unit(config: dict[str, Any], unit_json: dict[str, Any]) -> dict[str, Any]:
    import torch

    if config.get("device") == "cpu":
        # A worker uses one core: Ray's parallelism is across tasks, so torch's own
        # threads would only fight over the same cores.
        torch.set_num_threads(1)
    result = compute_unit(config, unit_json)
    result["pid"] = os.getpid()  # the worker's: shows where each unit was computed
    return result
