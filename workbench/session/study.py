"""The open study: the images of one window in the order they were opened, which one is
current, the loaded models and the plugins. Qt-free; the GUI binds its panels to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .events import Signal
from .image_session import ImageSession

CACHE_BYTES = 2 * 1024**3  # decoded images kept in memory (least recently shown dropped)


class Study:
    added = Signal(object)  # ImageSession
    current_changed = Signal(object)  # ImageSession or None
    models_changed = Signal()

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self._sessions: dict[str, ImageSession] = {}
        self._shown: list[str] = []  # least recently shown first, for eviction
        self.cache_bytes = cache_bytes
        self.current: ImageSession | None = None
        # the classifier the reviewer chose, and the surrogate for transfer attacks
        self.model: Any = None
        self.model_name = ""
        self.surrogate: Any = None
        self.surrogate_name = ""
        # private keys unlocked in this session, by public-key fingerprint (never stored)
        self.unlocked_keys: dict[str, Any] = {}

    # --- images -----------------------------------------------------------------------------
    def open(self, path: str | Path) -> ImageSession:
        """The session of ``path``, added to the study if it is new."""
        key = str(path)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = ImageSession(key)
            self.added.emit(session)
        return session

    def get(self, path: str | Path | None) -> ImageSession | None:
        return None if path is None else self._sessions.get(str(path))

    def __contains__(self, path: object) -> bool:
        return str(path) in self._sessions

    def __iter__(self) -> Iterator[ImageSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def paths(self) -> list[str]:
        return list(self._sessions)

    def decoded(self) -> list[ImageSession]:
        """Sessions whose image is in memory, in the order they were opened."""
        return [s for s in self._sessions.values() if s.image is not None]

    def set_current(self, path: str | Path | None) -> ImageSession | None:
        session = self.get(path) if path is not None else None
        if path is not None and session is None:
            session = self.open(path)
        self.current = session
        if session is not None:
            self._touch(session)
        self.current_changed.emit(session)
        return session

    def image_decoded(self, session: ImageSession, image: Any) -> None:
        """Record a decoded image and keep the memory budget (never dropping the current
        image or the one just decoded)."""
        session.set_image(image)
        self._touch(session)
        self._evict()

    def _touch(self, session: ImageSession) -> None:
        if session.path in self._shown:
            self._shown.remove(session.path)
        self._shown.append(session.path)

    def _evict(self) -> None:
        decoded = [self._sessions[p] for p in self._shown
                   if self._sessions[p].image is not None]
        total = sum(s.image.pixels.nbytes for s in decoded)
        for s in decoded[:-1]:
            if total <= self.cache_bytes:
                break
            if s is self.current:
                continue
            total -= s.image.pixels.nbytes
            s.evict()

    # --- models -----------------------------------------------------------------------------
    def set_model(self, name: str, model: Any) -> None:
        self.model, self.model_name = model, name
        self.models_changed.emit()

    def set_surrogate(self, name: str, model: Any) -> None:
        self.surrogate, self.surrogate_name = model, name
        self.models_changed.emit()
