"""THE public plugin API: the only module attack and detector plugins import.

A plugin is one Python file with a subclass of :class:`Attack` that declares what it
is (``name``, ``summary``, ``threat``, ``scope``), its parameters as a ``Params``
dataclass built with :func:`param` (the GUI builds a form from it, the CLI its
``--param`` values), and ``run(model, images, labels, target, params, ctx)``.

Images are float tensors in [0, 1], N x C x H x W, on ``ctx.device``. The model takes
such images at any size and does its own resizing and normalisation, so epsilons are in
image space. ``labels`` are the true classes (or the model's clean answer when the truth
is unknown); ``target`` holds the class each image should be pushed to, or is None for an
untargeted attack. Long loops call ``ctx.check_cancelled()`` and ``ctx.progress()``.

The engine measures everything else (probabilities before and after, success, norms),
so a plugin only returns the adversarial batch and what it alone knows.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

API_VERSION = 1

THREATS = ("white-box gradient", "score-based black-box", "transfer", "physical/patch",
           "semantic")
SCOPES = ("per-image", "universal")


# --- parameters --------------------------------------------------------------------------
def param(default: Any, *, min: float | None = None, max: float | None = None,  # noqa: A002
          step: float | None = None, choices: tuple | list | None = None, help: str = "",  # noqa: A002
          label: str = "") -> Any:
    """A ``Params`` field with what a form or a command line needs to offer it."""
    meta = {"min": min, "max": max, "step": step, "choices": tuple(choices) if choices else None,
            "help": help, "label": label}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple | None = None
    help: str = ""
    label: str = ""


class ParamError(ValueError):
    """A parameter value outside its declared type, range or choices."""


_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


def param_specs(params_cls: type) -> list[ParamSpec]:
    """The declared parameters of a ``Params`` dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(params_cls):
        t = f.type if isinstance(f.type, type) else _TYPES.get(str(f.type), str)
        m = f.metadata
        out.append(ParamSpec(f.name, t, f.default, m.get("min"), m.get("max"), m.get("step"),
                             m.get("choices"), m.get("help", ""), m.get("label", "")))
    return out


def _convert(spec: ParamSpec, value: Any) -> Any:
    if spec.type is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ParamError(f"{spec.name}: expected true or false, got {value!r}")
        return bool(value)
    try:
        return spec.type(value)
    except (TypeError, ValueError):
        raise ParamError(f"{spec.name}: expected {spec.type.__name__}, got {value!r}") from None


def make_params(params_cls: type, values: dict[str, Any] | None = None) -> Any:
    """An instance of ``params_cls`` from user values (strings allowed), checked against
    each field's type, range and choices. Unknown names are an error."""
    specs = {s.name: s for s in param_specs(params_cls)}
    values = dict(values or {})
    unknown = set(values) - set(specs)
    if unknown:
        raise ParamError(f"unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(specs)}")
    kwargs = {}
    for name, spec in specs.items():
        v = _convert(spec, values[name]) if name in values else spec.default
        if spec.choices and v not in spec.choices:
            raise ParamError(f"{name}: {v!r} is not one of {list(spec.choices)}")
        if spec.min is not None and v < spec.min:
            raise ParamError(f"{name}: {v} is below the minimum {spec.min}")
        if spec.max is not None and v > spec.max:
            raise ParamError(f"{name}: {v} is above the maximum {spec.max}")
        kwargs[name] = v
    return params_cls(**kwargs)


# --- running -----------------------------------------------------------------------------
class Cancelled(Exception):  # noqa: N818 (it is a signal, not an error)
    """Raised inside a plugin when the user cancels; the engine reports it, not a failure."""


@dataclass
class RunContext:
    """What a running plugin may use besides the model and the images."""

    device: Any
    generator: Any  # torch.Generator seeded for this run, on ``device``
    seed: int = 0
    surrogate: Any = None  # a second classifier, for transfer attacks
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("workbench.plugin"))
    progress_callback: Callable[[float, str], None] | None = None
    cancelled_callback: Callable[[], bool] | None = None
    plugin_lookup: Callable[[str], Any] | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        if self.progress_callback is not None:
            self.progress_callback(max(0.0, min(1.0, float(fraction))), message)

    def cancelled(self) -> bool:
        return bool(self.cancelled_callback and self.cancelled_callback())

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop: call it once per iteration."""
        if self.cancelled():
            raise Cancelled()

    def plugin(self, name: str) -> Any:
        """Another attack plugin by name (e.g. a transfer attack runs PGD on the surrogate)."""
        if self.plugin_lookup is None:
            raise LookupError("no plugin registry in this context")
        return self.plugin_lookup(name)


@dataclass
class AttackResult:
    """What a plugin returns. ``adversarial`` has the input's shape, values in [0, 1]."""

    adversarial: Any
    iterations: Any = None  # per-image iterations used (tensor or list), if meaningful
    queries: Any = None  # per-image model queries, for black-box attacks
    artifacts: dict[str, Any] = field(default_factory=dict)  # e.g. a learned patch
    notes: str = ""


class Attack:
    """Base class of attack plugins. Subclasses set the class attributes and ``run``."""

    name: str = ""
    summary: str = ""
    threat: str = "white-box gradient"
    scope: str = "per-image"
    version: str = "1"
    needs_surrogate: bool = False

    @dataclass
    class Params:
        pass

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        raise NotImplementedError


# --- helpers for plugin authors ----------------------------------------------------------
def loss_gradient(model: Any, x: Any, labels: Any, target: Any = None) -> tuple[Any, Any]:
    """(gradient of the attack loss with respect to ``x``, logits), one forward and one
    backward. The loss *increases* as the attack progresses: cross-entropy to ``labels``
    when untargeted, minus cross-entropy to ``target`` when targeted. Gradients are taken
    for the input only (the model's parameters are frozen by the engine), which costs
    about 1/1.45 of a training step."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    x = x.detach().requires_grad_(True)
    logits = model(x)
    if target is None:
        loss = F.cross_entropy(logits, labels, reduction="sum")
    else:
        loss = -F.cross_entropy(logits, target, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad, logits.detach()


def reached(logits: Any, labels: Any, target: Any = None) -> Any:
    """Per-image success of the current logits (bool tensor)."""
    pred = logits.argmax(dim=1)
    return pred == target if target is not None else pred != labels


def project_linf(x_adv: Any, x: Any, eps: float) -> Any:
    """Into the L∞ ball of radius ``eps`` around ``x`` and into [0, 1]. This order,
    clamp(x + clamp(adv - x, -eps, eps), 0, 1), is the one torchattacks, ART and
    Foolbox share (bitwise-identical results from a zero start)."""
    import torch

    return torch.clamp(x + torch.clamp(x_adv - x, -eps, eps), 0.0, 1.0)


def project_l2(x_adv: Any, x: Any, eps: float) -> Any:
    """Into the L2 ball of radius ``eps`` (per image) around ``x`` and into [0, 1]."""
    import torch

    delta = x_adv - x
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (delta.dim() - 1)))
    delta = delta * torch.clamp(eps / norms, max=1.0)
    return torch.clamp(x + delta, 0.0, 1.0)


def l2_normalise(g: Any) -> Any:
    """Each image's gradient scaled to unit L2 norm."""
    norms = g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))
    return g / norms
