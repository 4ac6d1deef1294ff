"""Headless detector commands: ``detect`` and ``calibrate`` (torch loads only when a
selected detector needs a model).

``workbench detect PATH...`` runs the detectors on each image and prints one row per
image and detector (file, detector, score, threshold, verdict, explanation), or JSON
lines with ``--json``. A saved calibration (``workbench calibrate``) supplies the
threshold when it was made with the same detector version, parameters and model.
Exit status: 0 when no image is flagged suspicious or tampered, 1 when one is (or an
image or detector failed), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .plumbing import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    ProgressBar,
    image_files,
    load_model_on,
    param_values,
    print_error,
    print_json_line,
)


def _registry() -> Any:
    from ..engine.plugins import PluginRegistry

    return PluginRegistry()


def _selected(registry: Any, names: str | None) -> list[Any]:
    """The detectors named in ``names`` (comma-separated), else every working one."""
    available = {p.name: p for p in registry.detectors()}
    if not names:
        return [p for p in available.values() if p.ok]
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in available:
            raise CommandError(f"no detector named {name!r}; available: "
                               + ", ".join(sorted(available)))
        if not available[name].ok:
            raise CommandError(f"detector {name} is broken: {available[name].error}")
        out.append(available[name])
    return out


def cmd_detect(args: argparse.Namespace) -> int:
    from .. import api
    from ..engine.detector_runner import DetectorCancelled
    from ..imaging.loader import load_image
    from ..imaging.warning_notes import warnings_as_notes

    infos = _selected(_registry(), args.detectors)
    if not infos:
        raise CommandError("no working detector plugins found")
    files = image_files(args.inputs)
    reference = load_image(args.reference) if args.reference else None
    wants_model = any("model" in i.needs for i in infos)
    models = _ModelChoice(args.model if wants_model else "none", args.device)
    detectors = [(det, api.make_params(det.Params, {})) for det in (i.create() for i in infos)]

    flagged = failures = 0
    if not args.json:
        print(f"{'file':<28} {'detector':<22} {'score':>9} {'threshold':>9}  "
              f"{'verdict':<13} explanation")
    for f in files:
        with warnings_as_notes() as notes:
            try:
                verdict, failed = _detect_one(f, detectors, models, reference, args)
            except DetectorCancelled:
                print("cancelled", file=sys.stderr)
                return EXIT_FAILED
        for text in notes:  # printed under this file's name, not as a bare library line
            print(f"note: {f}: {text}", file=sys.stderr)
        failures += failed
        flagged += verdict in (SUSPICIOUS, TAMPERED)
    if not args.json:
        print(f"{len(files)} image(s): {flagged} flagged suspicious or tampered"
              + (f", {failures} error(s)" if failures else ""), file=sys.stderr)
    return EXIT_FAILED if flagged or failures else EXIT_OK


SUSPICIOUS, TAMPERED = "suspicious", "tampered"  # engine.case_verdict's, without its import


def _not_run(f: Any, detector: str, why: str, as_json: bool) -> None:
    """A model-based detector with no model that fits the image: inconclusive, why."""
    why = f"not run: {why}"
    if as_json:
        print_json_line({"file": str(f), "detector": detector, "verdict": "inconclusive",
                         "score": None, "threshold": None, "calibrated": False,
                         "explanation": why})
    else:
        print(f"{_short(f.name, 28):<28} {detector:<22} {'-':>9} {'-':>9}  "
              f"{'inconclusive':<13} {why}")


class _ModelChoice:
    """The classifier model-based detectors use on each image: the named one, or with
    ``auto`` the shipped model that fits the image; never one trained on other images
    (a skin model's feature-squeezing score on a chest X-ray measures nothing)."""

    def __init__(self, name: str, device: str) -> None:
        self.name, self.device = name, device
        self.loaded: dict[str, Any] = {}

    def for_image(self, image: Any) -> tuple[Any, str]:
        """(model, '') or (None, why no model judges this image)."""
        from ..models.fit import describe_image, fit_problem
        from ..models.zoo import fitting_model

        if self.name == "none":  # the detectors say themselves that they need one
            return None, ""
        name = fitting_model(image) if self.name == "auto" else self.name
        if name is None:
            return None, f"no shipped model fits {describe_image(image)} (name one with --model)"
        if name not in self.loaded:
            self.loaded[name] = load_model_on(name, self.device)
        model = self.loaded[name]
        problem = fit_problem(model.card, image)
        return (None, problem) if problem else (model, "")


def _detect_one(f: Any, detectors: list, models: _ModelChoice, reference: Any,
                args: argparse.Namespace) -> tuple[str | None, int]:
    """One image's rows and case verdict, printed; returns the verdict (None when the
    image cannot be read) and how many failures to count."""
    from ..engine.calibration import run_calibrated
    from ..engine.detector_runner import DetectorFailed
    from ..imaging.errors import ImageLoadError
    from ..imaging.loader import load_image

    try:
        image = load_image(f)
    except ImageLoadError as exc:
        print_error(str(exc))
        return None, 1
    failures = 0
    outcomes, used = [], []
    model, no_model = models.for_image(image) if any(
        "model" in getattr(det, "needs", ()) for det, _p in detectors) else (None, "")
    # on a terminal, which detector is running (the rows come when all have run)
    bar = ProgressBar(f"detect {_short(f.name, 28)}") if sys.stderr.isatty() else None
    for i, (det, params) in enumerate(detectors):
        if bar is not None:
            bar.update(i, len(detectors), det.name)
        if "model" in getattr(det, "needs", ()) and model is None and no_model:
            _not_run(f, det.name, no_model, args.json)
            continue
        try:  # the saved threshold that applies to this image's kind judges it
            out, _cal, _note = run_calibrated(det, image, params, model=model,
                                             directory=args.calibration,
                                             reference=reference)
        except DetectorFailed as exc:
            print_error(f"{f}: {str(exc).splitlines()[0]}")
            failures += 1
            continue
        outcomes.append(out)
        if _cal is not None and out.calibrated:
            used.append(_cal)
    if bar is not None:
        bar.update(len(detectors), len(detectors), "")
    case = _case_verdict(f, image, outcomes, used)
    # the rows are printed once all have run, as the verdict below judged them: a row
    # "suspicious" by its own threshold under "no detector fired" said two different things
    for out in case.outcomes:
        if args.json:  # the explanation carries run_calibrated's note, if any
            print_json_line({"file": str(f), **out.to_json()})
        else:
            score = "-" if out.score is None else f"{out.score:.4g}"
            thr = "-" if out.threshold is None else f"{out.threshold:.4g}"
            print(f"{_short(f.name, 28):<28} {out.name:<22} {score:>9} {thr:>9}  "
                  f"{out.verdict:<13} {out.explanation}")
    # one call per image, as the GUI's banner makes it: several detectors at 5% each
    # flag far more than 5% of clean images, so a single row is not the verdict
    if args.json:
        print_json_line({"file": str(f), "case_verdict": case.verdict,
                         "headline": case.headline, "reasons": list(case.reasons)})
    else:
        print(f"{_short(f.name, 28):<28} => {case.headline}")
    return case.verdict, failures


def _case_verdict(path: Any, image: Any, outcomes: list[Any], used: list[Any]) -> Any:
    """The image's case verdict: its capture record when it has one (decisive), else the
    calibrated detectors judged together by their case thresholds."""
    from ..engine.case_calibration import case_thresholds
    from ..engine.case_verdict import case_verdict
    from ..provenance.records.verify import verify_one_safely

    verification = verify_one_safely(path, None)
    return case_verdict(verification, outcomes, case_thresholds(used))


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .. import api
    from ..engine.calibration import CalibrationError, calibrate, calibration_file

    if "," in args.detector:
        raise CommandError("calibrate one detector at a time")
    (info,) = _selected(_registry(), args.detector)
    if not info.calibratable:
        raise CommandError(f"{info.name} is not calibratable: its verdict is decisive")
    clean = Path(args.clean)
    if not clean.exists():
        raise CommandError(f"{clean}: no such file or folder")
    det = info.create()
    try:
        params = api.make_params(det.Params, param_values(args.param))
    except api.ParamError as exc:
        raise CommandError(f"{info.name}: {exc}") from None
    model = load_model_on(args.model, args.device) if "model" in info.needs else None
    bar = ProgressBar(f"calibrate {info.name}")
    try:
        cal = calibrate(det, params, [clean], model, args.fpr,
                        progress=lambda done, total, name: bar.update(done, total, name),
                        directory=args.calibration)
    except CalibrationError as exc:
        raise CommandError(str(exc)) from None
    print(f"{info.name}: threshold {cal.threshold:.6g} at {cal.fpr:.1%} false positives "
          f"on {cal.n} clean image(s) (scores {cal.summary['min']:.4g}..{cal.summary['max']:.4g}"
          f", median {cal.summary['median']:.4g}); {len(cal.skipped)} skipped")
    for s in cal.skipped:
        print(f"  skipped {s['path']}: {s['reason']}", file=sys.stderr)
    print(f"saved to {calibration_file(info.name, args.calibration)}")
    return EXIT_OK


def _detect_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("inputs", nargs="+", metavar="PATH", help="image files or folders")
    d.add_argument("--detectors", metavar="A,B", help="comma-separated (default: all)")
    d.add_argument("--model", default="auto",
                   help="classifier for model-based detectors: auto (the shipped model "
                        "that fits each image), demo, cxr, a card, or none")
    d.add_argument("--reference", metavar="FILE", help="reference image (e.g. the original)")
    d.add_argument("--calibration", metavar="DIR",
                   help="folder of saved calibrations (default: in WORKBENCH_HOME)")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    d.add_argument("--json", action="store_true", help="one JSON object per image and detector")
    d.set_defaults(handler=cmd_detect)


def _calibrate_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--detector", required=True)
    c.add_argument("--clean", required=True, metavar="DIR", help="folder of clean images")
    c.add_argument("--fpr", type=float, default=0.05, help="false-positive rate (0.05)")
    c.add_argument("--model", default="demo", help="demo, cxr, their -surrogate, or a card")
    c.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    c.add_argument("--calibration", metavar="DIR",
                   help="where to save it (default: WORKBENCH_HOME/calibration)")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    c.set_defaults(handler=cmd_calibrate)


ARGUMENTS = {"detect": _detect_arguments, "calibrate": _calibrate_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..engine.calibration import CalibrationError

    return (CalibrationError,)
