"""``python -m workbench.training``: retrain the demo models into resources/models."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __doc__ as package_doc
from .train import ARCHITECTURE, INPUT_SIZE


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.training",
                                description=(package_doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("WORKBENCH_SHARED_DATA", "../shared/data")
    p.add_argument("--data", type=Path, default=Path(default_data),
                   help="shared data folder (holding dermoscopy/isic) or the ISIC folder "
                        "itself (default: $WORKBENCH_SHARED_DATA or ../shared/data)")
    p.add_argument("--out", type=Path, default=Path("resources/models"))
    p.add_argument("--epochs", type=int, default=80,
                   help="victim epochs; the surrogate (half the images) gets twice as many")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument("--arch", default=ARCHITECTURE, help="torchvision architecture")
    p.add_argument("--size", type=int, default=INPUT_SIZE, help="network input size (square)")
    p.add_argument("--only", choices=("victim", "surrogate", "both"), default="both")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train the victim and/or the surrogate; 2 when the ISIC images are not found."""
    args = _parse(argv)
    from .data import isic_folder

    isic = isic_folder(args.data)
    if not (isic / "labels.csv").is_file():
        print(f"workbench.training: ISIC data not found: {isic} (expected labels.csv and "
              "images/; pass --data or set WORKBENCH_SHARED_DATA)", file=sys.stderr)
        return 2
    import torch

    from .cards import demo_models, train_and_ship
    from .data import load_demo_data

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_demo_data(isic)
    summary = []
    for model in demo_models(data, args.epochs):
        if args.only in ("both", model.role):
            summary.append((model.name, *train_and_ship(model, data, args)))
    print("\nsummary")
    for name, m, seconds, size_mb in summary:
        print(f"  {name:15s} acc {m['accuracy']:.3f}  AUROC {m['auroc']:.3f}  "
              f"sens {m['sensitivity']:.3f}  spec {m['specificity']:.3f}  "
              f"{seconds:.0f} s  {size_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
