"""Running one attack plugin on a batch: isolation, cancel, and measurement.

The engine, not the plugin, measures what a result means: class probabilities before
and after (victim model), success (label flipped, or target reached), L∞ and L2 of the
perturbation. A plugin that raises, returns NaN, leaves [0, 1] or changes the shape is
reported as a failure with its reason; the caller keeps working. Cancel is enforced by a
forward pre-hook on the models, so even a plugin that never checks ``ctx.cancelled()``
stops at its next model call.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import api

RANGE_TOLERANCE = 1e-6


class AttackFailed(Exception):
    """The plugin raised or returned something invalid; the message says which and why."""


class AttackCancelled(Exception):  # noqa: N818
    """The user cancelled the run."""


@dataclass
class AttackOutcome:
    plugin: str
    plugin_version: str
    params: dict[str, Any]
    adversarial: Any  # CPU tensor N x C x H x W in [0, 1]
    clean_probs: Any  # CPU tensor N x classes
    adv_probs: Any
    labels: Any  # CPU long tensor N
    targets: Any  # CPU long tensor N, or None
    success: Any  # CPU bool tensor N
    linf: Any  # CPU float tensor N
    l2: Any
    iterations: list | None
    queries: list | None
    model_calls: int
    seconds: float
    artifacts: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    l0: Any = None  # CPU long tensor N: pixels changed (any channel), for sparse attacks

    def per_image(self, class_names: tuple[str, ...]) -> list[dict[str, Any]]:
        """JSON-able per-image results."""
        out = []
        for i in range(self.adversarial.shape[0]):
            c, a = self.clean_probs[i], self.adv_probs[i]
            out.append({
                "clean_class": class_names[int(c.argmax())],
                "clean_probabilities": {n: round(float(c[j]), 6)
                                        for j, n in enumerate(class_names)},
                "adversarial_class": class_names[int(a.argmax())],
                "adversarial_probabilities": {n: round(float(a[j]), 6)
                                              for j, n in enumerate(class_names)},
                "label": class_names[int(self.labels[i])],
                "target": None if self.targets is None else class_names[int(self.targets[i])],
                "success": bool(self.success[i]),
                "linf": float(self.linf[i]),
                "l2": float(self.l2[i]),
                "l0": None if self.l0 is None else int(self.l0[i]),
                "iterations": None if self.iterations is None else int(self.iterations[i]),
                "queries": None if self.queries is None else int(self.queries[i]),
            })
        return out


def other_class_targets(labels: Any, probs: Any) -> Any:
    """The class to push each image to: the other class for a binary model (as in the
    seeds), else the most probable class that is not the label."""
    import torch

    if probs.shape[1] == 2:
        return 1 - labels
    masked = probs.clone()
    masked[torch.arange(len(labels)), labels] = -1.0
    return masked.argmax(dim=1)


def run_attack(plugin: Any, model: Any, images: Any, *, labels: Any = None,
               targeted: bool = False, params: dict[str, Any] | Any = None,
               surrogate: Any = None, seed: int = 0, progress: Any = None,
               cancelled: Any = None, plugin_lookup: Any = None,
               levels: Any = None) -> AttackOutcome:
    """Run ``plugin`` (an Attack instance) on ``images`` (N x C x H x W in [0, 1]).

    ``labels``: true classes, or None to use the model's clean answers. ``params``: a
    Params instance, or a dict of user values (validated against the declaration).
    ``levels``: when the result will be saved in the image's stored values, the number of
    steps of that grid over [0, 1] (``ValueMapping.levels``), one per image or one for
    all. The adversarial images are then put on the grid (:func:`on_stored_grid`) before
    anything is measured, so the probabilities, success and norms reported are those of
    the file that is saved, not of an unrounded tensor nobody can open.
    """
    import torch

    device = model.device
    name = getattr(plugin, "name", type(plugin).__name__)
    p = params if dataclasses_is_instance(params) else api.make_params(plugin.Params, params)
    if getattr(plugin, "needs_surrogate", False) and surrogate is None:
        raise AttackFailed(f"{name}: this attack needs a surrogate model")
    # Contiguous NCHW: third-party attacks call .view() on their inputs.
    x = images.to(device=device, dtype=torch.float32).contiguous()
    with torch.inference_mode():
        clean = torch.softmax(model(x), dim=1)
    y = clean.argmax(dim=1) if labels is None else torch.as_tensor(labels, device=device).long()
    target = other_class_targets(y, clean) if targeted else None

    calls = {"n": 0}

    def guard(_module: Any, _inputs: Any) -> None:
        calls["n"] += 1
        if cancelled is not None and cancelled():
            raise api.Cancelled()

    hooks = [m.register_forward_pre_hook(guard) for m in {id(model): model,
                                                           id(surrogate): surrogate}.values()
             if m is not None]
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    ctx = api.RunContext(device=device, generator=generator, seed=seed, surrogate=surrogate,
                         progress_callback=progress, cancelled_callback=cancelled,
                         plugin_lookup=plugin_lookup)
    start = time.perf_counter()
    try:
        result = plugin.run(model, x.clone(), y.clone(), None if target is None else
                            target.clone(), p, ctx)
    except api.Cancelled:
        raise AttackCancelled(f"{name}: cancelled") from None
    except Exception as exc:
        tb = traceback.format_exc(limit=-3)
        raise AttackFailed(f"{name} raised {type(exc).__name__}: {exc}\n{tb}") from None
    finally:
        for h in hooks:
            h.remove()
    seconds = time.perf_counter() - start
    adv = _validated(name, result, x)
    notes = result.notes
    if levels is not None:
        adv, notes = _rounded_to_stored(model, adv, x, y, target, levels, notes)
    with torch.inference_mode():
        adv_probs = torch.softmax(model(adv), dim=1)
    pred = adv_probs.argmax(dim=1)
    success = pred == target if target is not None else pred != y
    linf, l2, l0 = perturbation_norms(adv, x)
    return AttackOutcome(
        plugin=name, plugin_version=str(getattr(plugin, "version", "")),
        params=asdict(p), adversarial=adv.detach().cpu(), clean_probs=clean.cpu(),
        adv_probs=adv_probs.cpu(), labels=y.cpu(), targets=None if target is None else
        target.cpu(), success=success.cpu(), linf=linf.cpu(),
        l2=l2.cpu(), iterations=_as_list(result.iterations),
        queries=_as_list(result.queries), model_calls=calls["n"], seconds=seconds,
        artifacts=dict(result.artifacts or {}), notes=notes, l0=l0.cpu())


def perturbation_norms(adv: Any, x: Any) -> tuple[Any, Any, Any]:
    """Each image's L-inf, L2 and L0 (pixels changed, a pixel counting once over its
    channels) of ``adv - x``, as tensors of N."""
    delta = adv - x
    magnitude = delta.abs()
    changed = magnitude.amax(dim=1)  # N x H x W
    magnitude, delta = magnitude.flatten(1), delta.flatten(1)  # one subtraction, not two
    return magnitude.amax(dim=1), delta.norm(dim=1), (changed > 0).flatten(1).sum(dim=1)


def _rounded_to_stored(model: Any, adv: Any, x: Any, y: Any, target: Any, levels: Any,
                       notes: str) -> tuple[Any, str]:
    """``adv`` on the stored grid, and the notes with a line when rounding undid a
    success (one forward of the unrounded and one of the rounded images)."""
    import torch

    rounded = on_stored_grid(adv, x, levels)
    with torch.inference_mode():
        before, after = model(adv).argmax(dim=1), model(rounded).argmax(dim=1)
    fooled = (lambda p: p == target) if target is not None else (lambda p: p != y)
    lost = int((fooled(before) & ~fooled(after)).sum())
    if lost:
        notes = "; ".join(filter(None, [notes, (
            f"{lost} image(s) fooled the model before rounding to the stored values "
            "but not after: the saved file is what is reported")]))
    return rounded, notes


def on_stored_grid(adv: Any, x: Any, levels: Any) -> Any:
    """``adv`` rounded to the stored grid of ``x`` (``levels`` steps over [0, 1], one per
    image or one for all; None for an image without a grid, kept as it is).

    The clean images are on the grid already. Each perturbation is rounded to whole
    stored steps and then clipped to the largest whole number of steps within its own
    L∞ norm, so rounding never takes a result outside the budget it was made in (eps 0.01
    of an 8-bit photo is 2.55 steps: 2 are kept, never 3). L2 can change by the rounding.
    """
    import torch

    per_image = list(levels) if isinstance(levels, list | tuple) else [levels] * len(adv)
    out = adv.clone()
    for i, n in enumerate(per_image):
        if n is None:
            continue
        scale = float(n)
        clean = torch.round(x[i] * scale)
        step = torch.round(adv[i] * scale) - clean
        # 1e-3 of a step: a norm that is whole up to float error keeps its last step
        budget = torch.floor((adv[i] - x[i]).abs().amax() * scale + 1e-3)
        out[i] = ((clean + step.clamp_(-budget, budget)) / scale).clamp_(0.0, 1.0)
    return out


def dataclasses_is_instance(obj: Any) -> bool:
    import dataclasses

    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def _as_list(value: Any) -> list | None:
    if value is None:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return list(value)


def _validated(name: str, result: Any, x: Any) -> Any:
    import torch

    if not isinstance(result, api.AttackResult):
        raise AttackFailed(f"{name} returned {type(result).__name__}, not an AttackResult")
    adv = result.adversarial
    if not isinstance(adv, torch.Tensor):
        raise AttackFailed(f"{name} returned adversarial images of type {type(adv).__name__}")
    if tuple(adv.shape) != tuple(x.shape):
        raise AttackFailed(f"{name} returned shape {tuple(adv.shape)} for input "
                           f"{tuple(x.shape)}")
    adv = adv.detach().to(device=x.device, dtype=torch.float32)
    if not torch.isfinite(adv).all():
        raise AttackFailed(f"{name} returned NaN or infinite values")
    lo, hi = float(adv.min()), float(adv.max())
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise AttackFailed(f"{name} returned values outside [0, 1] ({lo:.4g}..{hi:.4g})")
    return adv.clamp(0.0, 1.0)
