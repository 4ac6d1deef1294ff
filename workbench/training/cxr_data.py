"""The chest X-ray models' images: the Kermany et al. paediatric chest X-rays in
``../shared/data/cxr-pneumonia`` (normal / viral pneumonia), split by patient, never by
image: several images of one child would otherwise sit on both sides of the split and
make the held-out numbers a measure of recognising patients.

The split is seeded and stratified by diagnosis at the patient level (every patient has
one diagnosis here): 70 % of the patients train, 10 % validate (the detectors'
calibrations are made on these, never on the test patients), 20 % test. The surrogate
for black-box attacks trains on another patient split of the training patients: a
seeded 70 % of them, drawn with another seed, so the two models share some patients and
neither sees a validation or test patient. Both start from one base network trained
first on a seeded half of the training patients (seed 3): see ``cxr_models``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CXR_CLASSES: tuple[str, str] = ("normal", "viral_pneumonia")
CXR_POSITIVE = "viral_pneumonia"
CXR_LICENCE = "CC BY 4.0"
CXR_ATTRIBUTION = ("Kermany D, Zhang K, Goldbaum M. Labeled Optical Coherence Tomography "
                   "(OCT) and Chest X-Ray Images for Classification. Mendeley Data, v2, "
                   "2018, doi:10.17632/rscbjbr9sj.2 (CC BY 4.0); Kermany et al., Cell "
                   "172(5), 2018")
CXR_SPLIT_SEED = 0
CXR_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
CXR_SURROGATE_SEED = 1
CXR_SURROGATE_FRACTION = 0.7
CXR_BASE_SEED = 3
CXR_BASE_FRACTION = 0.5


@dataclass(frozen=True)
class CxrSample:
    image_id: str  # the file's stem, as the dataset names it
    path: Path
    label: int  # index into CXR_CLASSES
    patient: str


def cxr_folder(data: Path) -> Path:
    """The data set folder: ``data`` itself if it holds labels.csv, else data/cxr-pneumonia."""
    return data if (data / "labels.csv").is_file() else data / "cxr-pneumonia"


def read_cxr_samples(folder: Path) -> list[CxrSample]:
    """Every row of labels.csv, sorted by image id."""
    out = []
    with (folder / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["label"] in CXR_CLASSES:
                path = folder / row["image"]
                out.append(CxrSample(path.stem, path, CXR_CLASSES.index(row["label"]),
                                     row["patient_id"]))
    return sorted(out, key=lambda s: s.image_id)


def patient_split(samples: list[CxrSample], fractions: dict[str, float], seed: int
                  ) -> dict[str, list[str]]:
    """Patients (sorted ids, a seeded per-diagnosis permutation) cut into the named parts
    in order; returns each part's patient ids, sorted."""
    rng = np.random.default_rng(seed)
    label_of = {s.patient: s.label for s in samples}
    parts: dict[str, list[str]] = {name: [] for name in fractions}
    for label in range(len(CXR_CLASSES)):
        patients = sorted(p for p, lab in label_of.items() if lab == label)
        order = [patients[i] for i in rng.permutation(len(patients))]
        start = 0
        names = list(fractions)
        for k, name in enumerate(names):
            end = len(order) if k == len(names) - 1 else start + round(
                fractions[name] * len(order))
            parts[name] += order[start:end]
            start = end
    return {name: sorted(ids) for name, ids in parts.items()}


def load_grey(path: Path) -> np.ndarray:
    """H x W uint8: the JPEGs are stored as RGB with three equal channels."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise OSError(f"{path}: OpenCV cannot decode this image")
    return grey


@dataclass
class CxrData:
    """Every image decoded once, and the patient lists of the split."""

    folder: Path
    samples: list[CxrSample]
    patients: dict[str, list[str]]  # train / validation / test / surrogate
    grey: dict[str, np.ndarray]

    def ids(self, part: str) -> list[str]:
        wanted = set(self.patients[part])
        return [s.image_id for s in self.samples if s.patient in wanted]

    def images(self, ids: list[str]) -> list[np.ndarray]:
        return [self.grey[i] for i in ids]

    def labels(self, ids: list[str]) -> list[int]:
        by_id = {s.image_id: s for s in self.samples}
        return [by_id[i].label for i in ids]

    def description(self) -> str:
        n_pos = sum(s.label == 1 for s in self.samples)
        return (f"paediatric chest X-rays from ../shared/data/cxr-pneumonia ({len(self.samples)}"
                f" images of {len({s.patient for s in self.samples})} patients: {n_pos} viral "
                f"pneumonia, {len(self.samples) - n_pos} normal; 227x227 JPEG), "
                f"{CXR_ATTRIBUTION}")


def load_cxr_data(folder: Path) -> CxrData:
    samples = read_cxr_samples(folder)
    patients = patient_split(samples, CXR_FRACTIONS, CXR_SPLIT_SEED)
    train = set(patients["train"])
    surrogate = patient_split([s for s in samples if s.patient in train],
                              {"surrogate": CXR_SURROGATE_FRACTION,
                               "rest": 1 - CXR_SURROGATE_FRACTION}, CXR_SURROGATE_SEED)
    patients["surrogate"] = surrogate["surrogate"]
    # the shared base network's patients: half of the training patients (another seed)
    base = patient_split([s for s in samples if s.patient in train],
                         {"base": CXR_BASE_FRACTION, "rest": 1 - CXR_BASE_FRACTION},
                         CXR_BASE_SEED)
    patients["base"] = base["base"]
    t0 = time.perf_counter()
    grey = {s.image_id: load_grey(s.path) for s in samples}
    data = CxrData(folder, samples, patients, grey)
    print(f"loaded {len(grey)} chest X-rays from {folder} in {time.perf_counter() - t0:.1f} s "
          + ", ".join(f"{k} {len(data.ids(k))} images / {len(v)} patients"
                      for k, v in patients.items()), flush=True)
    return data
