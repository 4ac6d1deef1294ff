"""``workbench sweep``: a model's accuracy, sensitivity and false negatives over a grid of
one natural transformation at a time (colour offsets, rotation, translation, brightness,
JPEG quality), as Du-Harpur et al. (2020) did; see docs/sweeps.md."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .plumbing import EXIT_OK, CommandError, ProgressBar, positive_int, print_json_line


def _spec(args: argparse.Namespace) -> Any:
    """The sweep's settings, checked before anything heavy loads: a bad --grid or
    transformation fails in a second, not after the model and the images."""
    from ..evaluation.sweep import SweepSpec, parse_grid, spec_grids, transform_name

    transforms = tuple(dict.fromkeys(transform_name(t) for t in args.transforms.split(",")
                                     if t.strip()))
    if not transforms:
        raise CommandError("--transforms names no transformation")
    grids = dict(parse_grid(g) for g in args.grid)
    spec = SweepSpec(model=args.model, data=args.data, split=args.split, limit=args.limit,
                     label_column=args.label_column, transforms=transforms, grids=grids,
                     fill=args.fill, device=args.device, batch_size=args.batch_size,
                     seed=args.seed, workers=args.workers)
    spec_grids(spec)
    return spec


def cmd_sweep(args: argparse.Namespace) -> int:
    spec = _spec(args)
    from ..evaluation.sweep import SweepCancelled, run_sweep
    from ..evaluation.sweep_plots import key_lines, write_outputs

    # said at once: loading torch and the model takes seconds before the first bar
    print(f"loading the model {args.model}…", file=sys.stderr, flush=True)
    bar = None if args.quiet else ProgressBar("sweep")
    try:
        result = run_sweep(spec, progress=bar.update if bar else None)
    except SweepCancelled as exc:
        raise CommandError(str(exc)) from None
    written = write_outputs(args.out, result)
    if args.json:
        from ..evaluation.sweep_plots import plain_json

        print_json_line(plain_json({k: v for k, v in result.items() if k != "points"}
                               | {"lines": key_lines(result)}))
        return EXIT_OK
    b = result["baseline"]
    print(f"baseline: accuracy {100 * b['accuracy']['value']:.1f}%, sensitivity "
          f"{100 * b['sensitivity']['value']:.1f}%, false negatives "
          f"{b['false_negatives']['value']} of {b['n_positive']} "
          f"({result['data']['n']} images, {result['settings']['device']})")
    for line in key_lines(result):
        print(line)
    print(f"results in {args.out}: " + ", ".join(p.name for p in written))
    return EXIT_OK


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    from ..evaluation.sweep import TRANSFORMS

    p.description = (
        "Measure a model's accuracy, sensitivity, specificity and false negatives of the "
        "positive class over a grid of one transformation at a time (Du-Harpur et al. "
        "2020): per-channel colour offsets in units of 255, rotation, translation in x, "
        "brightness, JPEG quality. Writes sweep.json, sweep.md, sweep.csv and one plot per "
        "transformation to --out.")
    p.add_argument("--model", default="demo", help="demo, cxr, or a model card")
    p.add_argument("--data", required=True,
                   help="folder with a labels CSV, a labels CSV, or a folder of class folders")
    p.add_argument("--split", default="test", choices=("all", "test", "train"),
                   help="the model card's test (or train) images, or all (default: test)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="at most N images per class (quick runs)")
    p.add_argument("--label-column", default=None)
    p.add_argument("--transforms", default=",".join(TRANSFORMS),
                   help=f"comma list of {', '.join(TRANSFORMS)} (default: all)")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=START:STOP:STEP",
                   help="a transformation's values, inclusive range or comma list: "
                        "colour=-20:20:5 (units of 255), rotation=0:360:45 (degrees), "
                        "translation=-20:20:5 (%% of width), brightness=0.7:1.3:0.1, "
                        "jpeg=95,75,50,30,10")
    p.add_argument("--fill", default="reflect", choices=("reflect", "constant"),
                   help="edges uncovered by rotation and translation: mirrored, or black")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads that decode and transform images (default: CPUs, at most 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--json", action="store_true",
                   help="print the baseline and the key lines as one JSON line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_sweep)


ARGUMENTS = {"sweep": _sweep_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..evaluation.dataset import DatasetError
    from ..evaluation.runner import EvaluationError
    from ..evaluation.sweep import SweepError

    return (SweepError, EvaluationError, DatasetError)
