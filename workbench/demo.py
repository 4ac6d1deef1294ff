"""The built-in demo study: real images only, nothing downloaded.

pydicom's wheel ships real DICOM files; when the project's shared test data sits beside
the checkout we add real dermoscopy photos, the chest CR, and two held-out paediatric
chest X-rays (one normal, one viral pneumonia) for the chest model. Without it, a synthetic
dermoscopy-like image is generated and labelled SYNTHETIC in its name and its pixels,
so nobody mistakes it for a patient image.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .home import cache_dir

PYDICOM_DEMO_FILES = (
    "CT_small.dcm",  # CT, HU rescale
    "MR_small.dcm",  # MR with a window in the file
    "JPEG2000.dcm",  # JPEG 2000 compressed
    "MR_small_RLE.dcm",  # RLE compressed
    "examples_ybr_color.dcm",  # 30-frame ultrasound, YBR colour
)
SYNTHETIC_NAME = "SYNTHETIC-demo-lesion.png"


def shared_data_dir() -> Path | None:
    """``$WORKBENCH_SHARED_DATA``, else ``../shared/data`` beside the checkout, if present."""
    env = os.environ.get("WORKBENCH_SHARED_DATA")
    if env:  # an explicit choice wins, even when it points nowhere (no fallback)
        return Path(env) if Path(env).is_dir() else None
    repo_root = Path(__file__).resolve().parents[1]
    candidates = [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def pydicom_demo_files() -> list[Path]:
    from pydicom.data import get_testdata_file

    out = []
    for name in PYDICOM_DEMO_FILES:
        path = get_testdata_file(name, download=False)
        if path:
            out.append(Path(path))
    return out


def shared_demo_files(data: Path, per_class: int = 2) -> list[Path]:
    """A few dermoscopy photos of each class and the chest CR from the shared data."""
    out: list[Path] = []
    labels = data / "dermoscopy" / "isic" / "labels.csv"
    if labels.is_file():
        taken: dict[str, int] = {}
        with labels.open(newline="") as fh:
            for row in csv.DictReader(fh):
                cls = row.get("diagnosis", "")
                if taken.get(cls, 0) < per_class:
                    path = labels.parent / row["image"]
                    if path.is_file():
                        out.append(path)
                        taken[cls] = taken.get(cls, 0) + 1
    chest = data / "dicom" / "pydicom-data" / "RG1_J2KR.dcm"
    if chest.is_file():
        out.append(chest)
    out += _held_out_chest_xrays(data)
    return out


def _held_out_chest_xrays(data: Path) -> list[Path]:
    """One normal and one viral-pneumonia chest X-ray of the chest model's test patients
    (never one it was trained on), when the data and the model are both at hand."""
    import json

    labels = data / "cxr-pneumonia" / "labels.csv"
    card = Path(__file__).resolve().parents[1] / "resources" / "models" / "cxr_pneumonia.json"
    if not (labels.is_file() and card.is_file()):
        return []
    try:
        test = set(json.loads(card.read_text())["split"]["test_ids"])
    except (OSError, ValueError, KeyError):
        return []
    out: list[Path] = []
    taken: set[str] = set()
    with labels.open(newline="") as fh:
        for row in csv.DictReader(fh):
            path = labels.parent / row["image"]
            if row["label"] not in taken and path.stem in test and path.is_file():
                out.append(path)
                taken.add(row["label"])
    return out


def synthetic_dermoscopy_image(path: Path | None = None, size: int = 768, seed: int = 7) -> Path:
    """Write a dermoscopy-like picture (skin, a pigmented lesion with an irregular border,
    the dark circular rim of a contact dermoscope) with 'SYNTHETIC' burned in."""
    import cv2

    path = path or cache_dir() / SYNTHETIC_NAME
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2.0
    skin = np.array([214, 170, 150], np.float32)  # RGB
    img = skin + rng.normal(0, 4, (size, size, 3)).astype(np.float32)
    angle = np.arctan2(yy - c, xx - c)
    radius = np.hypot(yy - c, xx - c)
    border = size * 0.22 * (1 + 0.12 * np.sin(3 * angle) + 0.07 * np.sin(7 * angle + 1.0))
    inside = np.clip((border - radius) / (size * 0.03), 0, 1)[..., None]
    depth = np.clip(1 - radius / border, 0, 1)[..., None]
    lesion = np.array([110, 70, 50], np.float32) - 40 * depth
    blotches = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 9)
    lesion = lesion + 120 * blotches[..., None]
    img = img * (1 - inside) + lesion * inside
    rim = np.clip((radius - size * 0.47) / (size * 0.03), 0, 1)[..., None]
    img = img * (1 - rim)
    img = np.clip(img, 0, 255).astype(np.uint8)
    bgr = np.ascontiguousarray(img[..., ::-1])
    cv2.putText(bgr, "SYNTHETIC - not a patient image", (int(size * 0.08), int(size * 0.95)),
                cv2.FONT_HERSHEY_SIMPLEX, size / 1100, (255, 255, 255), 2, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"cannot write {path}")
    return path


def demo_files() -> list[Path]:
    """The files the demo opens: real DICOM always, real photos when the shared data is
    beside the checkout, else the labelled synthetic photo."""
    files = pydicom_demo_files()
    data = shared_data_dir()
    shared = shared_demo_files(data) if data else []
    if not any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in shared):
        shared.insert(0, synthetic_dermoscopy_image())
    return shared + files
