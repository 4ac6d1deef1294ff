"""How often the case verdict calls a clean image suspicious, and how often it catches a
PGD copy, on a fresh install (the shipped calibrations, no calibration step): the demo
card's test split (never used to calibrate), each image clean and as a white-box PGD copy
(eps 0.01 in [0, 1], which is 0.02 on the seed's [-1, 1] scale, 20 steps: Finlayson et al.'s
settings) saved as the GUI saves it (full-size PNG).

Run: python3 benchmarks/verdict_rates.py [--limit N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ISIC = REPO.parent / "shared" / "data" / "dermoscopy" / "isic"


def main() -> None:
    from timing import demo_test_split, save_pgd_copy

    from workbench.engine.case_verdict import SUSPICIOUS
    from workbench.session import Study
    from workbench.session.review import review

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N test images")
    args = ap.parse_args()
    ids, model, registry = demo_test_split(args.limit)
    detectors = [p for p in registry.detectors() if p.ok]
    pgd = registry.create("pgd")
    clean_hits = adv_hits = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, isic_id in enumerate(ids):
            study = Study()
            s, verdict = review(ISIC / "images" / f"{isic_id}.jpg", model=model,
                                detectors=detectors, study=study)
            clean_hits += verdict.verdict == SUSPICIOUS
            out = save_pgd_copy(s, pgd, model, Path(tmp) / f"{isic_id}_pgd.png")
            _, adv = review(out, model=model, detectors=detectors, study=study)
            adv_hits += adv.verdict == SUSPICIOUS
            print(f"{i + 1}/{len(ids)} {isic_id}: clean {verdict.verdict}, PGD {adv.verdict} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    n = len(ids)
    print(f"clean test images called suspicious: {clean_hits}/{n} = {clean_hits / n:.1%} "
          "(case thresholds: the detectors together flag at most 5% of the clean "
          "calibration images, the card's training split)")
    print(f"PGD copies called suspicious: {adv_hits}/{n} = {adv_hits / n:.1%}")


if __name__ == "__main__":
    main()
