"""Lesion transplant: insert a lesion cut from a donor image, or remove one by inpainting.

This is a training-free baseline for the generative attack of Zhou et al. (Q. Zhou, M. Zuley,
..., S. Wu, "A machine and human reader study on AI diagnosis model safety under attacks of
adversarial images", Nature Communications 12, 7281, 2021; seeds 002 and 003). Their GAN
inserted cancerous regions into negative mammograms and removed them from positive ones; the
fakes fooled the classifier on 69.1% of images and fooled radiologists too. A GAN has to be
trained per modality; this plugin needs none, so it measures how much of that effect plain
image editing already achieves (the ``generator`` plugin runs a trained generator instead).

- ``insert``: the region of a donor image (an ellipse given as fractions of the donor, or a
  PNG mask, white = region) is scaled and Poisson-blended into each target with OpenCV's
  ``seamlessClone`` (NORMAL_CLONE), centred at ``target_cx``, ``target_cy``.
- ``remove``: the region of each target (the same ellipse, now as fractions of the target,
  or the mask resized to the target) is filled with ``cv2.inpaint`` (Telea).

OpenCV works on 8-bit images, so the region is computed at 8 bits at the image's own
resolution. Pixels outside the changed zone keep their exact input values: the engine's
perturbation map then shows exactly where the image was edited.

OpenCV's NORMAL_CLONE solves the Poisson equation over the region's bounding box, so the
seam correction leaks outside the mask and fades with distance (on real dermoscopy photos
it reaches about 10-15% of the region's size, tens of pixels at full resolution). The leak
is kept where it hides the seam and faded to zero at ``blend_margin`` x the region's radius;
beyond that the target is untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.api import Attack, AttackResult, RunContext, param, read_image_file


class LesionTransplant(Attack):
    name = "lesion-transplant"
    summary = ("Insert a donor's lesion by Poisson blending, or remove one by inpainting: a "
               "training-free baseline for Zhou et al.'s generative (GAN) lesion attack.")
    threat = "semantic"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        mode: str = param("insert", choices=("insert", "remove"),
                          help="insert a donor's lesion, or remove the region by inpainting")
        donor_file: str = param("", help="insert: image file the lesion is cut from")
        mask_file: str = param("", help="PNG, white = region (of the donor when inserting, of "
                                        "each target when removing); empty = the ellipse")
        cx: float = param(0.5, min=0.0, max=1.0, step=0.01,
                          help="ellipse centre x, fraction of the width (donor when inserting, "
                               "target when removing)")
        cy: float = param(0.5, min=0.0, max=1.0, step=0.01, help="ellipse centre y, fraction "
                                                                  "of the height")
        rx: float = param(0.25, min=0.005, max=1.0, step=0.01,
                          help="ellipse half-width, fraction of the width")
        ry: float = param(0.25, min=0.005, max=1.0, step=0.01,
                          help="ellipse half-height, fraction of the height")
        target_cx: float = param(0.5, min=0.0, max=1.0, step=0.01,
                                 help="insert: where the region's centre goes, fraction of "
                                      "the target's width")
        target_cy: float = param(0.5, min=0.0, max=1.0, step=0.01,
                                 help="insert: fraction of the target's height")
        scale: float = param(1.0, min=0.05, max=10.0, step=0.05,
                             help="insert: size of the region in the target relative to its "
                                  "size in the donor, both measured against the shorter side")
        blend_margin: float = param(0.25, min=0.0, max=2.0, step=0.05,
                                    help="insert: how far Poisson blending may change the "
                                         "target outside the region, x the region's radius")
        radius: int = param(5, min=1, max=100, step=1, help="remove: inpainting radius, px")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import numpy as np
        import torch

        n, c, h, w = images.shape
        # Files are read and checked once, before any image is touched.
        if params.mode == "insert":
            donor = _donor_pixels(params.donor_file, gray=c == 1)
            mask = _region_mask(params, donor.shape[0], donor.shape[1], "donor")
        else:
            donor, mask = None, _region_mask(params, h, w, "target")  # one size per batch
        x = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # N x H x W x C
        out = np.empty_like(x)
        for i in range(n):
            ctx.check_cancelled()
            if donor is not None:
                out[i] = _insert(x[i], donor, mask, params)
            else:
                out[i] = _remove(x[i], mask, params.radius)
            ctx.progress((i + 1) / n, f"{params.mode}: image {i + 1}/{n}")
        adv = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=images.device,
                                                             dtype=images.dtype)
        where = Path(params.donor_file).name if params.mode == "insert" else "inpainting"
        return AttackResult(adversarial=adv.clamp(0.0, 1.0), notes=f"{params.mode} ({where})")


# --- pixels --------------------------------------------------------------------------------
def _to_u8_rgb(img: Any) -> Any:
    """H x W x C float in [0, 1] -> H x W x 3 uint8 (seamlessClone wants three channels)."""
    import numpy as np

    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(u8, 3, axis=2) if u8.shape[2] == 1 else np.ascontiguousarray(u8[..., :3])


def _donor_pixels(path: str, *, gray: bool) -> Any:
    """The donor as H x W x 3 uint8 RGB (grey replicated when the targets are grey, so the
    inserted region has no colour the target could not have)."""
    import cv2

    if not path:
        raise ValueError("insert mode needs donor_file, the image the lesion is cut from")
    if not Path(path).is_file():
        raise FileNotFoundError(f"donor image not found: {path}")
    try:
        donor = read_image_file(path)
    except ValueError:
        raise ValueError(f"donor image {path} is not a readable image") from None
    u8 = _to_u8_rgb(donor.permute(1, 2, 0).numpy())
    if gray:
        g = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY)
        u8 = cv2.merge([g, g, g])
    return u8


def _region_mask(params: Any, h: int, w: int, whose: str) -> Any:
    """The region as an H x W uint8 mask (255 inside): the mask file resized to H x W, or
    the ellipse (cx, cy, rx, ry as fractions of W and H)."""
    import cv2
    import numpy as np

    if params.mask_file:
        if not Path(params.mask_file).is_file():
            raise FileNotFoundError(f"mask file not found: {params.mask_file}")
        try:
            m = read_image_file(params.mask_file).amax(dim=0).numpy()
        except ValueError:
            raise ValueError(f"mask file {params.mask_file} is not a readable image") from None
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        mask = np.where(m > 0.5, 255, 0).astype(np.uint8)
    else:
        mask = np.zeros((h, w), np.uint8)
        centre = (round(params.cx * w), round(params.cy * h))
        axes = (max(1, round(params.rx * w)), max(1, round(params.ry * h)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, thickness=-1)
    if not mask.any():
        raise ValueError(f"the region is empty in the {whose} image ({h} x {w})")
    return mask


# --- insert --------------------------------------------------------------------------------
def _insert(x: Any, donor: Any, donor_mask: Any, params: Any) -> Any:
    """One target (H x W x C float) with the donor's region blended in."""
    import cv2
    import numpy as np

    h, w = x.shape[:2]
    bx, by, bw, bh = cv2.boundingRect(donor_mask)
    # Measured against the shorter sides, so a region keeps its shape and its share of the
    # image when donor and target differ in size or aspect ratio.
    f = params.scale * min(h, w) / min(donor.shape[:2])
    pw, ph = max(1, round(bw * f)), max(1, round(bh * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    patch = cv2.resize(donor[by:by + bh, bx:bx + bw], (pw, ph), interpolation=interp)
    pmask = cv2.resize(donor_mask[by:by + bh, bx:bx + bw], (pw, ph),
                       interpolation=cv2.INTER_LINEAR)
    x0 = round(params.target_cx * w - pw / 2)
    y0 = round(params.target_cy * h - ph / 2)
    # OpenCV clears the mask's outer 1 px ring and needs the region inside the target:
    # clip the placement to the target less that ring.
    lx, ly, hx, hy = max(x0, 1), max(y0, 1), min(x0 + pw, w - 1), min(y0 + ph, h - 1)
    target = _to_u8_rgb(x)
    if hx <= lx or hy <= ly:
        raise ValueError("the inserted region falls outside the target image: move "
                         "target_cx / target_cy or lower scale")
    source = target.copy()
    mask = np.zeros((h, w), np.uint8)
    source[ly:hy, lx:hx] = patch[ly - y0:hy - y0, lx - x0:hx - x0]
    mask[ly:hy, lx:hx] = np.where(pmask[ly - y0:hy - y0, lx - x0:hx - x0] > 127, 255, 0)
    if not mask.any():
        raise ValueError("the inserted region falls outside the target image")
    rx, ry, rw, rh = cv2.boundingRect(mask)
    # With source and target the same size, this centre maps the mask's bounding box onto
    # itself (OpenCV places it at centre - size // 2). The mask is copied because OpenCV
    # 5.0's seamlessClone overwrites the mask it is given.
    cloned = cv2.seamlessClone(source, target, mask.copy(), (rx + rw // 2, ry + rh // 2),
                               cv2.NORMAL_CLONE)
    alpha = _blend_alpha(mask, params.blend_margin)[..., None]
    c = x.shape[2]
    blended = cloned[..., :c].astype(np.float32) / 255.0
    # Where alpha is 0 this is x itself, bit for bit.
    return np.where(alpha > 0, x + alpha * (blended - x), x)


def _blend_alpha(mask: Any, margin: float) -> Any:
    """1 inside the region and up to half the margin beyond it, then a smooth fall to 0 at
    ``margin`` x the region's radius (the radius of a disc of the same area)."""
    import cv2
    import numpy as np

    inside = mask > 0
    reach = margin * math.sqrt(float(inside.sum()) / math.pi)
    if reach < 1.0:
        return inside.astype(np.float32)
    dist = cv2.distanceTransform(np.where(inside, 0, 255).astype(np.uint8), cv2.DIST_L2,
                                 cv2.DIST_MASK_PRECISE)
    t = np.clip((dist - reach / 2) / (reach / 2), 0.0, 1.0)
    return (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)


# --- remove --------------------------------------------------------------------------------
def _remove(x: Any, mask: Any, radius: int) -> Any:
    """One target with the region filled in from its surroundings (Telea's method)."""
    import cv2
    import numpy as np

    filled = cv2.inpaint(_to_u8_rgb(x), mask, float(radius), cv2.INPAINT_TELEA)
    c = x.shape[2]
    return np.where(mask[..., None] > 0, filled[..., :c].astype(np.float32) / 255.0, x)
