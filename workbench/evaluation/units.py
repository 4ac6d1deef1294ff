"""One unit of evaluation work, computed anywhere: this process, or a Ray worker.

A unit is one batch of images under one condition: ``clean``, or an attack in a mode:
- ``white``: crafted on the victim (Finlayson et al.'s white-box rows);
- ``black``: crafted on the surrogate, then shown to the victim (their black-box rows);
- ``query``: a score-based black-box attack that queries the victim (Du-Harpur et al.);
- ``transfer``: an attack that itself needs the surrogate (e.g. transfer-pgd).
Universal attacks (one patch for the set) are one unit over the whole dataset: they learn
on the images they are applied to (transductive; noted in the summary).

Every image a row describes is an 8-bit picture at the working size: the clean image is
the resized photo rounded to whole 8-bit steps, and every attacked copy is put on that
grid (the engine's ``on_stored_grid``: rounded, and within its own L-inf budget, so
eps 0.01 keeps 2 steps, never 3) before the victim judges it. So a row's prediction, its
success and its detector scores are of one and the same picture, the one a reviewer who
received the saved image would see. (They were of two: the prediction of the unrounded
float tensor, the detectors' of its 8-bit copy.) The victim's answer on the unrounded
tensor is kept as ``correct_unrounded``: what the seed papers, measuring float tensors,
report.

``compute_unit(config, unit)`` depends only on its arguments and files on disk, and is
seeded from the run's seed and the unit's id, so any engine gives the same rows and a
resumed run equals an uninterrupted one. Everything returned is plain JSON.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the evaluated pictures' grid: whole 8-bit steps over [0, 1]
LEVELS = 255

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class Unit:
    id: str
    condition: str  # "clean" or "<attack>/<mode>"
    attack: str  # "" for clean
    mode: str  # "", white, black, query, transfer
    indices: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "condition": self.condition, "attack": self.attack,
                "mode": self.mode, "indices": list(self.indices)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Unit:
        return cls(d["id"], d["condition"], d["attack"], d["mode"], tuple(d["indices"]))


def modes_for(info: Any, have_surrogate: bool) -> list[str]:
    """The modes an attack is evaluated in (see the module docstring)."""
    if getattr(info, "cls", None) is not None and getattr(info.cls, "needs_surrogate", False):
        return ["transfer"] if have_surrogate else []
    if info.threat == "score-based black-box":
        return ["query"]
    return ["white", "black"] if have_surrogate else ["white"]


def plan_units(config: dict[str, Any], attack_infos: dict[str, Any]) -> list[Unit]:
    """Every unit of a run, in a fixed order (clean first)."""
    n = len(config["items"])
    bs = int(config["batch_size"])
    batches = [tuple(range(i, min(i + bs, n))) for i in range(0, n, bs)]
    units = [Unit(f"clean-b{k:04d}", "clean", "", "", b) for k, b in enumerate(batches)]
    for spec in config["attacks"]:
        info = attack_infos[spec["name"]]
        for mode in modes_for(info, bool(config.get("surrogate"))):
            cond = f"{spec['name']}/{mode}"
            safe = cond.replace("/", "-")
            if info.scope == "universal":
                units.append(Unit(f"{safe}-all", cond, spec["name"], mode, tuple(range(n))))
            else:
                units += [Unit(f"{safe}-b{k:04d}", cond, spec["name"], mode, b)
                          for k, b in enumerate(batches)]
    return units


def unit_seed(seed: int, unit_id: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(unit_id.encode())) % (2 ** 31)


# --- worker-side state (one per process; Ray workers keep theirs between tasks) ---------
def _cached(key: str, make: Callable[[], Any]) -> Any:
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make()
        return _CACHE[key]


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _model(card: str, device: str) -> Any:
    from ..models.classifier import load_classifier

    return _cached(f"model:{card}:{device}", lambda: load_classifier(card, device))


def _registry(plugin_dirs: tuple[str, ...]) -> Any:
    from pathlib import Path

    from ..engine.plugins import PluginRegistry, discover_plugins

    return _cached(f"registry:{plugin_dirs}", lambda: PluginRegistry(
        discover_plugins([Path(d) for d in plugin_dirs])))


# Decoded and resized images, kept for the run: every condition of a run (clean, each
# attack, the training images of a learned patch) uses the same images at the same size,
# and decoding a photo costs more than a forward pass of the model at its input size.
# Bounded, least recently used first out; keyed by the file's size and modification time
# so a changed file is read again.
_IMAGES: OrderedDict[tuple, Any] = OrderedDict()
_IMAGES_BYTES = [0]
IMAGE_CACHE_BYTES = 1 << 30
_decodes = [0]  # how many images were decoded by this process (tests read it)


def _resized(path: str, size: int) -> Any:
    import torch
    import torch.nn.functional as F  # noqa: N812

    from ..imaging.loader import load_image
    from ..imaging.model_input import to_model_input

    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns, size)
    with _CACHE_LOCK:
        if key in _IMAGES:
            _IMAGES.move_to_end(key)
            return _IMAGES[key]
    x, _ = to_model_input(load_image(path))
    _decodes[0] += 1
    t = F.interpolate(torch.from_numpy(x)[None], size=(size, size), mode="bilinear",
                      align_corners=False, antialias=True).clamp(0, 1)
    t = torch.round(t * LEVELS) / LEVELS  # the 8-bit picture (module docstring)
    with _CACHE_LOCK:
        _IMAGES[key] = t
        _IMAGES_BYTES[0] += t.numel() * t.element_size()
        while _IMAGES_BYTES[0] > IMAGE_CACHE_BYTES and len(_IMAGES) > 1:
            _k, old = _IMAGES.popitem(last=False)
            _IMAGES_BYTES[0] -= old.numel() * old.element_size()
    return t


def load_batch(paths: list[str], size: int) -> Any:
    """Images as an N x C x size x size float tensor in [0, 1] (antialiased bilinear, the
    resize the classifier wrapper itself uses, then rounded to whole 8-bit steps).
    Greyscale stays one channel unless the batch mixes greyscale and colour. Each image
    is decoded once per process and run (``_resized``); the batch is a new tensor, so an
    attack cannot change the cache."""
    import torch

    xs = [_resized(p, size) for p in paths]
    if len({t.shape[1] for t in xs}) > 1:
        xs = [t.expand(-1, 3, -1, -1) for t in xs]
    return torch.cat(xs)


class _ModelCalls:
    """Counts the images each model is run on during an attack, apart by whether a
    backward pass can follow (grad enabled and an input that requires it): what the
    floor of a unit is made of."""

    def __init__(self, models: list[Any]) -> None:
        import torch

        # (model id, grad, batch size, C, H, W) -> calls: each call is priced at its own
        # batch size (a query attack sends its candidates in large batches, and a forward
        # per image costs less there than at the unit's batch size)
        self.calls: dict[tuple, int] = {}

        def hook(module: Any, inputs: Any) -> None:
            x = inputs[0] if inputs else None
            if not hasattr(x, "shape") or x.dim() != 4:
                return
            grad = torch.is_grad_enabled() and bool(getattr(x, "requires_grad", False))
            key = (id(module), grad, *map(int, x.shape))
            self.calls[key] = self.calls.get(key, 0) + 1

        self.handles = [m.register_forward_pre_hook(hook) for m in
                        {id(m): m for m in models}.values()]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _bucket(n: int) -> int:
    """The batch size a call of ``n`` images is priced at: the next power of two, so a
    run prices a handful of sizes, not every size its early-stopping attacks and DE
    generations happen to send (each priced size costs model passes of its own). A
    larger batch costs no more per image, so the floor errs low and the ratio high."""
    return 1 << max(0, int(n) - 1).bit_length()


def _per_image_cost(model: Any, key: str, grad: bool, shape: tuple[int, ...]) -> float:
    """Seconds per image of one forward (no grad) or of one forward + backward to the
    input, for a batch of ``shape`` on this model, measured once per process (the
    floor's unit prices). Only the kind a unit needed is measured: a query attack's
    large batches are never run backward, and pricing a backward it never made cost
    more than its whole search. The input comes from a private generator: the run's
    global torch RNG is left as it was, whichever unit of a process pays for this."""
    def measure() -> float:
        import statistics
        import time

        import torch

        gen = torch.Generator(device=model.device).manual_seed(0)
        x = torch.rand(*shape, generator=gen, device=model.device)

        def call() -> None:
            if grad:
                xi = x.clone().requires_grad_(True)
                torch.autograd.grad(model(xi).sum(), xi)
            else:
                with torch.inference_mode():
                    model(x)
            if model.device.type == "cuda":
                torch.cuda.synchronize()

        # small batches are noisy: a warm-up and the median of three; a large one the
        # unit has just run (the model is warm) once
        runs = 3 if shape[0] <= 64 else 1
        if runs > 1:
            call()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        return statistics.median(times) / shape[0]

    return _cached(f"cost:{key}:{grad}:{shape}", measure)


def clear_image_cache() -> None:
    """Forget every decoded image (benchmarks time a cold decode; tests start empty)."""
    with _CACHE_LOCK:
        _IMAGES.clear()
        _IMAGES_BYTES[0] = 0


def _priced(calls: _ModelCalls, models: list[Any], device: str) -> dict[str, Any]:
    """A unit's floor: every model call it made, priced at its pass and batch shape."""
    import time

    pricing = time.perf_counter()  # the first units of a process pay for the prices
    floor, images = 0.0, [0, 0]
    by_id = {id(m): m for m in models}
    for (mid, grad, n, *chw), n_calls in calls.calls.items():
        m = by_id[mid]
        per_image = _per_image_cost(m, f"{m.card.name}:{device}", grad,
                                    (_bucket(n), *chw))
        floor += n_calls * n * per_image
        images[int(grad)] += n_calls * n
    return {"floor_seconds": floor, "images_forward": images[0],
            "images_forward_backward": images[1],
            "pricing_seconds": time.perf_counter() - pricing}


def compute_unit(config: dict[str, Any], unit_json: dict[str, Any],
                 progress: Callable[[float, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> dict[str, Any]:
    """The per-image rows of one unit (see the module docstring)."""
    import time

    import torch

    from ..engine.attack_runner import on_stored_grid, perturbation_norms
    from ..models.classifier import predict_proba

    unit = Unit.from_json(unit_json)
    start = time.perf_counter()
    device = resolve_device(config.get("device", "auto"))
    torch.manual_seed(unit_seed(config["seed"], unit.id))
    victim = _model(config["model"], device)
    items = [config["items"][i] for i in unit.indices]
    x = load_batch([it["path"] for it in items], int(config["image_size"]))
    y = torch.tensor([it["label"] for it in items])
    surrogate = _model(config["surrogate"], device) if config.get("surrogate") else None
    models = [m for m in (victim, surrogate) if m is not None]
    calls = _ModelCalls(models)
    loaded = time.perf_counter()
    clean_probs = predict_proba(victim, x).cpu()
    adv, linf, l2, l0, queries, success, notes = x, None, None, None, None, None, ""
    unrounded_pred = None
    if unit.attack:
        unrounded, queries, notes = _attack(config, unit, x, y, victim, surrogate, progress,
                                            cancelled)
        # the 8-bit picture every row describes (module docstring); the victim's answer
        # on the unrounded tensor is kept beside it, the figure a paper measuring float
        # tensors reports (run_attack's ``levels`` rounds too, but judges by the model
        # the attack ran on: the surrogate, for a black-box row)
        adv = on_stored_grid(unrounded, x, LEVELS)
        linf, l2, l0 = (t.tolist() for t in perturbation_norms(adv, x))
        unrounded_pred = predict_proba(victim, unrounded).cpu().argmax(1)
    probs = clean_probs if not unit.attack else predict_proba(victim, adv).cpu()
    calls.remove()
    model_seconds = time.perf_counter() - loaded
    timing = _priced(calls, models, device)
    timing.update(setup_seconds=loaded - start,  # models and images loaded
                  model_seconds=model_seconds)
    detecting = time.perf_counter()
    pos = int(config["positive_index"])
    pred, clean_pred = probs.argmax(1), clean_probs.argmax(1)
    if unit.attack:
        success = (pred != y).tolist()
    scores = _detector_scores(config, adv, items, victim, cancelled, progress)
    rows = []
    for k, it in enumerate(items):
        rows.append({
            "id": it["id"], "index": unit.indices[k], "label": it["label"],
            "condition": unit.condition, "attack": unit.attack, "mode": unit.mode,
            "pred": int(pred[k]), "p_positive": float(probs[k, pos]),
            "confidence": float(probs[k].max()), "correct": bool(pred[k] == y[k]),
            "clean_pred": int(clean_pred[k]), "clean_p_positive": float(clean_probs[k, pos]),
            "clean_correct": bool(clean_pred[k] == y[k]),
            "linf": None if linf is None else float(linf[k]),
            "l2": None if l2 is None else float(l2[k]),
            "l0": None if l0 is None else int(l0[k]),
            "queries": None if queries is None else int(queries[k]),
            "success": None if success is None else bool(success[k]),
            "correct_unrounded": None if unrounded_pred is None
            else bool(unrounded_pred[k] == y[k]),
            "scores": {name: s[k] for name, s in scores.items()},
        })
    timing["detector_seconds"] = time.perf_counter() - detecting
    return {"unit": unit.to_json(), "rows": rows, "device": device, "notes": notes,
            "seconds": time.perf_counter() - start, "timing": timing}


def _attack(config: dict[str, Any], unit: Unit, x: Any, y: Any, victim: Any, surrogate: Any,
            progress: Callable[[float, str], None] | None,
            cancelled: Callable[[], bool] | None) -> tuple[Any, list | None, str]:
    """The unit's attacked images as the attack left them (unrounded), the queries it
    made, and its notes."""
    from ..engine.attack_runner import run_attack

    registry = _registry(tuple(config.get("plugin_dirs", ())))
    spec = next(s for s in config["attacks"] if s["name"] == unit.attack)
    plugin = registry.get(unit.attack, kind="attack").create()
    crafter = surrogate if unit.mode == "black" else victim
    if unit.id.endswith("-all") and config.get("universal_train"):
        adv, notes = _apply_learned_patches(config, spec, plugin, crafter, registry, x, y,
                                            unit, cancelled)
        return adv, None, notes
    outcome = run_attack(
        plugin, crafter, x, labels=y, params=spec.get("params") or {},
        targeted=bool(spec.get("targeted", False)),
        surrogate=surrogate if unit.mode == "transfer" else None,
        seed=unit_seed(config["seed"], unit.id), cancelled=cancelled,
        progress=(lambda f, m="": progress(0.8 * f, m)) if progress else None,
        plugin_lookup=registry.create)
    return outcome.adversarial.to(x.device), outcome.queries, outcome.notes


def _apply_learned_patches(config: dict[str, Any], spec: dict[str, Any], plugin: Any,
                           crafter: Any, registry: Any, x: Any, y: Any, unit: Unit,
                           cancelled: Callable[[], bool] | None) -> tuple:
    """A universal attack learned on the training images (``config["universal_train"]``)
    and its patches pasted on the evaluated ones, each image getting the patch of the
    other class at the plugin's evaluation scale (Finlayson et al.: patches trained on
    the training set, tested on the test set)."""
    import torch

    from .. import api
    from ..engine.attack_runner import other_class_targets, run_attack
    from ..models.classifier import predict_proba

    train = config["universal_train"]
    xt = load_batch([it["path"] for it in train], int(config["image_size"]))
    yt = torch.tensor([it["label"] for it in train])
    seed = unit_seed(config["seed"], unit.id)
    learned = run_attack(plugin, crafter, xt, labels=yt, params=spec.get("params") or {},
                         targeted=True, seed=seed, cancelled=cancelled,
                         plugin_lookup=registry.create)
    patches = {int(k): v for k, v in (learned.artifacts.get("patches") or {}).items()}
    if not patches:
        raise ValueError(f"{unit.attack} returned no patches to apply")
    params = api.make_params(plugin.Params, spec.get("params") or {})
    targets = other_class_targets(y, predict_proba(crafter, x).cpu())
    places = api.seeded_placements(x.shape[0], seed, scale=params.eval_scale,
                                   max_angle=params.max_angle)
    adv = api.paste_patches_by_class(x, patches, targets, places).clamp(0, 1)
    notes = (f"patches learned on {len(train)} training images ({learned.notes}); pasted on "
             f"the evaluated images at scale {params.eval_scale}")
    return adv, notes


def _detector_scores(config: dict[str, Any], x: Any, items: list[dict[str, Any]],
                     victim: Any, cancelled: Callable[[], bool] | None,
                     progress: Callable[[float, str], None] | None
                     ) -> dict[str, list[float | None]]:
    """Each detector's score on each image of the batch, as the 8-bit image a reviewer
    would receive (what is saved is quantised; detectors see what is saved)."""
    import numpy as np

    from ..engine.detector_runner import DetectorFailed, run_detector
    from ..imaging.in_memory import image_from_unit_array

    if not config.get("detectors"):
        return {}
    registry = _registry(tuple(config.get("plugin_dirs", ())))
    out: dict[str, list[float | None]] = {}
    arrays = x.detach().cpu().numpy()
    for d, spec in enumerate(config["detectors"]):
        det = registry.get(spec["name"], kind="detector").create()
        scores: list[float | None] = []
        for k, it in enumerate(items):
            image = image_from_unit_array(np.asarray(arrays[k]), f"{it['id']}.png")
            try:
                o = run_detector(det, image, spec.get("params") or {}, model=victim,
                                 cancelled=cancelled, seed=int(config["seed"]))
                scores.append(None if o.score is None or o.verdict == "inconclusive"
                              else float(o.score))
            except DetectorFailed:
                scores.append(None)
        out[spec["name"]] = scores
        if progress is not None:
            progress(0.8 + 0.2 * (d + 1) / len(config["detectors"]), spec["name"])
    return out
