"""Train and ship the chest X-ray victim and its surrogate (``resources/models``):
``cxr_pneumonia`` and ``cxr_surrogate``, normal vs viral pneumonia.

Run: python -m workbench.training.cxr_models [--data ../shared/data] [--out resources/models]

* **A shared base**: Finlayson et al.'s victim and black-box surrogate were "an
  independently-trained model with the same architecture", both fine-tuned from
  ImageNet weights. Nothing can be downloaded here, so the public starting point both
  sides share is a base network trained first, from scratch, on a seeded half of the
  training patients (split seed 3; it is not shipped: this command rebuilds it). Two
  from-scratch networks share almost no features: PGD crafted on an independently
  trained shufflenet left this victim's held-out accuracy where it was (93.5% -> 93.3%),
  while from a shared base it falls by tens of points (the closing note of issue 16).
* **Victim**: mobilenet_v3_small (6 MB) fine-tuned from the base on all the training
  patients (split seed 0), seed 0.
* **Surrogate**: the same architecture (as in the seed) fine-tuned from the base with
  another seed (1) on another patient split of the training patients (a seeded 70 %,
  seed 1): the attacker has a model of its own, never the victim's weights.
  ``--from-scratch`` trains both without the base (the surrogate then a
  shufflenet_v2_x1_0, ``--surrogate-arch``), the independent setting.
* **Input**: one grey channel (the wrapper repeats it to the network's three), 160 px
  by default; the 227 px JPEGs are area-averaged to it inside the wrapper, as for any
  image the workbench opens.
* **Metrics** on the test patients through the project's own loader, with a 95 %
  interval of the AUROC from a bootstrap over patients.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..models.fit import ImageFit

CHEST_XRAY = ImageFit(
    description="frontal chest X-rays of children aged one to five (CR / DX, or the same "
                "saved as a greyscale PNG / JPEG)",
    modalities=("CR", "DX"), body_parts=("CHEST",), colour=False, greyscale_photos=True,
    max_age_years=5)  # Kermany et al.: children aged one to five

ARCH = "mobilenet_v3_small"
MODELS = (  # name, role, init seed, patient part of the split
    ("cxr_pneumonia", "victim", 0, "train"),
    ("cxr_surrogate", "surrogate", 1, "surrogate"),
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.training.cxr_models",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path,
                   default=Path(os.environ.get("WORKBENCH_SHARED_DATA", "../shared/data")))
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs from the base")
    p.add_argument("--base-epochs", type=int, default=8)
    p.add_argument("--from-scratch", action="store_true",
                   help="no shared base (both trained from random weights, 12 epochs)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3, help="the base's (and from scratch)")
    p.add_argument("--fine-tune-lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--only", choices=("victim", "surrogate", "both"), default="both")
    p.add_argument("--surrogate-arch", help="default: the victim's (shufflenet_v2_x1_0 "
                   "with --from-scratch)")
    return p.parse_args(argv)


def split_record(data: Any, name: str, role: str, part: str) -> dict[str, Any]:
    from .cxr_data import CXR_FRACTIONS, CXR_SPLIT_SEED, CXR_SURROGATE_FRACTION, CXR_SURROGATE_SEED

    split = {
        "by": "patient",
        "seed": CXR_SPLIT_SEED,
        "method": "by patient, stratified by diagnosis: the sorted patient ids of each "
                  "diagnosis in a numpy default_rng(seed) permutation, cut in the order "
                  "train, validation, test; every image of a patient on one side",
        "fractions": CXR_FRACTIONS,
        "train_patients": data.patients[part],
        "validation_patients": data.patients["validation"],
        "test_patients": data.patients["test"],
        "train_ids": data.ids(part),
        "test_ids": data.ids("test"),
        "validation_ids": data.ids("validation"),
        "role": role, "n_train": len(data.ids(part)),
        "n_validation": len(data.ids("validation")), "n_test": len(data.ids("test")),
    }
    if role.startswith("surrogate"):
        seed = CXR_SURROGATE_SEED + (role == "surrogate-b")
        split["surrogate_split"] = (f"a seeded {CXR_SURROGATE_FRACTION:.0%} of the training "
                                    f"patients per diagnosis (seed {seed})")
    return split


MEAN, STD = (0.485,) * 3, (0.246,) * 3  # the training images' grey mean and spread


def _common(args: argparse.Namespace) -> dict[str, Any]:
    from .train import augment_grey_batch

    return dict(size=args.size, weight_decay=args.weight_decay, batch_size=args.batch_size,
                warmup_epochs=args.warmup_epochs, augment=augment_grey_batch, mean=MEAN,
                std=STD, n_classes=2)


def train_base(data: Any, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared base network's weights, and what the cards say of it."""
    from .cxr_data import CXR_BASE_SEED
    from .train import train_one

    ids = data.ids("base")
    net, seconds = train_one("cxr_base", data.images(ids), data.labels(ids), arch=ARCH,
                             epochs=args.base_epochs, seed=CXR_BASE_SEED, lr=args.lr,
                             **_common(args))
    about = {"base": f"{ARCH} trained from scratch for {args.base_epochs} epochs (lr "
                     f"{args.lr}, seed {CXR_BASE_SEED}) on {len(ids)} images of "
                     f"{len(data.patients['base'])} training patients (a seeded half, "
                     f"split seed {CXR_BASE_SEED}); not shipped, rebuilt by "
                     "python -m workbench.training.cxr_models",
             "base_seconds": round(seconds, 1)}
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, about


def train_and_ship(data: Any, name: str, role: str, arch: str, seed: int, part: str,
                   args: argparse.Namespace, init: dict[str, Any] | None = None,
                   init_about: dict[str, Any] | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from ..models.card import ModelCard
    from ..models.classifier import load_classifier
    from .cxr_data import CXR_CLASSES, CXR_LICENCE, CXR_POSITIVE
    from .metrics import auroc_interval, evaluate
    from .train import train_one

    mean, std = MEAN, STD
    ids = data.ids(part)
    which = ("the training patients" if role == "victim"
             else "another patient split of the training patients")
    epochs = 12 if init is None else args.epochs
    lr = args.lr if init is None else args.fine_tune_lr
    net, seconds = train_one(name, data.images(ids), data.labels(ids), arch=arch,
                             epochs=epochs, seed=seed, lr=lr, init=init, **_common(args))
    weights = args.out / f"{name}.pt"
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, weights)
    card = ModelCard(
        name=name, architecture=arch, weights=weights.name,
        input_size=(args.size, args.size), mean=mean, std=std, channel_order="RGB",
        class_names=CXR_CLASSES, positive_class=CXR_POSITIVE,
        training_data=(f"{data.description()}; licence {CXR_LICENCE}. Trained on "
                       f"{len(ids)} images of {len(data.patients[part])} patients "
                       f"({which})."),
        split=split_record(data, name, role, part), fits=CHEST_XRAY,
        notes=(f"Demo {role} for adversarial-attack experiments on chest X-rays. {arch} "
               + ("trained from scratch (no pretrained weights)" if init is None else
                  "fine-tuned from a shared base network trained here from scratch "
                  "(no downloaded weights): the victim and the attacker's surrogate "
                  "start from the same public weights, as Finlayson et al.'s both "
                  "started from ImageNet's")
               + " on a CPU. Input: one grey "
               "channel, repeated to the network's three by the wrapper; MONOCHROME1 "
               "images are inverted to display polarity first. The test patients were "
               "not used for any choice of training setting. Paediatric images from one "
               "centre: not validated on adults or other hospitals. Not a medical "
               "device; NOT for clinical use or any diagnostic decision."))
    card_path = args.out / f"{name}.json"
    card.save(card_path)
    test = data.ids("test")
    m = evaluate(load_classifier(card_path), data.images(test), data.labels(test))
    scores = m.pop("probabilities")
    patient_of = {s.image_id: s.patient for s in data.samples}
    positive = (np.asarray(data.labels(test)) == CXR_CLASSES.index(CXR_POSITIVE)).astype(int)
    lo, hi = auroc_interval(np.asarray(scores), positive, [patient_of[i] for i in test])
    m.update({
        "auroc_95ci": [round(lo, 4), round(hi, 4)],
        "auroc_95ci_method": "percentile bootstrap over test patients, 2000 resamples",
        "n_test_patients": len(data.patients["test"]),
        "evaluation": "OpenCV grey decode of the 227x227 JPEG, uint8 -> [0, 1] float, one "
                      "channel through the Classifier wrapper (antialiased bilinear resize "
                      "to input_size, grey repeated to 3 channels, the card's mean/std), "
                      "argmax for accuracy, softmax viral_pneumonia probability for AUROC",
        "train_seconds": round(seconds, 1), "epochs": epochs, "train_images": len(ids),
        "init_seed": seed, "init": init_about or {"base": "none: random weights"},
        "hyperparameters": {
            "optimizer": "AdamW", "lr": lr, "weight_decay": args.weight_decay,
            "schedule": f"linear warm-up {args.warmup_epochs} epoch(s), cosine to 0",
            "batch_size": args.batch_size, "label_smoothing": 0.1,
            "augmentation": "random resized crop 75-100% area, aspect 0.9-1.1, rotation "
                            "+/-7 deg, shift +/-4%, brightness/contrast +/-15%, gamma "
                            "0.82-1.22; no flips",
            "threads": args.threads},
    })
    card.metrics = m
    card.save(card_path)
    print(f"[{name}] test accuracy {m['accuracy']:.3f}  AUROC {m['auroc']:.3f} "
          f"(95% CI {lo:.3f}-{hi:.3f}, {m['n_test']} images of "
          f"{m['n_test_patients']} patients)  trained in {seconds:.0f} s  weights "
          f"{weights.stat().st_size / 1e6:.1f} MB", flush=True)
    return m


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from .cxr_data import cxr_folder, load_cxr_data

    folder = cxr_folder(args.data)
    if not (folder / "labels.csv").is_file():
        print(f"cxr_models: chest X-ray data not found: {folder} (pass --data)",
              file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_cxr_data(folder)
    start = time.perf_counter()
    init, about = (None, None) if args.from_scratch else train_base(data, args)
    for name, role, seed, part in MODELS:
        arch = ARCH
        if role == "surrogate":
            arch = args.surrogate_arch or ("shufflenet_v2_x1_0" if args.from_scratch else ARCH)
        if args.only in ("both", role):
            train_and_ship(data, name, role, arch, seed, part, args,
                           init=None if arch != ARCH else init, init_about=about)
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
