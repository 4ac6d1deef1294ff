"""Running a plugin through the engine for ``workbench plugin check``: every input once,
the same seed again, and once with Cancel pressed; then judging what happened."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from .report import FAIL, PASS, SKIP, CheckReport
from .samples import attack_batches, cached_model, sample_images
from .watch import Armed, Run, Watch, in_thread

# A Cancel that takes longer than this to act feels broken in the GUI.
PROMPT_S = 2.0


def resolved_source(source: str) -> str:
    """A plugin's source as an absolute path when it is a file (an entry point as it is),
    so that the same file reached two ways compares equal."""
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
    mine = [(ln, fn) for f, ln, fn in lines if resolved_source(f) == str(path.resolve())]
    if mine:
        first += f" ({path.name} line {mine[-1][0]}, in {mine[-1][1]})"
    return first



# --- attacks -------------------------------------------------------------------------------
def run_attack_checks(plugin: Any, label: str, params: Any, model: Any, path: Path,
                       report: CheckReport, registry: Any, timeout: float) -> None:
    from ..engine.attack_runner import run_attack

    surrogate = None
    if getattr(plugin, "needs_surrogate", False):
        try:
            surrogate = cached_model("demo-surrogate")
        except Exception as exc:
            report.add("run", SKIP, f"not run: it needs a surrogate model and "
                                    f"demo-surrogate cannot be loaded ({exc})", label)
            return

    def attempt(x: Any, watch: Watch, seed: int = 0) -> Run:
        hooks = watch.attach([model, surrogate])
        try:
            return in_thread(lambda: run_attack(
                Armed(plugin, watch), model, x, params=params, surrogate=surrogate,
                seed=seed, cancelled=watch.cancelled, plugin_lookup=registry.create),
                watch, timeout)
        finally:
            for h in hooks:
                h.remove()

    # The batch the seed and cancel runs repeat: the one that kept the plugin busiest
    # (most model calls), so an early stop on an easy input cannot hide a plugin that
    # swallows Cancel (a new-user trial found exactly that).
    sample = None
    for what, x in attack_batches():
        run = attempt(x, Watch())
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
    again = attempt(x, Watch())
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
    watch = Watch("model" if out.model_calls else "check")
    _judge_cancel(attempt(x, watch), watch, label, path, report, "run",
                  "AttackCancelled", timeout)


# --- detectors -----------------------------------------------------------------------------
def run_detector_checks(plugin: Any, label: str, params: Any, model: Any, path: Path,
                         report: CheckReport, timeout: float) -> None:
    from ..engine.detector_runner import run_detector

    needs = tuple(getattr(plugin, "needs", ()) or ())

    def attempt(image: Any, watch: Watch, seed: int = 0) -> Run:
        hooks = watch.attach([model])
        try:
            return in_thread(lambda: run_detector(
                Armed(plugin, watch), image, params, model=model,
                reference=image if "reference" in needs else None,
                threshold=0.5 if "calibration" in needs else None,  # a stand-in threshold
                seed=seed, cancelled=watch.cancelled), watch, timeout)
        finally:
            for h in hooks:
                h.remove()

    sample = None  # the image the seed and cancel runs repeat (the first that worked)
    for what, image in sample_images():
        watch = Watch()
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
    again = attempt(image, Watch())
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
    watch = Watch("model" if calls else "check")
    _judge_cancel(attempt(image, watch), watch, label, path, report, "analyze",
                  "DetectorCancelled", timeout)


def _calls(n: int) -> str:
    return f"{n} model call{'' if n == 1 else 's'}"


# --- judging ---------------------------------------------------------------------------------
def _failure(run: Run, name: str, path: Path, method: str, timeout: float) -> str:
    if run.status == "timeout":
        return f"did not finish within {timeout:g} s (a slow plugin: --timeout)"
    exc = run.value
    if type(exc).__name__ in ("AttackCancelled", "DetectorCancelled"):
        return f"{method}() raised api.Cancelled although nobody pressed Cancel"
    return _plugin_error(name, exc, path, method)


def _judge_cancel(run: Run, watch: Watch, name: str, path: Path, report: CheckReport,
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
