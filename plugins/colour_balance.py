"""Colour-balance attack: multiply each colour channel by a factor in [0.9, 1.1], found by
differential evolution (Du-Harpur et al., seed 004).

Du-Harpur X, Arthurs C, Ganier C, et al. "Clinically Relevant Vulnerabilities of Deep
Machine Learning Systems for Skin Cancer Diagnosis." J Invest Dermatol 2021;141:916-920,
doi:10.1016/j.jid.2020.07.034: 15.35% (120 of 782) of their test images flipped from
melanoma to nevus. The search is :func:`workbench.api.evolve` with their settings (see
``workbench.api.EvolutionParams``); the result is kept in [0, 1] (the seed clipped at 255).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.api import Attack, AttackResult, EvolutionParams, RunContext, evolve, param


class ColourBalance(Attack):
    name = "colour-balance"
    summary = "Scale each colour channel by a factor in [0.9, 1.1] (differential evolution)."
    threat = "score-based black-box"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params(EvolutionParams):
        min_factor: float = param(0.9, min=0.0, max=10.0, step=0.01,
                                  help="smallest channel multiplier (seed: 0.9)")
        max_factor: float = param(1.1, min=0.0, max=10.0, step=0.01,
                                  help="largest channel multiplier (seed: 1.1)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        if params.min_factor > params.max_factor:
            raise ValueError("min_factor is above max_factor")
        c = images.shape[1]
        lower = torch.full((c,), params.min_factor, device=images.device)
        upper = torch.full((c,), params.max_factor, device=images.device)
        return evolve(model, images, labels, target, scale_channels, lower, upper, params, ctx,
                      self.name)


def scale_channels(x: Any, z: Any) -> Any:
    """Each image's channels multiplied by its candidate's factors (z is M x C), kept in
    [0, 1] (the seed clipped at 255)."""
    return (x * z[:, :, None, None].to(x.dtype)).clamp(0.0, 1.0)
