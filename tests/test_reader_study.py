"""The blinded reader study: building one from real ISIC images (nothing gives the answer
away), crash-safe resumable answers, and scoring against hand-computed statistics."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.evaluation.dataset import Item
from workbench.reader_study.answers import AnswerError, ReaderSession, read_answers
from workbench.reader_study.design import plan_study
from workbench.reader_study.layout import KEY_FORMAT, STUDY_FORMAT, questions
from workbench.reader_study.score import score_study, write_score
from workbench.reader_study.shown import PNG_KEPT, png_chunks, write_shown
from workbench.reader_study.stats import fleiss_kappa, mcnemar, wilson

REPO = Path(__file__).resolve().parents[1]
ATTACKS = [{"name": "pgd", "params": {"steps": "1"}},
           {"name": "colour-balance", "params": {"popsize": "1", "generations": "0"}}]


def wb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=600, cwd=REPO)


# --- the design, without images --------------------------------------------------------------
def _items(n_per_class: int) -> list[Item]:
    return [Item(f"L{c}{i:02d}", f"/x/L{c}{i:02d}.jpg", c) for c in (0, 1)
            for i in range(n_per_class)]


def test_the_single_design_has_the_requested_mix_and_is_seeded():
    plan = plan_study(_items(10), design="single", n=20, fraction=0.25,
                      attacks=["pgd", "colour-balance"], seed=3)
    assert [p.case for p in plan] == [f"case_{i:03d}" for i in range(1, 21)]
    manipulated = [p for p in plan if p.manipulated]
    assert len(manipulated) == 5  # round(0.25 x 20)
    # both classes manipulated alike (2 and 3, largest remainder), attacks dealt in turn
    assert sorted(sum(p.item.label == c for p in manipulated) for c in (0, 1)) == [2, 3]
    assert sorted(p.attack for p in manipulated) == ["colour-balance"] * 2 + ["pgd"] * 3
    assert all(p.attack is None and p.twin is None for p in plan if not p.manipulated)
    again = plan_study(_items(10), design="single", n=20, fraction=0.25,
                       attacks=["pgd", "colour-balance"], seed=3)
    other = plan_study(_items(10), design="single", n=20, fraction=0.25,
                       attacks=["pgd", "colour-balance"], seed=4)
    assert again == plan and [p.item.id for p in other] != [p.item.id for p in plan]


def test_the_paired_design_puts_the_twins_in_different_sessions():
    plan = plan_study(_items(4), design="paired", n=12, fraction=0.5, attacks=["pgd"],
                      seed=0)
    by_case = {p.case: p for p in plan}
    assert len(plan) == 12 and sum(p.manipulated for p in plan) == 6
    for p in plan:
        twin = by_case[p.twin]
        assert twin.twin == p.case and twin.item == p.item
        assert twin.manipulated != p.manipulated and twin.block != p.block
    assert [sum(p.manipulated for p in plan if p.block == b) for b in (0, 1)] == [3, 3]
    with pytest.raises(ValueError, match="single"):
        plan_study(_items(4), design="paired", n=8, fraction=0.3, attacks=["pgd"], seed=0)


# --- a study built from real ISIC photographs -----------------------------------------------
def _small_isic(shared_data: Path, folder: Path, per_class: int = 6) -> Path:
    """A labels CSV of the first ``per_class`` nevi and melanomas no wider than 1024 px
    (two sizes among them, 767x576 and 1022x767), so attacks stay fast on a CPU."""
    isic = shared_data / "dermoscopy" / "isic"
    with open(isic / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for diagnosis in ("nevus", "melanoma"):
        fits = [r for r in rows if r["diagnosis"] == diagnosis and int(r["width"]) <= 1024]
        chosen += fits[:per_class]
    out = folder / "labels.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "isic_id", "diagnosis"])
        for r in chosen:
            w.writerow([str(isic / r["image"]), r["isic_id"], r["diagnosis"]])
    return out


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    from workbench.reader_study.build import StudySpec, build_study

    folder = tmp_path_factory.mktemp("study")
    labels = _small_isic(shared_data, folder)
    seen = []
    summary = build_study(StudySpec(data=str(labels), out=str(folder / "study"),
                                    attacks=ATTACKS, n=12, seed=1, device="cpu"),
                          progress=lambda done, total, case: seen.append((done, total)))
    assert seen[-1] == (12, 12)
    return folder / "study", summary


def test_a_built_study_has_the_requested_mix(built):
    study, summary = built
    key = json.loads((study / "key.json").read_text())
    assert key["format"] == KEY_FORMAT and "keep this file from the readers" in key["notice"]
    assert "must never leave the study folder" in key["notice"]
    assert summary["images"] == 12 and summary["manipulated"] == 6
    truth = [c["truth"] for c in key["cases"]]
    assert truth.count("manipulated") == 6
    assert sorted(c["attack"] for c in key["cases"] if c["attack"]) == \
        ["colour-balance"] * 3 + ["pgd"] * 3
    labels = {c["lesion"]: c["label"] for c in key["cases"]}
    assert sorted(labels.values()) == ["melanoma"] * 3 + ["nevus"] * 3
    for c in key["cases"]:
        assert c["model"]["class"] in ("nevus", "melanoma")
        assert c["model"]["correct"] == (c["model"]["class"] == c["label"])


def test_nothing_in_the_shown_files_gives_the_answer_away(built):
    study, _ = built
    key = {c["case"]: c for c in json.loads((study / "key.json").read_text())["cases"]}
    public = (study / "study.json").read_text()
    shown = sorted((study / "images").iterdir())
    # neutral names in reading order, one format, only the shown images (no key)
    assert [p.name for p in shown] == [f"case_{i:03d}.png" for i in range(1, 13)]
    # the study file names no attack, no lesion and no truth (its format tag and the
    # question's choices are the same for every case)
    for word in {"pgd", "colour", "adversarial", "truth", "lesion"} | {
            c["lesion"] for c in key.values()}:
        assert word not in public
    assert json.loads(public)["format"] == STUDY_FORMAT
    headers = set()
    for p in shown:
        data = p.read_bytes()
        chunks = png_chunks(data)
        assert {t for t, _ in chunks} <= set(PNG_KEPT)  # no tEXt/iTXt/zTXt/eXIf/iCCP/tIME
        assert chunks[0][1][8:10] == b"\x08\x02"  # 8-bit RGB, for both kinds
        headers.add(chunks[0][1][8:])
        entry = key[p.stem]
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        source = cv2.imread(entry["source"], cv2.IMREAD_UNCHANGED)
        assert img.shape == source.shape  # the size of its original
        # the size of a file is a function of its dimensions alone (stored zlib)
        twin = study / "images" / f"{entry['twin']}.png"
        assert p.stat().st_size == twin.stat().st_size
        assert p.stat().st_mtime == twin.stat().st_mtime
        if entry["truth"] == "real":
            # decoded and re-encoded losslessly: the original's pixels exactly
            assert np.array_equal(img, source)
        else:
            assert not entry["change"]["unchanged"] and not np.array_equal(img, source)
    assert len(headers) == 1


def test_an_answer_file_survives_a_kill_and_resumes(tmp_path):
    """A child process answers cases and is SIGKILLed mid-way; then a torn last line is
    added as a crash mid-write would leave it. Nothing answered is lost, and the session
    resumes at the first unanswered case."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("SIGKILL is POSIX only")
    study = _hand_study(tmp_path)
    child = ("import sys, time\nfrom workbench.reader_study.answers import ReaderSession\n"
             "s = ReaderSession(sys.argv[1], 'reader1')\n"
             "while (case := s.next_case()) is not None:\n"
             "    s.answer(case, 'manipulated', 'melanoma', 2, seconds=1.5)\n"
             "    print(case, flush=True)\n    time.sleep(0.05)\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(study)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    printed = [proc.stdout.readline().strip() for _ in range(3)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    path = study / "answers" / "reader1.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"case": "case_0')  # torn: the write was cut here
    log = read_answers(path)
    assert log.torn == '{"case": "case_0'
    answered = [a.case for a in log.answers]
    assert set(printed) <= set(answered)  # every answer acknowledged is on disk
    cases = [f"case_{i:03d}" for i in range(1, 11)]
    assert answered == cases[:len(answered)] and len(answered) < 10
    session = ReaderSession(study, "reader1")
    assert session.recovered_torn_line == '{"case": "case_0'
    assert session.next_case() == cases[len(answered)]
    assert all(a.authentic == "manipulated" and a.seconds == 1.5
               for a in session.answers.values())
    session.answer(session.next_case(), "real", "nevus", 5, seconds=2.0)
    again = read_answers(path)
    assert again.torn is None and len(again.answers) == len(answered) + 1


def test_the_session_clock_pauses_and_an_answer_is_given_once(tmp_path):
    study = _hand_study(tmp_path)
    now = [100.0]
    s = ReaderSession(study, "r2", clock=lambda: now[0])
    case = s.next_case()
    now[0] += 4.0
    s.pause()
    now[0] += 60.0  # paused: not counted
    s.resume()
    now[0] += 1.5
    assert s.elapsed() == pytest.approx(5.5)
    assert s.answer(case, "real", "nevus", 3).seconds == pytest.approx(5.5)
    with pytest.raises(AnswerError, match="already answered"):
        s.answer(case, "real", "nevus", 3, seconds=1)
    for bad in (("fake", "nevus", 3), ("real", "psoriasis", 3), ("real", "nevus", 6)):
        with pytest.raises(AnswerError):
            s.answer(s.next_case(), *bad)
    # a complete record that lost only its newline is kept, not cut off
    path = study / "answers" / "r2.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert ReaderSession(study, "r2").answers.keys() == {case}


def test_a_cancelled_build_leaves_nothing(shared_data, tmp_path):
    from workbench.reader_study.build import StudySpec, build_study
    from workbench.reader_study.layout import StudyCancelled

    labels = _small_isic(shared_data, tmp_path, per_class=2)
    asked = []
    with pytest.raises(StudyCancelled):
        build_study(StudySpec(data=str(labels), out=str(tmp_path / "s"), attacks=ATTACKS,
                              device="cpu"),
                    cancelled=lambda: asked.append(1) or len(asked) > 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


# --- scoring a hand-written study --------------------------------------------------------------
# Paired design, 5 lesions shown twice (10 cases), classes nevus (N) and melanoma (M).
#   case  lesion truth  label model   | r1 auth diag | r2 auth diag | r3 auth diag
CASES = """
case_001 L1 real        nevus     ok  | real  nevus  | real  nevus  | real melanoma
case_002 L2 manipulated melanoma  bad | real  melanoma | manipulated melanoma | real melanoma
case_003 L3 real        nevus     ok  | real  nevus  | manipulated melanoma | real melanoma
case_004 L4 manipulated melanoma  ok  | manipulated nevus | manipulated melanoma | real melanoma
case_005 L5 real        melanoma  bad | real  melanoma | real  nevus  | real melanoma
case_006 L1 manipulated nevus     bad | manipulated melanoma | real nevus | real melanoma
case_007 L2 real        melanoma  ok  | real  melanoma | real  melanoma | real melanoma
case_008 L3 manipulated nevus     bad | real  nevus  | real  nevus  | real melanoma
case_009 L4 real        melanoma  ok  | real  melanoma | manipulated nevus | real melanoma
case_010 L5 manipulated melanoma  bad | manipulated nevus | manipulated melanoma | real melanoma
"""


def _table() -> list[list[str]]:
    return [line.replace("|", " ").split() for line in CASES.strip().splitlines()]


def _hand_study(folder: Path, with_answers: bool = False) -> Path:
    study = folder / "hand"
    (study / "answers").mkdir(parents=True)
    rows = _table()
    cases = [r[0] for r in rows]
    twin = {r[0]: next(o[0] for o in rows if o[1] == r[1] and o[0] != r[0]) for r in rows}
    (study / "study.json").write_text(json.dumps({
        "format": STUDY_FORMAT, "cases": cases, "blocks": [cases[:5], cases[5:]],
        "images": {c: f"images/{c}.png" for c in cases}, "class_names": ["nevus", "melanoma"],
        "questions": questions(["nevus", "melanoma"])}))
    (study / "key.json").write_text(json.dumps({
        "format": KEY_FORMAT, "design": "paired",
        "models": {"victim": {"name": "demo"}},
        "cases": [{"case": r[0], "lesion": r[1], "truth": r[2], "label": r[3],
                   "twin": twin[r[0]], "attack": "pgd" if r[2] == "manipulated" else None,
                   "change": {"unchanged": False} if r[2] == "manipulated" else None,
                   "model": {"class": r[3] if r[4] == "ok" else
                             ({"nevus": "melanoma", "melanoma": "nevus"}[r[3]]),
                             "correct": r[4] == "ok"}} for r in rows]}))
    if with_answers:
        for k, reader in enumerate(("r1", "r2", "r3")):
            lines = [json.dumps({"case": r[0], "authentic": r[5 + 2 * k],
                                 "diagnosis": r[6 + 2 * k], "confidence": 3, "seconds": 2.0,
                                 "answered_at": "2025-01-01T00:00:00Z"}) for r in rows]
            text = "\n".join(lines) + "\n"
            if reader == "r2":
                text += '{"case": "case_00'  # a torn last line: reported, not counted
            (study / "answers" / f"{reader}.jsonl").write_text(text)
    return study


def test_the_statistics_against_hand_computed_values():
    # Wilson, 8 of 10: centre (8 + z²/2)/(10 + z²) = 9.92073/13.84146 = 0.716735, half
    # z/(10 + z²)·sqrt(8·2/10 + z²/4) = 0.141601·1.600114 = 0.226578 -> (0.4902, 0.9433)
    assert wilson(8, 10) == pytest.approx((0.490162, 0.943318), abs=1e-6)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 0) is None
    # exact McNemar, b=10 c=2: 2·P(X <= 2 | 12, 1/2) = 2·(1 + 12 + 66)/4096 = 0.0385742
    t = mcnemar(10, 2)
    assert t["test"] == "exact binomial" and t["p"] == pytest.approx(158 / 4096)
    # 25 discordant pairs or more: chi² = (|20 - 8| - 1)²/28 = 121/28; on 1 degree of
    # freedom its tail is erfc(sqrt(chi²/2)) = 0.0376353
    t = mcnemar(20, 8)
    assert t["test"] == "chi-square with continuity correction"
    assert t["statistic"] == pytest.approx(121 / 28)
    assert t["p"] == pytest.approx(math.erfc(math.sqrt(121 / 28 / 2)))
    assert mcnemar(0, 0)["p"] == 1.0
    # Fleiss (1971)'s worked example (10 subjects, 14 raters, 5 categories): P̄ = 0.378,
    # P̄e = 0.213, kappa = 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    k = fleiss_kappa(table)
    assert k["p_bar"] == pytest.approx(0.378, abs=5e-4)
    assert k["p_e"] == pytest.approx(0.213, abs=5e-4)
    assert k["kappa"] == pytest.approx(0.210, abs=5e-4)


def test_scoring_hand_written_answers_gives_the_hand_computed_numbers(tmp_path):
    study = _hand_study(tmp_path, with_answers=True)
    s = score_study(study)
    r1, r2, r3 = (s["readers"][r] for r in ("r1", "r2", "r3"))
    # authenticity: r1 wrong on case_002 and case_008 only (8/10); r2 wrong on 003, 006,
    # 008, 009 (6/10); r3 says "real" to everything (5/10); pooled 19/30
    assert (r1["authenticity"]["k"], r2["authenticity"]["k"], r3["authenticity"]["k"]) == \
        (8, 6, 5)
    assert r1["authenticity"]["ci95"] == pytest.approx([0.490162, 0.943318], abs=1e-6)
    assert (s["pooled"]["authenticity"]["k"], s["pooled"]["authenticity"]["n"]) == (19, 30)
    assert (r1["detected"]["k"], r1["false_alarms"]["k"]) == (3, 0)  # 004, 006, 010
    # diagnosis, r1: all 5 originals right; manipulated right on 002 and 008 (2/5). Pairs
    # (original, manipulated): L1 (right, wrong), L2 (right, right), L3 (right, right),
    # L4 (right, wrong), L5 (right, wrong): b = 3, c = 0; exact p = 2·(1/2)³ = 0.25
    d1 = r1["diagnosis"]
    assert (d1["originals"]["k"], d1["manipulated"]["k"]) == (5, 2)
    assert (d1["comparison"]["b"], d1["comparison"]["c"]) == (3, 0)
    assert d1["comparison"]["test"] == "exact binomial"
    assert d1["comparison"]["p"] == pytest.approx(0.25)
    assert d1["comparison"]["statistic"] == 0
    # r2: originals right on 001 and 007 (2/5), every manipulated one right: b=0, c=3
    d2 = r2["diagnosis"]
    assert (d2["originals"]["k"], d2["manipulated"]["k"]) == (2, 5)
    assert (d2["comparison"]["b"], d2["comparison"]["c"], d2["comparison"]["p"]) == \
        (0, 3, pytest.approx(0.25))
    # r3 always says melanoma: both versions of a lesion agree, nothing discordant
    assert r3["diagnosis"]["comparison"]["p"] == 1.0
    # pooled pairs: b = 3, c = 3: p = min(1, 2·42/64) = 1
    assert (s["pooled"]["diagnosis"]["comparison"]["b"],
            s["pooled"]["diagnosis"]["comparison"]["c"]) == (3, 3)
    assert s["pooled"]["diagnosis"]["comparison"]["p"] == 1.0
    # the model: originals 4/5, manipulated 1/5; pairs L1, L2, L3 (right, wrong), L4
    # (right, right), L5 (wrong, wrong): b = 3, c = 0, p = 0.25
    m = s["model"]
    assert (m["originals"]["k"], m["manipulated"]["k"]) == (4, 1)
    assert (m["comparison"]["b"], m["comparison"]["p"]) == (3, pytest.approx(0.25))
    # r1 against the model on the manipulated images: r1 right and model wrong on 002
    # and 008 (b = 2), model right and r1 wrong on 004 (c = 1)
    vs = r1["reader_vs_model"]["manipulated"]
    assert (vs["b"], vs["c"]) == (2, 1)
    # Fleiss, authenticity: 4 unanimous cases (P_i = 1) and 6 split 2:1 (P_i = 1/3):
    # P̄ = 0.6; 22 of 30 ratings "real": P̄e = (22² + 8²)/30² = 548/900;
    # kappa = (540 - 548)/(900 - 548) = -1/44
    a = s["agreement"]
    assert a["cases"] == 10 and a["readers"] == 3
    assert a["authentic"]["kappa"] == pytest.approx(-1 / 44)
    # diagnosis: 2 unanimous, 8 split: P̄ = (2 + 8/3)/10 = 7/15; 10 of 30 nevus:
    # P̄e = 1/9 + 4/9 = 5/9; kappa = (7/15 - 5/9)/(4/9) = -0.2
    assert a["diagnosis"]["kappa"] == pytest.approx(-0.2)
    assert any("r2.jsonl: a torn last line" in n for n in s["notes"])
    written = write_score(tmp_path / "score", s)
    assert {p.name for p in written} == {"score.json", "score.md", "authenticity.png",
                                         "diagnosis.png"}
    md = (tmp_path / "score" / "score.md").read_text()
    assert "0.800 (0.490–0.943) 8/10" in md and "exact binomial (b=3, c=0)" in md


# --- DICOM: both kinds look alike -------------------------------------------------------------
def test_dicom_originals_and_manipulated_copies_have_the_same_header(tmp_path):
    import pydicom
    from conftest import pydicom_test_file

    from workbench.imaging.loader import load_image
    from workbench.imaging.model_input import to_model_input

    image = load_image(pydicom_test_file("CT_small.dcm"))
    x, mapping = to_model_input(image)
    rng = np.random.default_rng(0)
    attacked = np.clip(x + rng.uniform(-0.01, 0.01, x.shape).astype(np.float32), 0, 1)
    a = write_shown(image, x, mapping, tmp_path / "case_001.dcm", "case_001", "7")
    b = write_shown(image, attacked, mapping, tmp_path / "case_002.dcm", "case_002", "7")
    assert a.stat().st_size == b.stat().st_size
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    source = image.metadata

    def header(ds):
        return {e.keyword: e.value for e in ds if e.keyword not in (
            "PixelData", "PatientID", "SmallestImagePixelValue", "LargestImagePixelValue")
            and e.VR != "UI"}

    assert header(da) == header(db)
    for ds in (da, db):
        for kw in ("DerivationDescription", "SourceImageSequence", "IconImageSequence"):
            assert kw not in ds
        assert ds.SOPInstanceUID != source.SOPInstanceUID
        assert ds.StudyInstanceUID != source.StudyInstanceUID
        text = " ".join(str(e.value) for e in ds.iterall() if e.VR in (
            "LO", "SH", "ST", "LT", "UT", "CS", "PN")).lower()
        assert "workbench" not in text and "adversarial" not in text
    assert list(da.ImageType) == list(db.ImageType)
    assert da.StudyDate == db.StudyDate == "20000101"
    assert np.array_equal(da.pixel_array, source.pixel_array)  # the original, exactly


# --- the command line -------------------------------------------------------------------------
def test_study_new_and_score_from_the_command_line(shared_data, tmp_path):
    isic = shared_data / "dermoscopy" / "isic"
    out = tmp_path / "cli-study"
    run = wb("study", "new", "--data", str(isic), "--split", "test", "--n", "4",
             "--design", "single", "--fraction-manipulated", "0.5",
             "--attacks", "pgd", "--param", "pgd.steps=1", "--max-side", "320",
             "--device", "cpu", "--seed", "5", "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 images, 2 manipulated" in run.stdout and "key.json" in run.stdout
    card = json.loads((REPO / "resources/models/demo_melanoma.json").read_text())
    key = json.loads((out / "key.json").read_text())
    assert {c["lesion"] for c in key["cases"]} <= set(card["split"]["test_ids"])
    assert all(max(c["size"]) == 320 for c in key["cases"])
    assert len({c["lesion"] for c in key["cases"]}) == 4  # single: each lesion once
    for reader, said in (("alice", "real"), ("bob", "manipulated")):
        session = ReaderSession(out, reader)
        while (case := session.next_case()) is not None:
            session.answer(case, said, "melanoma", 3, seconds=1.0)
    run = wb("study", "score", str(out), "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["readers"]["alice"]["authenticity"]["k"] == 2  # the two originals
    assert summary["agreement"]["authentic"]["kappa"] == pytest.approx(-1.0)
    # different lesions on either side: an unpaired comparison
    assert summary["readers"]["bob"]["diagnosis"]["comparison"]["test"] == \
        "Fisher exact (two-sided)"
    for name in ("score.json", "score.md", "authenticity.png", "diagnosis.png"):
        assert (out / "score" / name).is_file()


@pytest.mark.parametrize("args, says", [
    (["new", "--data", "/no/such/folder", "--attacks", "pgd", "--out", "{tmp}/s"],
     "no such file or folder"),
    (["new", "--data", "{isic}", "--attacks", "pgd", "--fraction-manipulated", "0.3",
      "--out", "{tmp}/s"], "use --design single"),
    (["new", "--data", "{isic}", "--attacks", "no-such-attack", "--out", "{tmp}/s"],
     "no attack named"),
    (["score", "{tmp}"], "not a reader study"),
])
def test_bad_input_is_one_line_and_exit_2(shared_data, tmp_path, args, says):
    isic = str(shared_data / "dermoscopy" / "isic")
    run = wb("study", *[a.format(tmp=tmp_path, isic=isic) for a in args])
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and says in run.stderr, run.stderr
