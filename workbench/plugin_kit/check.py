"""``workbench plugin check FILE``: everything the workbench will do with a plugin, tried
once, with each problem named.

The file is imported on its own exactly as discovery imports it
(:func:`workbench.engine.plugins.load_plugin_file`); its imports are read from the
source (a plugin may import only ``workbench.api`` from the workbench: the rest changes
without notice); each declared plugin's declaration goes through discovery's own checks
and each parameter default through its range, choices and type. Then every plugin runs
through the engine (``run_attack`` / ``run_detector``, the code the GUI and the command
line use) with the demo model on pydicom's bundled ``CT_small.dcm`` and on synthetic RGB
photos: once to measure, once more to see that a seed reproduces the result, and once
with Cancel pressed after its first model call, to see that it stops promptly.

Plugin code runs in a worker thread so that a plugin that never returns is reported
("did not finish within N s") instead of hanging the check.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import api
from . import PluginKitError

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
DEFAULT_TIMEOUT_S = 120.0
# A Cancel that takes longer than this to act feels broken in the GUI.
PROMPT_S = 2.0
# After Cancel, how long a run may go on before it is reported as not stopping at all.
CANCEL_GRACE_S = 10.0
_TYPES = {"float": float, "int": int, "bool": bool, "str": str}


@dataclass
class Check:
    """One line of the report: what was checked, PASS/FAIL/SKIP, and why."""

    name: str
    status: str
    message: str
    plugin: str = ""  # the plugin's name, for the checks of one declared plugin
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        label = f"{self.plugin} {self.name}" if self.plugin else self.name
        return f"{self.status}  {label}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "plugin": self.plugin or None, "status": self.status,
                "message": self.message, "details": self.details}


@dataclass
class CheckReport:
    """All checks of one file. ``ok``: nothing failed (skipped checks are not failures)."""

    path: str
    checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, name: str, status: str, message: str, plugin: str = "",
            **details: Any) -> Check:
        check = Check(name, status, message, plugin, details)
        self.checks.append(check)
        return check

    def add_failure(self, name: str, where: str, reason: str, plugin: str) -> None:
        """A run's failure; the same failure on another input extends the earlier line
        ("also on ...") rather than repeating it."""
        for c in self.checks:
            if (c.name, c.plugin, c.status) == (name, plugin, FAIL) and \
                    c.details.get("reason") == reason:
                c.details["inputs"].append(where)
                c.message = f"{c.details['inputs'][0]}: {reason} (also on " + \
                    ", ".join(c.details["inputs"][1:]) + ")"
                return
        self.add(name, FAIL, f"{where}: {reason}", plugin, reason=reason, inputs=[where])

    def to_text(self) -> str:
        lines = [f"checking {self.path}"] + [f"  {c.line()}" for c in self.checks]
        failed = len(self.problems)
        skipped = sum(c.status == SKIP for c in self.checks)
        verdict = f"{failed} failed" if failed else "all passed"
        lines.append(f"{len(self.checks)} checks: {verdict}"
                     + (f", {skipped} skipped" if skipped else ""))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.path, "ok": self.ok, "failed": len(self.problems),
                "checks": [c.to_json() for c in self.checks]}


# --- reading the source --------------------------------------------------------------------
def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a workbench module other than ``workbench.api``
    (read from the syntax tree, so imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "workbench":  # from workbench import api, engine
                found += [(node.lineno, f"workbench.{a.name}") for a in node.names
                          if a.name != "api"]
            elif _forbidden(node.module):
                found.append((node.lineno, node.module))
    return sorted(found)


def _forbidden(module: str) -> bool:
    return (module == "workbench" or module.startswith("workbench.")) and \
        module != "workbench.api"


def parameter_problems(params_cls: Any) -> list[str]:
    """What is wrong with a ``Params`` dataclass, one precise sentence per problem."""
    if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
        return ["Params is not a dataclass (decorate it with @dataclass)"]
    problems = []
    for f in dataclasses.fields(params_cls):
        where = f"Params.{f.name}"
        declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = _TYPES.get(declared)
        if kind is None:
            problems.append(f"{where} is declared {declared}: forms and --param offer only "
                            "float, int, bool and str")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{where} has no default (write it with param(DEFAULT, ...))")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if kind is not None and not _is_a(default, kind):
            problems.append(f"{where} default {default!r} is a {type(default).__name__}, "
                            f"declared {kind.__name__}")
        meta = f.metadata
        lo, hi, step, choices = (meta.get(k) for k in ("min", "max", "step", "choices"))
        if lo is not None and hi is not None and lo > hi:
            problems.append(f"{where} min {lo} is above its max {hi}")
        if _is_number(default):
            if lo is not None and default < lo:
                problems.append(f"{where} default {default} is below its min {lo}")
            if hi is not None and default > hi:
                problems.append(f"{where} default {default} is above its max {hi}")
        if choices and default not in choices:
            problems.append(f"{where} default {default!r} is not one of its choices "
                            f"{list(choices)}")
        if step is not None and not step > 0:
            problems.append(f"{where} step {step} is not positive")
    return problems


def _is_a(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return _is_number(value)
    return isinstance(value, kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe_params(params_cls: type) -> str:
    parts = []
    for s in api.param_specs(params_cls):
        if s.choices:
            parts.append(f"{s.name} = {s.default!r} of {list(s.choices)}")
        elif s.min is not None or s.max is not None:
            lo = "-inf" if s.min is None else s.min
            hi = "inf" if s.max is None else s.max
            parts.append(f"{s.name} = {s.default!r} in [{lo}, {hi}]")
        else:
            parts.append(f"{s.name} = {s.default!r}")
    return "; ".join(parts) or "none"


# Discovery's parameter messages are replaced by parameter_problems' more precise ones.
_PARAM_PREFIXES = ("parameter ", "default parameters are invalid", "Params is not a dataclass")


# --- watching a run ------------------------------------------------------------------------
class _Watch:
    """Counts the model calls a plugin makes and plays the user's Cancel button.

    ``trigger`` "model": Cancel is pressed as the plugin's first model call returns;
    "check": when the plugin first asks (for plugins that never call the model); None:
    never (but ``abort`` presses it when a run overstays its time). Our forward pre-hook
    is registered before the engine's guard, so it runs just before the guard asks
    :meth:`cancelled`; that is how a question from the guard is told from the plugin's."""

    def __init__(self, trigger: str | None = None) -> None:
        self.trigger = trigger
        self.armed = False  # the plugin's own code is running (not the engine's)
        self.forwards = 0  # model calls the plugin completed
        self.refused = 0  # model calls it attempted after Cancel (the guard refused them)
        self.told = 0  # times the plugin asked after Cancel and was told "cancelled"
        self.requested_at: float | None = None
        self.abort = False
        self._guard_asks_next = False

    def attach(self, models: list[Any]) -> list[Any]:
        return [h for m in models if m is not None
                for h in (m.register_forward_pre_hook(self._pre),
                          m.register_forward_hook(self._post))]

    def _pre(self, _module: Any, _inputs: Any) -> None:
        if self.armed:
            self._guard_asks_next = True
            if self.requested_at is not None:
                self.refused += 1

    def _post(self, _module: Any, _inputs: Any, _output: Any) -> None:
        self._guard_asks_next = False
        if self.armed:
            self.forwards += 1
            if self.trigger == "model" and self.requested_at is None:
                self.requested_at = time.perf_counter()

    def cancelled(self) -> bool:
        if self.abort:
            return True
        from_guard, self._guard_asks_next = self._guard_asks_next, False
        if self.armed and not from_guard:
            if self.trigger == "check" and self.requested_at is None:
                self.requested_at = time.perf_counter()
            if self.requested_at is not None:
                self.told += 1
        return self.requested_at is not None


class _Armed:
    """The plugin as the engine sees it, arming the watch while the plugin's own code
    runs (so the engine's clean forward pass is not counted as the plugin's)."""

    def __init__(self, plugin: Any, watch: _Watch) -> None:
        self._plugin, self._watch = plugin, watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plugin, name)

    def run(self, *args: Any) -> Any:
        self._watch.armed = True
        try:
            return self._plugin.run(*args)
        finally:
            self._watch.armed = False

    def analyze(self, *args: Any) -> Any:
        self._watch.armed = True
        try:
            return self._plugin.analyze(*args)
        finally:
            self._watch.armed = False


@dataclass
class _Run:
    status: str  # "done", "error" or "timeout"
    value: Any = None  # the outcome, or the exception
    seconds: float = 0.0
    ended_at: float = 0.0


def _in_thread(fn: Any, watch: _Watch, timeout: float) -> _Run:
    """Run ``fn`` in a daemon thread; give up after ``timeout`` s, or CANCEL_GRACE_S after
    Cancel was pressed. A plugin that overstays is asked to cancel and left behind."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported, never raised into the checker
            box["error"] = exc
        box["ended_at"] = time.perf_counter()

    start = time.perf_counter()
    thread = threading.Thread(target=target, name="plugin-check", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.02)
        now = time.perf_counter()
        late_cancel = watch.requested_at is not None and now - watch.requested_at > \
            CANCEL_GRACE_S
        if thread.is_alive() and (late_cancel or now - start > timeout):
            watch.abort = True
            thread.join(1.0)  # a plugin that checks at all stops now
            if thread.is_alive():
                # The engine removes its cancel guard from the model only when the plugin
                # returns: later runs get a fresh model, not one that refuses every call.
                _MODELS.clear()
            return _Run("timeout", None, now - start, now)
    ended = box.get("ended_at", time.perf_counter())
    if "error" in box:
        return _Run("error", box["error"], ended - start, ended)
    return _Run("done", box["value"], ended - start, ended)


# --- inputs --------------------------------------------------------------------------------
def synthetic_photo(size: int = 64, seed: int = 0) -> Any:
    """A 3 x size x size float array in [0, 1]: a dark, soft-edged spot on a shaded
    skin-coloured background with a little noise (what the demo model was trained on,
    roughly)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    cx, cy = rng.uniform(0.35, 0.65, 2)
    skin = np.array([0.85, 0.65, 0.55])[:, None, None] * (0.9 + 0.1 * xx)[None]
    spot = np.clip(1 - np.hypot(xx - cx, yy - cy) / 0.3, 0, 1) ** 0.5
    brown = np.array([0.35, 0.2, 0.15])[:, None, None]
    img = skin * (1 - spot) + brown * spot + rng.normal(0, 0.02, (3, size, size))
    return np.clip(img, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def sample_images() -> tuple[tuple[str, Any], ...]:
    """(label, MedicalImage) pairs: pydicom's bundled CT_small.dcm (a real 128 x 128
    greyscale CT slice) when installed, and two synthetic 64 x 64 RGB photos."""
    from ..imaging.in_memory import image_from_unit_array

    out = []
    try:
        from pydicom.data import get_testdata_file

        ct = get_testdata_file("CT_small.dcm", download=False)
    except Exception:  # an old or stripped pydicom: the synthetic photos still run
        ct = None
    if ct:
        from ..imaging import load_image

        out.append(("CT_small.dcm", load_image(ct)))
    for seed in (0, 1):
        out.append((f"synthetic photo {seed + 1}",
                    image_from_unit_array(synthetic_photo(seed=seed), f"synthetic-{seed}.png")))
    return tuple(out)


def _attack_batches() -> list[tuple[str, Any]]:
    """Batches for attacks: CT_small alone (1 channel), the two photos together (3)."""
    import torch

    images = sample_images()
    batches = [(label, api.image_tensor(im)) for label, im in images
               if not label.startswith("synthetic")]
    photos = [api.image_tensor(im) for label, im in images if label.startswith("synthetic")]
    batches.append((f"{len(photos)} synthetic RGB photos", torch.cat(photos)))
    return batches


_MODELS: dict[str, Any] = {}


def _model(name: str) -> Any:
    """A classifier by name, loaded once per process (checks reuse it; it is frozen)."""
    if name not in _MODELS:
        from ..models.zoo import load_model

        _MODELS[name] = load_model(name)
    return _MODELS[name]


# --- the check -----------------------------------------------------------------------------
def check_plugin(path: Path | str, *, model: str = "demo",
                 timeout: float = DEFAULT_TIMEOUT_S) -> CheckReport:
    """Check one plugin file (see the module docstring). Raises PluginKitError when
    ``path`` is not a Python file; everything wrong with the plugin is in the report."""
    path = Path(path)
    if not path.exists():
        raise PluginKitError(f"{path}: no such file")
    if not path.is_file() or path.suffix != ".py":
        raise PluginKitError(f"{path}: not a plugin file (a .py file)")
    report = CheckReport(str(path))
    source = path.read_text(encoding="utf-8", errors="replace")

    start = time.perf_counter()
    module, error = _import(path)
    seconds = time.perf_counter() - start
    if module is None:
        report.add("import", FAIL, error)
    else:
        report.add("import", PASS, f"imported on its own, as discovery imports it "
                                   f"({seconds:.2f} s)")
    try:
        bad = forbidden_imports(source)
    except SyntaxError:
        bad = None  # the import line above says where
    if bad:
        for line, name in bad:
            report.add("imports", FAIL, f"line {line} imports {name} (plugins may import "
                                        "only workbench.api)")
    elif bad is not None:
        report.add("imports", PASS, "no workbench module but workbench.api")
    if module is None:
        return report

    from ..engine.plugins import _plugin_classes  # discovery's own definition of a plugin

    classes = _plugin_classes(module)
    if not classes:
        report.add("declares", FAIL, "no subclass of workbench.api.Attack or Detector "
                                     "(discovery would ignore the file)")
        return report
    from ..engine.plugins import PluginRegistry, discover_plugins

    registry = PluginRegistry(discover_plugins())
    # the file's own order, not the alphabet's (by identity: module values may be arrays)
    order = {id(v): i for i, v in enumerate(vars(module).values())}
    for cls in sorted(classes, key=lambda c: order.get(id(c), len(order))):
        _check_class(cls, path, classes, report, registry, model, timeout)
    return report


def _import(path: Path) -> tuple[ModuleType | None, str]:
    """Import ``path`` with discovery's loader; (module, "") or (None, the reason)."""
    from ..engine.plugins import load_plugin_file

    infos = load_plugin_file(path)
    failed = [i.error for i in infos if i.error.startswith("import failed")]
    if failed:
        return None, failed[0]
    resolved = path.resolve()
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if name.startswith("workbench_plugin_") and file and Path(file).resolve() == resolved:
            return mod, ""
    return None, "import failed: the module was not registered"  # pragma: no cover


def _check_class(cls: type, path: Path, classes: list[type], report: CheckReport,
                 registry: Any, model_name: str, timeout: float) -> None:
    from ..engine.plugins import declaration_problems

    is_detector = issubclass(cls, api.Detector)
    name = getattr(cls, "name", "") if isinstance(getattr(cls, "name", ""), str) else ""
    label = name or cls.__name__

    declared = [p for p in declaration_problems(cls) if not p.startswith(_PARAM_PREFIXES)]
    for problem in declared:
        report.add("declaration", FAIL, problem, label)
    if not declared:
        if is_detector:
            what = (f"detector {cls.__name__}: needs {tuple(cls.needs) or 'nothing'}, "
                    f"calibratable {cls.calibratable}, version {cls.version}")
        else:
            what = (f"attack {cls.__name__}: threat {cls.threat!r}, scope {cls.scope!r}, "
                    f"version {cls.version}"
                    + (", needs a surrogate" if getattr(cls, "needs_surrogate", False) else ""))
        report.add("declaration", PASS, what, label)

    params_cls = getattr(cls, "Params", None)
    param_problems = parameter_problems(params_cls)
    for problem in param_problems:
        report.add("parameters", FAIL, problem, label)
    if not param_problems:
        report.add("parameters", PASS, _describe_params(params_cls), label)

    if name:
        _check_name(name, path, classes, report, registry)

    if any(p.endswith("is not implemented") for p in declared):
        return
    try:
        params = params_cls()  # the declared defaults, even invalid ones: the run still says more
        plugin = cls()
    except Exception as exc:
        report.add("run", SKIP, f"not run: cannot make the plugin with its default parameters "
                                f"({type(exc).__name__}: {exc})", label)
        return
    model = _model(model_name)
    if is_detector:
        _run_detector_checks(plugin, label, params, model, path, report, timeout)
    else:
        _run_attack_checks(plugin, label, params, model, path, report, registry, timeout)


def _check_name(name: str, path: Path, classes: list[type], report: CheckReport,
                registry: Any) -> None:
    resolved = str(path.resolve())
    others = [p.source for p in registry.plugins if p.name == name
              and _resolved(p.source) != resolved]
    if sum(getattr(c, "name", None) == name for c in classes) > 1:
        others.append("another class in this file")
    if others:
        report.add("name", FAIL, f"another plugin is already called {name!r} ({others[0]}); "
                                 "the workbench loads only one of them: rename this one", name)
    else:
        report.add("name", PASS, f"no other plugin is called {name!r}", name)


def _resolved(source: str) -> str:
    try:
        return str(Path(source).resolve()) if Path(source).exists() else source
    except OSError:
        return source


def _plugin_error(name: str, exc: BaseException, path: Path, method: str) -> str:
    """The engine's message about a plugin, said about its method, with the plugin's
    line when the traceback has one: 'run() raised ZeroDivisionError: ... (line 12)'."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    if first.startswith(f"{name} "):
        first = f"{method}() {first[len(name) + 1:]}"
    else:
        first = f"{method}() raised {type(exc).__name__}: {first}"
    lines = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', text)
    mine = [(ln, fn) for f, ln, fn in lines if _resolved(f) == str(path.resolve())]
    if mine:
        first += f" ({path.name} line {mine[-1][0]}, in {mine[-1][1]})"
    return first


# --- attacks -------------------------------------------------------------------------------
def _run_attack_checks(plugin: Any, label: str, params: Any, model: Any, path: Path,
                       report: CheckReport, registry: Any, timeout: float) -> None:
    from ..engine.attack_runner import run_attack

    surrogate = None
    if getattr(plugin, "needs_surrogate", False):
        try:
            surrogate = _model("demo-surrogate")
        except Exception as exc:
            report.add("run", SKIP, f"not run: it needs a surrogate model and "
                                    f"demo-surrogate cannot be loaded ({exc})", label)
            return

    def attempt(x: Any, watch: _Watch, seed: int = 0) -> _Run:
        hooks = watch.attach([model, surrogate])
        try:
            return _in_thread(lambda: run_attack(
                _Armed(plugin, watch), model, x, params=params, surrogate=surrogate,
                seed=seed, cancelled=watch.cancelled, plugin_lookup=registry.create),
                watch, timeout)
        finally:
            for h in hooks:
                h.remove()

    # The batch the seed and cancel runs repeat: the one that kept the plugin busiest
    # (most model calls), so an early stop on an easy input cannot hide a plugin that
    # swallows Cancel (a new-user trial found exactly that).
    sample = None
    for what, x in _attack_batches():
        run = attempt(x, _Watch())
        where = f"{what} ({' x '.join(map(str, x.shape))})"
        if run.status != "done":
            report.add_failure("run", where, _failure(run, label, path, "run", timeout), label)
            if run.status == "timeout":
                return  # it may still be running: do not pile more work on top
            continue
        out = run.value
        adv = out.adversarial
        n = adv.shape[0]
        details = {"input": what, "shape": list(adv.shape), "min": float(adv.min()),
                   "max": float(adv.max()), "linf": float(out.linf.max()),
                   "l2": float(out.l2.max()), "success": int(out.success.sum()), "n": n,
                   "model_calls": out.model_calls, "seconds": round(out.seconds, 4)}
        report.add("run", PASS,
                   f"{where}: output {tuple(adv.shape)}, values {details['min']:.4f}.."
                   f"{details['max']:.4f}, L-inf {details['linf']:.4g}, L2 {details['l2']:.4g},"
                   f" success {details['success']}/{n}, {_calls(out.model_calls)}, "
                   f"{out.seconds:.2f} s", label, **details)
        if sample is None or out.model_calls > sample[1].model_calls:
            sample = (x, out)
    if sample is None:
        return
    x, out = sample
    again = attempt(x, _Watch())
    if again.status != "done":
        report.add("seed", FAIL, "a second run with the same seed: " + _failure(
            again, label, path, "run", timeout), label)
        return
    diff = float((again.value.adversarial - out.adversarial).abs().max())
    if diff == 0:
        report.add("seed", PASS, "the same seed gives the same result", label)
    else:
        report.add("seed", FAIL, f"two runs with seed 0 differ (by up to {diff:.3g}): draw "
                                 "random numbers from ctx.generator, not torch's global "
                                 "generator", label)
    watch = _Watch("model" if out.model_calls else "check")
    _judge_cancel(attempt(x, watch), watch, label, path, report, "run",
                  "AttackCancelled", timeout)


# --- detectors -----------------------------------------------------------------------------
def _run_detector_checks(plugin: Any, label: str, params: Any, model: Any, path: Path,
                         report: CheckReport, timeout: float) -> None:
    from ..engine.detector_runner import run_detector

    needs = tuple(getattr(plugin, "needs", ()) or ())

    def attempt(image: Any, watch: _Watch, seed: int = 0) -> _Run:
        hooks = watch.attach([model])
        try:
            return _in_thread(lambda: run_detector(
                _Armed(plugin, watch), image, params, model=model,
                reference=image if "reference" in needs else None,
                threshold=0.5 if "calibration" in needs else None,  # a stand-in threshold
                seed=seed, cancelled=watch.cancelled), watch, timeout)
        finally:
            for h in hooks:
                h.remove()

    sample = None  # the image the seed and cancel runs repeat (the first that worked)
    for what, image in sample_images():
        watch = _Watch()
        run = attempt(image, watch)
        where = f"{what} ({image.rows} x {image.columns})"
        if run.status != "done":
            report.add_failure("analyze", where, _failure(run, label, path, "analyze", timeout),
                               label)
            if run.status == "timeout":
                return
            continue
        out = run.value
        if out.score is None:
            report.add("analyze", SKIP, f"{where}: not run: {out.explanation}", label)
            continue
        ev = out.evidence
        evidence = ("no evidence map" if ev is None else
                    f"evidence {ev.shape[0]} x {ev.shape[1]} (max {float(ev.max()):.3g})")
        details = {"input": what, "score": out.score, "verdict": out.verdict,
                   "evidence_shape": None if ev is None else list(ev.shape),
                   "model_calls": watch.forwards, "seconds": round(out.seconds, 4),
                   "explanation": out.explanation}
        if not out.explanation.strip():
            report.add("analyze", FAIL, f"{where}: analyze() returned no explanation (a "
                                        "reviewer would see only the number)", label,
                       **details)
            continue
        report.add("analyze", PASS,
                   f"{where}: score {out.score:.4g}, verdict {out.verdict}, {evidence}, "
                   f"{_calls(watch.forwards)}, {out.seconds:.2f} s: {out.explanation!r}",
                   label, **details)
        sample = sample or (image, out, watch.forwards)
    if sample is None:
        return
    image, out, calls = sample
    again = attempt(image, _Watch())
    if again.status != "done":
        report.add("seed", FAIL, "a second run with the same seed: " + _failure(
            again, label, path, "analyze", timeout), label)
        return
    same_evidence = (out.evidence is None) == (again.value.evidence is None) and (
        out.evidence is None or bool((out.evidence == again.value.evidence).all()))
    if again.value.score == out.score and same_evidence:
        report.add("seed", PASS, "the same seed gives the same finding", label)
    else:
        report.add("seed", FAIL, f"two runs with seed 0 differ (scores {out.score:.6g} and "
                                 f"{again.value.score:.6g}): draw random numbers from "
                                 "ctx.generator", label)
    watch = _Watch("model" if calls else "check")
    _judge_cancel(attempt(image, watch), watch, label, path, report, "analyze",
                  "DetectorCancelled", timeout)


def _calls(n: int) -> str:
    return f"{n} model call{'' if n == 1 else 's'}"


# --- judging ---------------------------------------------------------------------------------
def _failure(run: _Run, name: str, path: Path, method: str, timeout: float) -> str:
    if run.status == "timeout":
        return f"did not finish within {timeout:g} s (a slow plugin: --timeout)"
    exc = run.value
    if type(exc).__name__ in ("AttackCancelled", "DetectorCancelled"):
        return f"{method}() raised api.Cancelled although nobody pressed Cancel"
    return _plugin_error(name, exc, path, method)


def _judge_cancel(run: _Run, watch: _Watch, name: str, path: Path, report: CheckReport,
                  method: str, cancelled_type: str, timeout: float) -> None:
    """Was Cancel, pressed after the plugin's first model call (or at its first question
    when it calls no model), obeyed promptly?"""
    when = ("after its first model call" if watch.trigger == "model"
            else "the first time it asked ctx.check_cancelled()")
    details = {"trigger": watch.trigger, "refused_model_calls": watch.refused,
               "told_cancelled": watch.told}
    if watch.requested_at is None:
        if run.status == "done":
            seconds = run.seconds
            if seconds <= PROMPT_S:
                report.add("cancel", PASS, f"nothing to cancel: it made no model call and never "
                                           f"asked ctx.check_cancelled() ({seconds:.2f} s)",
                           name, **details)
            else:
                report.add("cancel", FAIL, f"runs {seconds:.1f} s without a model call or "
                                           "ctx.check_cancelled(): Cancel cannot stop it",
                           name, **details)
        else:
            report.add("cancel", FAIL, "with Cancel armed: " + _failure(run, name, path, method,
                                                                    timeout), name, **details)
        return
    latency = (run.ended_at if run.status != "timeout" else time.perf_counter()) - \
        watch.requested_at
    details["seconds_to_stop"] = round(latency, 4)
    swallowed = (f"{_calls(watch.refused)} refused with api.Cancelled" if watch.refused
                 else "ctx.check_cancelled() said it was cancelled")
    if run.status == "timeout":
        why = (f"{swallowed} and it carries on (it catches api.Cancelled, e.g. with 'except "
               "Exception'; let it propagate)" if watch.refused or watch.told
               else "call ctx.check_cancelled() in every loop")
        report.add("cancel", FAIL, f"still running {latency:.0f} s after Cancel (pressed "
                                   f"{when}): {why}", name, **details)
    elif run.status == "error" and type(run.value).__name__ == cancelled_type:
        if latency <= PROMPT_S:
            after = f" ({_calls(watch.refused)} refused)" if watch.refused else ""
            report.add("cancel", PASS, f"Cancel pressed {when}; stopped {latency:.3f} s "
                                       f"later{after}", name, **details)
        else:
            report.add("cancel", FAIL, f"took {latency:.1f} s to stop after Cancel (pressed "
                                       f"{when}): call ctx.check_cancelled() more often",
                       name, **details)
    elif run.status == "error":
        report.add("cancel", FAIL, "when cancelled, " + _plugin_error(name, run.value, path,
                                                                       method)
                   + " instead of letting api.Cancelled through", name, **details)
    elif watch.refused or watch.told:
        report.add("cancel", FAIL, f"ignores Cancel: {swallowed} and it still returned a "
                                   "result (it catches api.Cancelled, e.g. with 'except "
                                   "Exception'; let it propagate)", name, **details)
    elif latency <= PROMPT_S:
        report.add("cancel", PASS, f"Cancel pressed {when}; it finished {latency:.3f} s later "
                                   "without another model call (nothing left to cancel)",
                   name, **details)
    else:
        report.add("cancel", FAIL, f"ran on for {latency:.1f} s after Cancel (pressed {when}) "
                                   "without asking ctx.check_cancelled()", name, **details)
