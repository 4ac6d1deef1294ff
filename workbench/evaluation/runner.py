"""Running an evaluation into a run folder, resumably.

RUN_DIR/
  run.json        what was run: seed, model and data fingerprints, plugin versions and
                  parameters, the units; re-running with the same settings resumes
  units/*.json    one file per finished unit (written atomically: a unit is either
                  finished and on disk, or recomputed)
  computed.log    one line per unit computed, by which process: proof that a resumed
                  run recomputes nothing
  per_image.csv, summary.json, summary.md, *.png   written when every unit is done
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .units import Unit, plan_units

ENGINES = ("inprocess", "ray")


class EvaluationError(Exception):
    """The evaluation cannot run; the message says why."""


class EvaluationCancelled(Exception):  # noqa: N818
    """The user cancelled; finished units are kept for a resume."""


@dataclass
class EvalSpec:
    model: str
    data: str
    out: str
    surrogate: str | None = None
    attacks: list[dict[str, Any]] = field(default_factory=list)  # {"name", "params"}
    detectors: list[dict[str, Any]] = field(default_factory=list)
    image_size: int = 224
    batch_size: int = 8
    seed: int = 0
    split: str = "all"  # all, test or train (a model card's split)
    limit: int | None = None  # at most this many images per class
    label_column: str | None = None
    device: str = "auto"
    engine: str = "inprocess"
    address: str | None = None  # Ray cluster address; None = a local instance
    workers: int | None = None  # Ray: CPUs of a local instance
    plugin_dirs: list[str] = field(default_factory=list)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _weights_sha256(card_path: Path, card: Any) -> str:
    """The weights file's SHA-256; an ensemble's, over its members' cards and weights."""
    if card.architecture != "ensemble":
        return _sha256_file(card_path.parent / card.weights)
    from ..models.card import ModelCard

    h = hashlib.sha256()
    for member in card.members:
        path = card_path.parent / member
        h.update(bytes.fromhex(_sha256_file(path)))
        h.update(bytes.fromhex(_weights_sha256(path, ModelCard.load(path))))
    return h.hexdigest()


def _model_entry(name: str) -> dict[str, Any]:
    from ..models.card import ModelCard
    from ..models.zoo import resolve_card

    card_path = resolve_card(name)
    card = ModelCard.load(card_path)
    return {"name": name, "card": str(card_path.resolve()), "card_name": card.name,
            "architecture": card.architecture,
            "weights_sha256": _weights_sha256(card_path, card),
            "card_sha256": _sha256_file(card_path), "class_names": list(card.class_names),
            "positive_class": card.positive_class, "split": card.split,
            "modalities": list(card.fits.modalities)}


def resolve_models(spec: EvalSpec) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The victim's and the surrogate's entries; their classes must agree."""
    from ..models.card import ModelLoadError

    try:
        victim = _model_entry(spec.model)
        surrogate = _model_entry(spec.surrogate) if spec.surrogate else None
    except ModelLoadError as exc:
        raise EvaluationError(str(exc)) from None
    if surrogate and surrogate["class_names"] != victim["class_names"]:
        raise EvaluationError(f"the surrogate's classes {surrogate['class_names']} differ "
                              f"from the model's {victim['class_names']}")
    return victim, surrogate


def resolve_datasets(spec: EvalSpec, victim: dict[str, Any]) -> tuple[Any, Any]:
    """The evaluated images (the card's split), and the images universal attacks learn
    on (None: the evaluated ones)."""
    from .dataset import DatasetError, load_dataset

    ids = None
    if spec.split != "all":
        listed = victim["split"].get(f"{spec.split}_ids")
        if not isinstance(listed, list):
            raise EvaluationError(f"the model card of {spec.model} lists no {spec.split} "
                                  "split; use --split all")
        ids = set(listed)
    classes = tuple(victim["class_names"])
    try:
        data = load_dataset(spec.data, classes, label_column=spec.label_column, ids=ids,
                            limit=spec.limit)
        # Universal (patch) attacks learn on the model's training images when the test
        # split is evaluated, as Finlayson et al. did; otherwise on the evaluated images.
        train = None
        if spec.split == "test" and isinstance(victim["split"].get("train_ids"), list):
            train = load_dataset(spec.data, classes, label_column=spec.label_column,
                                 ids=set(victim["split"]["train_ids"]))
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    return data, train


def resolve_plugins(spec: EvalSpec, has_surrogate: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attacks' registry entries, and every plugin's record (version, source and
    validated parameters): checked now, not in the middle of the run."""
    import dataclasses

    from .. import api
    from ..engine.plugins import PluginRegistry, discover_plugins

    registry = PluginRegistry(discover_plugins([Path(d) for d in spec.plugin_dirs]))
    infos: dict[str, Any] = {}
    plugins: dict[str, Any] = {}
    for kind, specs in (("attack", spec.attacks), ("detector", spec.detectors)):
        for s in specs:
            try:
                info = registry.get(s["name"], kind=kind)
            except KeyError as exc:
                raise EvaluationError(str(exc).strip("'\"")) from None
            if not info.ok:
                raise EvaluationError(f"{kind} {s['name']} is broken: {info.error}")
            try:
                params = api.make_params(info.cls.Params, s.get("params") or {})
            except (TypeError, ValueError) as exc:
                raise EvaluationError(f"{s['name']}: {exc}") from None
            plugins[s["name"]] = {"kind": kind, "version": info.version,
                                  "source": info.source,
                                  "params": json.loads(json.dumps(dataclasses.asdict(params),
                                                                  default=str))}
            if kind == "attack":
                infos[s["name"]] = info
                if getattr(info.cls, "needs_surrogate", False) and not has_surrogate:
                    raise EvaluationError(f"{s['name']} needs a surrogate model (--surrogate)")
    return infos, plugins


def _items(dataset: Any) -> list[dict[str, Any]]:
    return [{"id": it.id, "path": it.path, "label": it.label} for it in dataset.items]


def prepare(spec: EvalSpec) -> tuple[dict[str, Any], list[Unit], dict[str, Any]]:
    """The run's config (everything a unit needs), its units, and the run.json record."""
    from .. import __version__

    if spec.engine not in ENGINES:
        raise EvaluationError(f"unknown engine {spec.engine!r}; choose from {ENGINES}")
    victim, surrogate = resolve_models(spec)
    data, train = resolve_datasets(spec, victim)
    infos, plugins = resolve_plugins(spec, surrogate is not None)
    config = {
        "model": victim["card"], "surrogate": surrogate["card"] if surrogate else None,
        "positive_index": victim["class_names"].index(victim["positive_class"]),
        "class_names": victim["class_names"],
        "items": _items(data),
        # Universal (patch) attacks run targeted by default: each image pushed to the
        # other class with its class's patch, the seed's setup (one patch per target);
        # a single untargeted patch leaves the images already in its class untouched.
        "attacks": [{"name": s["name"], "params": s.get("params") or {},
                     "targeted": bool(s.get("targeted", infos[s["name"]].scope == "universal"))}
                    for s in spec.attacks],
        "detectors": [{"name": s["name"], "params": s.get("params") or {}}
                      for s in spec.detectors],
        "universal_train": None if train is None else _items(train),
        # what a row describes (units.py): part of the run's identity, so that a folder
        # begun when rows described unrounded tensors is not resumed with 8-bit rows
        "pixels": "8-bit at the working size",
        "image_size": int(spec.image_size), "batch_size": int(spec.batch_size),
        "seed": int(spec.seed), "device": spec.device,
        "plugin_dirs": [str(Path(d).resolve()) for d in spec.plugin_dirs],
    }
    units = plan_units(config, infos)
    identity = {k: v for k, v in config.items() if k != "device"}
    identity["models"] = [victim["weights_sha256"], surrogate and surrogate["weights_sha256"]]
    identity["plugins"] = plugins
    config_sha = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    record = {
        "workbench_version": __version__,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config_sha256": config_sha, "seed": spec.seed,
        "models": {"victim": victim, "surrogate": surrogate},
        "data": {"source": data.source, "split": spec.split, "limit": spec.limit,
                 "n": len(data.items), "counts": data.counts(), "skipped": data.skipped,
                 "fingerprint": data.fingerprint()},
        "plugins": plugins, "image_size": spec.image_size, "batch_size": spec.batch_size,
        "device": spec.device, "engine": spec.engine,
        "units": [u.id for u in units], "command": spec.__dict__,
    }
    return config, units, record


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def finished_units(out: Path) -> dict[str, dict[str, Any]]:
    done = {}
    for f in sorted((out / "units").glob("*.json")):
        try:
            result = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # half-written by a killed process: recomputed
        done[result["unit"]["id"]] = result
    return done


def evaluate(spec: EvalSpec, *, progress: Callable[[int, int, str], None] | None = None,
             unit_progress: Callable[[float, str], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run (or resume) the evaluation; returns the summary. ``progress(done, total,
    message)`` after each unit; ``unit_progress(fraction, message)`` within one (in
    process only)."""
    from .engines import run_units
    from .summary import summarise, write_outputs

    config, units, record = prepare(spec)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "units").mkdir(exist_ok=True)
    run_json = out / "run.json"
    if run_json.is_file():
        try:
            previous = json.loads(run_json.read_text())
        except ValueError:
            previous = {}
        if previous.get("config_sha256") != record["config_sha256"]:
            raise EvaluationError(
                f"{out} holds a different run (other settings, models, data or plugins); "
                "choose a new --out folder to start another")
        record["created"] = previous.get("created", record["created"])
        record["resumed"] = previous.get("resumed", 0) + 1
    _write_atomic(run_json, json.dumps(record, indent=2, default=str) + "\n")
    done = finished_units(out)
    todo = [u for u in units if u.id not in done]
    total = len(units)
    count = {"n": total - len(todo)}
    start = time.perf_counter()
    if progress:
        progress(count["n"], total, f"{count['n']} of {total} units already done"
                 if count["n"] else "starting")

    def on_result(result: dict[str, Any]) -> None:
        uid = result["unit"]["id"]
        _write_atomic(out / "units" / f"{uid}.json", json.dumps(result) + "\n")
        with open(out / "computed.log", "a") as log:
            log.write(f"{uid}\t{result.get('pid', os.getpid())}\t{result.get('device', '')}\t"
                      f"{result.get('seconds', 0):.3f}\n")
        done[uid] = result
        count["n"] += 1
        if progress:
            progress(count["n"], total, uid)

    run_units(spec, config, todo, on_result, unit_progress=unit_progress,
              cancelled=cancelled)
    summary = summarise(config, record, [done[u.id] for u in units])
    summary["seconds_this_session"] = time.perf_counter() - start
    write_outputs(out, config, record, summary, [done[u.id] for u in units])
    record["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write_atomic(run_json, json.dumps(record, indent=2, default=str) + "\n")
    return summary
