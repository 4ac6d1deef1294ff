"""What a view shows of a large image, made off the GUI thread.

An attack result or an evidence map of a 12-megapixel mammogram is seconds of numpy
(differences, colour maps, renderings) before anything is painted; done in a slot, it froze
the window for that long. A `Preparer` makes it on the window's job runner instead and
hands it to the view when it is ready, and only if it is still what the view wants: a
late result for an image the user has left is dropped, so a view never shows one image's
result under another's name. Small images (a photo) are made inline: a few milliseconds,
and shown at once, with no "preparing" flash when the user switches images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...session.jobs import Job

#: above this many pixels, a view's arrays are made on a worker
OFF_THREAD_PIXELS = 1_500_000


class Preparer:
    """Makes one view's display data, one request at a time (the newest wins)."""

    def __init__(self, title: str, runner: Any = None) -> None:
        self.title = title
        self.runner = runner  # a JobRunner; None: always inline (a view on its own)
        self._wanted: object = None
        self._job: Job | None = None

    @property
    def pending(self) -> bool:
        """A request is being made on a worker."""
        return self._job is not None

    def request(self, key: object, pixels: int, make: Callable[[], Any],
                show: Callable[[Any], Any], *, waiting: Callable[[], Any] | None = None,
                failed: Callable[[str], Any] | None = None) -> bool:
        """Make ``make()`` and call ``show`` with it on the GUI thread; True when it was
        shown at once. ``make`` runs on a worker for images over `OFF_THREAD_PIXELS`, so it
        must not touch Qt; ``waiting()`` is called meanwhile (the view says so)."""
        self.forget()
        self._wanted = key
        if self.runner is None or pixels <= OFF_THREAD_PIXELS:
            show(make())
            return True

        def landed(value: Any) -> None:
            if self._wanted is key and self._job is job:
                self._job = None
                show(value)

        def errored(message: str) -> None:
            if self._wanted is key and self._job is job:
                self._job = None
                if failed is not None:
                    failed(message)

        job = Job(self.title, lambda _job: make(), on_result=landed, on_error=errored)
        self._job = job
        if waiting is not None:
            waiting()
        self.runner.start(job, priority=1)
        return False

    def forget(self) -> None:
        """Whatever is being made is no longer wanted (the view shows something else)."""
        self._wanted = None
        if self._job is not None:
            self._job.cancel()
            self._job = None
