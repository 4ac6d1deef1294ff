"""PGD, projected gradient descent (Madry et al., 2018), L∞ or L2.

Defaults follow Finlayson et al. (seed 001): epsilon 0.02 on a [-1, 1] scale, i.e. 0.01 in
[0, 1] image space, 20 iterations; step size 2.5 * eps / steps (Madry et al.), random
start on. Targeted pushes each image to ``target`` (the other class, as in the seeds);
untargeted pushes it away from its label.

The whole batch goes through the model in one forward and one backward per iteration,
gradients with respect to the input only. Images that already succeed stop (early stop):
the next iterations run on the remaining ones, and a succeeded image keeps the
perturbation that fooled the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import (
    Attack,
    AttackResult,
    l2_normalise,
    loss_gradient,
    param,
    project_l2,
    project_linf,
    reached,
)


class PGD(Attack):
    name = "pgd"
    summary = "Projected gradient descent in an L∞ or L2 ball, early stop per image."
    threat = "white-box gradient"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        eps: float = param(0.01, min=0.0, max=1.0, step=0.001,
                           help="budget in [0,1] image space (L∞: per pixel; L2: whole image)")
        steps: int = param(20, min=1, max=10000, step=1, help="iterations")
        step_size: float = param(0.0, min=0.0, max=1.0, step=0.0005,
                                 help="per-iteration step; 0 = 2.5 * eps / steps")
        norm: str = param("linf", choices=("linf", "l2"), help="which ball")
        random_start: bool = param(True, help="start from a random point in the ball")
        early_stop: bool = param(True, help="stop each image once it succeeds")

    def run(self, model, images, labels, target, params, ctx) -> AttackResult:
        import torch

        eps = params.eps
        alpha = params.step_size or 2.5 * eps / params.steps
        project = project_linf if params.norm == "linf" else project_l2
        x0 = images.detach()
        adv = x0.clone()
        if params.random_start and eps > 0:
            if params.norm == "linf":
                noise = torch.rand(x0.shape, generator=ctx.generator, device=x0.device)
                adv = project(x0 + (2 * noise - 1) * eps, x0, eps)
            else:
                noise = torch.randn(x0.shape, generator=ctx.generator, device=x0.device)
                adv = project(x0 + l2_normalise(noise) * eps * torch.rand(
                    (x0.shape[0],) + (1,) * (x0.dim() - 1), generator=ctx.generator,
                    device=x0.device), x0, eps)
        n = x0.shape[0]
        active = torch.arange(n, device=x0.device)
        everyone = True  # while no image has stopped, work on the batch itself: no gathers
        iterations = torch.zeros(n, dtype=torch.long, device=x0.device)
        for it in range(params.steps):
            ctx.check_cancelled()
            idx = None if everyone else active
            tgt = _pick(target, idx) if target is not None else None
            grad, logits = loss_gradient(model, _pick(adv, idx), _pick(labels, idx), tgt)
            if params.early_stop:
                done = reached(logits, _pick(labels, idx), tgt)
                if done.any():  # keep the perturbation that fooled the model
                    keep = ~done
                    active, grad, everyone = active[keep], grad[keep], False
                    if active.numel() == 0:
                        break
            step = grad.sign_() if params.norm == "linf" else l2_normalise(grad)
            if everyone and params.norm == "linf":
                # project_linf's operations in place: on a 4688x2592 mammogram every new
                # tensor is 48 MB of fresh pages, which cost more than the arithmetic
                adv = adv.add_(step.mul_(alpha)).sub_(x0).clamp_(-eps, eps).add_(x0).clamp_(
                    0.0, 1.0)
            elif everyone:
                adv = project(adv.add_(step.mul_(alpha)), x0, eps)
            else:
                adv[active] = project(adv[active] + alpha * step, x0[active], eps)
            iterations[active] += 1
            ctx.progress((it + 1) / params.steps,
                         f"PGD step {it + 1}/{params.steps}, {active.numel()} image(s) left")
        return AttackResult(adversarial=adv.detach(), iterations=iterations.cpu().tolist())


def _pick(t, idx):
    """The whole batch (no copy) or the images still running."""
    return t if idx is None else t[idx]
