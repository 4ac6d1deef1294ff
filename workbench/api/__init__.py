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

Plugins write ``from workbench.api import ...``; the names live in modules by concern
(params, attack, detector, gradients, patches, evolution, files), re-exported here.
"""

from __future__ import annotations

from .attack import SCOPES, THREATS, Attack, AttackResult, Cancelled, RunContext
from .detector import NEEDS, VERDICTS, DetectionContext, Detector, Finding
from .evolution import EvolutionParams, Perturb, evolve
from .files import (
    artifacts_dir,
    cache_dir,
    image_tensor,
    new_artifact_path,
    read_image_file,
    verify_capture,
    working_tensor,
    write_image_file,
)
from .gradients import l2_normalise, loss_gradient, project_l2, project_linf, reached
from .params import (
    PARAM_TYPES,
    ParamError,
    ParamSpec,
    make_params,
    param,
    param_specs,
    params_problems,
)
from .patches import (
    circle_mask,
    paste_patch,
    paste_patches_by_class,
    random_placements,
    seeded_placements,
)

API_VERSION = 1

__all__ = [
    "API_VERSION", "NEEDS", "PARAM_TYPES", "SCOPES", "THREATS", "VERDICTS",
    "Attack", "AttackResult", "Cancelled", "DetectionContext", "Detector",
    "EvolutionParams", "Finding", "ParamError", "ParamSpec", "Perturb", "RunContext",
    "artifacts_dir", "cache_dir", "circle_mask", "evolve", "image_tensor", "l2_normalise",
    "loss_gradient", "make_params", "new_artifact_path", "param", "param_specs",
    "params_problems", "paste_patch", "paste_patches_by_class", "project_l2",
    "project_linf", "random_placements", "reached", "read_image_file", "seeded_placements",
    "verify_capture", "working_tensor", "write_image_file",
]
