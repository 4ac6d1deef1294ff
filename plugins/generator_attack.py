"""Generator: run a trained image-to-image network (e.g. a CycleGAN generator) on each image.

This is the hook for generative attacks such as Zhou et al.'s (Nature Communications 12,
7281, 2021; seeds 002 and 003), whose GAN inserted or removed cancerous regions and fooled
both a classifier and radiologists. Training such a generator is a research project of its
own; this plugin runs one that was trained elsewhere and exported with TorchScript
(``torch.jit.script`` or ``torch.jit.trace``, then ``.save``), so any framework's generator
can be used without its code. ``lesion-transplant`` is the training-free baseline.

The generator takes N x C x H x W in its own value range ("-1,1" for the usual tanh output
of CycleGAN / pix2pix, or "0,1") and returns the same shape in that range. Grey images are
given to a three-channel generator as three equal channels and its output averaged back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.api import Attack, AttackResult, RunContext, param

_LOADED: dict[tuple, Any] = {}  # the last generator loaded: the GUI reruns the same one


class Generator(Attack):
    name = "generator"
    summary = ("Run a trained image-to-image generator (TorchScript, e.g. CycleGAN) on each "
               "image: the hook for generative lesion insertion/removal (Zhou et al.).")
    threat = "semantic"
    scope = "per-image"
    version = "1"

    @dataclass
    class Params:
        model_file: str = param("", help="TorchScript file of the generator (N x C x H x W in, "
                                         "same shape out)")
        value_range: str = param("-1,1", choices=("-1,1", "0,1"),
                                 help="the value range the generator takes and returns "
                                      "(-1,1 for tanh generators such as CycleGAN's)")
        batch_size: int = param(8, min=1, max=1024, step=1,
                                help="images per forward pass (lower it if memory runs out)")

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        import torch

        net = _load(params.model_file, images.device)
        signed = params.value_range == "-1,1"
        n = images.shape[0]
        out = []
        with torch.inference_mode():
            for start in range(0, n, params.batch_size):
                ctx.check_cancelled()
                x = images[start:start + params.batch_size].detach().float()
                y = _apply(net, x * 2 - 1 if signed else x)
                out.append(((y + 1) / 2 if signed else y).clamp(0.0, 1.0))
                done = min(n, start + params.batch_size)
                ctx.progress(done / n, f"generator: {done}/{n} image(s)")
        adv = torch.cat(out).to(dtype=images.dtype)
        return AttackResult(adversarial=adv, notes=f"generator {Path(params.model_file).name}")


def _load(path: str, device: Any) -> Any:
    """The TorchScript generator on ``device``, in eval mode; the last one is kept so that
    rerunning it does not reload the file (the key includes the file's mtime and size)."""
    import torch

    if not path:
        raise ValueError("model_file is empty: give the TorchScript file of a generator")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"generator model not found: {path}")
    st = os.stat(p)
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, str(device))
    if key not in _LOADED:
        try:
            net = torch.jit.load(str(p), map_location=device)
        except Exception as exc:  # torch raises RuntimeError or ValueError, depending on why
            raise ValueError(f"{path} is not a TorchScript model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); save it with "
                             "torch.jit.script(net).save(path)") from None
        _LOADED.clear()
        _LOADED[key] = net.eval()
    return _LOADED[key]


def _apply(net: Any, x: Any) -> Any:
    """The generator on one chunk. Grey images meet a three-channel generator half way: if
    it refuses one channel (or answers with three), it gets three equal channels and its
    answer is averaged back to one."""
    if x.shape[1] == 1:
        try:
            y = net(x)
        except RuntimeError:  # a conv expecting 3 input channels
            y = None
        if y is None or getattr(y, "shape", None) != x.shape:
            y = net(x.expand(-1, 3, -1, -1))
            if hasattr(y, "dim") and y.dim() == 4 and y.shape[1] == 3:
                y = y.mean(dim=1, keepdim=True)
    else:
        y = net(x)
    if not hasattr(y, "shape"):
        raise ValueError(f"the generator returned {type(y).__name__}, not a tensor")
    if y.shape != x.shape:
        raise ValueError(f"the generator returned shape {tuple(y.shape)} for input "
                         f"{tuple(x.shape)}; it must return the input's shape")
    return y.float()
