"""MI-DI-TI-FGSM: a transfer attack built to carry over from a surrogate to a victim it
never queries (black box).

Plain PGD on a surrogate over-fits the surrogate's own decision surface: its
perturbation is often harmless to another network (on the dermoscopy demo models,
transfer-PGD left the victim's accuracy where it was). Three published changes make the
perturbation generalise:
- momentum (MI-FGSM, Dong et al., CVPR 2018): the gradient direction is accumulated
  over iterations (each step's gradient L1-normalised), which escapes the surrogate's
  poor local maxima;
- input diversity (DI-FGSM, Xie et al., CVPR 2019): each gradient is taken through a
  random resize-and-pad of the image, so the perturbation cannot rely on one exact
  pixel alignment;
- translation invariance (TI-FGSM, Dong et al., CVPR 2019): the gradient is smoothed
  with a small Gaussian kernel, which favours perturbations robust to small shifts and
  to another network's receptive fields.
The step is eps / steps, as in those papers, so the last iterate can reach the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.api import Attack, AttackResult, loss_gradient, param, project_linf


class MIDIFGSM(Attack):
    name = "mi-di-fgsm"
    summary = ("Momentum + input-diversity (+ translation-invariant) FGSM on a surrogate, "
               "evaluated on the victim (black box).")
    threat = "transfer"
    scope = "per-image"
    version = "1"
    needs_surrogate = True

    @dataclass
    class Params:
        eps: float = param(0.01, min=0.0, max=1.0, step=0.001, help="L∞ budget in [0,1]")
        steps: int = param(20, min=1, max=10000, step=1, help="iterations on the surrogate")
        momentum: float = param(1.0, min=0.0, max=2.0, step=0.1,
                                help="decay of the accumulated gradient (0 = no momentum)")
        diversity: float = param(0.7, min=0.0, max=1.0, step=0.05,
                                 help="probability of a random resize-and-pad per gradient")
        resize: float = param(1.1, min=1.0, max=1.5, step=0.01,
                              help="largest random enlargement of the padded canvas")
        samples: int = param(2, min=1, max=32, step=1,
                             help="diverse views averaged per iteration")
        smoothing: int = param(5, min=0, max=31, step=1,
                               help="Gaussian gradient kernel width in pixels (0 = off)")

    def run(self, model, images, labels, target, params, ctx) -> AttackResult:
        import torch

        if ctx.surrogate is None:
            raise ValueError("the transfer attack needs a surrogate model (choose one)")
        surrogate = ctx.surrogate
        eps, n_steps = params.eps, params.steps
        alpha = eps / n_steps
        x0 = images.detach()
        adv = x0.clone()
        accumulated = torch.zeros_like(x0)
        kernel = _gaussian(params.smoothing, x0.shape[1], x0.device, x0.dtype)
        for it in range(n_steps):
            ctx.check_cancelled()
            grad = torch.zeros_like(x0)
            for _ in range(params.samples):
                def diverse(x, _g=ctx.generator):
                    return surrogate(_diverse(x, params.diversity, params.resize, _g))
                g, _logits = loss_gradient(diverse, adv, labels, target)
                grad += g
            if kernel is not None:
                grad = torch.nn.functional.conv2d(grad, kernel, padding=kernel.shape[-1] // 2,
                                                  groups=x0.shape[1])
            grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            accumulated = params.momentum * accumulated + grad
            adv = project_linf(adv + alpha * accumulated.sign(), x0, eps)
            ctx.progress((it + 1) / n_steps, f"MI-DI-FGSM step {it + 1}/{n_steps}")
        return AttackResult(adversarial=adv.detach(), iterations=[n_steps] * x0.shape[0],
                            notes="crafted on the surrogate; the victim was never queried")


def _diverse(x, probability: float, largest: float, generator):
    """With ``probability``: resize to a random size between the image's and ``largest``
    times it, and pad at a random offset to ``largest`` times it (differentiable; the
    classifier wrapper then resizes to its input size). Otherwise the image itself."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if probability <= 0 or torch.rand((), generator=generator,
                                      device=generator.device).item() >= probability:
        return x
    h, w = x.shape[-2:]
    big_h, big_w = max(h + 1, round(h * largest)), max(w + 1, round(w * largest))
    r = torch.rand((), generator=generator, device=generator.device).item()
    nh, nw = h + round(r * (big_h - h)), w + round(r * (big_w - w))
    resized = F.interpolate(x, size=(nh, nw), mode="nearest")
    top = int(torch.randint(0, big_h - nh + 1, (), generator=generator,
                            device=generator.device))
    left = int(torch.randint(0, big_w - nw + 1, (), generator=generator,
                             device=generator.device))
    return F.pad(resized, (left, big_w - nw - left, top, big_h - nh - top))


def _gaussian(width: int, channels: int, device, dtype):
    """A channels x 1 x k x k normalised Gaussian (sigma = width / 4, odd k), or None."""
    import torch

    if width <= 1:
        return None
    k = width if width % 2 else width + 1
    sigma = max(0.5, width / 4)
    ax = torch.arange(k, device=device, dtype=dtype) - k // 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    kernel = torch.outer(g, g)
    kernel = kernel / kernel.sum()
    return kernel.expand(channels, 1, k, k).contiguous()
