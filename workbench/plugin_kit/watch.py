"""Watching a plugin run during ``workbench plugin check``: counting its model calls,
pressing Cancel at the right moment, and running it in a thread that can be abandoned
when it never returns."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .samples import forget_models

# After Cancel, how long a run may go on before it is reported as not stopping at all.
CANCEL_GRACE_S = 10.0


class Watch:
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


class Armed:
    """The plugin as the engine sees it, arming the watch while the plugin's own code
    runs (so the engine's clean forward pass is not counted as the plugin's)."""

    def __init__(self, plugin: Any, watch: Watch) -> None:
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
class Run:
    status: str  # "done", "error" or "timeout"
    value: Any = None  # the outcome, or the exception
    seconds: float = 0.0
    ended_at: float = 0.0


def in_thread(fn: Any, watch: Watch, timeout: float) -> Run:
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
                forget_models()
            return Run("timeout", None, now - start, now)
    ended = box.get("ended_at", time.perf_counter())
    if "error" in box:
        return Run("error", box["error"], ended - start, ended)
    return Run("done", box["value"], ended - start, ended)
