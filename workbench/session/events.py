"""Qt-free events for the session model: a `Signal` declared on a class, connected per
instance (``session.changed.connect(slot)``), emitted on the thread that owns the object.

Why not psygnal (napari's event library, the field's choice): importing it costs about
45 ms (it loads importlib.metadata, its evented-dataclass machinery and mypyc runtime), a
quarter of a bare Qt window's start-up, for the three calls we use. This module keeps
psygnal's spelling of them (connect, disconnect, emit), so switching is one import.
Bound methods are held weakly, so a closed panel never keeps a session alive or receives
its events; other callables are held as given.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any


class SignalInstance:
    """The connections of one signal on one object."""

    def __init__(self) -> None:
        self._slots: list[Any] = []  # weakref.WeakMethod or a callable
        self._lock = threading.Lock()  # jobs emit on a worker while the GUI connects

    def connect(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        # bound Python methods weakly; functions, lambdas and builtins (a Qt signal's emit)
        # as given
        ref = weakref.WeakMethod(slot) if hasattr(slot, "__func__") else slot
        with self._lock:
            self._slots.append(ref)
        return slot

    def disconnect(self, slot: Callable[..., Any] | None = None) -> None:
        """Remove ``slot`` (every slot when None); a slot not connected is ignored."""
        with self._lock:
            if slot is None:
                self._slots.clear()
                return
            self._slots = [s for s in self._slots if self._resolve(s) != slot]

    def emit(self, *args: Any) -> None:
        with self._lock:
            slots = list(self._slots)
        dead = False
        for s in slots:
            fn = self._resolve(s)
            if fn is None:
                dead = True
            else:
                fn(*args)
        if dead:
            with self._lock:
                self._slots = [s for s in self._slots if self._resolve(s) is not None]

    def __len__(self) -> int:
        return len(self._slots)

    @staticmethod
    def _resolve(ref: Any) -> Callable[..., Any] | None:
        return ref() if isinstance(ref, weakref.WeakMethod) else ref


class Signal:
    """Declared on a class; each instance gets its own `SignalInstance`. The argument
    types are documentation (what ``emit`` passes), as in psygnal and Qt."""

    def __init__(self, *types: Any) -> None:
        self.types = types

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"_signal_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        inst = obj.__dict__.get(self._attr)
        if inst is None:
            inst = obj.__dict__.setdefault(self._attr, SignalInstance())
        return inst
