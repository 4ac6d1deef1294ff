"""One verdict per image: the capture record decides when there is one (a detector firing
on a signed original is named a false positive); without one, only calibrated detectors
speak, and never for authenticity. Real files, real keys and signatures; the detector
outcomes are the engine's own result objects."""

from __future__ import annotations

import shutil

import pydicom
import pytest
from conftest import pydicom_test_file

from workbench.engine.case_verdict import (
    AUTHENTIC,
    INCONCLUSIVE,
    NO_EVIDENCE,
    PENDING,
    SUSPICIOUS,
    TAMPERED,
    case_verdict,
)
from workbench.engine.detector_runner import DetectorOutcome
from workbench.provenance.records import keys
from workbench.provenance.records.signing import sign_image
from workbench.provenance.records.verify import verify_image

PASSPHRASE = "verdict test passphrase"


def outcome(name: str, verdict: str, score: float = 0.5, threshold: float | None = 0.3,
            calibrated: bool = True, frames: int = 1) -> DetectorOutcome:
    return DetectorOutcome(name, "1", score, verdict, f"{name} explanation",
                           calibrated=calibrated, threshold=threshold, frames=frames)


@pytest.fixture
def ct(tmp_path):
    path = tmp_path / "CT_small.dcm"
    shutil.copy(pydicom_test_file("CT_small.dcm"), path)
    return path


@pytest.fixture
def signed_ct(ct):
    info = keys.generate_key(PASSPHRASE, label="verdict test")
    sign_image(ct, keys.load_private_key(info.fingerprint, PASSPHRASE))  # sidecar only
    return ct


def test_without_a_record_calibrated_detectors_decide(ct):
    v = verify_image(ct, ledger=False)
    assert v.verdict == "unsigned"
    assert case_verdict(v, None).verdict == INCONCLUSIVE  # detectors not run yet
    assert case_verdict(None, None).verdict == PENDING  # provenance still checking
    fired = case_verdict(v, [outcome("feature-squeezing", "suspicious"),
                             outcome("noise-residual", "clean", score=0.1)])
    assert fired.verdict == SUSPICIOUS and "1 detector(s) fired" in fired.headline
    assert fired.reasons == ("feature-squeezing: feature-squeezing explanation (score 0.5 > "
                             "threshold 0.3)",)
    quiet = case_verdict(v, [outcome("noise-residual", "clean", score=0.1)])
    assert quiet.verdict == NO_EVIDENCE and "not proof of authenticity" in quiet.headline
    raw = case_verdict(v, [outcome("ela", "uncalibrated", threshold=None, calibrated=False)])
    assert raw.verdict == INCONCLUSIVE  # an uncalibrated score is not evidence


def test_a_signed_original_is_authentic_even_when_a_detector_fires(signed_ct):
    v = verify_image(signed_ct, ledger=False)
    assert v.verdict == "intact"
    cv = case_verdict(v, [outcome("feature-squeezing", "suspicious")])
    assert cv.verdict == AUTHENTIC
    assert any("feature-squeezing fired" in r and "false positive" in r for r in cv.reasons)


def test_a_changed_pixel_of_a_signed_image_is_tampered(signed_ct):
    ds = pydicom.dcmread(signed_ct)
    arr = ds.pixel_array.copy()
    arr[10, 10] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(signed_ct)
    v = verify_image(signed_ct, ledger=False)
    cv = case_verdict(v, [outcome("noise-residual", "clean", score=0.1)])
    assert cv.verdict == TAMPERED
    assert any(r.startswith("pixels:") for r in cv.reasons), cv.reasons


def test_fresh_install_calls_a_pgd_copy_suspicious_and_its_original_not(shared_data,
                                                                       tmp_path):
    """No calibration step: the shipped thresholds (made on the card's training images)
    and the case thresholds judge a held-out test image and its white-box PGD copy
    (Finlayson et al.'s eps 0.02, 20 steps) saved as the GUI saves it. The rates over the
    whole test split: benchmarks/verdict_rates.py."""
    from workbench import __version__
    from workbench.engine.plugins import PluginRegistry
    from workbench.imaging.export import describe_attack, save_derived
    from workbench.models.card import ModelCard
    from workbench.models.zoo import load_model, resolve_card
    from workbench.session import Study, actions
    from workbench.session.review import review

    assert "ISIC_0000004" in ModelCard.load(resolve_card("demo")).split["test_ids"]
    model, registry = load_model("demo"), PluginRegistry()
    detectors = [p for p in registry.detectors() if p.ok]
    study = Study()
    photo = shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000004.jpg"
    session, clean = review(photo, model=model, detectors=detectors, study=study)
    assert clean.verdict == NO_EVIDENCE, clean
    assert all(o.calibrated for o in session.findings.outcomes.values()
               if o.name in ("ela", "noise-residual", "feature-squeezing"))
    pgd = registry.create("pgd")
    params = {"eps": 0.02, "steps": 20, "early_stop": False}
    actions.attack([(session, 0)], pgd, model, "demo", params, targeted=False).run()
    run = session.attack
    copy = save_derived(run.image, run.outcome.adversarial[0].numpy(), run.mapping,
                        tmp_path / "ISIC_0000004_pgd.png",
                        describe_attack("pgd", pgd.version, params, __version__))
    _, adv = review(copy, model=model, detectors=detectors, study=study)
    assert adv.verdict == SUSPICIOUS and "case threshold" in adv.reasons[0], adv


def test_a_look_alike_of_a_signed_image_is_not_tampered_and_says_so(tmp_path):
    """A copy of a signed CT with its pixels and UID changed and no sidecar: the ledger
    finds the original's record by appearance only. The case is judged as an image
    without its own record (the detectors decide), and the banner says what is known."""
    from conftest import altered_ct

    from workbench.provenance.ledger.store import Ledger

    original, copy, _ = altered_ct(tmp_path, new_uid=True)
    info = keys.generate_key(PASSPHRASE, label="verdict test")
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        sign_image(original, keys.load_private_key(info.fingerprint, PASSPHRASE),
                   ledger=ledger)
        v = verify_image(copy, ledger=ledger)
    assert v.verdict == "look-alike", v.summary
    quiet = case_verdict(v, [outcome("noise-residual", "clean", score=0.1)])
    assert quiet.verdict == NO_EVIDENCE
    assert "it resembles a signed image and differs from it" in quiet.headline
    fired = case_verdict(v, [outcome("feature-squeezing", "suspicious")])
    assert fired.verdict == SUSPICIOUS and "resembles a signed image" in fired.headline


def test_detectors_deciding_a_multiframe_verdict_say_they_saw_frame_1_only(ct):
    """Detectors examine the first frame (each outcome carries the image's frame count).
    When they decide (no record), the verdict of a 120-frame cine says so; a record
    covers every frame, so its verdict has no caveat."""
    v = verify_image(ct, ledger=False)
    quiet = case_verdict(v, [outcome("noise-residual", "clean", score=0.1, frames=120)])
    assert quiet.verdict == NO_EVIDENCE
    assert quiet.headline.endswith("(the detectors examined frame 1 of 120 only)")
    assert "a change in another frame is not looked for" in quiet.reasons[-1]
    single = case_verdict(v, [outcome("noise-residual", "clean", score=0.1)])
    assert "frame" not in single.headline


def test_a_record_verdict_of_a_multiframe_image_has_no_frame_caveat(signed_ct):
    v = verify_image(signed_ct, ledger=False)
    verdict = case_verdict(v, [outcome("noise-residual", "clean", score=0.1, frames=120)])
    assert verdict.verdict == AUTHENTIC and "frame" not in verdict.headline
