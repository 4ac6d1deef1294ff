"""Robustness sweeps, as Du-Harpur et al. (2020, Supplementary Fig. S1) did: a model's
accuracy, sensitivity, specificity and false negatives of the positive class over a grid
of ONE natural transformation at a time, against the untransformed baseline ("green −10:
false negatives 9 → 14, +56%"). docs/sweeps.md says what is measured and how to read it.

Each transformation (``colour``: an offset on one channel; ``rotation``: degrees
counter-clockwise in the same frame; ``translation``: % of the width in x; ``brightness``:
a factor; ``jpeg``: re-encoding at a quality) works on the decoded photo at its native
resolution in 8-bit units of 255, BEFORE the model's own resize and normalisation, and
its result is rounded and clipped to [0, 255]: the 8-bit photo a camera or an export
would store. Uncovered edges are mirrored (``fill="reflect"``) or black ("constant").
Images are decoded once per run and kept as uint8; identity points are the baseline
itself. Intervals: the project's seeded percentile bootstrap (metrics.with_ci), the same
resamples at every point, so the change against the baseline has a paired interval.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import BOOTSTRAP, with_ci
from .sweep_plots import du_harpur_line

TRANSFORMS = ("colour", "rotation", "translation", "brightness", "jpeg")
CHANNELS = ("red", "green", "blue")
FILLS = ("reflect", "constant")
DEFAULT_GRIDS: dict[str, tuple[float, ...]] = {
    "colour": tuple(range(-20, 21, 5)),  # units of 255; includes ±10 (the seed's -10)
    "rotation": tuple(range(0, 361, 45)),  # degrees; includes the seed's 45 and 180
    "translation": tuple(range(-20, 21, 5)),  # % of the width (seed: 50 px of 299)
    "brightness": (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3),  # factor
    "jpeg": (95, 75, 50, 30, 10),  # quality
}
UNITS = {"colour": "offset (units of 255)", "rotation": "angle (degrees)",
         "translation": "shift in x (% of width)", "brightness": "factor",
         "jpeg": "JPEG quality"}
ALIASES = {"color": "colour", "rotate": "rotation", "shift": "translation"}
MAX_POINTS = 200  # per transformation: a typo like 0:360:0.01 should not run for a day
SignalLike = Callable[[], bool] | Any  # a callable, or a threading.Event


class SweepError(Exception):
    """The sweep cannot run; the message says why."""


class SweepCancelled(Exception):  # noqa: N818
    """The user cancelled the sweep."""


@dataclass
class SweepSpec:
    model: str
    data: str
    split: str = "test"  # all, test or train (the model card's split)
    limit: int | None = None  # at most this many images per class
    label_column: str | None = None
    transforms: tuple[str, ...] = TRANSFORMS
    grids: dict[str, Sequence[float]] = field(default_factory=dict)  # overrides
    fill: str = "reflect"
    device: str = "auto"
    batch_size: int = 32
    seed: int = 0
    workers: int | None = None  # threads that transform and resize images


# --- grids --------------------------------------------------------------------------------
def transform_name(word: str) -> str:
    name = ALIASES.get(word.strip().lower(), word.strip().lower())
    if name not in TRANSFORMS:
        raise SweepError(f"unknown transformation {word!r}; choose from {', '.join(TRANSFORMS)}")
    return name


def parse_grid(text: str) -> tuple[str, list[float]]:
    """``NAME=START:STOP:STEP`` (inclusive) or ``NAME=V1,V2,...``, checked."""
    name, sep, values = text.partition("=")
    if not sep or not values.strip():
        raise SweepError(f"--grid {text!r}: expected NAME=START:STOP:STEP or NAME=V1,V2,... "
                         "(e.g. colour=-20:20:5)")
    name = transform_name(name)
    try:
        if ":" in values:
            parts = values.split(":")
            if len(parts) != 3:
                raise ValueError("a range is START:STOP:STEP")
            start, stop, step = (float(v) for v in parts)
            if step == 0 or (stop - start) / step < 0:
                raise ValueError("the step does not lead from start to stop")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_POINTS:
                raise ValueError(f"{count} points; at most {MAX_POINTS}")
            grid = [round(start + k * step, 9) for k in range(count)]
        else:
            grid = [float(v) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise SweepError(f"--grid {text!r}: {exc}") from None
    return name, check_grid(name, grid)


def check_grid(name: str, values: Sequence[float]) -> list[float]:
    """The values as floats, or SweepError naming the one outside the transformation's range."""
    limits = {"colour": (-255, 255), "rotation": (-1e6, 1e6), "translation": (-50, 50),
              "brightness": (1e-3, 10), "jpeg": (0, 100)}
    lo, hi = limits[name]
    out = [float(v) for v in values]
    if not out or len(out) > MAX_POINTS:
        raise SweepError(f"--grid {name}: give 1 to {MAX_POINTS} values")
    for v in out:
        if not (math.isfinite(v) and lo <= v <= hi) or (name == "jpeg" and v != int(v)):
            what = "a whole number " if name == "jpeg" else ""
            raise SweepError(f"--grid {name}: {v:g} is not {what}in [{lo:g}, {hi:g}] "
                             f"({UNITS[name]})")
    return list(dict.fromkeys(out))  # once each, in the given order


def is_identity(transform: str, value: float) -> bool:
    return {"colour": value == 0, "brightness": value == 1, "translation": value == 0,
            "rotation": value % 360 == 0, "jpeg": False}[transform]


def point_label(transform: str, series: str, value: float) -> str:
    """How a point reads in Du-Harpur's form: "green −10", "rotation 45°"."""
    signed = "0" if value == 0 else f"{'−' if value < 0 else '+'}{abs(value):g}"
    return {"colour": f"{series} {signed}", "rotation": f"rotation {value:g}°",
            "translation": f"shift x {signed}%", "brightness": f"brightness ×{value:g}",
            "jpeg": f"JPEG quality {value:g}"}[transform]


@dataclass(frozen=True)
class Point:
    transform: str
    series: str  # the channel for colour, else ""
    value: float

    @property
    def label(self) -> str:
        return point_label(self.transform, self.series, self.value)

    @property
    def identity(self) -> bool:
        return is_identity(self.transform, self.value)


def plan_points(grids: dict[str, Sequence[float]]) -> list[Point]:
    """Every point of the sweep, transformation by transformation (colour: per channel)."""
    points = []
    for name, values in grids.items():
        for series in (CHANNELS if name == "colour" else ("",)):
            points += [Point(name, series, float(v)) for v in values]
    return points


# --- transformations (uint8 H x W x C in, uint8 H x W x C out) ---------------------------
def _border(fill: str) -> int:
    import cv2

    # REFLECT_101 mirrors about the edge pixel without repeating it: no visible seam
    return cv2.BORDER_REFLECT_101 if fill == "reflect" else cv2.BORDER_CONSTANT


def _colour(image: np.ndarray, series: str, value: float, fill: str) -> np.ndarray:
    c = CHANNELS.index(series)
    if image.shape[2] != 3:
        raise SweepError("colour offsets need colour images; this dataset is greyscale "
                         "(leave colour out of --transforms)")
    out = image.copy()
    out[..., c] = np.clip(np.rint(image[..., c].astype(np.float32) + value), 0, 255)
    return out


def _brightness(image: np.ndarray, series: str, value: float, fill: str) -> np.ndarray:
    return np.clip(np.rint(image.astype(np.float32) * value), 0, 255).astype(np.uint8)


def _rotation(image: np.ndarray, series: str, value: float, fill: str) -> np.ndarray:
    import cv2

    angle = float(value) % 360.0
    if angle == 0:
        return image
    if angle == 180:  # exact: a half turn maps the pixel grid onto itself
        return np.ascontiguousarray(image[::-1, ::-1])
    h, w = image.shape[:2]
    # pixel centres are at integers, so the image's centre is ((w-1)/2, (h-1)/2)
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=_border(fill), borderValue=0)
    return out.reshape(image.shape)


def _translation(image: np.ndarray, series: str, value: float, fill: str) -> np.ndarray:
    import cv2

    w = image.shape[1]
    dx = int(round(value / 100.0 * w))
    if dx == 0:
        return image
    # a whole-pixel shift needs no interpolation: pad on one side, crop the other
    padded = cv2.copyMakeBorder(image, 0, 0, max(dx, 0), max(-dx, 0), _border(fill),
                                value=0).reshape(image.shape[0], -1, image.shape[2])
    return np.ascontiguousarray(padded[:, :w] if dx > 0 else padded[:, -dx:-dx + w])


def _jpeg(image: np.ndarray, series: str, value: float, fill: str) -> np.ndarray:
    import cv2

    bgr = image[..., ::-1] if image.shape[2] == 3 else image[..., 0]  # OpenCV is BGR
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr),
                           [cv2.IMWRITE_JPEG_QUALITY, int(value)])
    if not ok:
        raise SweepError(f"OpenCV could not encode a JPEG at quality {value:g}")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return np.ascontiguousarray(dec[..., ::-1] if dec.ndim == 3 else dec[..., None])


_APPLY = {"colour": _colour, "brightness": _brightness, "rotation": _rotation,
          "translation": _translation, "jpeg": _jpeg}


def apply_transform(image: np.ndarray, point: Point, fill: str = "reflect") -> np.ndarray:
    """``image`` (uint8 H x W x C, 0-255) under one sweep point; the input is not changed."""
    if fill not in FILLS:
        raise SweepError(f"unknown fill {fill!r}; choose from {', '.join(FILLS)}")
    return _APPLY[point.transform](image, point.series, point.value, fill)


# --- decoding and the model ---------------------------------------------------------------
def _stopper(cancelled: SignalLike | None) -> Callable[[], bool]:
    if cancelled is None:
        return lambda: False
    return cancelled.is_set if hasattr(cancelled, "is_set") else cancelled


def decode_image(path: str, card: Any = None) -> np.ndarray:
    """The photo as uint8 H x W x C (C = 1 or 3) through the project's model-input mapping
    (:func:`workbench.imaging.model_input.to_model_input`), refused when ``card``'s model
    does not fit it. More than 8 bits are rounded to 8: the sweep's units are of 255."""
    from ..imaging.loader import load_image
    from ..imaging.model_input import to_model_input
    from ..models.fit import fit_problem

    image = load_image(path)
    if card is not None and (problem := fit_problem(card, image)) is not None:
        raise SweepError(f"{path}: {problem} A sweep of it measures nothing; choose a model "
                         "trained on these images")
    x, _ = to_model_input(image)
    return np.rint(x.transpose(1, 2, 0) * 255.0).astype(np.uint8)


def decode_images(paths: Sequence[str], card: Any = None, *, first: np.ndarray | None = None,
                  workers: int | None = None,
                  progress: Callable[[int, int, str], None] | None = None,
                  cancelled: SignalLike | None = None) -> list[np.ndarray]:
    """Every image decoded once (the first alone, so that a model that does not fit the
    data is refused before the rest is read; ``first``: it, already decoded)."""
    stop = _stopper(cancelled)
    out = [first if first is not None else decode_image(paths[0], card)]
    if progress:
        progress(1, len(paths), f"decoded {os.path.basename(paths[0])}")
    pool = ThreadPoolExecutor(max_workers=_workers(workers))
    try:
        for k, image in enumerate(pool.map(lambda p: decode_image(p, card), paths[1:]), 2):
            if stop():
                raise SweepCancelled("the sweep was cancelled")
            out.append(image)
            if progress:
                progress(k, len(paths), f"decoded {os.path.basename(paths[k - 1])}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


def _workers(workers: int | None) -> int:
    return max(1, workers or min(8, os.cpu_count() or 1))


def predict_images(model: Any, images: Sequence[np.ndarray], point: Point | None = None, *,
                   fill: str = "reflect", batch_size: int = 32, pool: Any = None,
                   cancelled: SignalLike | None = None) -> np.ndarray:
    """Class probabilities (N x classes) of ``images`` under ``point`` (None: as they are).

    Each transformed photo goes to the model's device as uint8, becomes [0, 1] float there
    and is resized by the model's own resize (models.resize.antialiased_resize, what the
    Classifier wrapper does to any image not at its input size), so the network sees
    bitwise the inputs ``predict_proba`` on the native-size photo would give it (only the
    batch size differs, which can move the last bits of a probability). An
    ensemble's members each resize on their own: its images go one at a time, whole."""
    import torch

    from ..models.classifier import predict_proba
    from ..models.resize import antialiased_resize

    stop = _stopper(cancelled)
    size = None if model.card.architecture == "ensemble" else tuple(model.card.input_size)

    def one(image: np.ndarray) -> Any:
        im = image if point is None or point.identity else apply_transform(image, point, fill)
        t = torch.from_numpy(np.ascontiguousarray(im)).to(model.device)
        x = t.permute(2, 0, 1)[None].float().div(255.0)
        return x if size is None else antialiased_resize(x, size)

    own = pool is None
    pool = pool or ThreadPoolExecutor(max_workers=_workers(None))
    probs = []
    try:
        step = batch_size if size is not None else 1
        for start in range(0, len(images), step):
            if stop():
                raise SweepCancelled("the sweep was cancelled")
            xs = list(pool.map(one, images[start:start + step]))
            probs.append(predict_proba(model, torch.cat(xs), batch_size=step).cpu())
    finally:
        if own:
            pool.shutdown(wait=True)
    return torch.cat(probs).numpy().astype(np.float64)


# --- metrics ------------------------------------------------------------------------------
def point_metrics(pred: np.ndarray, labels: np.ndarray, positive: int,
                  baseline_pred: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity (95% bootstrap intervals), the false negatives
    of the positive class (interval: the miss rate's, times the positives) and, against
    ``baseline_pred``, the change in false negatives with its paired interval."""
    y = np.asarray(labels)
    pred = np.asarray(pred)
    is_pos = y == positive
    correct, hit = pred == y, pred == positive
    n, n_pos = len(y), int(is_pos.sum())

    def rate(mask_of: np.ndarray, want: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: float(want[i][mask_of[i]].mean()) if mask_of[i].any() else math.nan

    sens = with_ci(rate(is_pos, hit), n, seed + 1)
    missed = is_pos & ~hit
    m: dict[str, Any] = {
        "n": n, "n_positive": n_pos, "n_negative": n - n_pos,
        "accuracy": with_ci(lambda i: float(correct[i].mean()), n, seed),
        "sensitivity": sens,
        "specificity": with_ci(rate(~is_pos, ~hit), n, seed + 2),
        "false_negatives": {"value": int(missed.sum()),
                            "ci_low": n_pos * (1.0 - sens["ci_high"]),
                            "ci_high": n_pos * (1.0 - sens["ci_low"])},
    }
    if baseline_pred is not None:
        base_missed = is_pos & (np.asarray(baseline_pred) != positive)
        delta = missed.astype(int) - base_missed.astype(int)
        m["fn_change"] = with_ci(lambda i: float(delta[i].sum()), n, seed + 3)
        before = int(base_missed.sum())
        m["fn_change_percent"] = (100.0 * (int(missed.sum()) - before) / before
                                  if before else None)
    return m


# --- the sweep ----------------------------------------------------------------------------
def sweep_images(model: Any, images: Sequence[np.ndarray], labels: Sequence[int],
                 positive: int, grids: dict[str, Sequence[float]], *,
                 ids: Sequence[str] | None = None, fill: str = "reflect",
                 batch_size: int = 32, seed: int = 0, workers: int | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 cancelled: SignalLike | None = None) -> dict[str, Any]:
    """The baseline and every point of ``grids`` (transform -> values) on decoded images.
    ``progress(done, total, message)`` counts images through the model."""
    y = np.asarray(labels)
    ids = list(ids) if ids is not None else [str(k) for k in range(len(y))]
    points = plan_points({k: check_grid(k, v) for k, v in grids.items()})
    computed = [p for p in points if not p.identity]
    total, done = len(images) * (1 + len(computed)), 0
    pool = ThreadPoolExecutor(max_workers=_workers(workers))

    def record(p_all: np.ndarray, point: Point | None, base: Any = None) -> dict[str, Any]:
        pred = p_all.argmax(1)
        where = (point.transform, point.series, point.value, point.label, point.identity) \
            if point else ("baseline", "", None, "baseline", True)
        return {**dict(zip(("transform", "series", "value", "label", "identity"), where,
                           strict=True)),
                **point_metrics(pred, y, positive, base, seed),
                "missed": [ids[k] for k in np.flatnonzero((y == positive) & (pred != positive))],
                "p_positive": [round(float(v), 6) for v in p_all[:, positive]]}

    try:
        if progress:
            progress(0, total, "baseline")
        base_p = predict_images(model, images, None, fill=fill, batch_size=batch_size,
                                pool=pool, cancelled=cancelled)
        base_pred = base_p.argmax(1)
        baseline = record(base_p, None, base_pred)
        done += len(images)
        rows = []
        for point in points:
            if progress and not point.identity:
                progress(done, total, point.label)
            p_all = base_p if point.identity else predict_images(
                model, images, point, fill=fill, batch_size=batch_size, pool=pool,
                cancelled=cancelled)
            row = record(p_all, point, base_pred)
            row["du_harpur"] = du_harpur_line(row, baseline)
            rows.append(row)
            done += 0 if point.identity else len(images)
        if progress:
            progress(total, total, "done")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    baseline["du_harpur"] = du_harpur_line(baseline, baseline)
    return {"baseline": baseline, "points": rows}


def spec_grids(spec: SweepSpec) -> dict[str, list[float]]:
    """The checked grid of each chosen transformation (defaults where none is given), or
    SweepError; loads nothing, so a caller can check settings before anything heavy."""
    names = list(dict.fromkeys(transform_name(t) for t in spec.transforms))
    unknown = {transform_name(g) for g in spec.grids} - set(names)
    if unknown:
        raise SweepError(f"--grid names {', '.join(sorted(unknown))}, which is not in "
                         "--transforms")
    if spec.fill not in FILLS:
        raise SweepError(f"unknown fill {spec.fill!r}; choose from {', '.join(FILLS)}")
    if spec.batch_size < 1:
        raise SweepError("the batch size must be at least 1")
    given = {transform_name(g): v for g, v in spec.grids.items()}
    return {n: check_grid(n, given.get(n, DEFAULT_GRIDS[n])) for n in names}


def run_sweep(spec: SweepSpec, *, progress: Callable[[int, int, str], None] | None = None,
              cancelled: SignalLike | None = None) -> dict[str, Any]:
    """The whole sweep of ``spec``: the model card's split of the dataset, decoded once,
    every point computed; the result is plain JSON (see :mod:`.sweep_plots` to write it)."""
    from .. import __version__
    from ..models.card import ModelCard
    from ..models.device import choose_device
    from ..models.zoo import load_model
    from .runner import EvalSpec, EvaluationError, resolve_datasets, resolve_models

    start = time.perf_counter()
    grids = spec_grids(spec)
    names = list(grids)
    evspec = EvalSpec(model=spec.model, data=spec.data, out="", split=spec.split,
                      limit=spec.limit, label_column=spec.label_column)
    try:
        victim, _ = resolve_models(evspec)
        data, _ = resolve_datasets(evspec, victim)
        device = choose_device(spec.device)
    except (EvaluationError, ValueError) as exc:
        raise SweepError(str(exc)) from None
    paths = [it.path for it in data.items]
    # the first image alone first: a model that does not fit the data is refused before
    # its weights (and torch) load
    first = decode_image(paths[0], ModelCard.load(Path(victim["card"])))
    model = load_model(victim["card"], device)
    n = len(data.items)
    n_points = sum(1 for p in plan_points(grids) if not p.identity)
    grand = n * (2 + n_points)  # decoding counts as one pass over the images

    def shifted(offset: int) -> Callable[[int, int, str], None] | None:
        return (lambda d, _t, m: progress(offset + d, grand, m)) if progress else None

    images = decode_images(paths, model.card, first=first, workers=spec.workers,
                           progress=shifted(0), cancelled=cancelled)
    result = sweep_images(model, images, [it.label for it in data.items],
                          model.card.positive_index, grids, ids=[it.id for it in data.items],
                          fill=spec.fill, batch_size=spec.batch_size, seed=spec.seed,
                          workers=spec.workers, progress=shifted(n), cancelled=cancelled)
    return {
        "kind": "robustness sweep", "workbench_version": __version__,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {k: victim[k] for k in ("name", "card", "card_name", "architecture",
                                         "weights_sha256", "class_names", "positive_class")},
        "data": {"source": data.source, "split": spec.split, "limit": spec.limit, "n": n,
                 "counts": data.counts(), "skipped": data.skipped,
                 "fingerprint": data.fingerprint()},
        "settings": {"transforms": names, "grids": grids, "units": {k: UNITS[k] for k in names},
                     "fill": spec.fill, "batch_size": spec.batch_size, "seed": spec.seed,
                     "device": str(device), "bootstrap_resamples": BOOTSTRAP, "level": 0.95,
                     "pixels": "native resolution, 8-bit (0-255), rounded and clipped after "
                               "each transformation, then the model's own resize"},
        **result,
        "seconds": round(time.perf_counter() - start, 2),
    }
