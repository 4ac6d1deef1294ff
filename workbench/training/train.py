"""Training one demo network from scratch: seeded augmentation, AdamW with warm-up and
cosine decay, and the precise-BatchNorm pass at the end (see the package's notes)."""

from __future__ import annotations

import math
import random
import time
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..models.classifier import build_network
from .data import CLASS_NAMES

if TYPE_CHECKING:  # torch loads where a function needs it, not on import
    import torch

ARCHITECTURE = "mobilenet_v3_small"
INPUT_SIZE = 160
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: conventional, and close enough
STD = (0.229, 0.224, 0.225)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def random_resized_crop(im: np.ndarray, rng: np.random.Generator, size: int,
                        area: tuple[float, float], aspect: tuple[float, float]) -> np.ndarray:
    """A crop of ``area`` (fraction of the image) and ``aspect`` (relative to the
    image's own), shrunk to size x size with INTER_AREA."""
    h, w = im.shape[:2]
    a = rng.uniform(*area)
    rel_aspect = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1])))
    cw = min(w, max(8, round(w * math.sqrt(a * rel_aspect))))
    ch = min(h, max(8, round(h * math.sqrt(a / rel_aspect))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return cv2.resize(im[y0:y0 + ch, x0:x0 + cw], (size, size), interpolation=cv2.INTER_AREA)


def augment_batch(images: list[np.ndarray], rng: np.random.Generator, size: int
                  ) -> torch.Tensor:
    """Random resized crop, flips, 90-degree rotations and mild colour jitter for a list
    of H x W x 3 uint8 RGB images -> B x 3 x S x S float in [0, 1]. The crop is resized
    with OpenCV's INTER_AREA (area averaging, like the wrapper's antialiased resize, and
    about ten times cheaper per image than torch's antialiased interpolate on a CPU)."""
    import torch

    out = []
    for im in images:
        crop = random_resized_crop(im, rng, size, (0.35, 1.0), (3 / 4, 4 / 3))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        crop = np.rot90(crop, int(rng.integers(0, 4)))
        out.append(np.ascontiguousarray(crop))
    x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255.0)
    # mild colour jitter: brightness, contrast, saturation (no hue: colour is diagnostic)
    b, c, s = (torch.from_numpy(rng.uniform(0.9, 1.1, size=(3, len(images), 1, 1, 1)))
               .float().unbind(0))
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = x * b
    mean_gray = (x * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (x - mean_gray) * c + mean_gray
    gray = (x * luma).sum(1, keepdim=True)
    x = (x - gray) * s + gray
    return x.clamp(0.0, 1.0)


def augment_grey_batch(images: list[np.ndarray], rng: np.random.Generator, size: int
                       ) -> torch.Tensor:
    """Chest X-ray views for a list of H x W uint8 images -> B x 1 x S x S in [0, 1]:
    a random resized crop of 75-100 % of the area (aspect within 0.9-1.1), a rotation of
    up to 7 degrees and a shift of up to 4 % (positioning varies that much), and
    brightness / contrast / gamma jitter (exposure varies between machines). No flips:
    a chest has a left and a right (the heart), and a film is never upside down."""
    import torch

    out = []
    for im in images:
        crop = random_resized_crop(im, rng, size, (0.75, 1.0), (0.9, 1.1))
        turn = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-7, 7), 1.0)
        turn[:, 2] += rng.uniform(-0.04, 0.04, size=2) * size
        crop = cv2.warpAffine(crop, turn, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
        out.append(crop)
    x = torch.from_numpy(np.stack(out)).unsqueeze(1).float().div(255.0)
    n = len(images)
    gamma = torch.from_numpy(np.exp(rng.uniform(-0.2, 0.2, size=(n, 1, 1, 1)))).float()
    b, c = (torch.from_numpy(rng.uniform(0.85, 1.15, size=(2, n, 1, 1, 1))).float()
            .unbind(0))
    x = x.clamp(0.0, 1.0) ** gamma
    mean = x.mean((2, 3), keepdim=True)
    return ((x - mean) * c + mean * b).clamp(0.0, 1.0)


def _normalised(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """What the Classifier wrapper does after resizing: grey repeated to three channels,
    then the card's mean / std."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x - mean) / std


def recompute_batchnorm(net: torch.nn.Module, images: list[np.ndarray],
                        rng: np.random.Generator, size: int, batch_size: int,
                        passes: int = 5, augment: Any = augment_batch,
                        mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD) -> None:
    """"Precise BN": replace the BatchNorm running statistics by exact averages over a
    few augmented passes of the training images with the final weights. Needed because
    mobilenet_v3 uses BN momentum 0.01, so after a few hundred steps from scratch the
    running averages still lag far behind the weights; in a first trial the unfixed
    model put every test image in one class (accuracy 0.5)."""
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches below
    m = torch.tensor(mean).view(1, 3, 1, 1)
    sd = torch.tensor(std).view(1, 3, 1, 1)
    net.train()
    n = len(images)
    with torch.no_grad():
        for _ in range(passes):
            for idx in np.array_split(rng.permutation(n), max(1, math.ceil(n / batch_size))):
                net(_normalised(augment([images[i] for i in idx], rng, size), m, sd))
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    net.eval()


def train_one(name: str, images: list[np.ndarray], labels: list[int], *, arch: str,
              epochs: int, seed: int, size: int, lr: float, weight_decay: float, batch_size: int,
              warmup_epochs: int, augment: Any = augment_batch,
              mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD,
              n_classes: int = len(CLASS_NAMES), init: dict[str, Any] | None = None
              ) -> tuple[torch.nn.Module, float]:
    """Train a fresh network (or fine-tune ``init``'s weights); returns it (eval mode) and
    the wall-clock seconds taken.
    ``augment`` makes a batch of views (RGB, or one grey channel the network sees
    repeated, as through the Classifier wrapper)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    net = build_network(arch, n_classes)
    if init is not None:  # fine-tuning from a base network's weights
        net.load_state_dict(init)
    stats = (mean, std)
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    n = len(images)
    n_batches = max(1, math.ceil(n / batch_size))  # equal-sized batches: no tiny last one
    total_steps = epochs * n_batches
    warmup = warmup_epochs * n_batches
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    y_all = torch.tensor(labels)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        order = rng.permutation(n)
        loss_sum, correct = 0.0, 0
        for idx in np.array_split(order, n_batches):
            x = augment([images[i] for i in idx], rng, size)
            y = y_all[torch.from_numpy(idx)]
            logits = net(_normalised(x, mean_t, std_t))
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        print(f"[{name}] epoch {epoch:3d}/{epochs}  loss {loss_sum / n:.4f}  "
              f"train acc {correct / n:.3f}  lr {opt.param_groups[0]['lr']:.2e}  "
              f"{time.perf_counter() - start:6.1f} s", flush=True)
    recompute_batchnorm(net, images, rng, size, batch_size, augment=augment,
                        mean=stats[0], std=stats[1])
    return net.eval(), time.perf_counter() - start
