"""Headless model commands: ``plugins``, ``predict``, ``attack`` (torch loads here only)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cli_provenance import EXIT_FAILED, EXIT_OK, CommandError


def _model(name: str, device: str) -> Any:
    from .models.device import choose_device
    from .models.zoo import load_model

    try:
        dev = choose_device(device)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return load_model(name, dev)


def _inputs(paths: list[str]) -> list[Path]:
    from .imaging.loader import find_images

    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise CommandError(f"{p}: no such file or folder")
        files.extend(find_images(p) if p.is_dir() else [p])
    if not files:
        raise CommandError("no images found in the given paths")
    return files


def _tensor(image: Any, frame: int = 0) -> tuple[Any, Any]:
    import torch

    from .imaging.model_input import to_model_input

    x, mapping = to_model_input(image, frame)
    return torch.from_numpy(x)[None], mapping


def cmd_plugins(args: argparse.Namespace) -> int:
    from .engine.plugins import discover_plugins

    plugins = discover_plugins()
    for p in plugins:
        status = "ok" if p.ok else "BROKEN"
        print(f"{p.name:<16} {status:<7} {p.threat or '-':<20} {p.summary or p.error}")
        if not p.ok:
            print(f"{'':<16} {p.error}  [{p.source}]")
    return EXIT_OK if all(p.ok for p in plugins) else EXIT_FAILED


def cmd_predict(args: argparse.Namespace) -> int:
    from .imaging.errors import ImageLoadError
    from .imaging.loader import load_image
    from .models.classifier import predict_proba

    model = _model(args.model, args.device)
    names = model.class_names
    failures = 0
    for f in _inputs(args.inputs):
        try:
            x, _ = _tensor(load_image(f))
        except ImageLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        probs = predict_proba(model, x)[0]
        best = int(probs.argmax())
        record = {"input": str(f), "class": names[best],
                  "probabilities": {n: round(float(probs[i]), 6) for i, n in enumerate(names)}}
        if args.json:
            print(json.dumps(record))
        else:
            shown = "  ".join(f"{n} {float(probs[i]):.3f}" for i, n in enumerate(names))
            print(f"{f.name}: {names[best]}  ({shown})")
    return EXIT_FAILED if failures else EXIT_OK


def _param_values(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _sign_export(saved: Path, original: Path, identity: Any, description: str) -> None:
    """Replace the saved PNG by a C2PA-signed copy saying what was done to the original."""
    import os

    from .provenance.c2pa_manifest import sign_c2pa

    tmp = saved.with_name(f".{saved.stem}.c2pa-signing.png")
    sign_c2pa(saved, tmp, identity, parent=original, title=saved.name,
              actions=[{"action": "c2pa.edited", "softwareAgent": "workbench",
                        "parameters": {"description": description}}])
    os.replace(tmp, saved)


def cmd_attack(args: argparse.Namespace) -> int:
    import torch

    from . import __version__, api
    from .engine.attack_runner import AttackCancelled, AttackFailed, run_attack
    from .engine.plugins import PluginRegistry
    from .imaging.errors import ImageLoadError
    from .imaging.export import describe_attack, save_derived
    from .imaging.loader import load_image
    from .imaging.model_input import to_model_input
    from .models.classifier import predict_proba
    from .progress_bar import ProgressBar

    registry = PluginRegistry()
    c2pa_identity = None
    if args.c2pa:  # before any work: a wrong passphrase or signer fails at once
        from .cli_provenance import _passphrase
        from .provenance.certificates import CertificateError, load_identity

        try:
            c2pa_identity = load_identity(args.c2pa, _passphrase(args))
        except CertificateError as exc:
            raise CommandError(str(exc)) from None
    try:
        info = registry.get(args.plugin, kind="attack")
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    if not info.ok:
        raise CommandError(f"plugin {info.name} is broken: {info.error}")
    plugin = info.create()
    try:
        params = api.make_params(plugin.Params, _param_values(args.param))
    except api.ParamError as exc:
        raise CommandError(f"{info.name}: {exc}") from None
    model = _model(args.model, args.device)
    surrogate = _model(args.surrogate, args.device) if args.surrogate else None
    if plugin.needs_surrogate and surrogate is None:
        raise CommandError(f"{info.name} needs --surrogate (e.g. demo-surrogate)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _inputs(args.inputs)
    bar = ProgressBar(f"attack {info.name}")
    results, failures = [], 0
    for n, f in enumerate(files):
        try:
            image = load_image(f)
        except ImageLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        x, mapping = to_model_input(image, args.frame)
        try:
            outcome = run_attack(
                plugin, model, torch.from_numpy(x)[None], targeted=args.targeted,
                params=params, surrogate=surrogate, seed=args.seed,
                progress=lambda frac, _msg, n=n, name=f.name: bar.update(
                    n * 1000 + int(frac * 1000), len(files) * 1000, name),
                plugin_lookup=registry.create)
        except AttackFailed as exc:
            print(f"error: {f}: {str(exc).splitlines()[0]}", file=sys.stderr)
            failures += 1
            continue
        except AttackCancelled:
            print("cancelled", file=sys.stderr)
            return EXIT_FAILED
        description = describe_attack(info.name, info.version, outcome.params, __version__)
        target_name = out_dir / f"{f.stem}_{info.name}{f.suffix or '.dcm'}"
        saved = save_derived(image, outcome.adversarial[0].numpy(), mapping, target_name,
                             description, args.frame)
        if c2pa_identity is not None and saved.suffix.lower() == ".png":
            _sign_export(saved, f, c2pa_identity, description)
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
        results.append(entry)
    summary = {
        "plugin": info.name, "model": args.model, "surrogate": args.surrogate,
        "params": dataclasses.asdict(params),
        "targeted": args.targeted, "seed": args.seed, "images": results,
        "success_rate": sum(r["success"] for r in results) / max(len(results), 1),
        "success_rate_after_saving": sum(r["success_after_saving"] for r in results)
        / max(len(results), 1),
    }
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(results)} attacked, {sum(r['success'] for r in results)} succeeded "
          f"({sum(r['success_after_saving'] for r in results)} after saving in the stored "
          f"dtype), {failures} failed; results in {out_dir / 'results.json'}")
    return EXIT_FAILED if failures else EXIT_OK


def build_parsers(sub: Any) -> None:
    pl = sub.add_parser("plugins", help="list attack plugins and their status")
    pl.set_defaults(handler=cmd_plugins)

    pr = sub.add_parser("predict", help="classify images with a model")
    pr.add_argument("inputs", nargs="+", metavar="INPUT")
    pr.add_argument("--model", default="demo", help="demo, demo-surrogate, or a model card")
    pr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=cmd_predict)

    at = sub.add_parser("attack", help="run an attack plugin and save adversarial images")
    at.add_argument("inputs", nargs="+", metavar="INPUT")
    at.add_argument("--plugin", required=True)
    at.add_argument("--model", default="demo", help="victim: demo, demo-surrogate, or a card")
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


def run(argv: Sequence[str]) -> int:
    from .cli_provenance import run as run_commands

    return run_commands(argv, build_parsers)


ATTACK_COMMANDS = ("plugins", "predict", "attack")
