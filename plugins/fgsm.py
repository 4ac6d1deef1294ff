"""FGSM, the fast gradient sign method (Goodfellow et al., 2015).

One step of size epsilon along the sign of the loss gradient. Du-Harpur et al. (seed 004)
used FGSM against dermoscopy classifiers; epsilon defaults to Finlayson et al.'s 0.02 on
a [-1, 1] scale, i.e. 0.01 in [0, 1] image space.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import Attack, AttackResult, loss_gradient, param, project_linf


class FGSM(Attack):
    name = "fgsm"
    summary = "Fast gradient sign method: one epsilon step along the gradient sign (L∞)."
    threat = "white-box gradient"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        eps: float = param(0.01, min=0.0, max=1.0, step=0.001,
                           help="L∞ budget in [0,1] image space (0.01 = Finlayson's 0.02 "
                                "on [-1,1])")

    def run(self, model, images, labels, target, params, ctx) -> AttackResult:
        ctx.check_cancelled()
        grad, _ = loss_gradient(model, images, labels, target)
        adv = project_linf(images + params.eps * grad.sign(), images, params.eps)
        ctx.progress(1.0, "FGSM step done")
        return AttackResult(adversarial=adv.detach(), iterations=[1] * images.shape[0])
