"""Model commands: ``plugins``, ``predict``, ``attack`` (torch loads here only)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
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
    passphrase,
    print_error,
    print_json_line,
)


def _tensor(image: Any, frame: int = 0) -> tuple[Any, Any]:
    import torch

    from ..imaging.model_input import to_model_input

    x, mapping = to_model_input(image, frame)
    return torch.from_numpy(x)[None], mapping


def cmd_plugins(args: argparse.Namespace) -> int:
    from ..engine.plugins import discover_plugins

    plugins = discover_plugins()
    for p in plugins:
        status = "ok" if p.ok else "BROKEN"
        print(f"{p.name:<16} {status:<7} {p.threat or '-':<20} {p.summary or p.error}")
        if not p.ok:
            print(f"{'':<16} {p.error}  [{p.source}]")
    return EXIT_OK if all(p.ok for p in plugins) else EXIT_FAILED


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify each input with a model that fits it. A model trained on other images
    (a skin model on a CT) gives no diagnosis: the file is reported as failed unless
    ``--allow-mismatch``, and even then its output is labelled as not a diagnosis."""
    from ..imaging.errors import ImageLoadError
    from ..imaging.loader import load_image
    from ..models.classifier import predict_proba
    from ..models.fit import describe_image, fit_caveat, fit_problem
    from ..models.zoo import fitting_model

    models: dict[str, Any] = {}
    failures = 0
    for f in image_files(args.inputs):
        try:
            image = load_image(f)
        except ImageLoadError as exc:
            print_error(str(exc))
            failures += 1
            continue
        name = fitting_model(image) if args.model == "auto" else args.model
        if name is None:
            print_error(f"{f}: no shipped model fits {describe_image(image)}; name one with "
                        "--model")
            failures += 1
            continue
        # the card alone says whether the model fits: a refusal comes before torch loads
        # (8.6 s to say "not a diagnosis" on a chest CR, most of it torch and the model)
        card = models[name].card if name in models else _card_of(name)
        problem = fit_problem(card, image) if card is not None else None
        if problem is not None and not args.allow_mismatch:
            print_error(f"{f}: {problem} (--allow-mismatch prints the output anyway)")
            failures += 1
            continue
        try:
            x, _ = _tensor(image)
        except ImageLoadError as exc:
            print_error(str(exc))
            failures += 1
            continue
        if name not in models:
            models[name] = load_model_on(name, args.device)
        model = models[name]
        problem = fit_problem(model.card, image)  # the loaded model's own card decides
        if problem is not None and not args.allow_mismatch:
            print_error(f"{f}: {problem} (--allow-mismatch prints the output anyway)")
            failures += 1
            continue
        _print_prediction(f, model, predict_proba(model, x)[0], problem, args.json,
                          fit_caveat(model.card, image), image.n_frames)
    return EXIT_FAILED if failures else EXIT_OK


def _card_of(name: str) -> Any:
    """The model card of ``name`` without loading the model, or None when it cannot be
    read here (then loading the model reports why)."""
    from ..models.card import ModelCard
    from ..models.zoo import resolve_card

    try:
        return ModelCard.load(resolve_card(name))
    except Exception:
        return None


def _print_prediction(f: Path, model: Any, probs: Any, problem: str | None,
                      as_json: bool, caveat: str | None = None, frames: int = 1) -> None:
    names = model.class_names
    best = int(probs.argmax())
    record = {"input": str(f), "model": model.card.name, "class": names[best],
              "probabilities": {n: round(float(probs[i]), 6) for i, n in enumerate(names)}}
    if frames > 1:  # one answer, of the first frame: a tomosynthesis stack has dozens
        record["frame"] = f"1 of {frames}"
    if problem is not None:
        record["not_a_diagnosis"] = problem
    if caveat:
        record["caveat"] = caveat
    if as_json:
        print_json_line(record)
        return
    if caveat:
        print(f"note: {f}: {caveat}", file=sys.stderr)
    shown = "  ".join(f"{n} {float(probs[i]):.3f}" for i, n in enumerate(names))
    label = "model output, NOT A DIAGNOSIS: " if problem else ""
    where = f" (frame 1 of {frames})" if frames > 1 else ""
    print(f"{f.name}{where}: {label}{names[best]}  ({shown})")


def _sign_export(saved: Path, original: Path, identity: Any, description: str) -> None:
    """Replace the saved PNG by a C2PA-signed copy saying what was done to the original."""
    import os

    from ..provenance.standards.c2pa_signing import sign_c2pa

    tmp = saved.with_name(f".{saved.stem}.c2pa-signing.png")
    sign_c2pa(saved, tmp, identity, parent=original, title=saved.name,
              actions=[{"action": "c2pa.edited", "softwareAgent": "workbench",
                        "parameters": {"description": description}}])
    os.replace(tmp, saved)


@dataclass
class _Attack:
    """One ``workbench attack`` run: what every image is attacked with, and where to."""

    args: argparse.Namespace
    registry: Any
    info: Any
    plugin: Any
    params: Any
    model: Any
    surrogate: Any
    out_dir: Path
    c2pa_identity: Any


def _c2pa_signer(args: argparse.Namespace) -> Any:
    """The --c2pa signer, loaded before any work: a wrong passphrase or signer fails at once."""
    if not args.c2pa:
        return None
    from ..provenance.standards.certificates import CertificateError, load_identity

    try:
        return load_identity(args.c2pa, passphrase(args))
    except CertificateError as exc:
        raise CommandError(str(exc)) from None


def _prepare_attack(args: argparse.Namespace) -> _Attack:
    from .. import api
    from ..engine.plugins import PluginRegistry

    registry = PluginRegistry()
    c2pa_identity = _c2pa_signer(args)
    try:
        info = registry.get(args.plugin, kind="attack")
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    if not info.ok:
        raise CommandError(f"plugin {info.name} is broken: {info.error}")
    plugin = info.create()
    try:
        params = api.make_params(plugin.Params, param_values(args.param))
    except api.ParamError as exc:
        raise CommandError(f"{info.name}: {exc}") from None
    model = load_model_on(args.model, args.device)
    surrogate = load_model_on(args.surrogate, args.device) if args.surrogate else None
    if plugin.needs_surrogate and surrogate is None:
        raise CommandError(f"{info.name} needs --surrogate (e.g. {args.model}-surrogate)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Attack(args, registry, info, plugin, params, model, surrogate, out_dir,
                   c2pa_identity)


def _attack_image(job: _Attack, f: Path, progress: Any) -> dict[str, Any]:
    """Attack one file, save the result in its own format and measure the saved file.
    Raises ImageLoadError, AttackFailed or AttackCancelled."""
    import torch

    from .. import __version__
    from ..engine.attack_runner import run_attack
    from ..imaging.export import describe_attack, save_derived
    from ..imaging.loader import load_image
    from ..imaging.model_input import to_model_input
    from ..models.classifier import predict_proba

    args, info, model = job.args, job.info, job.model
    image = load_image(f)
    x, mapping = to_model_input(image, args.frame)
    outcome = run_attack(
        job.plugin, model, torch.from_numpy(x)[None], targeted=args.targeted,
        params=job.params, surrogate=job.surrogate, seed=args.seed, progress=progress,
        plugin_lookup=job.registry.create, levels=mapping.levels)
    description = describe_attack(info.name, info.version, outcome.params, __version__)
    target_name = job.out_dir / f"{f.stem}_{info.name}{f.suffix or '.dcm'}"
    saved = save_derived(image, outcome.adversarial[0].numpy(), mapping, target_name,
                         description, args.frame)
    if job.c2pa_identity is not None and saved.suffix.lower() == ".png":
        _sign_export(saved, f, job.c2pa_identity, description)
    # The stored file is quantised to the original dtype: re-read it and re-measure.
    x_saved, _ = to_model_input(load_image(saved), 0 if image.n_frames == 1 else args.frame,
                                value_range=(mapping.lo, mapping.hi))
    after = predict_proba(model, torch.from_numpy(x_saved)[None])[0]
    entry = outcome.per_image(model.class_names)[0]
    entry.update({
        "input": str(f), "output": str(saved), "plugin": info.name, "params": outcome.params,
        "seconds": round(outcome.seconds, 4), "model_calls": outcome.model_calls,
        "notes": outcome.notes,
        "saved_class": model.class_names[int(after.argmax())],
        "saved_probabilities": {c: round(float(after[i]), 6)
                                for i, c in enumerate(model.class_names)},
    })
    flipped = entry["saved_class"] != entry["clean_class"]
    entry["success_after_saving"] = (entry["saved_class"] == entry["target"]
                                     if entry["target"] else flipped)
    return entry


def cmd_attack(args: argparse.Namespace) -> int:
    from ..engine.attack_runner import AttackCancelled, AttackFailed
    from ..imaging.errors import ImageLoadError
    from ..imaging.export import ExportError

    job = _prepare_attack(args)
    files = image_files(args.inputs)
    bar = ProgressBar(f"attack {job.info.name}")
    results, failures = [], 0
    for n, f in enumerate(files):
        def progress(frac: float, _msg: str, n: int = n, name: str = f.name) -> None:
            bar.update(n * 1000 + int(frac * 1000), len(files) * 1000, name)

        try:
            results.append(_attack_image(job, f, progress))
        except ImageLoadError as exc:
            print_error(str(exc))
            failures += 1
        except AttackFailed as exc:
            print_error(f"{f}: {str(exc).splitlines()[0]}")
            failures += 1
        except ExportError as exc:  # e.g. a value the source's Bits Stored cannot hold
            print_error(f"cannot save the adversarial copy: {exc}")
            failures += 1
        except AttackCancelled:
            print("cancelled", file=sys.stderr)
            return EXIT_FAILED
    _write_summary(job, results, failures)
    return EXIT_FAILED if failures else EXIT_OK


def _write_summary(job: _Attack, results: list[dict[str, Any]], failures: int) -> None:
    args, n = job.args, max(len(results), 1)
    summary = {
        "plugin": job.info.name, "model": args.model, "surrogate": args.surrogate,
        "params": dataclasses.asdict(job.params),
        "targeted": args.targeted, "seed": args.seed, "images": results,
        "success_rate": sum(r["success"] for r in results) / n,
        "success_rate_after_saving": sum(r["success_after_saving"] for r in results) / n,
    }
    (job.out_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(results)} attacked, {sum(r['success'] for r in results)} succeeded "
          f"({sum(r['success_after_saving'] for r in results)} after saving in the stored "
          f"dtype), {failures} failed; results in {job.out_dir / 'results.json'}")


def _plugins_arguments(pl: argparse.ArgumentParser) -> None:
    pl.set_defaults(handler=cmd_plugins)


def _predict_arguments(pr: argparse.ArgumentParser) -> None:
    pr.add_argument("inputs", nargs="+", metavar="INPUT")
    pr.add_argument("--model", default="auto",
                    help="auto (the shipped model that fits each image: the default), demo, "
                         "cxr, their -surrogate, or a model card")
    pr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    pr.add_argument("--allow-mismatch", action="store_true",
                    help="print the output of a model on images it was not trained on "
                         "(labelled as not a diagnosis) instead of failing")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=cmd_predict)


def _attack_arguments(at: argparse.ArgumentParser) -> None:
    at.add_argument("inputs", nargs="+", metavar="INPUT")
    at.add_argument("--plugin", required=True)
    at.add_argument("--model", default="demo", help="victim: demo, cxr, or a card")
    at.add_argument("--surrogate", help="surrogate model for transfer attacks")
    at.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    at.add_argument("--targeted", action="store_true", help="push to the other class")
    at.add_argument("--frame", type=int, default=0, help="frame of a multi-frame image")
    at.add_argument("--seed", type=int, default=0)
    at.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    at.add_argument("--out", required=True, metavar="DIR")
    at.add_argument("--c2pa", metavar="SIGNER",
                    help="sign each saved PNG with a C2PA manifest (a c2pa.edited action "
                         "saying which attack, the original as its parent)")
    at.add_argument("--passphrase-file", metavar="FILE", help="for the --c2pa signer's key")
    at.set_defaults(handler=cmd_attack)


ARGUMENTS = {"plugins": _plugins_arguments, "predict": _predict_arguments,
             "attack": _attack_arguments}
