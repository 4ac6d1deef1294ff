"""``workbench study new|score``: a blinded reader study of real and manipulated images.

    workbench study new --data DIR --attacks pgd,colour-balance,lesion-transplant
        [--split test] [--model demo] [--surrogate demo-surrogate] [--design paired|single]
        [--fraction-manipulated 0.5] [--n N] [--seed S] --out STUDY_DIR
    workbench study score STUDY_DIR [--json] [--out DIR]

STUDY_DIR/key.json is the answer key: keep it from the readers (docs/reader_study.md).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from .evaluation import _param_groups, _specs
from .plumbing import EXIT_OK, CommandError, ProgressBar, positive_int, print_json_line


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def cmd_study(args: argparse.Namespace) -> int:
    return _new(args) if args.action == "new" else _score(args)


def _new(args: argparse.Namespace) -> int:
    from ..reader_study.build import StudySpec, build_study

    groups = _param_groups(args.param)
    attacks = _specs(args.attacks, groups)
    if not attacks:
        raise CommandError("--attacks names no attack (e.g. pgd,colour-balance)")
    unknown = set(groups) - {a["name"] for a in attacks}
    if unknown:
        raise CommandError(f"--param names {', '.join(sorted(unknown))}, which is not in "
                           "--attacks")
    spec = StudySpec(
        data=args.data, out=args.out, attacks=attacks, model=args.model,
        surrogate=None if args.surrogate == "none" else args.surrogate, split=args.split,
        design=args.design, fraction_manipulated=args.fraction_manipulated, n=args.n,
        seed=args.seed, max_side=args.max_side, label_column=args.label_column,
        device=args.device, plugin_dirs=args.plugins)
    bar = None if args.quiet else ProgressBar("study")
    cancel = threading.Event()
    try:
        summary = build_study(spec, progress=bar.update if bar else None,
                              cancelled=cancel.is_set)
    except KeyboardInterrupt:
        cancel.set()
        raise
    attacks_made = ", ".join(f"{k} {v}" for k, v in sorted(summary["attacks"].items()))
    print(f"study in {summary['study']}: {summary['images']} images, "
          f"{summary['manipulated']} manipulated ({attacks_made}), {summary['design']} "
          f"design; the model was wrong on {summary['model_fooled']} of the manipulated")
    if summary["unchanged"]:
        print(f"note: {len(summary['unchanged'])} manipulated image(s) came out identical "
              f"to their original: {', '.join(summary['unchanged'])}")
    print(f"keep {Path(summary['study']) / 'key.json'} from the readers: it holds the answers")
    return EXIT_OK


def _score(args: argparse.Namespace) -> int:
    from ..reader_study.report import markdown
    from ..reader_study.score import score_study, write_score

    summary = score_study(args.study)
    out = Path(args.out) if args.out else Path(args.study) / "score"
    written = write_score(out, summary)
    if args.json:
        print_json_line(summary)
    else:
        print(markdown(summary), end="")
        print(f"\nwritten: {', '.join(str(p) for p in written)}")
    return EXIT_OK


def _new_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Build a blinded reader study: a seeded, shuffled mix of original and "
                     "manipulated images, all written alike, and the answer key (key.json) "
                     "apart from what readers see.")
    p.add_argument("--data", required=True,
                   help="folder with a labels CSV, a labels CSV, or a folder of class folders")
    p.add_argument("--out", required=True, metavar="STUDY_DIR", help="a new or empty folder")
    p.add_argument("--attacks", required=True,
                   help="comma list of attack plugins, dealt round-robin to the manipulated "
                        "images (e.g. pgd,colour-balance,lesion-transplant)")
    p.add_argument("--param", action="append", default=[], metavar="PLUGIN.NAME=VALUE",
                   help="an attack's parameter, e.g. pgd.steps=10")
    p.add_argument("--model", default="demo", help="victim: demo, cxr, or a model card")
    p.add_argument("--surrogate", default="none",
                   help="model for attacks that need one (transfer-pgd), e.g. demo-surrogate")
    p.add_argument("--split", default="all", choices=("all", "test", "train"),
                   help="only the model card's test (or train) images")
    p.add_argument("--design", default="paired", choices=("paired", "single"),
                   help="paired: every lesion shown original and manipulated, in two "
                        "sessions (Du-Harpur et al.); single: every lesion shown once")
    p.add_argument("--fraction-manipulated", type=_fraction, default=0.5, metavar="F",
                   help="single design: share of manipulated images (paired: always 0.5)")
    p.add_argument("--n", type=positive_int, default=None, metavar="N",
                   help="images shown (default: every lesion of the data, twice if paired)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-side", type=positive_int, default=None, metavar="PX",
                   help="photos: shrink originals and manipulated alike to this longest side "
                        "(lighter attacks and files)")
    p.add_argument("--label-column", default=None)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--plugins", action="append", default=[], metavar="DIR",
                   help="extra plugin folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_study)


def _score_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Score a reader study: authenticity and diagnostic accuracy per reader "
                     "and pooled (Wilson 95%% intervals), McNemar (paired design) or Fisher "
                     "(single design), the model on the same images, Fleiss' kappa.")
    p.add_argument("study", metavar="STUDY_DIR")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where score.json, score.md and the plots go (default STUDY_DIR/score)")
    p.add_argument("--json", action="store_true", help="print the score as one JSON line")
    p.set_defaults(handler=cmd_study)


def _study_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (__doc__ or "").split("\n\n")[0]
    sub = p.add_subparsers(dest="action", required=True, metavar="new|score")
    _new_arguments(sub.add_parser("new", help="build a study from a labelled set"))
    _score_arguments(sub.add_parser("score", help="score the readers' answers"))


ARGUMENTS = {"study": _study_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..reader_study.layout import StudyCancelled, StudyError

    return (StudyError, StudyCancelled)
