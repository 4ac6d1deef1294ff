"""Defences, measured: fine-tune a shipped dermoscopy model on its card's training split
only, with (a) random colour and rotation variation, as Du-Harpur et al. retrained
against colour attacks, or (b) PGD adversarial training (Madry et al., 2018), and write
the result as a new model whose card names the defence and its parent.

Adversarial training here: each batch is attacked with PGD inside the L∞ ball of
``eps`` (in [0, 1] image space, at the model's input size: the batches are the training
crops, 160 px), with the network in eval mode so the BatchNorm statistics stay those of
clean images while crafting; the update is on half clean, half adversarial loss, which
keeps most of the clean accuracy (a pure adversarial loss costs more of it on 140
images). The BatchNorm statistics are re-estimated at the end, as for the shipped models.

The measurement (``measure``) uses the project's own PGD plugin through the attack
runner, on the card's test split at the input size, so the figures are those of
`workbench attack --plugin pgd`, not of the training loop's PGD.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .train import (
    MEAN,
    STD,
    _normalised,
    augment_batch,
    recompute_batchnorm,
    seed_everything,
    train_one,
)

if TYPE_CHECKING:  # torch loads where a function needs it, not on import
    import torch

DEFENCES = ("augment", "pgd")


@dataclass
class Hardened:
    card_path: Path
    defence: dict[str, Any]
    before: dict[str, float]
    after: dict[str, float]
    seconds: float


def colour_rotation_batch(images: list[np.ndarray], rng: np.random.Generator, size: int
                          ) -> torch.Tensor:
    """The usual training views, then what Du-Harpur et al. varied: a random offset of
    each colour channel (up to ±20 units of 255) and a rotation by any angle (reflected
    edges, like the seed's natural transformations)."""
    import cv2
    import torch

    turned = []
    for im in images:
        h, w = im.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(0, 360)), 1.0)
        turned.append(cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101))
    x = augment_batch(turned, rng, size)
    offsets = torch.from_numpy(rng.uniform(-20, 20, size=(len(images), 3, 1, 1))).float()
    return (x + offsets / 255.0).clamp(0.0, 1.0)


def _pgd_batch(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
               steps: int, mean_t: torch.Tensor, std_t: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    """Untargeted L∞ PGD with a random start (Madry et al.), step 2.5 * eps / steps."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    alpha = 2.5 * eps / steps
    was_training = net.training
    net.eval()  # craft against clean-image BatchNorm statistics
    adv = (x + (2 * torch.rand(x.shape, generator=generator) - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(net(_normalised(adv, mean_t, std_t)), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    net.train(was_training)
    return adv.detach()


def adversarial_finetune(images: list[np.ndarray], labels: list[int], init: dict[str, Any],
                         *, arch: str, n_classes: int, epochs: int, eps: float, steps: int,
                         lr: float, batch_size: int, size: int, seed: int,
                         progress: Callable[[float, str], None] | None = None,
                         cancelled: Callable[[], bool] | None = None) -> torch.nn.Module:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from ..models.classifier import build_network

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = build_network(arch, n_classes)
    net.load_state_dict(init)
    mean_t, std_t = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    n = len(images)
    n_batches = max(1, math.ceil(n / batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * n_batches)
    y_all = torch.tensor(labels)
    done, total = 0, epochs * n_batches
    for epoch in range(1, epochs + 1):
        for idx in np.array_split(rng.permutation(n), n_batches):
            if cancelled is not None and cancelled():
                raise InterruptedError("hardening cancelled")
            x = augment_batch([images[i] for i in idx], rng, size)
            y = y_all[torch.from_numpy(idx)]
            adv = _pgd_batch(net, x, y, eps, steps, mean_t, std_t, gen)
            net.train()
            loss = 0.5 * (F.cross_entropy(net(_normalised(x, mean_t, std_t)), y)
                          + F.cross_entropy(net(_normalised(adv, mean_t, std_t)), y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if progress is not None:
                progress(done / total, f"epoch {epoch}/{epochs}, loss {float(loss.detach()):.3f}")
    recompute_batchnorm(net, images, rng, size, batch_size)
    return net.eval()


def measure(model: Any, batch: torch.Tensor, labels: torch.Tensor, *, eps: float,
            steps: int = 20, seed: int = 0) -> dict[str, float]:
    """Clean accuracy and accuracy under the project's PGD (targeted at the other class,
    as in the seeds and the evaluator) on ``batch`` (N x 3 x S x S in [0, 1], 8-bit
    pictures). The attacked copies are put on the 8-bit grid within ε before they are
    judged, as the evaluator's are: the figure is of pictures that can be saved."""
    import torch

    from ..engine.attack_runner import run_attack
    from ..engine.plugins import PluginRegistry

    info = next(p for p in PluginRegistry().plugins if p.name == "pgd" and p.ok)
    with torch.inference_mode():
        clean = model(batch).argmax(1)
    out = run_attack(info.create(), model, batch, labels=labels, targeted=True,
                     params={"eps": eps, "steps": steps}, seed=seed, levels=255)
    adv = out.adv_probs.argmax(1)
    return {"clean_accuracy": float((clean.cpu() == labels).float().mean()),
            "pgd_accuracy": float((adv == labels).float().mean()),
            "pgd_success": float(out.success.float().mean()), "n": int(len(labels))}


def _test_batch(data: Any, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The card's test split at the input size (the area-averaged resize of the
    training views, so training and measurement see images alike)."""
    import cv2
    import torch

    xs = [cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
          for im in data.images(data.test_ids)]
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().div(255.0)
    return x, torch.tensor(data.labels(data.test_ids))


def harden(parent: str, defence: str, out_dir: str | Path, data_dir: str | Path, *,
           epochs: int = 3, eps: float = 0.01, steps: int = 5, lr: float = 3e-4,
           batch_size: int = 16, seed: int = 0, limit: int | None = None,
           measure_steps: int = 20,
           progress: Callable[[float, str], None] | None = None,
           cancelled: Callable[[], bool] | None = None) -> Hardened:
    """Fine-tune ``parent`` (a shipped dermoscopy model or its card) with ``defence`` and
    write ``<parent>_<defence>.json/.pt`` into ``out_dir``; measure parent and child on
    the test split with the same PGD."""
    import torch

    from ..models.card import ModelCard
    from ..models.zoo import load_model, resolve_card
    from .data import isic_folder, load_demo_data

    if defence not in DEFENCES:
        raise ValueError(f"{defence!r}: the defences are {', '.join(DEFENCES)}")
    parent_card_path = Path(resolve_card(parent))
    parent_card = ModelCard.load(parent_card_path)
    if tuple(parent_card.class_names) != ("nevus", "melanoma"):
        raise ValueError(f"{parent_card.name}: hardening is built for the dermoscopy "
                         "models (their ISIC training split) so far")
    data = load_demo_data(isic_folder(Path(data_dir)))
    train_ids = list(data.train_ids)[:limit] if limit else list(data.train_ids)
    images, labels = data.images(train_ids), data.labels(train_ids)
    size = int(parent_card.input_size[0])
    parent_model = load_model(parent_card_path)
    batch, y = _test_batch(data, size)
    before = measure(parent_model, batch, y, eps=eps, steps=measure_steps, seed=seed)
    init = {k: v.detach().clone() for k, v in parent_model.net.state_dict().items()}
    start = time.perf_counter()
    if defence == "pgd":
        net = adversarial_finetune(images, labels, init, arch=parent_card.architecture,
                                   n_classes=len(parent_card.class_names), epochs=epochs,
                                   eps=eps, steps=steps, lr=lr, batch_size=batch_size,
                                   size=size, seed=seed, progress=progress,
                                   cancelled=cancelled)
        recipe = {"name": "pgd-adversarial-training", "eps": eps, "steps": steps,
                  "loss": "0.5 clean + 0.5 adversarial cross-entropy",
                  "reference": "Madry et al., 2018"}
    else:
        net, _ = train_one(f"{parent_card.name}-augment", images, labels,
                           arch=parent_card.architecture, epochs=epochs, seed=seed,
                           size=size, lr=lr, weight_decay=1e-4, batch_size=batch_size,
                           warmup_epochs=0, augment=colour_rotation_batch,
                           n_classes=len(parent_card.class_names), init=init)
        recipe = {"name": "colour-rotation-augmentation", "colour_offset": 20,
                  "rotation": "0-360 degrees",
                  "reference": "Du-Harpur et al. (random colour variation)"}
    seconds = time.perf_counter() - start
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{parent_card.name}_{defence}"
    weights = out / f"{name}.pt"
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
    parent_weights = parent_card_path.parent / parent_card.weights
    defence_record = {
        **recipe, "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
        "train_images": len(train_ids), "data": "the parent card's training split",
        "parent": {"name": parent_card.name, "card": str(parent_card_path),
                   "weights_sha256": hashlib.sha256(parent_weights.read_bytes()).hexdigest()},
    }
    card = ModelCard.load(parent_card_path)
    card.name, card.weights = name, weights.name
    card.notes = (f"{parent_card.name} hardened with {recipe['name']} ({epochs} epochs on "
                  f"{len(train_ids)} training images). " + (parent_card.notes or ""))
    card.defence = defence_record
    card_path = out / f"{name}.json"
    card.save(card_path)
    after = measure(load_model(card_path), batch, y, eps=eps, steps=measure_steps, seed=seed)
    card.metrics = {**(parent_card.metrics or {}), "hardening": {
        "before": before, "after": after,
        "pixels": "8-bit: the PGD copies rounded to whole steps within eps (measure)"}}
    card.save(card_path)
    return Hardened(card_path, defence_record, before, after, seconds)
