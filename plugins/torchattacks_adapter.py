"""torchattacks' image attacks as workbench plugins: ``ta-pgd``, ``ta-cw``, ``ta-square``, ...

One Attack class is generated per public torchattacks attack class, with a ``Params`` form
built from the constructor's keyword defaults (numbers, booleans and strings; help text
from torchattacks' own docstring). Our classifiers take [0, 1] images and return logits,
which is what torchattacks expects, so the attack gets the model as it is; the engine's
forward pre-hook counts its model calls and makes cancel work (torchattacks has neither).

torchattacks is an optional extra (``pip install 'workbench[attacks]'``). Without it this
module declares no attacks and discovery goes on. The catalogue is read from torchattacks'
source files with ``ast`` instead of importing it, because importing it imports torch
(about 3 s), and the plugin list is built before the first paint of the window; torchattacks
is imported when an attack runs. A frozen build without the .py files falls back to import.

Supplied by the adapter, not offered as parameters: ``model``, ``n_classes`` (the model's
class count), ``seed`` (the run's seed; the global torch, numpy and random generators are
also seeded for the call and restored after it, so a run is repeatable and leaves no trace),
``verbose`` (off: torchattacks would print). Tuple-valued arguments (Pixle's x_dimensions,
y_dimensions) keep torchattacks' defaults.

Not exposed (see ``SKIPPED`` for the reasons): VANILA, MultiAttack, LGV, and any future
class whose constructor needs an argument without a default. The DLR-based attacks (APGDT,
AutoAttack in every version, APGD and UPGD with loss="dlr") index the third-largest logit
and fail on two-class models such as the demo classifier (DESIGN.md): they are listed and
marked in their summary, and refuse two-class models with a clear error.

Targeted runs use ``set_mode_targeted_by_label``. The few attacks without a targeted mode
run untargeted on a two-class model (the same thing: away from the label is towards the
other class) and refuse a targeted run on more classes.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import importlib.util
import inspect
import operator
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.api import Attack, AttackResult, RunContext, cache_dir, param

PREFIX = "ta-"

# Constructor arguments the adapter fills in itself (never shown in the form).
SUPPLIED = ("model", "n_classes", "seed", "verbose")

# Public torchattacks classes with no generated plugin, and why.
SKIP_REASONS = {
    "VANILA": "returns the images unchanged (torchattacks' no-attack baseline)",
    "MultiAttack": "a wrapper that runs a list of already-built torchattacks attacks; "
                   "AutoAttack (exposed) is the useful ensemble",
    "LGV": "needs a training DataLoader and fine-tunes copies of the model into surrogates, "
           "which a per-image run cannot supply (transfer attacks use ctx.surrogate)",
}

# Score-based: they only read the model's outputs (GN does not even do that).
BLACK_BOX = {"Square", "OnePixel", "Pixle", "SPSA", "GN"}

# DLR loss = (z_y - max_other) / (z_1 - z_3): it needs a third logit (IndexError otherwise).
NEEDS_THREE_CLASSES = {
    "APGDT": "APGD-T's targeted DLR loss",
    "AutoAttack": "every version runs DLR-based parts (APGD-T or APGD-DLR)",
}
DLR_LOSS_OPTION = {"APGD", "UPGD"}  # loss="dlr" fails on two classes, "ce" works

# FAB's targeted mode ignores the given targets: it aims at the runner-up classes by rank
# and wants the true labels (given targets, it finds nothing to attack and returns the input).
PICKS_OWN_TARGETS = {"FAB"}
# JSMA's saliency map holds (C*H*W)^2 entries per step (5.9 G at the demo model's 160 x 160
# RGB, over 100 GB): refuse larger images than this instead of exhausting memory.
JSMA_MAX_VALUES = 4096

# String arguments with a closed set of values (checked against torchattacks' code).
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("*", "norm"): ("Linf", "L2"),
    ("FAB", "norm"): ("Linf", "L2", "L1"),
    ("APGD", "loss"): ("ce", "dlr"),
    ("UPGD", "loss"): ("ce", "margin", "dlr"),
    ("Square", "loss"): ("margin", "ce"),
    ("AutoAttack", "version"): ("standard", "plus", "rand"),
    ("Pixle", "pixel_mapping"): ("random", "similarity", "similarity_random", "distance",
                                 "distance_random"),
    ("TIFGSM", "kernel_name"): ("gaussian", "linear", "uniform"),
    ("PGDRS", "noise_type"): ("guassian", "uniform"),  # sic: torchattacks' spelling
    ("PGDRSL2", "noise_type"): ("guassian", "uniform"),
}
AS_FLOAT = {"c", "kappa", "lam"}  # integer defaults of real-valued constants (CW's c=1, ...)
SIGNED = {"theta"}  # JSMA's theta may be negative (pixels pushed down)
FRACTIONS = {"prob", "diversity_prob", "p_init", "rho"}  # probabilities / fractions: max 1
PIXEL_BUDGETS = {"eps", "alpha", "max_epsilon"}  # offered in steps of 1/255
# EAD logs every max_iterations // 10 iterations: below 10 that is a modulo by zero.
MINIMUMS = {("EADL1", "max_iterations"): 10, ("EADEN", "max_iterations"): 10}


# --- the catalogue ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchattacksClass:
    """One public torchattacks attack class as its source declares it."""

    name: str
    doc: str
    defaults: tuple[tuple[str, Any], ...]  # keyword arguments after model, literal defaults
    required: tuple[str, ...]  # arguments after model without a default
    opaque: tuple[str, ...]  # arguments whose default is not a literal (a class, ...)


class _NotLiteral(Exception):  # noqa: N818 (control flow inside the evaluator)
    pass


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _literal(node: ast.AST) -> Any:
    """The value of a default written as a literal or simple arithmetic (``8 / 255``)."""
    if isinstance(node, ast.Constant) and (node.value is None
                                           or isinstance(node.value, bool | int | float | str)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _literal(node.operand)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _literal(node.left), _literal(node.right)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            return _OPS[type(node.op)](a, b)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    raise _NotLiteral


def _is_literal(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_is_literal(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _catalogue_from_source(init_file: Path) -> list[TorchattacksClass]:
    """Read the public Attack subclasses from torchattacks' source without importing it."""
    root = init_file.parent
    tree = ast.parse(init_file.read_text(encoding="utf-8"))
    where: dict[str, tuple[str, str]] = {}  # public name -> (module path, name there)
    public: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                where[alias.asname or alias.name] = (node.module, alias.name)
        elif (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                   for t in node.targets)):
            public = list(ast.literal_eval(node.value))
    names = public if public is not None else [n for n in where if not n.startswith("_")]
    modules: dict[str, ast.Module] = {}
    out = []
    for name in names:
        if name not in where:
            continue
        module, original = where[name]
        if module not in modules:
            path = root.joinpath(*module.split("."))
            path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
            modules[module] = ast.parse(path.read_text(encoding="utf-8"))
        cls = next((n for n in modules[module].body
                    if isinstance(n, ast.ClassDef) and n.name == original), None)
        if cls is None or not any(_base_name(b) == "Attack" for b in cls.bases):
            continue
        init = next((n for n in cls.body
                     if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        out.append(_entry_from_ast(name, ast.get_docstring(cls) or "", init))
    return out


def _base_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _entry_from_ast(name: str, doc: str, init: ast.FunctionDef | None) -> TorchattacksClass:
    defaults, required, opaque = [], [], []
    if init is not None:
        a = init.args
        positional = a.posonlyargs + a.args
        pos_defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
        pairs = list(zip(positional, pos_defaults + list(a.defaults), strict=True))
        pairs += list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
        for arg, default in pairs[2:]:  # after self and model
            if default is None:
                required.append(arg.arg)
                continue
            try:
                defaults.append((arg.arg, _literal(default)))
            except _NotLiteral:
                opaque.append(arg.arg)
    return TorchattacksClass(name, doc, tuple(defaults), tuple(required), tuple(opaque))


def _catalogue_from_import() -> list[TorchattacksClass]:
    """The same catalogue by importing torchattacks (when its source is not available)."""
    import torchattacks
    from torchattacks.attack import Attack as TABase

    names = getattr(torchattacks, "__all__", None) or [n for n in dir(torchattacks)
                                                       if not n.startswith("_")]
    out = []
    for name in names:
        cls = getattr(torchattacks, name, None)
        if not (inspect.isclass(cls) and issubclass(cls, TABase) and cls is not TABase):
            continue
        defaults, required, opaque = [], [], []
        params = list(inspect.signature(cls.__init__).parameters.values())[2:]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if p.default is p.empty:
                required.append(p.name)
            elif _is_literal(p.default):
                defaults.append((p.name, p.default))
            else:
                opaque.append(p.name)
        out.append(TorchattacksClass(name, inspect.cleandoc(cls.__doc__ or ""),
                                     tuple(defaults), tuple(required), tuple(opaque)))
    return out


def torchattacks_catalogue() -> list[TorchattacksClass]:
    """torchattacks' public attack classes, or [] when it is not installed."""
    try:
        spec = importlib.util.find_spec("torchattacks")
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    origin = Path(spec.origin) if spec.origin else None
    if origin is not None and origin.suffix == ".py" and origin.is_file():
        try:
            return _cached_catalogue(origin)
        except (OSError, SyntaxError, ValueError):
            pass  # an unusual layout: ask the package itself
    return _catalogue_from_import()


def _cached_catalogue(init_file: Path) -> list[TorchattacksClass]:
    """The catalogue read from source, kept in the cache folder: parsing torchattacks'
    forty modules took a fifth of a second of every start-up. The key is the stat of each
    of its source files, so an upgrade or an edit is parsed again."""
    import hashlib

    stats = sorted((str(p.relative_to(init_file.parent)), p.stat().st_mtime_ns, p.stat().st_size)
                   for p in init_file.parent.rglob("*.py"))
    key = hashlib.sha256(repr((str(init_file), stats)).encode()).hexdigest()[:16]
    cached = Path(cache_dir()) / f"torchattacks-catalogue-{key}.txt"
    try:
        rows = ast.literal_eval(cached.read_text(encoding="utf-8"))
        return [TorchattacksClass(*row) for row in rows]
    except (OSError, ValueError, SyntaxError, TypeError):
        pass  # none yet, or unreadable: parse and write it again
    catalogue = _catalogue_from_source(init_file)
    rows = [dataclasses.astuple(c) for c in catalogue]
    if ast.literal_eval(repr(rows)) == rows:  # only literals round-trip faithfully
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(repr(rows), encoding="utf-8")
        tmp.replace(cached)
    return catalogue


# --- generating the plugins ------------------------------------------------------------------
def _argument_help(doc: str) -> dict[str, str]:
    """``name (type): text. (Default: x)`` lines of a torchattacks docstring, without the
    default (the form shows the real one; a few docstrings state an outdated one)."""
    out: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        m = re.match(r"^\s*(\w+) \(([^)]*)\)\s*:\s*(.*)$", line)
        if m:
            current = m.group(1)
            out[current] = m.group(3).strip()
        elif current and line.strip() and not line.strip().endswith(":"):
            out[current] += " " + line.strip()
        else:
            current = None
    return {k: re.sub(r"\s*\(Default:[^)]*\)\.?", "", v).strip() for k, v in out.items()}


def _field(cls_name: str, arg: str, default: Any, doc_help: str) -> tuple[type, Any]:
    """The (type, dataclass field) of one constructor argument."""
    where = f"[torchattacks {cls_name}: {arg}]"
    text = f"{doc_help} {where}" if doc_help else where
    if isinstance(default, bool):
        return bool, param(default, help=text)
    if isinstance(default, str):
        choices = CHOICES.get((cls_name, arg)) or CHOICES.get(("*", arg))
        if choices and default not in choices:
            choices = None  # torchattacks changed: offer free text rather than a wrong list
        return str, param(default, choices=choices, help=text)
    if isinstance(default, float) or arg in AS_FLOAT:
        value = float(default)
        low = 0.0 if value >= 0 and arg not in SIGNED else None
        high = 1.0 if arg in FRACTIONS and value <= 1 else None
        step = 1 / 255 if arg in PIXEL_BUDGETS else None
        return float, param(value, min=low, max=high, step=step, help=text)
    # Counts (steps, restarts, population, batch sizes): 0 of them is no attack at all.
    low = MINIMUMS.get((cls_name, arg), 1 if default >= 1 else 0)
    return int, param(int(default), min=low, step=1, help=text)


def _summary(entry: TorchattacksClass) -> str:
    first = entry.doc.splitlines()[0].strip() if entry.doc else entry.name
    text = f"torchattacks {entry.name}: {first}"
    measure = re.search(r"Distance Measure\s*:\s*(.+)", entry.doc)
    if measure:
        text += f" ({measure.group(1).strip()})"
    if entry.name == "GN":
        text += " (a noise control: it uses no model information)"
    if entry.name in NEEDS_THREE_CLASSES:
        text += " [needs 3+ classes: fails on two-class models, DLR loss]"
    elif entry.name in DLR_LOSS_OPTION:
        text += " [loss=dlr needs 3+ classes]"
    if entry.name == "JSMA":
        text += f" [memory grows with the pixel count squared: at most {JSMA_MAX_VALUES} values]"
    return text


def _package_version() -> str:
    try:
        return importlib.metadata.version("torchattacks")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _attack_class(entry: TorchattacksClass, ta_version: str) -> type:
    helps = _argument_help(entry.doc)
    fields = []
    for arg, default in entry.defaults:
        if arg in SUPPLIED or not isinstance(default, bool | int | float | str):
            continue  # tuples and None keep torchattacks' default
        fields.append((arg, *_field(entry.name, arg, default, helps.get(arg, ""))))
    cls_name = f"Torchattacks{entry.name}"
    params_cls = dataclasses.make_dataclass("Params", fields)
    params_cls.__module__ = __name__
    params_cls.__qualname__ = f"{cls_name}.Params"
    namespace = {
        "__module__": __name__,  # discovery only lists classes of the plugin's own module
        "__qualname__": cls_name,
        "__doc__": entry.doc,
        "name": PREFIX + entry.name.lower(),
        "summary": _summary(entry),
        "threat": "score-based black-box" if entry.name in BLACK_BOX else "white-box gradient",
        "scope": "per-image",
        "version": f"1 (torchattacks {ta_version})",
        "torchattacks_class": entry.name,
        "Params": params_cls,
        "run": _run,
    }
    return type(cls_name, (Attack,), namespace)


# --- running ---------------------------------------------------------------------------------
def _run(self: Any, model: Any, images: Any, labels: Any, target: Any, params: Any,
         ctx: RunContext) -> AttackResult:
    import torch
    import torchattacks

    ta_name = self.torchattacks_class
    cls = getattr(torchattacks, ta_name)
    ctor = inspect.signature(cls.__init__).parameters
    kwargs = dataclasses.asdict(params)
    n_classes = _class_count(model, images)
    problem = _two_class_problem(ta_name, kwargs, n_classes) or _size_problem(ta_name, images)
    if problem:
        raise ValueError(problem)
    supplied = {"n_classes": n_classes, "seed": ctx.seed, "verbose": False}
    kwargs.update({k: v for k, v in supplied.items() if k in ctor})
    notes = []
    device = images.device
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), _seeded_numpy_and_random(ctx.seed):
        torch.manual_seed(ctx.seed)
        attack = cls(model, **kwargs)
        attack.set_device(device)
        attack.set_model_training_mode(model_training=False)  # batch norm, dropout in eval
        y = labels
        if target is not None:
            if "targeted" in attack.supported_mode and ta_name not in PICKS_OWN_TARGETS:
                attack.set_mode_targeted_by_label(quiet=True)
                y = target
            elif n_classes == 2:
                notes.append(f"torchattacks {ta_name} cannot aim at a given class: ran "
                             "untargeted, which on two classes pushes each image to the other")
            else:
                raise ValueError(f"torchattacks {ta_name} cannot aim at a given class; run "
                                 "it untargeted")
        elif ta_name == "JSMA":
            # JSMA has no untargeted mode: torchattacks then aims at (label + 1) % 10, which
            # assumes ten classes (an IndexError on two); aim at the next class of this model.
            attack.set_mode_targeted_by_label(quiet=True)
            y = (labels + 1) % n_classes
            notes.append("JSMA aimed at the next class, (label + 1) mod classes")
        # torchattacks flattens with .view(), which fails on the channels-last strides an
        # image permuted from H x W x C keeps (PGDL2, FAB, JSMA, SparseFool).
        adv = attack(images.contiguous(), y.contiguous())
    ctx.progress(1.0, f"torchattacks {ta_name} done")
    adv = adv.detach().to(device=device, dtype=images.dtype).clamp(0.0, 1.0)
    return AttackResult(adversarial=adv, notes="; ".join(notes))


def _class_count(model: Any, images: Any) -> int:
    names = getattr(model, "class_names", None)
    if names:
        return len(names)
    import torch

    with torch.inference_mode():  # a model without class names: ask it once
        return int(model(images[:1]).shape[1])


def _two_class_problem(ta_name: str, kwargs: dict[str, Any], n_classes: int) -> str:
    if n_classes >= 3:
        return ""
    why = NEEDS_THREE_CLASSES.get(ta_name, "")
    if not why and ta_name in DLR_LOSS_OPTION and kwargs.get("loss") == "dlr":
        why = "its DLR loss (loss=dlr)"
    if not why:
        return ""
    return (f"torchattacks {ta_name} fails on {n_classes}-class models: {why} needs a third "
            "logit. Use ta-apgd with loss=ce, ta-fab or ta-square instead")


def _size_problem(ta_name: str, images: Any) -> str:
    values = images[0].numel()
    if ta_name != "JSMA" or values <= JSMA_MAX_VALUES:
        return ""
    c, h, w = images.shape[1:]
    return (f"torchattacks JSMA builds a saliency map of (C*H*W)^2 = {values ** 2 / 1e9:.2g} G "
            f"entries per step for these {c} x {h} x {w} images; it is limited to "
            f"{JSMA_MAX_VALUES} values per image (e.g. 36 x 36 RGB): downscale the images")


@contextmanager
def _seeded_numpy_and_random(seed: int) -> Iterator[None]:
    """Seed numpy's and Python's global generators (OnePixel, Pixle and SPSA draw from them)
    for the call, and put the caller's state back afterwards."""
    import random

    import numpy as np

    np_state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


# --- the plugins -----------------------------------------------------------------------------
EXPOSED: dict[str, str] = {}  # plugin name -> torchattacks class
SKIPPED: dict[str, str] = {}  # torchattacks class -> why it has no plugin


def _declare() -> None:
    catalogue = torchattacks_catalogue()
    version = _package_version() if catalogue else ""
    for entry in catalogue:
        if entry.name in SKIP_REASONS:
            SKIPPED[entry.name] = SKIP_REASONS[entry.name]
        elif entry.required:
            SKIPPED[entry.name] = (f"its constructor needs {', '.join(entry.required)} "
                                   "(no default), which a generic adapter cannot supply")
        else:
            cls = _attack_class(entry, version)
            globals()[cls.__name__] = cls
            EXPOSED[cls.name] = entry.name


_declare()
