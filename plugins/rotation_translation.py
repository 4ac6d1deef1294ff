"""Rotation-translation attack: rotate by 0-360 degrees and translate by up to 50 px at
299 x 299, found by differential evolution (Du-Harpur et al., seed 004).

Du-Harpur X, Arthurs C, Ganier C, et al. "Clinically Relevant Vulnerabilities of Deep
Machine Learning Systems for Skin Cancer Diagnosis." J Invest Dermatol 2021;141:916-920,
doi:10.1016/j.jid.2020.07.034: 45.6% of their test images flipped. The search is
:func:`workbench.api.evolve` with their settings (see ``workbench.api.EvolutionParams``).

What differs from the seed, and why:

- Translation is symmetric (+-50/299 of the side); the seed's code searched 0..50 px,
  which, composed with a full turn, reaches the same offsets in every direction.
- Rotation and translation resample with ``grid_sample`` (bilinear by default) on the
  device; what comes into view from outside the image is black (``padding="zeros"``),
  as PIL's ``rotate``/``transform`` fill it in the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.api import Attack, AttackResult, EvolutionParams, RunContext, evolve, param


class RotationTranslation(Attack):
    name = "rotation-translation"
    summary = "Rotate (0-360°) and shift (±50 px at 299²) the image (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        max_angle: float = param(360.0, min=0.0, max=360.0, step=1.0,
                                 help="rotation searched in [0, max_angle] degrees (seed: 360)")
        max_shift: float = param(50 / 299, min=0.0, max=1.0, step=0.01,
                                 help="largest shift as a fraction of the image side "
                                      "(seed: 50 px at 299 px = 0.167)")
        padding: str = param("zeros", choices=("zeros", "border", "reflection"),
                             help="what fills the area moved into view (seed: black)")
        interpolation: str = param("bilinear", choices=("bilinear", "nearest"),
                                   help="resampling of the moved image")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        _, _, h, w = images.shape
        # (angle in degrees, shift x in px, shift y in px), shifts scaled to this image size.
        lower = torch.tensor([0.0, -params.max_shift * w, -params.max_shift * h],
                             device=images.device)
        upper = torch.tensor([params.max_angle, params.max_shift * w, params.max_shift * h],
                             device=images.device)

        def perturb(x: Any, z: Any) -> Any:
            return rotate_translate(x, z, padding=params.padding, mode=params.interpolation)

        return evolve(model, images, labels, target, perturb, lower, upper, params, ctx,
                      self.name)


def rotate_translate(x: Any, z: Any, *, padding: str = "zeros", mode: str = "bilinear") -> Any:
    """Each image shifted by (z[:, 1], z[:, 2]) pixels (right and down) and then rotated
    by z[:, 0] degrees counter-clockwise on screen about its centre (the seed's order:
    PIL ``transform`` then ``rotate``). One ``affine_grid``/``grid_sample`` on the
    device; ``padding`` fills what comes into view (zeros = black, as in the seed)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    m, c, h, w = x.shape
    rad = z[:, 0].to(x.dtype) * (math.pi / 180)
    cos, sin = torch.cos(rad), torch.sin(rad)
    # Output pixel -> source pixel is the inverse map: un-rotate, then un-shift, in
    # normalised coordinates ([-1, 1] over W and over H, hence the aspect factors).
    theta = torch.empty(m, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (h / w)
    theta[:, 0, 2] = -2 * z[:, 1].to(x.dtype) / w
    theta[:, 1, 0] = sin * (w / h)
    theta[:, 1, 1] = cos
    theta[:, 1, 2] = -2 * z[:, 2].to(x.dtype) / h
    grid = F.affine_grid(theta, [m, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=False)
