"""The detector table and the case verdict beside it say the same thing: a calibrated row
is "suspicious" exactly when the verdict counts it as fired. Each detector's own 5%
threshold flags more images than the case verdict (which holds the detectors together to
5% of clean images), so on ISIC_0000002 the table once showed ela "suspicious" (2.216 >
2.18) under a banner saying "No detector fired"."""

from __future__ import annotations

import json

from workbench.cli import main

TIMEOUT = 240_000
PHOTO = "ISIC_0000002"  # ela between its own threshold and its case threshold


def _agree(rows: list[dict], verdict: str, reasons: list[str]) -> None:
    calibrated = [r for r in rows if r.get("calibrated")]
    assert calibrated, rows
    suspicious = {r["detector"] for r in calibrated if r["verdict"] == "suspicious"}
    names = {r["detector"] for r in calibrated}
    fired = {reason.split(":")[0] for reason in reasons} & names if verdict == "suspicious" \
        else set()
    assert suspicious == fired, (suspicious, verdict, reasons)
    for r in calibrated:  # the threshold shown is the one that judged the row
        assert (r["score"] > r["threshold"]) == (r["verdict"] == "suspicious"), r


def test_detect_rows_agree_with_the_case_verdict(shared_data, capsys):
    photo = shared_data / "dermoscopy" / "isic" / "images" / f"{PHOTO}.jpg"
    code = main(["detect", "--json", "--device", "cpu", str(photo)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    rows = [r for r in lines if "detector" in r]
    (case,) = [r for r in lines if "case_verdict" in r]
    assert code in (0, 1)
    _agree(rows, case["case_verdict"], case["reasons"])
    # the shipped calibrations share their images, so case thresholds apply and each row
    # keeps its own threshold for the record, named in its explanation
    judged = [r for r in rows if "own_threshold" in r]
    assert judged, rows
    for r in judged:
        assert r["threshold"] >= r["own_threshold"]
        assert "case threshold" in r["explanation"]


def test_the_table_agrees_with_the_banner(qtbot, window, shared_data):
    w = window
    w.models.load_model("demo")
    qtbot.waitUntil(lambda: w.study.model is not None, timeout=TIMEOUT)
    photo = shared_data / "dermoscopy" / "isic" / "images" / f"{PHOTO}.jpg"
    w.open_paths([photo])
    qtbot.waitUntil(lambda: w.view.image is not None
                    and w.study.current.verification is not None, timeout=TIMEOUT)
    assert w.run_detectors()
    # while they run there is no verdict, and the banner does not ask to run them
    running = w.verdict_banner.banner.text()
    assert "No verdict yet" in running and "the detectors are running" in running, running
    qtbot.waitUntil(lambda: w.detect_task is None, timeout=TIMEOUT)
    s = w.study.current
    verdict = s.findings.verdict(s.verification)
    outcomes = {o.name: o for o in s.findings.outcomes.values()}
    rows = []
    for name, score, threshold, shown, *_ in w.detectors.rows():
        name = name.replace("  ▣", "")
        if not outcomes[name].calibrated:
            continue
        rows.append({"detector": name, "calibrated": True, "score": float(score),
                     "threshold": float(threshold), "verdict": shown})
    _agree(rows, verdict.verdict, list(verdict.reasons))
    assert verdict.headline in w.verdict_banner.banner.text()
    if verdict.verdict != "suspicious":
        assert "suspicious" not in {r["verdict"] for r in rows}
