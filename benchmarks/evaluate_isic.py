"""The full evaluation: the demo model and its surrogate over all ISIC test images, with
Finlayson et al.'s settings (224 x 224 inputs; PGD L-inf 0.02 on their [-1, 1] scale, which is
0.01 in the workbench's [0, 1] image space; 20 iterations, no early
stop; a universal patch; a natural patch) and Du-Harpur et al.'s colour-balance and
rotation/translation attacks, plus the detectors. Prints the Markdown summary (Table 1
beside the papers' figures) and the wall time.

    python benchmarks/evaluate_isic.py [--out RUN_DIR] [--engine ray] [--three-pixel]

Resumable like any evaluation: run it again with the same --out to continue. With --peer,
it also times the same clean+PGD subset on the in-process and the Ray engines (a ratio,
same machine, same run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.cli.plumbing import ProgressBar  # noqa: E402
from workbench.evaluation.runner import EvalSpec, evaluate  # noqa: E402
from workbench.evaluation.summary import markdown  # noqa: E402

ISIC = ROOT.parent / "shared" / "data" / "dermoscopy" / "isic"
ATTACKS = [
    {"name": "pgd", "params": {"eps": 0.01, "steps": 20, "early_stop": False}},  # 0.02 on [-1, 1]
    {"name": "universal-patch", "params": {}},
    {"name": "natural-patch", "params": {}},
    {"name": "colour-balance", "params": {}},
    {"name": "rotation-translation", "params": {}},
]
DETECTORS = [{"name": n, "params": {}} for n in
             ("feature-squeezing", "transform-instability", "noise-residual",
              "patch-localisation")]


def spec(out: str, engine: str, attacks: list, detectors: list, limit: int | None = None
         ) -> EvalSpec:
    return EvalSpec(model="demo", surrogate="demo-surrogate", data=str(ISIC), out=out,
                    attacks=attacks, detectors=detectors, image_size=224, batch_size=8,
                    split="test", limit=limit, engine=engine, workers=2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "runs" / "isic_table1"))
    p.add_argument("--engine", default="inprocess", choices=("inprocess", "ray"))
    p.add_argument("--three-pixel", action="store_true",
                   help="add the three-pixel attack (about 7,000 model calls per image)")
    p.add_argument("--peer", action="store_true",
                   help="also time in-process vs Ray on a clean+PGD subset")
    args = p.parse_args()
    attacks = ATTACKS + ([{"name": "three-pixel", "params": {}}] if args.three_pixel else [])
    start = time.perf_counter()
    summary = evaluate(spec(args.out, args.engine, attacks, DETECTORS),
                       progress=ProgressBar("evaluate").update)
    print(markdown(summary))
    print(f"wall time {time.perf_counter() - start:.0f} s (engine {args.engine}; "
          f"resumed runs count only this session); results in {args.out}")
    if args.peer:
        times = {}
        for engine in ("inprocess", "ray"):
            tmp = tempfile.mkdtemp()
            t = time.perf_counter()
            evaluate(spec(tmp, engine, ATTACKS[:1], [], limit=8))
            times[engine] = time.perf_counter() - t
            shutil.rmtree(tmp)
        print(f"clean+PGD on 16 images: in-process {times['inprocess']:.1f} s, Ray "
              f"{times['ray']:.1f} s, ratio ray/in-process "
              f"{times['ray'] / times['inprocess']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
