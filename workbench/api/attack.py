"""Attacks: the base class a plugin subclasses, what its ``run`` is given and returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

THREATS = ("white-box gradient", "score-based black-box", "transfer", "physical/patch",
           "semantic")
SCOPES = ("per-image", "universal")


class Cancelled(Exception):  # noqa: N818 (it is a signal, not an error)
    """Raised inside a plugin when the user cancels; the engine reports it, not a failure."""


@dataclass
class RunContext:
    """What a running plugin may use besides the model and the images."""

    device: Any
    generator: Any  # torch.Generator seeded for this run, on ``device``
    seed: int = 0
    surrogate: Any = None  # a second classifier, for transfer attacks
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("workbench.plugin"))
    progress_callback: Callable[[float, str], None] | None = None
    cancelled_callback: Callable[[], bool] | None = None
    plugin_lookup: Callable[[str], Any] | None = None

    def progress(self, fraction: float, message: str = "") -> None:
        if self.progress_callback is not None:
            self.progress_callback(max(0.0, min(1.0, float(fraction))), message)

    def cancelled(self) -> bool:
        return bool(self.cancelled_callback and self.cancelled_callback())

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop: call it once per iteration."""
        if self.cancelled():
            raise Cancelled()

    def plugin(self, name: str) -> Any:
        """Another attack plugin by name (e.g. a transfer attack runs PGD on the surrogate)."""
        if self.plugin_lookup is None:
            raise LookupError("no plugin registry in this context")
        return self.plugin_lookup(name)


@dataclass
class AttackResult:
    """What a plugin returns. ``adversarial`` has the input's shape, values in [0, 1]."""

    adversarial: Any
    iterations: Any = None  # per-image iterations used (tensor or list), if meaningful
    queries: Any = None  # per-image model queries, for black-box attacks
    artifacts: dict[str, Any] = field(default_factory=dict)  # e.g. a learned patch
    notes: str = ""


class Attack:
    """Base class of attack plugins. Subclasses set the class attributes and ``run``."""

    name: str = ""
    summary: str = ""
    threat: str = "white-box gradient"
    scope: str = "per-image"
    version: str = "1"
    needs_surrogate: bool = False

    @dataclass
    class Params:
        pass

    def run(self, model: Any, images: Any, labels: Any, target: Any, params: Any,
            ctx: RunContext) -> AttackResult:
        raise NotImplementedError
