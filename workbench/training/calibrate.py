"""The shipped detector calibrations of the demo model (resources/calibration): each
calibratable detector's threshold at a 5% false-positive rate, measured on the card's
training images, never its test split, so that a fresh install gives calibrated
verdicts and the test split stays free to measure them.

Run: python -m workbench.training.calibrate [--model demo|cxr] [--data ../shared/data]
[--fpr 0.05]

The chest X-ray model's card has a validation split of its own (patients in neither its
training nor its test split): its calibrations are made on those images and go to
``resources/calibration/<card name>``.

Paths in the files are relative to the data folder (the images' pixel SHA-256 say which
images they were, wherever the data lives).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..engine.calibration import calibrate, save_calibration, shipped_calibration_dir
from ..engine.plugins import PluginRegistry
from ..models.card import ModelCard
from ..models.zoo import load_model, resolve_card
from .data import isic_folder, read_samples

REPO = Path(__file__).resolve().parents[2]


def training_images(data: Path, model: str = "demo") -> list[Path]:
    """The images of ``model``'s card that are not in its test split (its validation
    split, when the card has one)."""
    card = ModelCard.load(resolve_card(model))
    if card.split.get("validation_ids"):
        from .cxr_data import cxr_folder, read_cxr_samples

        wanted = set(card.split["validation_ids"])
        return [s.path for s in read_cxr_samples(cxr_folder(data)) if s.image_id in wanted]
    test = set(card.split.get("test_ids", []))
    if not test:
        raise SystemExit(f"{card.name}: the card lists no test split; cannot keep it out")
    return [s.path for s in read_samples(isic_folder(data)) if s.isic_id not in test]


def _relative(entries: list[dict[str, str]], data: Path) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        p = Path(e["path"])
        out.append({**e, "path": str(p.relative_to(data)) if p.is_relative_to(data) else str(p)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--model", default="demo", help="demo or cxr (a named model)")
    ap.add_argument("--out", type=Path, help="default: resources/calibration, or its "
                    "<card name> folder for a model other than demo")
    ap.add_argument("--fpr", type=float, default=0.05)
    ap.add_argument("--detector", action="append", help="only these (default: all)")
    args = ap.parse_args(argv)
    data = args.data.resolve()
    images = training_images(data, args.model)
    model = load_model(args.model)
    out = args.out or (shipped_calibration_dir() if args.model == "demo"
                       else shipped_calibration_dir() / model.card.name)
    for info in PluginRegistry().detectors():
        if not (info.ok and info.calibratable) or (args.detector and
                                                   info.name not in args.detector):
            continue
        start = time.perf_counter()
        cal = calibrate(info, {}, images, model=model, fpr=args.fpr, save=False)
        cal.fingerprints = _relative(cal.fingerprints, data)
        cal.skipped = _relative(cal.skipped, data)
        path = save_calibration(cal, out)
        print(f"{info.name}: threshold {cal.threshold:.6g} at {cal.fpr:.0%} FPR on {cal.n} "
              f"clean images ({len(cal.skipped)} skipped), {time.perf_counter() - start:.0f}"
              f" s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
