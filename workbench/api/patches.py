"""Patches (universal patch, natural patch, applying a saved patch): masks, placements
for expectation over transformation, and pasting on a batch."""

from __future__ import annotations

from typing import Any


def circle_mask(size: int, device: Any = None) -> Any:
    """A 1 x size x size disc (1 inside, 0 outside), the seed's circular patch shape."""
    import torch

    r = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    return ((r[None, :] ** 2 + r[:, None] ** 2) <= 1.0).float()[None]


def random_placements(n: int, generator: Any, *, scale: tuple[float, float] = (0.4, 0.4),
                      max_angle: float = 22.5, device: Any = None) -> dict[str, Any]:
    """Random patch placements for expectation over transformation: per image a scale
    (fraction of the image's shorter side), an angle in degrees in [-max_angle, max_angle]
    and a centre (x, y) in [0, 1] chosen so the patch's disc stays inside the image."""
    import torch

    def u(lo: float, hi: float) -> Any:
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)

    s = u(*scale)
    half = s / 2
    return {"scale": s, "angle": u(-max_angle, max_angle),
            "cx": half + (1 - 2 * half) * torch.rand(n, generator=generator, device=device),
            "cy": half + (1 - 2 * half) * torch.rand(n, generator=generator, device=device)}


def seeded_placements(n: int, seed: int, *, scale: float, max_angle: float,
                      device: Any = None) -> dict[str, Any]:
    """Placements at a fixed scale from a fresh generator seeded with ``seed``: patch
    plugins that use the run's seed put their patches in exactly the same places, so an
    adversarial patch and its natural control are compared like for like."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return random_placements(n, gen, scale=(scale, scale), max_angle=max_angle, device=device)


def paste_patch(images: Any, patch: Any, placements: dict[str, Any], mask: Any = None) -> Any:
    """Paste ``patch`` (C x h x w in [0, 1]) into every image of the batch (N x C x H x W)
    at its placement (see :func:`random_placements`; scale is relative to the shorter
    side, centre relative to width/height, angle in degrees, positive = clockwise on
    screen). The whole batch is
    transformed at once with affine grids on the images' device; differentiable with
    respect to the patch. ``mask`` (1 x h x w) defaults to a circle."""
    import math

    import torch
    import torch.nn.functional as F  # noqa: N812

    n, c, h, w = images.shape
    if patch.shape[0] != c:
        patch = patch.expand(c, -1, -1) if patch.shape[0] == 1 else patch.mean(0, keepdim=True)
    if mask is None:
        mask = circle_mask(patch.shape[-1], device=patch.device)
    src = torch.cat([patch, mask.to(patch)], dim=0)[None].expand(n, -1, -1, -1)
    short = min(h, w)
    side = placements["scale"].to(images) * short  # patch side in pixels
    theta_rad = placements["angle"].to(images) * math.pi / 180
    cos, sin = torch.cos(theta_rad), torch.sin(theta_rad)
    # Output pixel (normalised to [-1, 1] over W and H) -> patch coordinates in [-1, 1].
    sx, sy = w / side, h / side
    tx = (placements["cx"].to(images) * 2 - 1)
    ty = (placements["cy"].to(images) * 2 - 1)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = sin * sy
    theta[:, 1, 0] = -sin * sx
    theta[:, 1, 1] = cos * sy
    theta[:, 0, 2] = -(theta[:, 0, 0] * tx + theta[:, 0, 1] * ty)
    theta[:, 1, 2] = -(theta[:, 1, 0] * tx + theta[:, 1, 1] * ty)
    grid = F.affine_grid(theta, (n, c + 1, h, w), align_corners=False)
    placed = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    canvas, alpha = placed[:, :c], placed[:, c:]
    return images * (1 - alpha) + canvas * alpha


def paste_patches_by_class(images: Any, patches: dict[int, Any], classes: Any,
                           placements: dict[str, Any]) -> Any:
    """Each image gets the patch of its class (``classes``: one class index per image) at
    its own placement; images whose class has no patch are left as they are. One batched
    paste per class, without gradients."""
    import torch

    out = images.clone()
    with torch.inference_mode():
        for cls, patch in patches.items():
            idx = (classes == cls).nonzero().flatten()
            if idx.numel():
                out[idx] = paste_patch(images[idx], patch,
                                       {k: v[idx] for k, v in placements.items()})
    return out
