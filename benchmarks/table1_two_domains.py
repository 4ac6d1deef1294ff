"""Finlayson et al.'s Table 1 in two domains: the dermoscopy demo (ISIC) and the chest
X-ray model (Kermany et al. paediatric chest X-rays), each on its card's held-out test
split, with the seed's settings (224 x 224 inputs; PGD L-inf 0.02 on the seed's [-1, 1]
scale, i.e. 0.01 in the workbench's [0, 1] image space, 20 iterations, no early stop; a
universal patch learned on the training split, white and black box; a natural patch),
and the black-box rows of both transfer methods: plain PGD on the surrogate (the seed's
"PGD - Black Box", condition pgd/black) and MI-DI-TI-FGSM (mi-di-fgsm/transfer).

    python benchmarks/table1_two_domains.py [--domain both|dermoscopy|cxr] [--limit N]

Each domain's run is resumable (its own --out folder under benchmarks/runs). Prints each
domain's summary, then the two domains side by side with the seed's columns.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.cli.plumbing import ProgressBar  # noqa: E402
from workbench.evaluation.runner import EvalSpec, evaluate  # noqa: E402
from workbench.evaluation.summary import markdown, two_domain_markdown  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DOMAINS = {  # name: (victim, surrogate, data folder)
    "dermoscopy": ("demo", "demo-surrogate", DATA / "dermoscopy" / "isic"),
    "chest X-ray": ("cxr", "cxr-surrogate", DATA / "cxr-pneumonia"),
}
PGD = {"eps": 0.01, "steps": 20, "early_stop": False}  # 0.02 on the seed's [-1, 1]
ATTACKS = [
    {"name": "pgd", "params": PGD},
    {"name": "mi-di-fgsm", "params": {"eps": 0.01, "steps": 20}},
    {"name": "universal-patch", "params": {}},
    {"name": "natural-patch", "params": {}},
]


def run(domain: str, out: Path, limit: int | None) -> dict:
    victim, surrogate, data = DOMAINS[domain]
    spec = EvalSpec(model=victim, surrogate=surrogate, data=str(data), out=str(out),
                    attacks=ATTACKS, detectors=[], image_size=224, batch_size=16,
                    split="test", limit=limit)
    start = time.perf_counter()
    summary = evaluate(spec, progress=ProgressBar(f"{domain}").update)
    print(markdown(summary))
    print(f"{domain}: wall time {time.perf_counter() - start:.0f} s; results in {out}\n",
          flush=True)
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--domain", default="both", choices=("both", "dermoscopy", "cxr"))
    p.add_argument("--limit", type=int, help="at most N test images per class")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "runs"))
    args = p.parse_args()
    chosen = {"both": list(DOMAINS), "dermoscopy": ["dermoscopy"],
              "cxr": ["chest X-ray"]}[args.domain]
    summaries = {}
    for domain in chosen:
        folder = "table1_" + domain.replace(" ", "_").lower() + (
            f"_limit{args.limit}" if args.limit else "")
        summaries[domain] = run(domain, Path(args.out) / folder, args.limit)
    print(two_domain_markdown(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
