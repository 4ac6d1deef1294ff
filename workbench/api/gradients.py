"""Gradient attacks' building blocks: the attack loss's gradient, success, projections."""

from __future__ import annotations

from typing import Any


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

    if torch.is_grad_enabled() and (x_adv.requires_grad or x.requires_grad):
        return torch.clamp(x + torch.clamp(x_adv - x, -eps, eps), 0.0, 1.0)
    # The same operations in the same order, in one new tensor instead of four: on a
    # 4688x2592 mammogram each new tensor is 48 MB of fresh pages, and faulting those in
    # cost more than the arithmetic (x + d is d + x, so the result is bitwise the same).
    out = x_adv - x
    return out.clamp_(-eps, eps).add_(x).clamp_(0.0, 1.0)


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
