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


# --- patches (universal patch, natural patch, applying a saved patch) ---------------------
def circle_mask(size: int, device: Any = None) -> Any:
    """A 1 x size x size disc (1 inside, 0 outside), the seed's circular patch shape."""
    import torch

    r = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    return ((r[None, :] ** 2 + r[:, None] ** 2) <= 1.0).float()[None]


def random_placements(n: int, generator: Any, *, scale: tuple[float, float] = (0.4, 0.4),
                      max_angle: float = 22.5, device: Any = None) -> dict[str, Any]:
    """Random patch placements for expectation over transformation: per image a scale
    (fraction of the image's shorter side), an angle in degrees in [-max_angle, max_angle]
    and a centre (x, y) in [0, 1] chosen so the patch's disc stays inside the image."""
    import torch

    def u(lo: float, hi: float) -> Any:
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)

    s = u(*scale)
    half = s / 2
    return {"scale": s, "angle": u(-max_angle, max_angle),
            "cx": half + (1 - 2 * half) * torch.rand(n, generator=generator, device=device),
            "cy": half + (1 - 2 * half) * torch.rand(n, generator=generator, device=device)}


def paste_patch(images: Any, patch: Any, placements: dict[str, Any], mask: Any = None) -> Any:
    """Paste ``patch`` (C x h x w in [0, 1]) into every image of the batch (N x C x H x W)
    at its placement (see :func:`random_placements`; scale is relative to the shorter
    side, centre relative to width/height, angle in degrees, positive = clockwise on
    screen). The whole batch is
    transformed at once with affine grids on the images' device; differentiable with
    respect to the patch. ``mask`` (1 x h x w) defaults to a circle."""
    import math

    import torch
    import torch.nn.functional as F  # noqa: N812

    n, c, h, w = images.shape
    if patch.shape[0] != c:
        patch = patch.expand(c, -1, -1) if patch.shape[0] == 1 else patch.mean(0, keepdim=True)
    if mask is None:
        mask = circle_mask(patch.shape[-1], device=patch.device)
    src = torch.cat([patch, mask.to(patch)], dim=0)[None].expand(n, -1, -1, -1)
    short = min(h, w)
    side = placements["scale"].to(images) * short  # patch side in pixels
    theta_rad = placements["angle"].to(images) * math.pi / 180
    cos, sin = torch.cos(theta_rad), torch.sin(theta_rad)
    # Output pixel (normalised to [-1, 1] over W and H) -> patch coordinates in [-1, 1].
    sx, sy = w / side, h / side
    tx = (placements["cx"].to(images) * 2 - 1)
    ty = (placements["cy"].to(images) * 2 - 1)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = sin * sy
    theta[:, 1, 0] = -sin * sx
    theta[:, 1, 1] = cos * sy
    theta[:, 0, 2] = -(theta[:, 0, 0] * tx + theta[:, 0, 1] * ty)
    theta[:, 1, 2] = -(theta[:, 1, 0] * tx + theta[:, 1, 1] * ty)
    grid = F.affine_grid(theta, (n, c + 1, h, w), align_corners=False)
    placed = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    canvas, alpha = placed[:, :c], placed[:, c:]
    return images * (1 - alpha) + canvas * alpha


def read_image_file(path: str) -> Any:
    """An image file (PNG, JPEG, ...) as a C x H x W float tensor in [0, 1], RGB."""
    import cv2
    import numpy as np
    import torch

    data = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"{path}: not a readable image")
    if data.ndim == 2:
        data = data[..., None]
    elif data.shape[2] >= 3:
        data = cv2.cvtColor(data[..., :3], cv2.COLOR_BGR2RGB)
    top = 65535.0 if data.dtype == np.uint16 else 255.0
    return torch.from_numpy(np.ascontiguousarray(data).astype(np.float32) / top).permute(2, 0, 1)


def write_image_file(image: Any, path: str) -> str:
    """Save a C x H x W tensor in [0, 1] as an 8-bit PNG (lossless). Returns the path."""
    import cv2
    import numpy as np

    arr = (image.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    arr = arr.transpose(1, 2, 0)
    if arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), arr):
        raise OSError(f"{path}: cannot write")
    return str(path)


def artifacts_dir() -> str:
    """Where plugins keep what they make (learned patches, ...): WORKBENCH_HOME/artifacts."""
    from .home import workbench_home

    path = workbench_home() / "artifacts"
    path.mkdir(exist_ok=True)
    return str(path)


# --- detectors ------------------------------------------------------------------------------
VERDICTS = ("clean", "suspicious", "tampered", "inconclusive")
NEEDS = ("model", "capture_record", "reference", "calibration")


@dataclass
class Finding:
    """What a detector says about one image. ``score``: higher = more suspicious (the
    engine compares it with the calibrated threshold). ``evidence``: an optional H x W
    float map the size of the image (where the detector looked / what it found).
    ``explanation``: one line a reviewer understands."""

    score: float
    verdict: str = "inconclusive"
    explanation: str = ""
    evidence: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetectionContext:
    """What a running detector may use. ``image`` passed to ``analyze`` is the decoded
    MedicalImage (stored pixels, metadata, path); these are the rest."""

    device: Any = None
    model: Any = None  # the classifier under review (images in [0, 1], any size)
    record: dict[str, Any] | None = None  # the capture record, when one was found
    reference: Any = None  # a reference MedicalImage (e.g. the signed original)
    threshold: float | None = None  # calibrated threshold for this detector, if any
    generator: Any = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("workbench.plugin"))
    progress_callback: Callable[[float, str], None] | None = None
    cancelled_callback: Callable[[], bool] | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        if self.progress_callback is not None:
            self.progress_callback(max(0.0, min(1.0, float(fraction))), message)

    def check_cancelled(self) -> None:
        if self.cancelled_callback is not None and self.cancelled_callback():
            raise Cancelled()


class Detector:
    """Base class of detector plugins. ``needs`` lists what ``analyze`` requires from
    NEEDS; the engine skips a detector (verdict inconclusive, saying why) when it is
    missing. ``calibratable``: the score can be thresholded at a false-positive rate on
    clean images (the engine does it; the verdict is "uncalibrated" until then)."""

    name: str = ""
    summary: str = ""
    needs: tuple[str, ...] = ()
    calibratable: bool = True
    version: str = "1"

    @dataclass
    class Params:
        pass

    def analyze(self, image: Any, params: Any, ctx: DetectionContext) -> Finding:
        raise NotImplementedError


def image_tensor(image: Any, frame: int = 0) -> Any:
    """A MedicalImage frame as a 1 x C x H x W float tensor in [0, 1] (the classifier's
    input space; see workbench.imaging.model_input for the mapping)."""
    import torch

    from .imaging.model_input import to_model_input

    x, _ = to_model_input(image, frame)
    return torch.from_numpy(x)[None]


def verify_capture(path: str) -> Any:
    """Verify an image against its capture record (sidecar or ledger): the provenance
    result with its named checks (see workbench.provenance.verify)."""
    from .provenance.verify import verify_image

    return verify_image(path)


def new_artifact_path(kind: str, label: str, suffix: str = ".png") -> str:
    """A new file name under :func:`artifacts_dir`: kind, label and time, never reused
    (so a saved patch is never overwritten by the next run)."""
    import re
    import time
    from pathlib import Path

    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-") or "item"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(artifacts_dir())
    nanos = time.time_ns() % 1_000_000_000
    path = folder / f"{kind}_{safe}_{stamp}-{nanos:09d}{suffix}"
    while path.exists():  # two artifacts within the same clock tick
        nanos += 1
        path = folder / f"{kind}_{safe}_{stamp}-{nanos:09d}{suffix}"
    return str(path)


def seeded_placements(n: int, seed: int, *, scale: float, max_angle: float,
                      device: Any = None) -> dict[str, Any]:
    """Placements at a fixed scale from a fresh generator seeded with ``seed``: patch
    plugins that use the run's seed put their patches in exactly the same places, so an
    adversarial patch and its natural control are compared like for like."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return random_placements(n, gen, scale=(scale, scale), max_angle=max_angle, device=device)


def paste_patches_by_class(images: Any, patches: dict[int, Any], classes: Any,
                           placements: dict[str, Any]) -> Any:
    """Each image gets the patch of its class (``classes``: one class index per image) at
    its own placement; images whose class has no patch are left as they are. One batched
    paste per class, without gradients."""
    import torch

    out = images.clone()
    with torch.inference_mode():
        for cls, patch in patches.items():
            idx = (classes == cls).nonzero().flatten()
            if idx.numel():
                out[idx] = paste_patch(images[idx], patch,
                                       {k: v[idx] for k, v in placements.items()})
    return out
