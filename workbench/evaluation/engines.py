"""Where units run: in this process (default), or as Ray tasks.

The Ray engine submits each unit as a task (one GPU per task when the cluster has GPUs,
one CPU otherwise) to a local instance or an existing cluster (``address``); results come
back to this process, which writes them, so resuming works the same for both engines.
Ray is an optional extra (``pip install .[cluster]``); no distribution layer of our own.
"""

from __future__ import annotations

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
        on_result(result)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_on_ray(config: dict[str, Any], units: list[Unit],
               on_result: Callable[[dict[str, Any]], None], *, address: str | None = None,
               workers: int | None = None,
               cancelled: Callable[[], bool] | None = None) -> None:
    from .runner import EvaluationCancelled, EvaluationError

    try:
        import ray
    except ImportError:
        raise EvaluationError("the Ray engine needs Ray: pip install 'workbench[cluster]'"
                              ) from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if address:
            kwargs["address"] = address
        elif workers:
            kwargs["num_cpus"] = int(workers)
        ray.init(**kwargs)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                          max_retries=1)(_ray_unit)
        # A worker uses one core: Ray's parallelism is across tasks, so torch's own
        # threads would only fight over the same cores.
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
                                          f"{str(exc).splitlines()[0]}") from None
                on_result(result)
    finally:
        if started_here:
            ray.shutdown()


def _ray_unit(config: dict[str, Any], unit_json: dict[str, Any]) -> dict[str, Any]:
    import torch

    if config.get("device") == "cpu":
        torch.set_num_threads(1)
    return compute_unit(config, unit_json)
