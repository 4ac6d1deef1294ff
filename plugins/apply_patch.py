"""Paste a saved patch (a PNG made by universal-patch or natural-patch, or any image) onto
every image, inside the seed's circular mask: the deployment half of a patch attack, e.g.
a patch trained on one set (or on a surrogate model) applied to held-out images.

Placement "fixed" puts the patch at (cx, cy) with the given scale and angle on every image;
"random" draws a centre and an angle in ±max_angle per image at the given scale, from a
generator seeded with the run's seed, the same placements universal-patch and natural-patch
use for their results with that seed and batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.api import (
    Attack,
    AttackResult,
    RunContext,
    artifacts_dir,
    param,
    paste_patch,
    read_image_file,
    seeded_placements,
)

PATCH_PLUGINS = ("universal-patch", "natural-patch")  # the file name prefixes they write


class ApplyPatch(Attack):
    name = "apply-patch"
    summary = "Paste a saved patch PNG (circular) at a chosen or random place, scale, angle."
    threat = "physical/patch"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        patch_file: str = param("", help="patch PNG; empty = the most recent patch saved by "
                                         "universal-patch or natural-patch")
        placement: str = param("fixed", choices=("fixed", "random"),
                               help="fixed: cx, cy, angle for every image; random: a seeded "
                                    "centre and angle per image")
        cx: float = param(0.5, min=0.0, max=1.0, step=0.01,
                          help="centre, fraction of the width (fixed placement)")
        cy: float = param(0.5, min=0.0, max=1.0, step=0.01,
                          help="centre, fraction of the height (fixed placement)")
        scale: float = param(0.4, min=0.01, max=2.0, step=0.05,
                             help="patch diameter as a fraction of the shorter side (seed: "
                                  "0.4)")
        angle: float = param(0.0, min=-360.0, max=360.0, step=1.0,
                             help="rotation in degrees, clockwise (fixed placement)")
        max_angle: float = param(22.5, min=0.0, max=180.0, step=0.5,
                                 help="random placement: angles in ±max_angle (seed: 22.5)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        ctx.check_cancelled()
        path = Path(params.patch_file) if params.patch_file else latest_patch_file()
        if not path.is_file():
            raise FileNotFoundError(f"patch file {path} does not exist")
        patch = square(read_image_file(str(path))).to(images.device)
        n = images.shape[0]
        if params.placement == "random":
            # the same places universal-patch and natural-patch use for this seed
            where = seeded_placements(n, ctx.seed, scale=params.scale,
                                      max_angle=params.max_angle, device=images.device)
        else:
            where = {key: torch.full((n,), float(value), device=images.device) for key, value
                     in (("scale", params.scale), ("angle", params.angle),
                         ("cx", params.cx), ("cy", params.cy))}
        with torch.inference_mode():
            adv = paste_patch(images, patch, where)
        ctx.progress(1.0, f"pasted {path.name}")
        return AttackResult(adversarial=adv, artifacts={"patch_path": str(path)},
                            notes=f"patch {path.name} at scale {params.scale}, "
                                  f"{params.placement} placement")


def latest_patch_file() -> Path:
    """The newest PNG a patch plugin saved in the artifacts folder; a clear error if none."""
    folder = Path(artifacts_dir())
    found = [p for prefix in PATCH_PLUGINS for p in folder.glob(f"{prefix}_*.png")]
    if not found:
        raise FileNotFoundError(f"no saved patch in {folder}: run universal-patch or "
                                "natural-patch first, or set patch_file to a patch image")
    # Names carry the time to the nanosecond, so they break ties between equal mtimes.
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def square(patch: Any) -> Any:
    """The centred square of a patch image: the circular mask needs equal sides."""
    h, w = patch.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return patch[:, top:top + side, left:left + side]
