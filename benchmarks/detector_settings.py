"""What a cheaper detector setting costs in detection power: for each (detector, params)
candidate, its time per image as a ratio to one forward pass of the model (the peer, in
the same run), and how well its score separates clean images from attacked copies, for
each attack asked for (AUROC: threshold-free, so no recalibration is needed to compare
settings; 0.5 = chance).

The images: the demo card's test split (never used to calibrate), each clean and as an
attacked copy saved as the GUI saves it (full-size PNG) and read back. The attacks:
white-box PGD (eps 0.01 in [0, 1], 20 steps, as benchmarks/verdict_rates.py makes it);
universal-patch, a patch learned on the card's training images (the plugin's defaults:
300 steps, target melanoma) pasted by apply-patch at scale 0.4 and a seeded random place
and angle; natural-patch, the seed's control, pasted the same way: the plugin's disc cut
from the training image the model finds most melanoma-like; and the seed's black-box
searches at their defaults (colour-balance, rotation-translation, three-pixel). The
defaults come first in each group. Use it before changing a shipped default: a new default needs new
shipped calibrations (python -m workbench.training.calibrate).

Run: python3 benchmarks/detector_settings.py [--limit N] [--attacks pgd,universal-patch,...]
[--detectors feature-squeezing,...] [--patch-file a universal patch PNG saved earlier]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ISIC = REPO.parent / "shared" / "data" / "dermoscopy" / "isic"
# the shipped calibrations, and learned patches kept out of this machine's user's folder
os.environ.setdefault("WORKBENCH_HOME", str(REPO / ".bench_home"))

# The defaults first in each group, then the defaults they replaced (feature-squeezing and
# transform-instability at 512 px, transform-instability's 16 variants, patch-localisation
# at half the occluder's step).
CANDIDATES: list[tuple[str, dict]] = [
    ("feature-squeezing", {}),
    ("feature-squeezing", {"working_size": 384}),
    ("feature-squeezing", {"working_size": 512}),
    ("transform-instability", {}),
    ("transform-instability", {"working_size": 384}),
    ("transform-instability", {"working_size": 512}),
    ("transform-instability", {"variants": 16}),
    ("patch-localisation", {}),
    ("patch-localisation", {"stride": 0.5}),
    ("patch-localisation", {"stride": 1.0}),
    ("patch-localisation", {"working_size": 160}),
    # the seed's pasted patch size: a better score against a learned patch, but the
    # evidence peak leaves the patch (tests/test_detectors.py::test_patch_localisation_*)
    ("patch-localisation", {"size": 0.4}),
]

ATTACKS = ("pgd", "universal-patch", "natural-patch", "colour-balance",
           "rotation-translation", "three-pixel")
PATCH_TRAINING = {"steps": 300, "batch": 16, "target_class": 1}  # the plugin's defaults


def separation(clean: list[float], attacked: list[float]) -> float:
    """AUROC of the scores, the attacked copies as positives (the evaluator's own)."""
    from workbench.evaluation.metrics import auroc

    return auroc([*clean, *attacked], [False] * len(clean) + [True] * len(attacked))


def training_batch(test_ids: list[str]) -> object:
    """The card's training images (not its test split) as one N x 3 x 160 x 160 batch in
    [0, 1], what the patch plugins learn or cut their patch from."""
    import cv2
    import numpy as np
    import torch

    from workbench.training.data import isic_folder, read_samples

    test = set(test_ids)
    images = []
    for sample in read_samples(isic_folder(REPO.parent / "shared" / "data")):
        if sample.isic_id not in test:
            bgr = cv2.resize(cv2.imread(str(sample.path)), (160, 160),
                             interpolation=cv2.INTER_AREA)
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def patch_file(plugin: str, model: object, registry: object, test_ids: list[str]) -> Path:
    """The patch PNG that ``plugin`` (universal-patch at PATCH_TRAINING, or natural-patch,
    the seed's control) saves when run on the card's training images."""
    from workbench.engine.attack_runner import run_attack

    x = training_batch(test_ids)
    t = time.perf_counter()
    params = PATCH_TRAINING if plugin == "universal-patch" else {}
    out = run_attack(registry.create(plugin), model, x, params=params)
    print(f"{plugin}: patch made from {x.shape[0]} training images in "
          f"{time.perf_counter() - t:.0f} s")
    return Path(out.artifacts["patch_path"])


def main() -> None:
    import torch
    from timing import PGD_PAPER, demo_test_split, save_attacked_copy

    from workbench.engine.detector_runner import run_detector
    from workbench.imaging import load_image
    from workbench.imaging.model_input import to_model_input
    from workbench.models.classifier import predict_proba
    from workbench.session import Study

    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N test images")
    ap.add_argument("--attacks", default="pgd", help=f"comma-separated, of {', '.join(ATTACKS)}")
    ap.add_argument("--detectors", default="", help="comma-separated; default: all candidates")
    ap.add_argument("--patch-file", type=Path,
                    help="universal-patch: paste this saved patch instead of learning one")
    args = ap.parse_args()
    attacks = [a for a in args.attacks.split(",") if a]
    unknown = set(attacks) - set(ATTACKS)
    if unknown:
        raise SystemExit(f"unknown attack(s) {sorted(unknown)}: choose from {ATTACKS}")
    wanted = set(filter(None, args.detectors.split(",")))
    candidates = [c for c in CANDIDATES if not wanted or c[0] in wanted]
    ids, model, registry = demo_test_split(args.limit)
    labels = ["clean", *attacks]
    scores = {i: {label: [] for label in labels} for i in range(len(candidates))}
    seconds: dict[int, list[float]] = {i: [] for i in range(len(candidates))}
    forwards: list[float] = []
    predicted: dict[str, list[int]] = {label: [] for label in labels}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        params = {a: {} for a in attacks}
        params["pgd"] = PGD_PAPER
        plugins = {a: registry.create(a) for a in attacks}
        for a in ("universal-patch", "natural-patch"):
            if a in attacks:
                patch = ((args.patch_file if a == "universal-patch" else None)
                         or patch_file(a, model, registry, ids))
                params[a] = {"patch_file": str(patch), "placement": "random"}
                plugins[a] = registry.create("apply-patch")
        for k, isic_id in enumerate(ids):
            path = ISIC / "images" / f"{isic_id}.jpg"
            images = {"clean": load_image(path)}
            for a in attacks:
                session = Study().open(path)
                session.image = images["clean"]
                saved = save_attacked_copy(session, plugins[a], model, params[a],
                                           Path(tmp) / f"{isic_id}_{a}.png")
                images[a] = load_image(saved)
            for label, image in images.items():
                x, _ = to_model_input(image, 0)
                t = time.perf_counter()
                probs = predict_proba(model, torch.from_numpy(x)[None])[0]
                forwards.append(time.perf_counter() - t)
                predicted[label].append(int(probs.argmax()))
                for i, (name, p) in enumerate(candidates):
                    t = time.perf_counter()
                    out = run_detector(registry.create(name), image, p, model=model)
                    seconds[i].append(time.perf_counter() - t)
                    scores[i][label].append(float(out.score))
            print(f"{k + 1}/{len(ids)} {isic_id} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    forward = statistics.median(forwards)
    print(f"\n{len(ids)} test images, clean and attacked ({', '.join(attacks)}), demo "
          f"model; one forward pass (classify) {forward * 1000:.1f} ms, median")
    print(f"  {'detector':<24}{'params':<30}{'time':>9}{'ratio':>8}"
          + "".join(f"{a[:12]:>13}" for a in attacks))
    for i, (name, p) in enumerate(candidates):
        t = statistics.median(seconds[i])
        shown = ", ".join(f"{k}={v}" for k, v in p.items()) or "defaults"
        print(f"  {name:<24}{shown:<30}{t * 1000:7.1f} ms{t / forward:7.1f}x"
              + "".join(f"{separation(scores[i]['clean'], scores[i][a]):13.3f}"
                        for a in attacks))
    print("  (columns after the ratio: AUROC, clean against that attack)")
    for a in attacks:  # a detector cannot see an attack that did nothing
        changed = sum(c != p for c, p in zip(predicted["clean"], predicted[a], strict=True))
        melanoma = sum(p == 1 for p in predicted[a])
        print(f"  {a}: the saved copy's class differs from the clean image's on {changed}/"
              f"{len(ids)}; melanoma on {melanoma}/{len(ids)} "
              f"(clean: {sum(p == 1 for p in predicted['clean'])}/{len(ids)})")


if __name__ == "__main__":
    main()
