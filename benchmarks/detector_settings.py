"""What a cheaper detector setting costs in detection power: for each (detector, params)
candidate, its time per image as a ratio to one forward pass of the model (the peer, in
the same run), and how well its score separates clean images from white-box PGD copies
(AUROC: threshold-free, so no recalibration is needed to compare settings; 0.5 = chance).

The images: the demo card's test split (never used to calibrate), each clean and as a PGD
copy (eps 0.01 in [0, 1], 20 steps, as benchmarks/verdict_rates.py makes them) saved as
the GUI saves it (full-size PNG) and read back. The defaults come first in each group.
Use it before changing a shipped default: a new default needs new shipped calibrations
(python -m workbench.training.calibrate) and a version bump.

Run: python3 benchmarks/detector_settings.py [--limit N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ISIC = REPO.parent / "shared" / "data" / "dermoscopy" / "isic"

CANDIDATES: list[tuple[str, dict]] = [
    ("feature-squeezing", {}),
    ("feature-squeezing", {"working_size": 384}),
    ("feature-squeezing", {"working_size": 320}),
    ("transform-instability", {}),
    ("transform-instability", {"working_size": 384}),
    ("transform-instability", {"working_size": 320}),
]


def auroc(negatives: list[float], positives: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half (Mann-Whitney U / n1 n2)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def main() -> None:
    import torch
    from timing import demo_test_split, save_pgd_copy

    from workbench.engine.detector_runner import run_detector
    from workbench.imaging import load_image
    from workbench.imaging.model_input import to_model_input
    from workbench.models.classifier import predict_proba
    from workbench.session import Study

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N test images")
    args = ap.parse_args()
    ids, model, registry = demo_test_split(args.limit)
    pgd = registry.create("pgd")
    scores: dict[int, dict[str, list[float]]] = {i: {"clean": [], "pgd": []}
                                                 for i in range(len(CANDIDATES))}
    seconds: dict[int, list[float]] = {i: [] for i in range(len(CANDIDATES))}
    forwards: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, isic_id in enumerate(ids):
            path = ISIC / "images" / f"{isic_id}.jpg"
            session = Study().open(path)
            session.image = clean = load_image(path)
            saved = save_pgd_copy(session, pgd, model, Path(tmp) / f"{isic_id}_pgd.png")
            adversarial = load_image(saved)
            for label, image in (("clean", clean), ("pgd", adversarial)):
                x, _ = to_model_input(image, 0)
                t = time.perf_counter()
                predict_proba(model, torch.from_numpy(x)[None])
                forwards.append(time.perf_counter() - t)
                for i, (name, params) in enumerate(CANDIDATES):
                    t = time.perf_counter()
                    out = run_detector(registry.create(name), image, params, model=model)
                    seconds[i].append(time.perf_counter() - t)
                    scores[i][label].append(float(out.score))
            print(f"{k + 1}/{len(ids)} {isic_id} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    forward = statistics.median(forwards)
    print(f"\n{len(ids)} test images, clean and PGD (eps 0.01, 20 steps), demo model; "
          f"one forward pass (classify) {forward * 1000:.1f} ms, median")
    print(f"  {'detector':<24}{'params':<22}{'time':>9}{'ratio':>8}{'AUROC':>8}")
    for i, (name, params) in enumerate(CANDIDATES):
        t = statistics.median(seconds[i])
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(f"  {name:<24}{shown:<22}{t * 1000:7.1f} ms{t / forward:7.1f}x"
              f"{auroc(scores[i]['clean'], scores[i]['pgd']):8.3f}")


if __name__ == "__main__":
    main()
