"""Views that make a large image's display data on a worker: a late result for an image
the user has left is dropped, never shown under another image's name; progress reaching a
panel is coalesced, the latest report kept."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from workbench.gui.jobs import JobRunner  # noqa: E402
from workbench.gui.views.prepare import OFF_THREAD_PIXELS, Preparer  # noqa: E402
from workbench.session.jobs import Job  # noqa: E402


def test_a_late_result_for_an_image_left_is_not_shown(qtbot):
    runner = JobRunner()
    preparer = Preparer("prepare", runner)
    shown: list[str] = []
    waited: list[str] = []
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "mammogram's map"

    inline = preparer.request("mammogram", OFF_THREAD_PIXELS + 1, slow, shown.append,
                              waiting=lambda: waited.append("mammogram"))
    assert not inline and preparer.pending and waited == ["mammogram"]
    # the user moves to a photo before the mammogram's map is ready
    assert preparer.request("photo", 1000, lambda: "photo's map", shown.append)
    assert shown == ["photo's map"] and not preparer.pending
    release.set()
    qtbot.waitUntil(lambda: not runner.jobs(), timeout=10_000)
    qtbot.wait(50)  # any queued result has been delivered by now
    assert shown == ["photo's map"]


def test_the_newest_large_request_wins_and_failures_are_told(qtbot):
    runner = JobRunner()
    preparer = Preparer("prepare", runner)
    shown: list[str] = []
    failures: list[str] = []

    def broken() -> str:
        raise ValueError("no pixels")

    preparer.request("a", OFF_THREAD_PIXELS * 2, broken, shown.append,
                     failed=failures.append)
    qtbot.waitUntil(lambda: bool(failures), timeout=10_000)
    assert "no pixels" in failures[0] and shown == []
    preparer.request("b", OFF_THREAD_PIXELS * 2, lambda: "b's map", shown.append)
    qtbot.waitUntil(lambda: shown == ["b's map"], timeout=10_000)
    assert not preparer.pending


def test_progress_is_coalesced_and_the_latest_report_arrives(qtbot):
    runner = JobRunner()
    seen: list[tuple[float, str]] = []
    go = threading.Event()

    def work(job: Job) -> int:
        for i in range(1, 2001):
            job.progress(i / 2000, f"step {i}")
        go.wait(10)  # the job stays alive until the panel has had the last report
        return 1

    job = Job("many reports", work)
    runner.start(job, on_progress=lambda f, m: seen.append((f, m)))
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] == (1.0, "step 2000"),
                    timeout=10_000)
    go.set()
    qtbot.waitUntil(lambda: not runner.jobs(), timeout=10_000)
    # 2,000 reports in well under a second reach the panel a handful of times
    assert 1 <= len(seen) < 2000 // 4
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
