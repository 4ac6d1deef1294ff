"""Where the classifier looks: saliency maps on the stored pixel grid.

- Input gradient (Simonyan et al., "Deep Inside Convolutional Networks", 2014): the
  magnitude of d(logit of the class) / d(pixel), the largest over channels. It is the
  quantity a gradient attack follows, so it shows where a PGD perturbation will go.
- Grad-CAM (Selvaraju et al., ICCV 2017): the last convolutional layer's activations
  weighted by the spatially averaged gradient of the class logit, rectified and
  upsampled. Coarse, but it shows which region drives the decision; a patch that
  dominates the classifier lights up.

Both take a MedicalImage and return an H x W float32 map at the image's stored size
(EXIF orientation not applied, like every map in the workbench), plus the class
explained and its probability. torch is imported lazily.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("input gradient", "Grad-CAM")

# Large images are reduced (area averaging) to at most this longer side before the
# gradient is taken: the classifier sees a few hundred pixels anyway, and a full-size
# mammogram's input gradient would need gigabytes of autograd buffers.
WORKING_SIDE = 1024


@dataclass(frozen=True)
class Saliency:
    method: str
    map: np.ndarray  # H x W float32 >= 0, stored grid, image size
    class_index: int
    class_name: str
    probability: float


def _working_input(image: Any, frame: int) -> tuple[Any, tuple[int, int]]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from ..imaging.model_input import to_model_input

    x, _ = to_model_input(image, frame)
    t = torch.from_numpy(x)[None]
    h, w = t.shape[-2:]
    s = min(1.0, WORKING_SIDE / max(h, w))
    if s < 1.0:
        t = F.interpolate(t, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    return t, (h, w)


def _to_image_size(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size
    m = np.ascontiguousarray(m, dtype=np.float32)
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.maximum(m, 0.0).astype(np.float32)


def saliency(model: Any, image: Any, method: str = "input gradient", frame: int = 0,
             class_index: int | None = None) -> Saliency:
    """The saliency map of ``model`` on ``image`` for ``class_index`` (default: the
    predicted class)."""
    import torch

    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose from {METHODS}")
    x, size = _working_input(image, frame)
    x = x.to(model.device).requires_grad_(True)
    outputs: list[Any] = []
    hooks = []
    if method == "Grad-CAM":
        me = threading.get_ident()

        def keep(_module: Any, _inputs: Any, output: Any) -> None:
            # The model may be running an attack on another thread at the same time:
            # only this thread's activations are ours.
            if threading.get_ident() == me:
                outputs.append(output)

        hooks = [m.register_forward_hook(keep) for m in model.modules()
                 if isinstance(m, torch.nn.Conv2d)]
        if not hooks:
            raise ValueError("Grad-CAM needs a convolutional network; this model has no "
                             "Conv2d layer (use the input gradient)")
    try:
        with torch.enable_grad():
            logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    probs = torch.softmax(logits.detach(), dim=1)[0]
    cls = int(probs.argmax()) if class_index is None else int(class_index)
    if not 0 <= cls < logits.shape[1]:
        raise ValueError(f"class index {cls} out of range for {logits.shape[1]} classes")
    if method == "input gradient":
        (g,) = torch.autograd.grad(logits[0, cls], x)
        m = g[0].abs().amax(dim=0).cpu().numpy()
    else:
        # The last convolution that still has a spatial extent: squeeze-and-excitation
        # blocks end in 1 x 1 convolutions on pooled features, which locate nothing.
        spatial = [o for o in outputs if o.dim() == 4 and o.shape[-1] * o.shape[-2] > 1]
        if not spatial:
            raise ValueError("Grad-CAM: no convolution with a spatial output was reached")
        a = spatial[-1]
        (g,) = torch.autograd.grad(logits[0, cls], a)
        weights = g[0].mean(dim=(1, 2), keepdim=True)
        m = torch.relu((weights * a[0].detach()).sum(dim=0)).cpu().numpy()
    names = tuple(getattr(model, "class_names", ()))
    return Saliency(method, _to_image_size(m, size), cls,
                    names[cls] if cls < len(names) else str(cls), float(probs[cls]))
