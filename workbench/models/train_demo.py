"""Train the two demo melanoma-vs-nevus classifiers that ship in ``resources/models``.

Run as ``python -m workbench.models.train_demo [--data DIR] [--out resources/models]
[--epochs N] [--threads 2]``. It writes

* ``demo_melanoma.pt`` + ``demo_melanoma.json``: the *victim*, trained on the whole
  training split (init seed 0);
* ``demo_surrogate.pt`` + ``demo_surrogate.json``: an independently trained *surrogate*
  for black-box transfer attacks (as in Finlayson et al., Science 2019): a different
  init seed (1) and a different subset of the data, a seeded stratified half of the
  training split (data seed 1).

Why it is built the way it is:

* **Data.** The 200 CC0 ISIC dermoscopy photographs in ``../shared/data/dermoscopy/isic``
  (100 melanoma, 100 nevus). Nothing can be downloaded here, so the networks are
  torchvision architectures with ``weights=None``, trained from scratch. With 140
  training images that gives a weak model; it exists to demonstrate attacks, not to
  diagnose anything, and its card says so.
* **Split.** Fixed, seeded (seed 0), by image, stratified: 70 % train / 30 % test
  (70 + 30 per class). Both models are evaluated on the same 60 test images; the card
  lists every ISIC id so the split can be audited and re-measured (tests do).
* **Architecture.** ``mobilenet_v3_small`` (about 6 MB as float32): small enough to
  ship, fast enough to train on two CPU cores in minutes, and a real torchvision
  architecture that :func:`workbench.models.classifier.build_network` rebuilds.
* **Input size 160.** Training cost grows with pixels; 160 px is about half the cost of
  224 and the lesions stay recognisable. The wrapper resizes whatever it is given to
  the card's ``input_size``, so callers never need to know.
* **Preprocessing.** Each JPEG is decoded once with OpenCV, converted to RGB and shrunk
  with ``INTER_AREA`` to 256 px on the short side (uint8 in memory). Evaluation feeds
  that whole image in [0, 1] through the :class:`Classifier` wrapper, which resizes it
  (antialiased bilinear) to 160 x 160 and normalises it. Training crops are shrunk
  with OpenCV's INTER_AREA (also area-averaging, and much cheaper on a CPU), and a crop
  of the whole image reproduces the evaluation geometry (the same aspect squash).
* **Augmentation.** The data set is tiny, so every epoch sees new views: random resized
  crops (35-100 % of the area, aspect within 3/4-4/3 of the image's own), horizontal and
  vertical flips and rotations by 90 degrees (dermoscopy has no canonical orientation),
  and *mild* brightness / contrast / saturation jitter (colour is diagnostic, so no hue
  shift).
* **Optimisation.** AdamW (decoupled weight decay regularises a from-scratch net) with a
  linear warm-up and a cosine decay, label smoothing 0.1 (discourages over-confident
  fits to 140 images). The surrogate has half the images, so it gets twice the epochs:
  both models take the same number of optimiser steps.
* **Precise BatchNorm.** After the last epoch the BN running statistics are recomputed
  as exact averages over five augmented passes of the training images (mobilenet_v3's
  BN momentum is 0.01, far too slow for a few hundred steps from scratch: a first trial
  without this predicted "nevus" for every test image).
* **Reproducibility.** Python, NumPy and torch are seeded; augmentation draws from one
  seeded NumPy generator; torch runs with deterministic algorithms. The saved model is
  reloaded through :func:`workbench.models.classifier.load_classifier` and the card's
  metrics are measured on *that*, so the shipped files provably give the card's numbers.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from workbench.models.card import ModelCard
from workbench.models.classifier import build_network, load_classifier, predict_proba

CLASS_NAMES: tuple[str, str] = ("nevus", "melanoma")
POSITIVE_CLASS = "melanoma"
ARCHITECTURE = "mobilenet_v3_small"
INPUT_SIZE = 160
EVAL_SHORT_SIDE = 256
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: conventional, and close enough
STD = (0.229, 0.224, 0.225)
SPLIT_SEED = 0
TRAIN_FRACTION = 0.7
SURROGATE_DATA_SEED = 1
EVAL_PREPROCESSING = (
    f"OpenCV decode, BGR->RGB, INTER_AREA resize to {EVAL_SHORT_SIDE} px short side "
    "(aspect kept), uint8 -> [0, 1] float, whole image through the Classifier wrapper "
    "(antialiased bilinear resize to input_size, ImageNet mean/std), argmax of logits "
    "for accuracy, softmax melanoma probability for AUROC"
)
ISIC_LICENCE = "CC0 1.0"


@dataclass(frozen=True)
class Sample:
    isic_id: str
    path: Path
    label: int  # index into CLASS_NAMES


# ---------------------------------------------------------------- data


def isic_folder(data: Path) -> Path:
    """The ISIC folder: ``data`` itself if it holds labels.csv, else data/dermoscopy/isic."""
    return data if (data / "labels.csv").is_file() else data / "dermoscopy" / "isic"


def read_samples(isic: Path) -> list[Sample]:
    """All melanoma / nevus rows of labels.csv, sorted by ISIC id."""
    out = []
    with (isic / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["diagnosis"] in CLASS_NAMES:
                out.append(Sample(row["isic_id"], isic / row["image"],
                                  CLASS_NAMES.index(row["diagnosis"])))
    return sorted(out, key=lambda s: s.isic_id)


def stratified_split(samples: list[Sample], fraction: float, seed: int
                     ) -> tuple[list[str], list[str]]:
    """Seeded per-class shuffle; the first ``round(fraction * n_class)`` ids of each class
    go to the first list. Both lists come back sorted."""
    rng = np.random.default_rng(seed)
    first: list[str] = []
    second: list[str] = []
    for label in range(len(CLASS_NAMES)):
        ids = sorted(s.isic_id for s in samples if s.label == label)
        order = rng.permutation(len(ids))
        k = round(fraction * len(ids))
        first += [ids[i] for i in order[:k]]
        second += [ids[i] for i in order[k:]]
    return sorted(first), sorted(second)


def load_rgb(path: Path, short_side: int = EVAL_SHORT_SIDE) -> np.ndarray:
    """H x W x 3 uint8 RGB, shrunk with INTER_AREA so the short side is ``short_side``
    (never enlarged). The one preprocessing used for training, evaluation and tests."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"{path}: OpenCV cannot decode this image")
    h, w = bgr.shape[:2]
    scale = short_side / min(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def to_unit_tensor(rgb: np.ndarray) -> torch.Tensor:
    """1 x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


# ---------------------------------------------------------------- metrics


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count one half)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def evaluate(model: Any, images: list[np.ndarray], labels: list[int]) -> dict[str, Any]:
    """Accuracy and AUROC (melanoma positive) of a Classifier on uint8 RGB images, each
    fed whole, in [0, 1], one at a time (their sizes differ)."""
    pos = model.card.positive_index if hasattr(model, "card") else CLASS_NAMES.index(
        POSITIVE_CLASS)
    probs = np.stack([predict_proba(model, to_unit_tensor(im))[0].cpu().numpy()
                      for im in images])
    y = np.asarray(labels)
    pred = probs.argmax(1)
    pos_label = (y == pos).astype(int)
    return {
        "accuracy": float((pred == y).mean()),
        "auroc": auroc(probs[:, pos], pos_label),
        "n_test": len(y),
        "n_test_per_class": {name: int((y == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        "sensitivity": float((pred[pos_label == 1] == pos).mean()),
        "specificity": float((pred[pos_label == 0] != pos).mean()),
    }


# ---------------------------------------------------------------- training


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment_batch(images: list[np.ndarray], rng: np.random.Generator, size: int
                  ) -> torch.Tensor:
    """Random resized crop, flips, 90-degree rotations and mild colour jitter for a list
    of H x W x 3 uint8 RGB images -> B x 3 x S x S float in [0, 1]. The crop is resized
    with OpenCV's INTER_AREA (area averaging, like the wrapper's antialiased resize, and
    about ten times cheaper per image than torch's antialiased interpolate on a CPU)."""
    out = []
    for im in images:
        h, w = im.shape[:2]
        area = rng.uniform(0.35, 1.0)
        rel_aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = min(w, max(8, round(w * math.sqrt(area * rel_aspect))))
        ch = min(h, max(8, round(h * math.sqrt(area / rel_aspect))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        crop = cv2.resize(im[y0:y0 + ch, x0:x0 + cw], (size, size),
                          interpolation=cv2.INTER_AREA)
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


@torch.no_grad()
def recompute_batchnorm(net: torch.nn.Module, images: list[np.ndarray],
                        rng: np.random.Generator, size: int, batch_size: int,
                        passes: int = 5) -> None:
    """"Precise BN": replace the BatchNorm running statistics by exact averages over a
    few augmented passes of the training images with the final weights. Needed because
    mobilenet_v3 uses BN momentum 0.01, so after a few hundred steps from scratch the
    running averages still lag far behind the weights; in a first trial the unfixed
    model put every test image in one class (accuracy 0.5)."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches below
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    net.train()
    n = len(images)
    for _ in range(passes):
        for idx in np.array_split(rng.permutation(n), max(1, math.ceil(n / batch_size))):
            net((augment_batch([images[i] for i in idx], rng, size) - mean) / std)
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    net.eval()


def train_one(name: str, images: list[np.ndarray], labels: list[int], *, arch: str,
              epochs: int, seed: int, size: int, lr: float, weight_decay: float, batch_size: int,
              warmup_epochs: int) -> tuple[torch.nn.Module, float]:
    """Train a fresh network; returns it (eval mode) and the wall-clock seconds taken."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    net = build_network(arch, len(CLASS_NAMES))
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
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
            x = augment_batch([images[i] for i in idx], rng, size)
            y = y_all[torch.from_numpy(idx)]
            logits = net((x - mean) / std)
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
    recompute_batchnorm(net, images, rng, size, batch_size)
    return net.eval(), time.perf_counter() - start


# ---------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.models.train_demo",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("WORKBENCH_SHARED_DATA", "../shared/data")
    p.add_argument("--data", type=Path, default=Path(default_data),
                   help="shared data folder (holding dermoscopy/isic) or the ISIC folder "
                        "itself (default: $WORKBENCH_SHARED_DATA or ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--epochs", type=int, default=80,
                   help="victim epochs; the surrogate (half the images) gets twice as many")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument("--arch", default=ARCHITECTURE, help="torchvision architecture")
    p.add_argument("--size", type=int, default=INPUT_SIZE, help="network input size (square)")
    p.add_argument("--only", choices=("victim", "surrogate", "both"), default="both")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    isic = isic_folder(args.data)
    if not (isic / "labels.csv").is_file():
        print(f"train_demo: ISIC data not found: {isic} (expected labels.csv and images/; "
              "pass --data or set WORKBENCH_SHARED_DATA)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)

    samples = read_samples(isic)
    by_id = {s.isic_id: s for s in samples}
    train_ids, test_ids = stratified_split(samples, TRAIN_FRACTION, SPLIT_SEED)
    surrogate_ids, _ = stratified_split([by_id[i] for i in train_ids], 0.5,
                                        SURROGATE_DATA_SEED)
    t0 = time.perf_counter()
    rgb = {s.isic_id: load_rgb(s.path) for s in samples}
    print(f"loaded {len(rgb)} images from {isic} in {time.perf_counter() - t0:.1f} s "
          f"(train {len(train_ids)}, test {len(test_ids)}, surrogate {len(surrogate_ids)})",
          flush=True)
    test_images = [rgb[i] for i in test_ids]
    test_labels = [by_id[i].label for i in test_ids]

    n_mel = sum(s.label == 1 for s in samples)
    dataset = (f"ISIC Archive dermoscopy photographs from ../shared/data/dermoscopy/isic "
               f"({len(samples)} images: {n_mel} melanoma, {len(samples) - n_mel} nevus; "
               f"melanoma histopathology-confirmed), licence {ISIC_LICENCE}")
    split_common = {
        "seed": SPLIT_SEED,
        "method": "by image, stratified by diagnosis; per-class numpy default_rng(seed) "
                  "permutation of the sorted ISIC ids",
        "fractions": {"train": TRAIN_FRACTION, "test": round(1 - TRAIN_FRACTION, 6)},
        "test_ids": test_ids,
        "victim_train_ids": train_ids,
    }
    jobs = [
        ("demo_melanoma", "victim", train_ids, 0, args.epochs,
         f"{dataset}. Trained on the whole {len(train_ids)}-image training split."),
        ("demo_surrogate", "surrogate", surrogate_ids, 1, 2 * args.epochs,
         f"{dataset}. Trained on a seeded stratified half of the training split "
         f"({len(surrogate_ids)} images, data seed {SURROGATE_DATA_SEED}), "
         "different from the victim's training set (the victim uses all of the split)."),
    ]
    summary = []
    for name, role, ids, seed, epochs, training_data in jobs:
        if args.only not in ("both", role):
            continue
        net, seconds = train_one(
            name, [rgb[i] for i in ids], [by_id[i].label for i in ids], arch=args.arch,
            epochs=epochs, seed=seed, size=args.size, lr=args.lr, weight_decay=args.weight_decay,
            batch_size=args.batch_size, warmup_epochs=args.warmup_epochs)
        weights = args.out / f"{name}.pt"
        torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
        split = dict(split_common, role=role, train_ids=ids, n_train=len(ids),
                     n_test=len(test_ids))
        if role == "surrogate":
            split["surrogate_data_seed"] = SURROGATE_DATA_SEED
        card = ModelCard(
            name=name, architecture=args.arch, weights=weights.name,
            input_size=(args.size, args.size), mean=MEAN, std=STD,
            class_names=CLASS_NAMES, positive_class=POSITIVE_CLASS,
            training_data=training_data, split=split,
            notes=(f"Demo {role} for adversarial-attack experiments. {args.arch} trained "
                   f"from scratch (no pretrained weights) on only {len(ids)} images on a "
                   "CPU: a weak, small-data model whose test metrics on 60 images carry "
                   "wide uncertainty (a 95% interval on accuracy is roughly +/-0.12). "
                   "The test split was looked at once during development (a first run "
                   "without the BatchNorm re-estimation put every test image in one class); "
                   "no other setting was tuned on it. Not a medical device; NOT for clinical "
                   "use or any diagnostic decision."),
        )
        card_path = args.out / f"{name}.json"
        card.save(card_path)
        # measure the shipped files, through the project's own loader
        model = load_classifier(card_path)
        metrics = evaluate(model, test_images, test_labels)
        metrics.update({
            "evaluation": EVAL_PREPROCESSING,
            "train_seconds": round(seconds, 1),
            "epochs": epochs,
            "train_images": len(ids),
            "init_seed": seed,
            "hyperparameters": {
                "optimizer": "AdamW", "lr": args.lr, "weight_decay": args.weight_decay,
                "schedule": f"linear warm-up {args.warmup_epochs} epochs, cosine to 0",
                "batch_size": args.batch_size, "label_smoothing": 0.1,
                "augmentation": "random resized crop 35-100% area, aspect 3/4-4/3 relative, "
                                "h/v flips, rot90, brightness/contrast/saturation +/-10%",
                "threads": args.threads,
            },
        })
        card.metrics = metrics
        card.save(card_path)
        size_mb = weights.stat().st_size / 1e6
        summary.append((name, metrics, seconds, size_mb))
        print(f"[{name}] test accuracy {metrics['accuracy']:.3f}  AUROC {metrics['auroc']:.3f}"
              f"  (n={metrics['n_test']})  trained in {seconds:.0f} s  weights {size_mb:.1f} MB",
              flush=True)

    print("\nsummary")
    for name, m, seconds, size_mb in summary:
        print(f"  {name:15s} acc {m['accuracy']:.3f}  AUROC {m['auroc']:.3f}  "
              f"sens {m['sensitivity']:.3f}  spec {m['specificity']:.3f}  "
              f"{seconds:.0f} s  {size_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
