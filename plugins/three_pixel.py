"""Three-pixel attack: change at most three pixels, position and colour, found by
differential evolution (Du-Harpur et al., seed 004).

Du-Harpur X, Arthurs C, Ganier C, et al. "Clinically Relevant Vulnerabilities of Deep
Machine Learning Systems for Skin Cancer Diagnosis." J Invest Dermatol 2021;141:916-920,
doi:10.1016/j.jid.2020.07.034. Each candidate is (x, y, value per channel) per pixel;
the search is :func:`workbench.api.evolve` with their settings (see
``workbench.api.EvolutionParams``).

What differs from the seed, and why: pixel values and coordinates are continuous in
[0, 1] / pixel units (the seed truncated them to 8-bit integers because it worked on PIL
images); coordinates are floored when painted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import Attack, AttackResult, EvolutionParams, RunContext, evolve, param


class ThreePixel(Attack):
    name = "three-pixel"
    summary = "Change at most three pixels, position and colour (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        pixels: int = param(3, min=1, max=100, step=1, help="pixels that may change (seed: 3)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        _, c, h, w = images.shape
        # Per pixel: x in [0, W), y in [0, H), then one value per channel in [0, 1].
        one_lo = [0.0, 0.0] + [0.0] * c
        one_hi = [float(w), float(h)] + [1.0] * c
        lower = torch.tensor(one_lo * params.pixels, device=images.device)
        upper = torch.tensor(one_hi * params.pixels, device=images.device)
        return evolve(model, images, labels, target, paint_pixels, lower, upper, params, ctx,
                      self.name)


def paint_pixels(x: Any, z: Any) -> Any:
    """Each image with its candidate's pixels painted: z is M x (P * (2 + C)), per pixel
    (x, y, value per channel). Coordinates are floored and kept inside the image, so at
    most P pixels change (fewer when two land on the same place)."""
    import torch

    m, c, h, w = x.shape
    spots = z.view(m, -1, 2 + c)  # M x P x (2 + C)
    cols = spots[..., 0].floor().long().clamp(0, w - 1)
    rows = spots[..., 1].floor().long().clamp(0, h - 1)
    which = torch.arange(m, device=x.device)[:, None].expand_as(cols)
    out = x.clone()
    # Advanced indices around a slice put their dimensions first: M x P x C.
    out[which, :, rows, cols] = spots[..., 2:].to(x.dtype)
    return out
