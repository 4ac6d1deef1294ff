"""gamma-search: the smallest global gamma change that changes the model's answer.

What it does
    Applies the intensity curve x -> x ** gamma to the whole image, for gamma stepping
    away from 1 in both directions (1/g, g for g rising to ``max_gamma``), and keeps, per
    image, the first that changes the model's answer (or reaches the target). No pixel
    noise: the change a different display calibration, film or scanner look-up table
    makes. Images that no gamma in the range fools are returned unchanged.

Paper it follows
    Semantic adversarial examples: Hosseini and Poovendran, "Semantic Adversarial
    Examples", CVPR workshops 2018, who shift hue and saturation instead of intensity.

Threat model
    Semantic, score-based: only the model's answers are used (no gradients); the
    "budget" is the gamma range, not a pixel norm, so L-infinity can be large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from workbench.api import Attack, AttackResult, RunContext, param, reached


class GammaSearch(Attack):
    name = "gamma-search"
    summary = "Smallest global gamma change (x ** gamma) that changes the model's answer."
    threat = "semantic"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        max_gamma: float = param(2.0, min=1.0, max=5.0, step=0.1,
                                 help="gammas tried lie in [1/max_gamma, max_gamma]")
        steps: int = param(16, min=1, max=200, step=1,
                           help="gamma values tried on each side of 1")

    def run(self, model: Any, images: torch.Tensor, labels: torch.Tensor,
            target: torch.Tensor | None, params: Any, ctx: RunContext) -> AttackResult:
        x = images
        best = x.clone()
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        queries = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        ladder = torch.linspace(1.0, params.max_gamma, params.steps + 1)[1:].tolist()
        gammas = [g for step in ladder for g in (1.0 / step, step)]  # nearest to 1 first
        for i, gamma in enumerate(gammas):
            ctx.check_cancelled()
            todo = (~done).nonzero().flatten()
            if todo.numel() == 0:
                break
            candidate = x[todo] ** gamma
            with torch.no_grad():
                logits = model(candidate)
            queries[todo] += 1
            hit = reached(logits, labels[todo], None if target is None else target[todo])
            best[todo[hit]] = candidate[hit]
            done[todo[hit]] = True
            ctx.progress((i + 1) / len(gammas), f"gamma {gamma:.2f}")
        return AttackResult(adversarial=best, queries=queries.cpu(),
                            notes=f"{int(done.sum())} of {x.shape[0]} images fooled by a "
                                  f"gamma in [{1 / params.max_gamma:.2f}, {params.max_gamma}]")
