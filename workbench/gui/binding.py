"""Following the current image: a panel moves its listener from the image it showed to
the one it shows now, so it hears only that image's changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def rebind(old: Any, new: Any, slot: Callable[[str], Any]) -> Any:
    """Move ``slot`` from ``old``'s ``changed`` events to ``new``'s (either may be None,
    for no image); returns ``new``."""
    if old is not None:
        old.changed.disconnect(slot)
    if new is not None:
        new.changed.connect(slot)
    return new
