"""The shipped files of one demo model: its weights, its model card (split, notes,
hyperparameters) and the card's metrics, measured on the saved files through the
project's own loader so that what ships provably gives the card's numbers."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from ..models.card import ModelCard
from ..models.classifier import load_classifier
from ..models.fit import ImageFit
from .data import (
    CLASS_NAMES,
    POSITIVE_CLASS,
    SPLIT_SEED,
    SURROGATE_DATA_SEED,
    TRAIN_FRACTION,
    DemoData,
)
from .metrics import EVAL_PREPROCESSING, evaluate
from .train import MEAN, STD, train_one

# what the demo models fit: the warning on any other image names this description
DERMOSCOPY = ImageFit(description="dermoscopy photographs of skin lesions (ISIC, colour)",
                      modalities=("XC", "DMS"), colour=True)


@dataclass(frozen=True)
class DemoModel:
    """One of the two models to train: the victim or the surrogate."""

    name: str
    role: str  # "victim" or "surrogate"
    ids: list[str]
    seed: int
    epochs: int
    training_data: str


def demo_models(data: DemoData, epochs: int) -> list[DemoModel]:
    """The victim on the whole training split; the surrogate on a seeded half of it with
    another init seed and twice the epochs (the same number of optimiser steps)."""
    dataset = data.description()
    return [
        DemoModel("demo_melanoma", "victim", data.train_ids, 0, epochs,
                  f"{dataset}. Trained on the whole {len(data.train_ids)}-image training "
                  "split."),
        DemoModel("demo_surrogate", "surrogate", data.surrogate_ids, 1, 2 * epochs,
                  f"{dataset}. Trained on a seeded stratified half of the training split "
                  f"({len(data.surrogate_ids)} images, data seed {SURROGATE_DATA_SEED}), "
                  "different from the victim's training set (the victim uses all of the "
                  "split)."),
    ]


def split_record(data: DemoData, model: DemoModel) -> dict[str, Any]:
    """The card's split: every id, so the split can be audited and re-measured."""
    split = {
        "seed": SPLIT_SEED,
        "method": "by image, stratified by diagnosis; per-class numpy default_rng(seed) "
                  "permutation of the sorted ISIC ids",
        "fractions": {"train": TRAIN_FRACTION, "test": round(1 - TRAIN_FRACTION, 6)},
        "test_ids": data.test_ids,
        "victim_train_ids": data.train_ids,
        "role": model.role, "train_ids": model.ids, "n_train": len(model.ids),
        "n_test": len(data.test_ids),
    }
    if model.role == "surrogate":
        split["surrogate_data_seed"] = SURROGATE_DATA_SEED
    return split


def card_notes(model: DemoModel, arch: str) -> str:
    return (f"Demo {model.role} for adversarial-attack experiments. {arch} trained "
            f"from scratch (no pretrained weights) on only {len(model.ids)} images on a "
            "CPU: a weak, small-data model whose test metrics on 60 images carry "
            "wide uncertainty (a 95% interval on accuracy is roughly +/-0.12). "
            "The test split was looked at once during development (a first run "
            "without the BatchNorm re-estimation put every test image in one class); "
            "no other setting was tuned on it. Not a medical device; NOT for clinical "
            "use or any diagnostic decision.")


def hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "optimizer": "AdamW", "lr": args.lr, "weight_decay": args.weight_decay,
        "schedule": f"linear warm-up {args.warmup_epochs} epochs, cosine to 0",
        "batch_size": args.batch_size, "label_smoothing": 0.1,
        "augmentation": "random resized crop 35-100% area, aspect 3/4-4/3 relative, "
                        "h/v flips, rot90, brightness/contrast/saturation +/-10%",
        "threads": args.threads,
    }


def train_and_ship(model: DemoModel, data: DemoData, args: argparse.Namespace
                   ) -> tuple[dict[str, Any], float, float]:
    """Train ``model``, write its weights and card into ``args.out`` and measure the
    written files; returns (metrics, training seconds, weights MB)."""
    import torch

    net, seconds = train_one(
        model.name, data.images(model.ids), data.labels(model.ids), arch=args.arch,
        epochs=model.epochs, seed=model.seed, size=args.size, lr=args.lr,
        weight_decay=args.weight_decay, batch_size=args.batch_size,
        warmup_epochs=args.warmup_epochs)
    weights = args.out / f"{model.name}.pt"
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
    card = ModelCard(
        name=model.name, architecture=args.arch, weights=weights.name,
        input_size=(args.size, args.size), mean=MEAN, std=STD,
        class_names=CLASS_NAMES, positive_class=POSITIVE_CLASS,
        training_data=model.training_data, split=split_record(data, model),
        notes=card_notes(model, args.arch), fits=DERMOSCOPY)
    card_path = args.out / f"{model.name}.json"
    card.save(card_path)
    # measure the shipped files, through the project's own loader
    metrics = evaluate(load_classifier(card_path), data.images(data.test_ids),
                       data.labels(data.test_ids))
    metrics.pop("probabilities")
    metrics.update({
        "evaluation": EVAL_PREPROCESSING, "train_seconds": round(seconds, 1),
        "epochs": model.epochs, "train_images": len(model.ids), "init_seed": model.seed,
        "hyperparameters": hyperparameters(args),
    })
    card.metrics = metrics
    card.save(card_path)
    size_mb = weights.stat().st_size / 1e6
    print(f"[{model.name}] test accuracy {metrics['accuracy']:.3f}  AUROC "
          f"{metrics['auroc']:.3f}  (n={metrics['n_test']})  trained in {seconds:.0f} s  "
          f"weights {size_mb:.1f} MB", flush=True)
    return metrics, seconds, size_mb
