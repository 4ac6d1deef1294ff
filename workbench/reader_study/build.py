"""Building a blinded reader study from a labelled set and attack plugins.

The models, the data (and the model card's split) and the attack plugins are resolved
exactly as ``workbench evaluate`` resolves them (the same functions of
workbench.evaluation.runner, so the same errors); each manipulated image is attacked as
``workbench attack`` attacks a file (engine.attack_runner.run_attack on the image at its
own resolution, through the model's wrapper) against its true label, untargeted. Then
every case, original or manipulated, is written by the same writer (shown.py).

The study is built in a hidden folder beside ``out`` and renamed into place at the end: a
study folder is complete or absent, never half built (cancel, an error or Ctrl+C removes
the hidden folder; a killed process may leave one, named ``.<out>.building-*``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .design import DesignError, PlannedCase, plan_study
from .layout import (
    KEY_FORMAT,
    KEY_NOTICE,
    PUBLIC_NOTICE,
    STUDY_FORMAT,
    StudyCancelled,
    StudyError,
    questions,
    write_json_atomic,
)
from .shown import shown_suffix, write_shown

INSTRUCTIONS = (
    "Each image is either real (unmodified) or manipulated. For every image, in the order "
    "given, say whether it is real or manipulated, give your diagnosis, and how confident "
    "you are (1 = guessing, 5 = certain). Answer on your own; an answer cannot be changed "
    "once given. Take a break between sessions.")


@dataclass
class StudySpec:
    data: str
    out: str
    attacks: list[dict[str, Any]]  # {"name": plugin, "params": {name: value}}
    model: str = "demo"
    surrogate: str | None = None
    split: str = "all"  # all, test or train: the model card's split
    design: str = "paired"  # see design.py
    fraction_manipulated: float = 0.5
    n: int | None = None  # images shown; None: every lesion (twice when paired)
    seed: int = 0
    max_side: int | None = None  # photos: shrink (both kinds alike) to this longest side
    label_column: str | None = None
    device: str = "auto"
    plugin_dirs: list[str] = field(default_factory=list)


@dataclass
class _Job:
    spec: StudySpec
    victim: Any  # the loaded models
    surrogate: Any
    registry: Any
    infos: dict[str, Any]  # attack name -> PluginInfo
    class_names: tuple[str, ...]
    donors: list[Any]  # items not in the study, for attacks that need a donor image
    plugins: dict[str, Any] = field(default_factory=dict)
    case_progress: Callable[[float, str], None] | None = None
    cancelled: Callable[[], bool] | None = None


def _resolve(spec: StudySpec) -> tuple[dict, dict | None, Any, dict, dict]:
    """(victim entry, surrogate entry, dataset, attack infos, plugin records), resolved by
    the evaluator's own functions."""
    from ..evaluation import runner

    evspec = runner.EvalSpec(model=spec.model, data=spec.data, out=spec.out,
                             surrogate=spec.surrogate, attacks=spec.attacks, split=spec.split,
                             label_column=spec.label_column, plugin_dirs=spec.plugin_dirs)
    try:
        victim, surrogate = runner.resolve_models(evspec)
        data, _train = runner.resolve_datasets(evspec, victim)
        infos, records = runner.resolve_plugins(evspec, surrogate is not None)
    except runner.EvaluationError as exc:
        raise StudyError(str(exc)) from None
    return victim, surrogate, data, infos, records


def _out_folder(out: str) -> Path:
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StudyError(f"{path} already exists and is not an empty folder; choose a new "
                         "--out folder for the study")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _load_models(spec: StudySpec, victim: dict, surrogate: dict | None) -> tuple[Any, Any]:
    from ..models.classifier import load_classifier
    from ..models.device import choose_device

    try:
        device = choose_device(spec.device)
    except ValueError as exc:
        raise StudyError(str(exc)) from None
    return (load_classifier(victim["card"], device),
            load_classifier(surrogate["card"], device) if surrogate else None)


def build_study(spec: StudySpec, *, progress: Callable[[int, int, str], None] | None = None,
                case_progress: Callable[[float, str], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Build the study into ``spec.out`` (a new or empty folder); returns a summary.
    ``progress(done, total, case)`` after each image; ``case_progress(fraction, message)``
    within an attack; ``cancelled()`` is asked between images and inside attacks (then
    :class:`StudyCancelled` is raised and nothing is left). Errors: :class:`StudyError`."""
    from ..engine.plugins import PluginRegistry, discover_plugins

    start = time.perf_counter()
    out = _out_folder(spec.out)
    victim, surrogate, data, infos, records = _resolve(spec)
    try:
        plan = plan_study(data.items, design=spec.design, n=spec.n,
                          fraction=spec.fraction_manipulated,
                          attacks=[a["name"] for a in spec.attacks], seed=spec.seed)
    except DesignError as exc:
        raise StudyError(str(exc)) from None
    shown_ids = {pc.item.id for pc in plan}
    models = _load_models(spec, victim, surrogate)
    registry = PluginRegistry(discover_plugins([Path(d) for d in spec.plugin_dirs]))
    job = _Job(spec, *models, registry, infos, tuple(victim["class_names"]),
               [it for it in data.items if it.id not in shown_ids] or list(data.items),
               case_progress=case_progress, cancelled=cancelled)
    # not tempfile.mkdtemp: its 0700 would become the study folder's mode
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
        (tmp / "images").mkdir()
        entries = []
        for k, pc in enumerate(plan):
            if cancelled is not None and cancelled():
                raise StudyCancelled("cancelled: no study was written")
            entries.append(_make_case(job, pc, tmp))
            if progress is not None:
                progress(k + 1, len(plan), pc.case)
        _write_files(tmp, spec, plan, entries, victim, surrogate, data, records)
        if out.is_dir():
            out.rmdir()  # empty (checked): the finished study takes its place
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _summary(out, spec, entries, time.perf_counter() - start)


def _write_files(folder: Path, spec: StudySpec, plan: list[PlannedCase],
                 entries: list[dict[str, Any]], victim: dict, surrogate: dict | None,
                 data: Any, records: dict[str, Any]) -> None:
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    blocks = [[pc.case for pc in plan if pc.block == b]
              for b in sorted({pc.block for pc in plan})]
    classes = list(victim["class_names"])
    write_json_atomic(folder / "study.json", {
        "format": STUDY_FORMAT, "notice": PUBLIC_NOTICE, "created": created,
        "instructions": INSTRUCTIONS, "cases": [e["case"] for e in entries],
        "images": {e["case"]: e["image"] for e in entries}, "blocks": blocks,
        "class_names": classes, "questions": questions(classes)})
    manipulated = sum(e["truth"] == "manipulated" for e in entries)
    write_json_atomic(folder / "key.json", {
        "format": KEY_FORMAT, "notice": KEY_NOTICE, "created": created,
        "design": spec.design, "seed": spec.seed, "requested": asdict(spec),
        "images": len(entries), "manipulated": manipulated,
        "fraction_manipulated": manipulated / len(entries),
        "models": {"victim": victim, "surrogate": surrogate},
        "data": {"source": data.source, "split": spec.split, "n": len(data.items),
                 "counts": data.counts(), "skipped": data.skipped,
                 "fingerprint": data.fingerprint()},
        "plugins": records, "cases": entries})


def _summary(out: Path, spec: StudySpec, entries: list[dict[str, Any]], seconds: float
             ) -> dict[str, Any]:
    attacked = [e for e in entries if e["truth"] == "manipulated"]
    return {"study": str(out), "design": spec.design, "images": len(entries),
            "manipulated": len(attacked),
            "attacks": dict(Counter(e["attack"] for e in attacked)),
            "unchanged": [e["case"] for e in attacked if e["change"]["unchanged"]],
            "model_fooled": sum(not e["model"]["correct"] for e in attacked),
            "seconds": round(seconds, 2)}


def _fit(x: Any, image: Any, max_side: int | None, where: str) -> Any:
    """The image shrunk (area average) to ``max_side``, the same for both kinds; photos
    only, since a DICOM's pixel spacing would no longer be true."""
    if not max_side or max(x.shape[1:]) <= max_side:
        return x
    if image.kind != "photo":
        raise StudyError(f"{where}: --max-side shrinks photographs only, not DICOM images")
    import cv2
    import numpy as np

    h, w = x.shape[1:]
    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(np.ascontiguousarray(x.transpose(1, 2, 0)), size,
                       interpolation=cv2.INTER_AREA)
    return np.clip(small.reshape(size[1], size[0], -1).transpose(2, 0, 1), 0.0, 1.0)


def _make_case(job: _Job, pc: PlannedCase, folder: Path) -> dict[str, Any]:
    """Load, attack (when manipulated), write and measure one case; its key entry."""
    from ..imaging.errors import ImageLoadError
    from ..imaging.export import ExportError
    from ..imaging.loader import load_image
    from ..imaging.model_input import to_model_input

    try:
        image = load_image(pc.item.path)
        x, mapping = to_model_input(image)
        x = _fit(x, image, job.spec.max_side, pc.item.path)
        entry: dict[str, Any] = {
            "case": pc.case, "truth": "manipulated" if pc.manipulated else "real",
            "block": pc.block, "twin": pc.twin, "lesion": pc.item.id,
            "source": pc.item.path, "label": job.class_names[pc.item.label],
            "attack": pc.attack, "size": list(x.shape[1:])}
        shown = _attack(job, pc, x, entry) if pc.manipulated else x
        path = folder / "images" / f"{pc.case}{shown_suffix(image)}"
        write_shown(image, shown, mapping, path, pc.case, f"{job.spec.seed}")
        entry["image"] = f"images/{path.name}"
        entry.update(_measure(job, path, x, shown, mapping, image))
        entry["model"]["correct"] = entry["model"]["class"] == entry["label"]
        if not pc.manipulated:
            entry["change"] = None  # written from the same pixels: nothing to measure
    except (ImageLoadError, ExportError) as exc:
        raise StudyError(str(exc)) from None
    return entry


def _attack_params(job: _Job, pc: PlannedCase, info: Any) -> dict[str, Any]:
    """The user's parameters of the attack; an attack that inserts a region cut from a
    donor image (a ``donor_file`` parameter left empty) gets a lesion of another class
    that the study does not show, chosen by the seed."""
    from .. import api

    given = dict(next(a for a in job.spec.attacks if a["name"] == pc.attack).get("params")
                 or {})
    p = api.make_params(info.cls.Params, given)
    if hasattr(p, "donor_file") and not p.donor_file and getattr(p, "mode", "insert") \
            == "insert":
        pool = [it for it in job.donors if it.label != pc.item.label and it.id != pc.item.id]
        pool = pool or [it for it in job.donors if it.id != pc.item.id]
        if pool:
            pick = zlib.crc32(f"{job.spec.seed}:{pc.item.id}".encode()) % len(pool)
            given["donor_file"] = str(sorted(pool, key=lambda it: it.id)[pick].path)
    return given


def _attack(job: _Job, pc: PlannedCase, x: Any, entry: dict[str, Any]) -> Any:
    import torch

    from ..engine.attack_runner import AttackCancelled, AttackFailed, run_attack
    from ..evaluation.units import unit_seed

    info = job.infos[pc.attack]
    if pc.attack not in job.plugins:
        job.plugins[pc.attack] = info.create()
    try:
        outcome = run_attack(
            job.plugins[pc.attack], job.victim, torch.from_numpy(x)[None],
            labels=torch.tensor([pc.item.label]), params=_attack_params(job, pc, info),
            surrogate=job.surrogate, seed=unit_seed(job.spec.seed, f"{pc.attack}:{pc.item.id}"),
            progress=job.case_progress, cancelled=job.cancelled,
            plugin_lookup=job.registry.create)
    except AttackCancelled:
        raise StudyCancelled("cancelled: no study was written") from None
    except AttackFailed as exc:
        raise StudyError(f"{pc.item.path}: {str(exc).splitlines()[0]}") from None
    entry.update({"plugin_version": outcome.plugin_version,
                  "params": dict(outcome.params),
                  "attack_notes": outcome.notes})
    return outcome.adversarial[0].numpy()


def _measure(job: _Job, path: Path, x: Any, shown: Any, mapping: Any, image: Any
             ) -> dict[str, Any]:
    """The model's answer on the shown file as written (re-read: quantised as a reader
    sees it), and how much the written pixels differ from the written original's."""
    import dataclasses

    import numpy as np
    import torch

    from ..imaging.loader import load_image
    from ..imaging.model_input import to_model_input
    from ..models.classifier import predict_proba

    x_shown, _ = to_model_input(load_image(path), 0, value_range=(mapping.lo, mapping.hi))
    probs = predict_proba(job.victim, torch.from_numpy(x_shown)[None])[0]
    best = int(probs.argmax())
    stored = (dataclasses.replace(mapping, lo=0.0, hi=255.0, dtype="|u1")
              if image.kind == "photo" else mapping)
    diff = np.abs(stored.to_stored(shown).astype(np.int64)
                  - stored.to_stored(x).astype(np.int64))
    changed = diff.max(axis=0) > 0 if diff.ndim == 3 else diff > 0
    return {
        "model": {"class": job.class_names[best],
                  "probabilities": {c: round(float(probs[i]), 6)
                                    for i, c in enumerate(job.class_names)}},
        "change": {"max_stored": int(diff.max()), "changed_fraction":
                   round(float(changed.mean()), 6), "unchanged": bool(diff.max() == 0)}}
