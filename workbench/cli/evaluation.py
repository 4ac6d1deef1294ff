"""``workbench evaluate``: attacks and detectors over a labelled dataset, the seed papers'
metrics, resumable (run it again with the same --out to continue)."""

from __future__ import annotations

import argparse
from typing import Any

from .plumbing import EXIT_OK, CommandError, ProgressBar, print_json_line

DEFAULT_ATTACKS = "pgd,universal-patch,natural-patch"


def _param_groups(items: list[str]) -> dict[str, dict[str, str]]:
    """--param PLUGIN.NAME=VALUE items, grouped by plugin."""
    groups: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        plugin, dot, name = key.partition(".")
        if not sep or not dot or not plugin.strip() or not name.strip():
            raise CommandError(f"--param {item!r}: expected PLUGIN.NAME=VALUE "
                               "(e.g. pgd.steps=10)")
        groups.setdefault(plugin.strip(), {})[name.strip()] = value.strip()
    return groups


def _specs(names: str, groups: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    chosen = [] if names == "none" else [n.strip() for n in names.split(",") if n.strip()]
    return [{"name": n, "params": groups.get(n, {})} for n in dict.fromkeys(chosen)]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.runner import EvalSpec, EvaluationCancelled, evaluate
    from ..evaluation.summary import markdown

    groups = _param_groups(args.param)
    attacks = _specs(args.attacks, groups)
    detectors = _specs(args.detectors, groups)
    unknown = set(groups) - {s["name"] for s in attacks + detectors}
    if unknown:
        raise CommandError(f"--param names {', '.join(sorted(unknown))}, which is not in "
                           "--attacks or --detectors")
    spec = EvalSpec(
        model=args.model, surrogate=None if args.surrogate == "none" else args.surrogate,
        data=args.data, out=args.out, attacks=attacks, detectors=detectors,
        image_size=args.image_size, batch_size=args.batch_size, seed=args.seed,
        split=args.split, limit=args.limit, label_column=args.label_column,
        device=args.device, engine=args.engine, address=args.address, workers=args.workers,
        plugin_dirs=args.plugins)
    bar = None if args.quiet else ProgressBar("evaluate")
    try:
        summary = evaluate(spec, progress=bar.update if bar else None)
    except EvaluationCancelled as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json_line(summary)
    else:
        print(markdown(summary))
        print(f"results in {args.out}: per_image.csv, summary.md, summary.json, roc.png, "
              "confidence.png, detector_matrix.png, run.json")
    if args.baseline:
        _compare_with_baseline(args.baseline, args.out, quiet=args.json)
    return EXIT_OK


def _compare_with_baseline(baseline: str, out: str, *, quiet: bool) -> None:
    """comparison.md|json in the run folder: this run against --baseline, side by side."""
    import json
    from pathlib import Path

    from ..evaluation.compare import ComparisonError, compare, comparison_markdown, load_run

    try:
        c = compare(load_run(baseline), load_run(out))
    except ComparisonError as exc:
        raise CommandError(str(exc)) from None
    text = comparison_markdown(c, ("baseline", "this model"))
    (Path(out) / "comparison.md").write_text(text, encoding="utf-8")
    (Path(out) / "comparison.json").write_text(json.dumps(c, indent=2) + "\n")
    if not quiet:
        print(text)


def _evaluate_arguments(e: argparse.ArgumentParser) -> None:
    e.description = (
        "Run attacks (white-box on --model, black-box crafted on --surrogate) "
        "and detectors over a labelled dataset; write per-image results, the summary table "
        "with 95%% bootstrap intervals, the detector x attack matrix and plots to --out. "
        "Running again with the same --out resumes: finished batches are not recomputed.")
    e.add_argument("--model", default="demo", help="victim: demo, or a model card")
    e.add_argument("--baseline", metavar="RUN_DIR",
                   help="a finished run of another model on the same data (e.g. the parent "
                        "of a hardened model): writes comparison.md side by side")
    e.add_argument("--surrogate", default="none",
                   help="model the black-box attacks are crafted on (demo-surrogate, "
                        "cxr-surrogate, a card)")
    e.add_argument("--data", required=True,
                   help="folder with a labels CSV, a labels CSV, or a folder of class folders")
    e.add_argument("--out", required=True, metavar="RUN_DIR")
    e.add_argument("--attacks", default=DEFAULT_ATTACKS, help="comma list, or none")
    e.add_argument("--detectors", default="none", help="comma list, or none")
    e.add_argument("--param", action="append", default=[], metavar="PLUGIN.NAME=VALUE")
    e.add_argument("--split", default="all", choices=("all", "test", "train"),
                   help="only the model card's test (or train) images")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N images per class (quick runs)")
    e.add_argument("--label-column", default=None)
    e.add_argument("--image-size", type=int, default=224,
                   help="images are resized to this square first (Finlayson et al.: 224)")
    e.add_argument("--batch-size", type=int, default=8, help="images per unit of work")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    e.add_argument("--engine", default="inprocess", choices=("inprocess", "ray"))
    e.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    e.add_argument("--workers", type=int, default=None, help="Ray: CPUs of a local instance")
    e.add_argument("--plugins", action="append", default=[], metavar="DIR",
                   help="extra plugin folder")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(handler=cmd_evaluate)


ARGUMENTS = {"evaluate": _evaluate_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..evaluation.runner import EvaluationError

    return (EvaluationError,)
