"""Signing a folder on worker processes with one ledger commit per batch
(session.batch_signing): the same outcomes as one file at a time, in file order, with the
signing rules kept (a sidecar never without its ledger entry, one bad file fails alone,
a changed file is refused, cancel keeps what was committed)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from conftest import pydicom_test_file

from workbench.provenance.ledger.store import Ledger
from workbench.provenance.records import keys
from workbench.provenance.records.record import read_record, sidecar_path
from workbench.provenance.records.signing import sign_image
from workbench.provenance.records.verify import verify_paths
from workbench.session import batch_signing
from workbench.session.batch_signing import FAILED, REFUSED, SIGNED, SKIPPED, sign_files

PASSPHRASE = "batch signing"


@pytest.fixture
def signer():
    info = keys.generate_key(PASSPHRASE, label="batch")
    return keys.load_private_key(info.fingerprint, PASSPHRASE)


def _folder(tmp_path, n):
    """n real DICOM files (three kinds), a file that is no image, and a signed file that
    was changed afterwards."""
    folder = tmp_path / "capture"
    folder.mkdir()
    sources = [pydicom_test_file(n) for n in ("CT_small.dcm", "MR_small.dcm",
                                              "JPEG2000.dcm")]
    files = []
    for i in range(n):
        f = folder / f"img{i:03d}.dcm"
        shutil.copy(sources[i % len(sources)], f)
        files.append(f)
    bad = folder / "img005.dcm"
    bad.write_bytes(b"this is not a DICOM file")
    changed = folder / "img007.dcm"
    sign_image(changed, keys.load_private_key(keys.list_keys()[0].fingerprint, PASSPHRASE))
    changed.write_bytes(changed.read_bytes() + b"\0\0")
    return files, bad, changed


@pytest.mark.parametrize("workers", [1, 2])
def test_a_folder_signs_as_file_by_file_would(tmp_path, signer, workers):
    files, bad, changed = _folder(tmp_path, batch_signing.PARALLEL_FROM + 6)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    progress = []
    outcomes = sign_files(files, signer, ledger=ledger, workers=workers,
                          progress=lambda d, t, n: progress.append((d, t)))
    assert [o.path for o in outcomes] == [str(f) for f in files]  # file order
    status = {o.path: o.status for o in outcomes}
    assert status[str(bad)] == FAILED and str(bad) in next(
        o.message for o in outcomes if o.path == str(bad))
    assert status[str(changed)] == REFUSED
    signed = [f for f in files if status[str(f)] == SIGNED]
    assert len(signed) == len(files) - 2
    assert progress[-1] == (len(files), len(files))
    # the ledger holds exactly the signed files, in file order, and each sidecar is the
    # record the ledger holds
    entries = list(ledger.entries())
    assert [e.file_sha256 for e in entries] == [
        hashlib.sha256(f.read_bytes()).hexdigest() for f in signed]
    for f, e in zip(signed, entries, strict=True):
        assert read_record(sidecar_path(f))["signature"] == \
            __import__("json").loads(e.record_bytes)["signature"]
    assert not list(tmp_path.rglob("*.tmp"))
    results = {r.path: r for r in verify_paths([f for f in signed], ledger=ledger)}
    assert all(r.verdict == "intact" for r in results.values()), results
    # resumable: a second run skips every signed file and adds nothing
    again = sign_files(files, signer, ledger=ledger, workers=workers)
    assert sum(o.status == SKIPPED for o in again) == len(signed)
    assert len(ledger) == len(signed)
    ledger.close()


def test_cancel_keeps_what_was_committed_and_nothing_half_done(tmp_path, signer):
    files, _bad, _changed = _folder(tmp_path, batch_signing.PARALLEL_FROM + 6)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    seen = []
    outcomes = sign_files(files, signer, ledger=ledger, workers=2,
                          cancelled=lambda: len(seen) >= 10,
                          progress=lambda d, t, n: seen.append(d))
    assert 0 < len(outcomes) < len(files)
    signed = [o for o in outcomes if o.status == SIGNED]
    # every sidecar written has its ledger entry, and every entry its sidecar
    assert len(ledger) == len(signed)
    on_disk = [f for f in files if sidecar_path(f).is_file() and f.name != "img007.dcm"]
    assert sorted(map(str, on_disk)) == sorted(o.path for o in signed)
    assert not list(tmp_path.rglob("*.tmp"))
    ledger.close()
