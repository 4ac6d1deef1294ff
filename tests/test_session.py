"""The Qt-free session model: a Study of ImageSessions filled by actions run as Jobs on
the caller's thread (as the CLI and scripts run them), with real DICOM files."""

from __future__ import annotations

import pytest
from conftest import pydicom_test_file

from workbench.session import Cancelled, Job, JobFailed, Study, actions


def test_decode_and_verify_land_in_their_own_session():
    study = Study()
    ct, mr = study.open(pydicom_test_file("CT_small.dcm")), study.open(
        pydicom_test_file("MR_small.dcm"))
    seen: list[tuple[str, str]] = []
    for s in (ct, mr):
        s.changed.connect(lambda aspect, s=s: seen.append((s.name, aspect)))
    progress: list[float] = []
    job = actions.open_image(study, ct)
    job.progressed.connect(lambda f, _m: progress.append(f))
    image = job.run()
    assert ct.image is image and mr.image is None
    assert (image.rows, image.columns) == (128, 128)
    assert progress and progress[0] < 0  # "opening…" before the size is known
    actions.verify(ct).run()
    assert ct.verification.verdict == "unsigned" and mr.verification is None
    assert seen == [("CT_small.dcm", "image"), ("CT_small.dcm", "verification")]


def test_an_unreadable_file_is_an_error_naming_it(tmp_path):
    study = Study()
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"not a dicom file at all" * 8)
    session = study.open(bad)
    job = actions.open_image(study, session)
    with pytest.raises(JobFailed, match="broken.dcm"):
        job.run()
    assert session.image is None


def test_memory_budget_drops_the_least_recently_shown_but_keeps_results():
    study = Study(cache_bytes=1)  # everything over budget: keep only what is needed
    a, b = study.open(pydicom_test_file("CT_small.dcm")), study.open(
        pydicom_test_file("MR_small.dcm"))
    study.set_current(a.path)
    actions.open_image(study, a).run()
    actions.verify(a).run()
    study.set_current(b.path)
    actions.open_image(study, b).run()
    assert b.image is not None and a.image is None  # a was dropped, b is current
    assert a.verification is not None  # its results stay with it
    assert [s.path for s in study.decoded()] == [b.path]


def test_cancel_stops_the_work_and_partial_results_arrive_in_order():
    got: list[int] = []

    def work(job: Job) -> None:
        for i in range(10_000):
            job.publish(i)
            if i == 2:
                job.cancel()  # as the GUI's Cancel button does, from another thread
            job.check_cancelled()

    job = Job("count", work, on_partial=got.append)
    with pytest.raises(Cancelled):
        job.run()
    assert got == [0, 1, 2] and job.cancelled


def test_the_current_image_is_announced_once_per_switch():
    study = Study()
    paths = [pydicom_test_file("CT_small.dcm"), pydicom_test_file("MR_small.dcm")]
    announced: list[str | None] = []
    study.current_changed.connect(lambda s: announced.append(s.name if s else None))
    for p in paths:
        study.open(p)
    study.set_current(paths[1])
    study.set_current(paths[0])
    study.set_current(None)
    assert announced == ["MR_small.dcm", "CT_small.dcm", None]
    assert len(study) == 2 and study.current is None


def test_events_reach_live_listeners_only_and_disconnect():
    import gc

    from workbench.session.image_session import ImageSession

    class Panel:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_changed(self, aspect: str) -> None:
            self.seen.append(aspect)

    session = ImageSession("x.dcm")
    kept, closed = Panel(), Panel()
    session.changed.connect(kept.on_changed)
    session.changed.connect(closed.on_changed)
    session.set_verification(object())
    del closed  # a panel that was closed: it must neither receive events nor be kept alive
    gc.collect()
    session.set_attack(None)
    assert kept.seen == ["verification", "attack"] and len(session.changed) == 1
    session.changed.disconnect(kept.on_changed)
    session.set_comparison_reference(None)
    assert kept.seen == ["verification", "attack"]
    assert len(ImageSession("y.dcm").changed) == 0  # connections are per image


def test_progress_messages_say_how_long_is_left_once_it_is_worth_saying():
    import time

    from workbench.session.jobs import Job

    messages = []
    job = Job("slow", lambda j: None)
    job.progressed.connect(lambda _f, m: messages.append(m))
    job.progress(0.0, "step 0/4")
    job.progress(0.25, "step 1/4")  # under 2 s: no estimate yet
    job._first_progress = (time.monotonic() - 3.0, 0.0)  # as if 3 s had passed
    job.progress(0.5, "step 2/4")
    assert messages[:2] == ["step 0/4", "step 1/4"]
    assert messages[2].startswith("step 2/4 (~") and messages[2].endswith(" s left)")
    left = float(messages[2].split("~")[1].split(" ")[0])
    assert 2.5 <= left <= 3.5  # half done in 3 s: about 3 s more
