"""Study > Reader Study…: a blinded reader answers a real study (ISIC photographs, one of
each pair attacked by a 1-step PGD) in the reader window, by keys and clicks; nothing but
the pixels is shown; answers survive a SIGKILL and a torn last line; pause covers the
image and stops the clock."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QLabel

REPO = Path(__file__).resolve().parents[1]
N_CASES = 6


@pytest.fixture(scope="module")
def study_template(shared_data, tmp_path_factory) -> Path:
    """Six cases in two reading sessions of three: three lesions (nevi and melanomas of
    ISIC), each shown once as it is and once after a 1-step PGD, shrunk to 256 px so the
    build takes seconds on a CPU."""
    from workbench.reader_study.build import StudySpec, build_study

    isic = shared_data / "dermoscopy" / "isic"
    with open(isic / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    folder = tmp_path_factory.mktemp("reader_study")
    labels = folder / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "isic_id", "diagnosis"])
        for diagnosis in ("nevus", "melanoma"):
            fits = [r for r in rows if r["diagnosis"] == diagnosis and int(r["width"]) <= 1024]
            for r in fits[:2]:
                w.writerow([str(isic / r["image"]), r["isic_id"], r["diagnosis"]])
    build_study(StudySpec(data=str(labels), out=str(folder / "study"),
                          attacks=[{"name": "pgd", "params": {"steps": "1"}}], n=N_CASES,
                          seed=2, max_side=256, device="cpu"))
    return folder / "study"


@pytest.fixture
def study(study_template, tmp_path) -> Path:
    """A fresh copy: each test's readers start with no answers."""
    return Path(shutil.copytree(study_template, tmp_path / "study"))


def _records(study: Path, reader: str) -> list[dict]:
    text = (study / "answers" / f"{reader}.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _wait_shown(qtbot, rw, number: int) -> None:
    qtbot.waitUntil(lambda: rw.image_shown and rw.progress_label.text()
                    == f"Case {number} of {N_CASES}", timeout=20000)


def _keys(qtbot, rw, *keys) -> None:
    for k in keys:
        qtbot.keyClick(rw.view, k)


def _shown_texts(rw) -> list[str]:
    texts = [rw.windowTitle()]
    for w in rw.findChildren(QLabel) + rw.findChildren(QAbstractButton):
        if w.isVisible():
            texts += [w.text(), w.toolTip()]
    return [t for t in texts if t]


def _assert_blind(rw, study: Path) -> None:
    """Nothing but the questions and the progress: no file or case name, no model output
    (a probability, a percentage), no provenance, no workbench, no attack."""
    key = json.loads((study / "key.json").read_text())
    secrets = {c["lesion"] for c in key["cases"]} | {Path(c["source"]).name
                                                      for c in key["cases"]}
    for text in _shown_texts(rw):
        low = text.lower()
        for word in ("case_", ".png", ".jpg", "workbench", "isic", "signed", "signature",
                     "verif", "provenance", "model", "attack", "pgd", "probab", "%",
                     str(study)):
            assert word.lower() not in low, (word, text)
        assert not re.search(r"\d\.\d", text), text  # no score or probability
        assert not any(s.lower() in low for s in secrets), text


def test_a_reader_answers_by_keys_and_clicks_and_sees_only_the_image(
        window, qtbot, study, monkeypatch):
    rw = window.open_reader_study(study, "alice")
    assert window.reader_study_action.text() == "&Reader Study…"
    assert rw.isFullScreen() and rw.windowTitle() == f"Reader study — case 1 of {N_CASES}"
    _wait_shown(qtbot, rw, 1)
    _assert_blind(rw, study)
    # the view draws nothing over the pixels: no corner text (header, W/L, zoom), no scale bar
    assert rw.view.show_corner_text is False
    drawn = []
    monkeypatch.setattr(rw.view, "corner_lines", lambda: drawn.append(1) or {})
    rw.view.grab()
    assert drawn == [] and rw.view.image is not None
    assert not rw.next_button.isEnabled()
    _keys(qtbot, rw, Qt.Key.Key_M, Qt.Key.Key_B)
    assert not rw.next_button.isEnabled()  # two of three answered
    _keys(qtbot, rw, Qt.Key.Key_4)
    assert rw.next_button.isEnabled()
    _keys(qtbot, rw, Qt.Key.Key_Return)
    _wait_shown(qtbot, rw, 2)
    assert rw.panel.authentic() is None  # every case starts blank
    def click(b):  # on the radio's circle: a radio button takes clicks on its text only
        qtbot.mouseClick(b, Qt.MouseButton.LeftButton, pos=QPoint(8, b.height() // 2))
    click(rw.panel.authentic_buttons["real"])
    click(rw.panel.diagnosis_buttons["nevus"])
    click(rw.panel.confidence_buttons[2])
    click(rw.next_button)
    _wait_shown(qtbot, rw, 3)
    _keys(qtbot, rw, Qt.Key.Key_R, Qt.Key.Key_A, Qt.Key.Key_5, Qt.Key.Key_Enter)
    # the main window's own keys (R reset, M measure) stayed out of it, and it opened nothing
    assert not window.measure_action.isChecked()
    assert window.study.current is None and len(list(window.study)) == 0
    got = [(r["case"], r["authentic"], r["diagnosis"], r["confidence"])
           for r in _records(study, "alice")]
    assert got == [("case_001", "manipulated", "melanoma", 4),
                   ("case_002", "real", "nevus", 2), ("case_003", "real", "nevus", 5)]
    # case 4 opens the second reading session: a break first, the image covered
    qtbot.waitUntil(lambda: rw.progress_label.text() == f"Case 4 of {N_CASES}")
    assert rw.stack.currentWidget() is rw.cover and not rw.view.isVisible()
    assert "Session 1 of 2 is over" in rw.cover.text()
    _keys(qtbot, rw, Qt.Key.Key_R)
    assert rw.panel.authentic() is None  # no answering what is not on screen
    _keys(qtbot, rw, Qt.Key.Key_P)
    for number in range(4, N_CASES + 1):
        _wait_shown(qtbot, rw, number)
        _keys(qtbot, rw, Qt.Key.Key_M, Qt.Key.Key_A, Qt.Key.Key_3, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: rw.case is None)
    assert len(_records(study, "alice")) == N_CASES
    text = rw.cover.text()
    assert f"All {N_CASES} cases answered. Thank you." in text
    assert str(study / "answers" / "alice.jsonl") in text
    assert rw.stack.currentWidget() is rw.cover
    for word in ("score", "correct", "right", "%"):  # no score, nothing of the key
        assert word not in text.lower()
    _keys(qtbot, rw, Qt.Key.Key_Escape)  # Esc leaves full screen
    qtbot.waitUntil(lambda: not rw.isFullScreen())


CHILD = r"""
import sys, time
from workbench.gui.app import ensure_app
from workbench.gui.reader import ReaderWindow

app = ensure_app()
rw = ReaderWindow(sys.argv[1], "bob")
rw.show_reading()

def wait(cond):
    end = time.monotonic() + 30
    while not cond():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() > end:
            sys.exit("timed out")

for number in (1, 2):
    wait(lambda: rw.image_shown and rw.progress_label.text().startswith(f"Case {number} "))
    rw.panel.authentic_buttons["manipulated"].click()
    rw.panel.diagnosis_buttons["melanoma"].click()
    rw.panel.confidence_buttons[number].click()
    rw.next_button.click()
    print("answered", number, flush=True)
wait(lambda: rw.image_shown)
print("showing", rw.progress_label.text(), flush=True)
app.exec()  # looking at case 3 when the kill comes
"""


def test_a_killed_reader_window_loses_nothing_and_resumes_at_the_next_case(
        window, qtbot, study):
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("SIGKILL is POSIX only")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(study)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert lines == ["answered 1", "answered 2", f"showing Case 3 of {N_CASES}"]
    assert proc.returncode == -signal.SIGKILL
    got = [(r["case"], r["authentic"], r["diagnosis"], r["confidence"])
           for r in _records(study, "bob")]
    assert got == [("case_001", "manipulated", "melanoma", 1),
                   ("case_002", "manipulated", "melanoma", 2)]
    rw = window.open_reader_study(study, "bob")
    _wait_shown(qtbot, rw, 3)
    assert rw.case == "case_003" and rw.windowTitle() == f"Reader study — case 3 of {N_CASES}"
    assert not rw.notice_label.isVisible()  # nothing was torn: every write was whole


def test_a_torn_last_line_is_noticed_and_its_case_asked_again(window, qtbot, study):
    rw = window.open_reader_study(study, "dora")
    for number in (1, 2):
        _wait_shown(qtbot, rw, number)
        _keys(qtbot, rw, Qt.Key.Key_R, Qt.Key.Key_B, Qt.Key.Key_1, Qt.Key.Key_Return)
    _wait_shown(qtbot, rw, 3)
    rw.close()  # mid-case: case 3 goes unanswered, nothing else is lost
    qtbot.waitUntil(lambda: not window.reader_windows)
    path = study / "answers" / "dora.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"case": "case_003", "authentic": "re')  # a crash in the middle of a write
    rw = window.open_reader_study(study, "dora")
    _wait_shown(qtbot, rw, 3)
    assert rw.notice_label.isVisible() and "discarded" in rw.notice_label.text()
    assert "case_003" not in rw.notice_label.text()
    _keys(qtbot, rw, Qt.Key.Key_M, Qt.Key.Key_A, Qt.Key.Key_2, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: rw.case == "case_004")
    _keys(qtbot, rw, Qt.Key.Key_P)  # past the break before the second session
    _wait_shown(qtbot, rw, 4)
    got = [(r["case"], r["authentic"], r["confidence"]) for r in _records(study, "dora")]
    assert got == [("case_001", "real", 1), ("case_002", "real", 1),
                   ("case_003", "manipulated", 2)]
    # the same reader twice would interleave one file: the open window is raised instead
    assert window.open_reader_study(study, "dora") is rw


def test_pause_covers_the_image_and_stops_the_clock(qtbot, study):
    from workbench.gui.reader import ReaderWindow

    now = [1000.0]
    rw = ReaderWindow(study, "carol", clock=lambda: now[0])
    qtbot.addWidget(rw)
    rw.show_reading()
    now[0] += 50.0  # still loading (its result needs the event loop): not counted
    _wait_shown(qtbot, rw, 1)
    assert rw.session.elapsed() == 0.0
    now[0] += 3.0
    assert rw.session.elapsed() == pytest.approx(3.0)
    _keys(qtbot, rw, Qt.Key.Key_P)
    assert rw.stack.currentWidget() is rw.cover and not rw.view.isVisible()
    assert rw.cover.text().startswith("Paused") and rw.pause_button.text().startswith("Resume")
    now[0] += 100.0
    assert rw.session.elapsed() == pytest.approx(3.0)
    _keys(qtbot, rw, Qt.Key.Key_M, Qt.Key.Key_A, Qt.Key.Key_3)
    assert not rw.panel.complete() and not rw.next_button.isEnabled()
    _keys(qtbot, rw, Qt.Key.Key_P)
    assert rw.stack.currentWidget() is rw.view and rw.view.isVisible()
    now[0] += 2.0
    rw._tick()
    assert rw.time_label.text() == "Time on this case: 0:05"
    _keys(qtbot, rw, Qt.Key.Key_M, Qt.Key.Key_A, Qt.Key.Key_3, Qt.Key.Key_Return)
    (record,) = _records(study, "carol")
    assert record["seconds"] == pytest.approx(5.0)


def test_a_folder_that_is_no_study_or_a_bad_name_is_a_message(window, qtbot, study, tmp_path):
    assert window.open_reader_study(tmp_path / "nothing", "alice") is None
    assert "not a reader study" in window.error_box.text()
    window.error_box.close()
    assert window.open_reader_study(study, "a b") is None  # no file name from it
    assert "reader name" in window.error_box.text()
    assert not window.reader_windows and not (study / "answers").exists()
