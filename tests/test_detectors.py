"""Detector plugins, the detector runner and calibration, on real data.

ISIC photographs (the demo card's split) are resized to 160 x 160 (the demo model's own
input size) and written as PNG, so clean and adversarial copies are the same kind of
file; DICOM files are the real ones under ../shared/data/dicom and pydicom's bundled
CT_small. The figures (AUROC, detection rates, localisation fraction) are printed, not
asserted: no figure was promised, the measurement was.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import warnings
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import torch
from conftest import pydicom_test_file

from workbench import __version__, api
from workbench.engine.attack_runner import run_attack
from workbench.engine.calibration import (
    CalibrationError,
    calibrate,
    calibration_file,
    load_calibration,
    threshold_at,
)
from workbench.engine.detector_runner import (
    VERDICTS,
    DetectorCancelled,
    DetectorFailed,
    run_detector,
)
from workbench.engine.plugins import PluginRegistry, discover_plugins, load_plugin_file
from workbench.imaging import ImageLoadError, load_image
from workbench.imaging.export import describe_attack, save_derived
from workbench.imaging.model_input import to_model_input
from workbench.models.classifier import predict_proba
from workbench.models.zoo import load_model, resolve_card
from workbench.provenance.records.fingerprint import pixel_fingerprint

SIZE = 160
DETECTORS = {  # name: (needs, calibratable)
    "capture-record": ((), False),
    "feature-squeezing": (("model",), True),
    "transform-instability": (("model",), True),
    "noise-residual": ((), True),
    "ela": ((), True),
    "dicom-header": ((), False),
    "patch-localisation": (("model",), True),
}


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry(discover_plugins(user_dir=False, entry_points=False))


@pytest.fixture(scope="module")
def victim():
    # One thread: on a busy 2-core machine several torch threads wait on each other
    # (measured: 10-20x slower than one thread while other processes compete).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model("demo")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def isic(shared_data, tmp_path_factory):
    """160-px PNG copies of ISIC images: ``test`` (16 of the card's test split, attacked
    below), ``held_out`` (20 other test-split images, clean calibration set) and ``train``
    (20 of the training split, the model has seen them)."""
    card = json.loads(resolve_card("demo").read_text())
    src = shared_data / "dermoscopy" / "isic" / "images"
    root = tmp_path_factory.mktemp("isic")
    sets = {"test": card["split"]["test_ids"][:16],
            "held_out": card["split"]["test_ids"][16:36],
            "train": card["split"]["train_ids"][:20]}
    out = {}
    for name, ids in sets.items():
        folder = root / name
        folder.mkdir()
        for isic_id in ids:
            bgr = cv2.imread(str(src / f"{isic_id}.jpg"))
            small = cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(folder / f"{isic_id}.png"), small)
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def pgd_examples(isic, registry, victim, tmp_path_factory):
    """PGD at the seed's defaults (eps 0.01, 20 steps) on the 16 test images, saved as
    8-bit PNG (what a suspect file would be): (paths, success per image)."""
    files = sorted(isic["test"].glob("*.png"))
    x = torch.stack([api.read_image_file(f) for f in files])
    out = run_attack(registry.create("pgd"), victim, x)
    folder = tmp_path_factory.mktemp("pgd")
    paths = [Path(api.write_image_file(out.adversarial[i], folder / f.name))
             for i, f in enumerate(files)]
    return paths, out.success.numpy()


# --- discovery ------------------------------------------------------------------------------
def test_builtin_detectors_are_discovered(registry):
    found = {p.name: p for p in registry.detectors()}
    for name, (needs, calibratable) in DETECTORS.items():
        info = found[name]
        assert info.ok, info.error
        assert info.kind == "detector"
        assert info.needs == needs and info.calibratable is calibratable
    assert all(p.kind == "attack" for p in registry.attacks())
    assert registry.get("pgd").ok and registry.get("pgd").kind == "attack"


DETECTOR_HEADER = """
from dataclasses import dataclass
from workbench.api import Detector, Finding, param
"""

BAD_DETECTORS = {
    "undeclared_detector.py": DETECTOR_HEADER + textwrap.dedent("""
        class Undeclared(Detector):
            name = "undeclared-detector"
            needs = ("model", "telepathy")
            @dataclass
            class Params:
                level: float = param(0.5, min=1.0, max=0.0)
        """),
    "no_default.py": DETECTOR_HEADER + textwrap.dedent("""
        class NoDefault(Detector):
            name = "no-default"
            summary = "a parameter without a default"
            @dataclass
            class Params:
                level: float
            def analyze(self, image, params, ctx):
                return Finding(0.0)
        """),
    "detector_import_fails.py": "import no_such_module_anywhere\n" + DETECTOR_HEADER
    + textwrap.dedent("""
        class Never(Detector):
            name = "never"
        """),
}


def test_broken_detector_files_are_reported_and_the_rest_load(tmp_path):
    for name, text in BAD_DETECTORS.items():
        (tmp_path / name).write_text(text)
    found = {p.name: p for p in discover_plugins([tmp_path], user_dir=False,
                                                 entry_points=False)}
    assert found["noise-residual"].ok and found["pgd"].ok  # the built-ins still load
    und = found["undeclared-detector"]
    assert not und.ok and und.kind == "detector"
    for problem in ("no summary", "'telepathy'", "min 1.0 is above its max 0.0",
                    "analyze() is not"):
        assert problem in und.error
    assert not found["no-default"].ok and "level has no default" in found["no-default"].error
    imp = found["detector_import_fails"]
    assert not imp.ok and imp.kind == "detector" and "No module named" in imp.error


# --- the runner -----------------------------------------------------------------------------
RUNTIME_DETECTORS = DETECTOR_HEADER + textwrap.dedent("""
    import numpy as np

    class Fixed(Detector):
        name = "fixed"
        summary = "returns the score it is given"
        @dataclass
        class Params:
            score: float = param(0.5, min=-10.0, max=10.0)
            verdict: str = param("clean", choices=("clean", "suspicious", "inconclusive"))
        def analyze(self, image, params, ctx):
            return Finding(params.score, params.verdict, "fixed score",
                           evidence=np.zeros((image.rows, image.columns)))

    class Raises(Detector):
        name = "raises"
        summary = "always raises"
        def analyze(self, image, params, ctx):
            raise RuntimeError("boom from the detector")

    class NaNScore(Detector):
        name = "nan-score"
        summary = "returns NaN"
        def analyze(self, image, params, ctx):
            return Finding(float("nan"), "clean")

    class WrongShape(Detector):
        name = "wrong-shape"
        summary = "returns half a map"
        def analyze(self, image, params, ctx):
            return Finding(0.0, "clean", evidence=np.zeros((image.rows // 2, image.columns)))

    class Decisive(Detector):
        name = "decisive"
        summary = "its verdict stands"
        calibratable = False
        def analyze(self, image, params, ctx):
            return Finding(1.0, "tampered", "always tampered")

    class NeedsModel(Detector):
        name = "needs-model"
        summary = "needs a model and a reference"
        needs = ("model", "reference")
        def analyze(self, image, params, ctx):
            return Finding(0.0, "clean")

    class Loops(Detector):
        name = "loops"
        summary = "calls the model until cancelled, never checks"
        needs = ("model",)
        def analyze(self, image, params, ctx):
            import torch
            while True:
                ctx.model(torch.rand(1, 1, 32, 32))
    """)


@pytest.fixture(scope="module")
def runtime_detectors(tmp_path_factory):
    path = tmp_path_factory.mktemp("det") / "runtime.py"
    path.write_text(RUNTIME_DETECTORS)
    infos = {i.name: i for i in load_plugin_file(path)}
    assert all(i.ok for i in infos.values()), [i.error for i in infos.values()]
    return {name: i.create() for name, i in infos.items()}


def test_runner_judges_scores_by_the_calibrated_threshold(runtime_detectors):
    image = load_image(pydicom_test_file("CT_small.dcm"))
    fixed = runtime_detectors["fixed"]
    out = run_detector(fixed, image, {"score": 0.5})
    assert out.verdict == "uncalibrated" and "uncalibrated" in VERDICTS and not out.calibrated
    assert out.evidence.shape == (image.rows, image.columns)
    high = run_detector(fixed, image, {"score": 0.5}, threshold=0.4)
    low = run_detector(fixed, image, {"score": 0.5}, threshold=0.5)  # equal is not above
    assert (high.verdict, high.calibrated) == ("suspicious", True)
    assert (low.verdict, low.calibrated) == ("clean", True)
    # a plugin that says it could not judge stays inconclusive, threshold or not
    assert run_detector(fixed, image, {"verdict": "inconclusive"},
                        threshold=0.1).verdict == "inconclusive"
    assert run_detector(runtime_detectors["decisive"], image).verdict == "tampered"
    missing = run_detector(runtime_detectors["needs-model"], image)
    assert missing.verdict == "inconclusive" and missing.score is None
    assert missing.explanation == "needs a model; needs a reference image"
    assert json.loads(json.dumps(high.to_json()))["verdict"] == "suspicious"


def test_runner_turns_plugin_failures_into_detector_failed(runtime_detectors, victim):
    image = load_image(pydicom_test_file("CT_small.dcm"))
    with pytest.raises(DetectorFailed, match="raises raised RuntimeError: boom from the"):
        run_detector(runtime_detectors["raises"], image)
    with pytest.raises(DetectorFailed, match="nan-score returned a NaN"):
        run_detector(runtime_detectors["nan-score"], image)
    with pytest.raises(DetectorFailed, match="wrong-shape returned an evidence map of shape"):
        run_detector(runtime_detectors["wrong-shape"], image)
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(DetectorCancelled):
        run_detector(runtime_detectors["loops"], image, model=victim, cancelled=cancelled)
    assert calls["n"] == 4 and not victim.training  # stopped at the next model call


def test_calibration_refuses_decisive_detectors_and_checks_its_settings(registry, tmp_path):
    with pytest.raises(CalibrationError, match="not calibratable"):
        calibrate(registry.create("dicom-header"), None, [tmp_path])
    folder = tmp_path / "clean"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb_small_odd.dcm"):
        shutil.copy(pydicom_test_file(name), folder / name)
    det = registry.create("noise-residual")
    cal = calibrate(det, None, [folder], fpr=0.1)
    scores = sorted(cal.scores)
    # linear interpolation between the two largest of three scores at the 0.9 quantile
    assert cal.threshold == pytest.approx(scores[1] + 0.8 * (scores[2] - scores[1]))
    assert cal.threshold == threshold_at(cal.scores, 0.1)
    again = load_calibration("noise-residual")
    assert again == cal and calibration_file("noise-residual").is_file()
    assert again.applies_to(det, {}) == (True, "")
    assert again.applies_to(det, {"denoiser": "nlm"})[0] is False
    assert load_calibration("ela") is None


# --- capture record -------------------------------------------------------------------------
def test_capture_record_flags_attacked_copies_and_passes_reencodings(isic, registry, victim,
                                                                     tmp_path):
    from workbench.home import ledger_file
    from workbench.provenance.ledger.store import Ledger
    from workbench.provenance.records import keys
    from workbench.provenance.records.signing import sign_image

    info = keys.generate_key("test passphrase", label="capture site")
    key = keys.load_private_key(info.fingerprint, "test passphrase")
    originals = []
    with Ledger(ledger_file()) as ledger:  # the default ledger: copies find records there
        for f in sorted(isic["test"].glob("*.png"))[:4]:
            signed = tmp_path / f"signed_{f.name}"
            shutil.copy(f, signed)  # a PNG copy: what is signed is this file's pixels
            sign_image(signed, key, ledger=ledger)
            originals.append(signed)
    x = torch.stack([api.read_image_file(f) for f in originals])
    pgd = run_attack(registry.create("pgd"), victim, x).adversarial
    g = torch.Generator().manual_seed(0)
    patch = torch.rand(3, 32, 32, generator=g)
    patched = api.paste_patch(x, patch, api.random_placements(len(x), g, scale=(0.3, 0.3)))
    detector = registry.create("capture-record")
    verdicts: dict[str, list[str]] = {"pgd": [], "patch": [], "pgd+ref": [], "patch+ref": [],
                                      "tiff": []}
    found: dict[str, list[str]] = {"pgd": [], "patch": []}  # the provenance verdicts
    for i, original in enumerate(originals):
        for kind, batch in (("pgd", pgd), ("patch", patched)):
            copy = load_image(api.write_image_file(batch[i], tmp_path / f"{kind}_{i}.png"))
            alone = run_detector(detector, copy)  # its record found in the ledger, or not
            verdicts[kind].append(alone.verdict)
            found[kind].append(alone.details["provenance_verdict"])
            out = run_detector(detector, copy, reference=load_image(original))
            verdicts[f"{kind}+ref"].append(out.verdict)
            assert out.evidence is not None and out.details["reference_changed_pixels"] > 0
            if kind == "pgd":
                assert out.evidence.max() <= np.ceil(0.01 * 255)  # the eps ball, in levels
        tiff = tmp_path / f"reencoded_{i}.tiff"
        cv2.imwrite(str(tiff), cv2.imread(str(original), cv2.IMREAD_UNCHANGED))
        out = run_detector(detector, load_image(tiff))
        verdicts["tiff"].append(out.verdict)
        assert out.details["provenance_verdict"] == "re-encoded", out.explanation
    print(f"\ncapture-record verdicts (found by ledger lookup alone, and with the signed "
          f"original as reference): {verdicts}; provenance alone: {found}")
    # PGD keeps the perceptual hash close: the ledger finds the original's record by
    # appearance, and the pixels differ from it. Appearance cannot tell a changed copy
    # from another image like it (the next slice), so alone that is a look-alike, not
    # "tampered"; a patch may move the hash out of reach (no record). Never "clean".
    assert found["pgd"] == ["look-alike"] * 4
    assert set(found["patch"]) <= {"look-alike", "unsigned"}
    assert verdicts["pgd"] == verdicts["patch"] == ["inconclusive"] * 4
    # the signed original as reference says which image this is: then it is tampering
    assert verdicts["pgd+ref"] == verdicts["patch+ref"] == ["tampered"] * 4
    assert verdicts["tiff"] == ["clean"] * 4
    unsigned = run_detector(detector, load_image(sorted(isic["train"].glob("*.png"))[0]))
    assert unsigned.verdict == "inconclusive" and "no capture record" in unsigned.explanation


# --- score-based detectors calibrated on clean ISIC images ----------------------------------
def auroc(clean: list[float], attacked: list[float]) -> float:
    """Probability that an attacked image scores above a clean one (ties count half)."""
    c, a = np.asarray(clean)[:, None], np.asarray(attacked)[None, :]
    return float(((a > c).sum() + 0.5 * (a == c).sum()) / (c.size * a.size))


@pytest.mark.parametrize("name", ["feature-squeezing", "transform-instability"])
def test_model_detectors_calibrated_on_clean_isic_images(name, isic, pgd_examples, registry,
                                                         victim):
    """Calibrated at 5% FPR on 20 clean images the model has not seen (test-split images
    not attacked here). Calibrating on training images instead gives a far lower
    threshold: the model is surer of images it was trained on, so unseen clean images
    exceed it much more often than 5%; both thresholds are printed."""
    detector = registry.create(name)
    cal = calibrate(detector, None, [isic["held_out"]], victim, fpr=0.05)
    loaded = load_calibration(name)
    assert loaded is not None and loaded.threshold == cal.threshold
    assert (loaded.fpr, loaded.n, loaded.model) == (0.05, 20, "demo_melanoma")
    held_out = sorted(isic["held_out"].glob("*.png"))
    assert [f["pixel_sha256"] for f in loaded.fingerprints] == [
        pixel_fingerprint(load_image(f)).sha256 for f in held_out]
    assert loaded.applies_to(detector, {}, "demo_melanoma") == (True, "")

    adv_paths, success = pgd_examples
    clean = [run_detector(detector, load_image(f), model=victim, threshold=cal.threshold)
             for f in sorted(isic["test"].glob("*.png"))]
    adv = [run_detector(detector, load_image(f), model=victim, threshold=cal.threshold)
           for f in adv_paths]
    assert all(o.calibrated and o.verdict in ("clean", "suspicious") for o in clean + adv)
    area = auroc([o.score for o in clean], [o.score for o in adv])
    detected = np.mean([o.verdict == "suspicious" for o in adv])
    detected_ok = np.mean([o.verdict == "suspicious" for o, s in zip(adv, success, strict=True)
                           if s])
    false_pos = np.mean([o.verdict == "suspicious" for o in clean])
    train_scores = [run_detector(detector, load_image(f), model=victim).score
                    for f in sorted(isic["train"].glob("*.png"))]
    train_thr = threshold_at(train_scores, 0.05)
    train_fp = np.mean([o.score > train_thr for o in clean])
    print(f"\n{name}: threshold {cal.threshold:.4g} (5% FPR, 20 held-out clean images); "
          f"PGD eps 0.01 on {len(adv)} test images ({success.mean():.0%} fooled the model): "
          f"AUROC {area:.3f}, detection rate {detected:.0%} ({detected_ok:.0%} of those that "
          f"fooled it); clean test images flagged {false_pos:.0%}. Calibrated on 20 training "
          f"images instead: threshold {train_thr:.4g}, clean test images flagged "
          f"{train_fp:.0%}")
    assert 0.0 <= area <= 1.0 and np.isfinite(cal.threshold)


def test_noise_residual_maps_the_residual(isic, pgd_examples):
    registry = PluginRegistry(discover_plugins(user_dir=False, entry_points=False))
    det = registry.create("noise-residual")
    clean = load_image(sorted(isic["test"].glob("*.png"))[0])
    adv = load_image(pgd_examples[0][0])
    a, b = run_detector(det, clean), run_detector(det, adv)
    assert a.evidence.shape == (SIZE, SIZE) and a.verdict == "uncalibrated"
    assert b.score > a.score  # the perturbation adds high-frequency energy to this image


# --- ELA ------------------------------------------------------------------------------------
def test_ela_runs_on_jpeg_and_refuses_other_formats(shared_data, isic, registry):
    det = registry.create("ela")
    jpeg = load_image(shared_data / "dermoscopy" / "isic" / "images" / "ISIC_0000000.jpg")
    out = run_detector(det, jpeg)
    assert out.verdict == "uncalibrated" and out.score > 0
    assert out.evidence.shape == (jpeg.rows, jpeg.columns) and out.evidence.max() > 0
    png = run_detector(det, load_image(sorted(isic["test"].glob("*.png"))[0]))
    assert png.verdict == "inconclusive"
    assert png.explanation == "ELA applies to JPEG images only (this is PNG)"
    dcm = run_detector(det, load_image(pydicom_test_file("CT_small.dcm")))
    assert dcm.explanation == "ELA applies to JPEG images only (this is DICOM)"


# --- DICOM header ---------------------------------------------------------------------------
def test_dicom_header_passes_every_original(shared_data, registry):
    det = registry.create("dicom-header")
    checked = 0
    for path in sorted((shared_data / "dicom").rglob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # some originals carry malformed UIDs
            try:
                image = load_image(path)
            except ImageLoadError:
                continue  # e.g. 12-bit JPEG without GDCM: nothing to check
            out = run_detector(det, image)
        assert out.verdict == "clean", f"{path}: {out.explanation}"
        checked += 1
    print(f"\ndicom-header: {checked} original DICOM files pass")
    assert checked >= 30


def test_dicom_header_flags_an_adversarial_dicom(registry, victim, tmp_path):
    src = pydicom_test_file("CT_small.dcm")
    image = load_image(src)
    x, mapping = to_model_input(image)
    out = run_attack(registry.create("pgd"), victim, torch.from_numpy(x)[None])
    saved = save_derived(image, out.adversarial[0].numpy(), mapping, tmp_path / "adv.dcm",
                         describe_attack("pgd", "1", out.params, __version__))
    det = registry.create("dicom-header")
    assert run_detector(det, image).verdict == "clean"
    found = run_detector(det, load_image(saved))
    assert found.verdict == "suspicious"
    assert "declares a manipulated image" in found.explanation
    assert any("DERIVED" in n for n in found.details["notes"])


def _rewrite(src: Path, out: Path, change) -> Path:
    """A copy of a real DICOM whose pixels were changed but whose header was not."""
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array.copy()
    ds.PixelData = change(arr).astype(arr.dtype).tobytes()
    ds.save_as(out)
    return out


def test_dicom_header_flags_pixels_the_header_contradicts(shared_data, registry, tmp_path):
    det = registry.create("dicom-header")
    rng = np.random.default_rng(0)
    # +/-1 noise over an 8-bit image with large exactly-flat regions (an ultrasound)
    us = shared_data / "dicom" / "pydicom-data" / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    plain = tmp_path / "us_plain.dcm"
    ds = pydicom.dcmread(us)
    ds.decompress()
    ds.save_as(plain)
    assert run_detector(det, load_image(plain)).verdict == "clean"
    noisy = _rewrite(plain, tmp_path / "us_lsb.dcm", lambda a: np.clip(
        a.astype(np.int16) + rng.integers(-1, 2, a.shape), 0, 255))
    out = run_detector(det, load_image(noisy))
    assert out.verdict == "suspicious" and "low-bit noise" in out.explanation
    assert out.evidence is not None and out.evidence.mean() > 0.1
    # values a 12-bit image cannot hold (10 frames of 64 x 64, Bits Stored 12)
    mr = shared_data / "dicom" / "pydicom-data" / "emri_small.dcm"
    assert run_detector(det, load_image(mr)).verdict == "clean"

    def overflow(a):
        a = a.copy()
        a[0, :4, :4] = 5000
        return a

    big = _rewrite(mr, tmp_path / "mr_overflow.dcm", overflow)
    out = run_detector(det, load_image(big))
    assert out.verdict == "suspicious" and "bits above Bits Stored (12 of 16)" in out.explanation
    assert out.evidence[:4, :4].min() == 1 and out.evidence.sum() == 16


# --- patch localisation ---------------------------------------------------------------------
def test_patch_localisation_finds_an_adversarial_patch(isic, registry, victim, tmp_path):
    """A small adversarial patch (EOT over the training images, 60 Adam steps) pasted at
    the seed's scale 0.4 into the 8 test images the model finds least melanoma-like."""
    g = torch.Generator().manual_seed(0)
    train = torch.stack([api.read_image_file(f) for f in sorted(isic["train"].glob("*.png"))])
    patch = torch.full((3, 32, 32), 0.5, requires_grad=True)
    opt = torch.optim.Adam([patch], lr=0.05)
    melanoma = victim.class_names.index("melanoma")
    for _ in range(60):
        idx = torch.randint(0, len(train), (8,), generator=g)
        placed = api.paste_patch(train[idx], patch.clamp(0, 1),
                                 api.random_placements(8, g, scale=(0.3, 0.5)))
        loss = torch.nn.functional.cross_entropy(victim(placed), torch.full((8,), melanoma))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            patch.clamp_(0, 1)
    test = torch.stack([api.read_image_file(f) for f in sorted(isic["test"].glob("*.png"))])
    test = test[predict_proba(victim, test)[:, melanoma].argsort()[:8]]
    where = api.random_placements(len(test), g, scale=(0.4, 0.4), max_angle=0.0)
    patched = api.paste_patch(test, patch.detach(), where)
    flipped = predict_proba(victim, patched).argmax(1) == melanoma
    det = registry.create("patch-localisation")
    inside, scores = [], []
    for i in range(len(test)):
        out = run_detector(det, load_image(api.write_image_file(patched[i], tmp_path /
                                                                 f"p{i}.png")), model=victim)
        assert out.evidence.shape == (SIZE, SIZE) and out.verdict == "uncalibrated"
        py, px = np.unravel_index(int(out.evidence.argmax()), out.evidence.shape)
        cx, cy = float(where["cx"][i]) * SIZE, float(where["cy"][i]) * SIZE
        inside.append((px + 0.5 - cx) ** 2 + (py + 0.5 - cy) ** 2 <= (0.2 * SIZE) ** 2)
        scores.append(out.score)
    clean_scores = [run_detector(det, load_image(api.write_image_file(test[i], tmp_path /
                                                                       f"c{i}.png")),
                                 model=victim).score for i in range(len(test))]
    inside, flipped = np.array(inside), flipped.numpy()
    chance = np.pi * 0.2 ** 2
    print(f"\npatch-localisation: evidence maximum inside the patch disc in {inside.mean():.0%}"
          f" of {len(inside)} patched images ({inside[flipped].mean():.0%} of the "
          f"{flipped.sum()} whose prediction the patch flipped); chance {chance:.0%}; "
          f"score AUROC patched vs the same images unpatched {auroc(clean_scores, scores):.3f}")
    assert flipped.sum() >= 3
    assert inside[flipped].mean() >= 0.5
