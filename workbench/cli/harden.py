"""``workbench harden``: fine-tune a shipped model with a defence and measure it.

    workbench harden --model demo --defence pgd|augment [--epochs 3] [--eps 0.01]
        [--steps 5] --data ../shared/data/dermoscopy/isic --out DIR

Writes DIR/<model>_<defence>.json and .pt (the card names the defence and its parent),
then prints clean accuracy and accuracy under the project's PGD (ε = --eps, 20 steps) on
the card's test split, for the parent and the hardened model side by side.
"""

from __future__ import annotations

import argparse

from .plumbing import EXIT_OK, CommandError, ProgressBar


def cmd_harden(args: argparse.Namespace) -> int:
    print(f"loading {args.model} and the data…", flush=True)
    from ..training.harden import harden

    bar = ProgressBar(f"hardening ({args.defence})")
    try:
        out = harden(args.model, args.defence, args.out, args.data, epochs=args.epochs,
                     eps=args.eps, steps=args.steps, lr=args.lr, seed=args.seed,
                     limit=args.limit,
                     progress=lambda f, m: bar.update(int(f * 1000), 1000, m))
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    b, a = out.before, out.after
    print(f"\n{'':<22}{'parent':>10}{'hardened':>10}{'change':>10}")
    for key, label in (("clean_accuracy", "clean accuracy"),
                       ("pgd_accuracy", f"PGD accuracy ε={args.eps:g}")):
        print(f"{label:<22}{b[key]:>10.3f}{a[key]:>10.3f}{a[key] - b[key]:>+10.3f}")
    print(f"(n = {a['n']} test images, 8-bit pictures: the attacked copies rounded to whole "
          f"steps within ε; fine-tuned in {out.seconds:.0f} s)")
    print(f"written: {out.card_path}")
    return EXIT_OK


def _harden_arguments(h: argparse.ArgumentParser) -> None:
    h.description = (__doc__ or "").split("\n\n")[0]
    h.add_argument("--model", default="demo", help="the parent: a shipped name or a card")
    h.add_argument("--defence", required=True, choices=("pgd", "augment"))
    h.add_argument("--data", required=True, help="the ISIC folder (labels.csv, images/)")
    h.add_argument("--out", required=True, help="folder for the hardened card and weights")
    h.add_argument("--epochs", type=int, default=3)
    h.add_argument("--eps", type=float, default=0.01, help="L∞ budget in [0,1] space")
    h.add_argument("--steps", type=int, default=5, help="PGD steps per training batch")
    h.add_argument("--lr", type=float, default=3e-4)
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--limit", type=int, help="only the first N training images (tests)")
    h.set_defaults(handler=cmd_harden)


ARGUMENTS = {"harden": _harden_arguments}
