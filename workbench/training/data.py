"""The demo models' images: the ISIC melanoma / nevus photographs, their fixed seeded
split, and the one preprocessing (OpenCV decode, INTER_AREA shrink) that training,
the cards' metrics and the tests share."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES: tuple[str, str] = ("nevus", "melanoma")
POSITIVE_CLASS = "melanoma"
EVAL_SHORT_SIDE = 256
SPLIT_SEED = 0
TRAIN_FRACTION = 0.7
SURROGATE_DATA_SEED = 1
ISIC_LICENCE = "CC0 1.0"


@dataclass(frozen=True)
class Sample:
    isic_id: str
    path: Path
    label: int  # index into CLASS_NAMES


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


@dataclass
class DemoData:
    """Every image decoded once, and the three id lists the two models use."""

    folder: Path
    samples: list[Sample]
    train_ids: list[str]
    test_ids: list[str]
    surrogate_ids: list[str]  # a seeded stratified half of train_ids
    rgb: dict[str, np.ndarray]

    def images(self, ids: list[str]) -> list[np.ndarray]:
        return [self.rgb[i] for i in ids]

    def labels(self, ids: list[str]) -> list[int]:
        by_id = {s.isic_id: s for s in self.samples}
        return [by_id[i].label for i in ids]

    def description(self) -> str:
        """The cards' training-data line."""
        n_mel = sum(s.label == 1 for s in self.samples)
        return (f"ISIC Archive dermoscopy photographs from ../shared/data/dermoscopy/isic "
                f"({len(self.samples)} images: {n_mel} melanoma, "
                f"{len(self.samples) - n_mel} nevus; melanoma histopathology-confirmed), "
                f"licence {ISIC_LICENCE}")


def load_demo_data(isic: Path) -> DemoData:
    """Read labels.csv, split it, decode every image (printing how long that took)."""
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
    return DemoData(isic, samples, train_ids, test_ids, surrogate_ids, rgb)
