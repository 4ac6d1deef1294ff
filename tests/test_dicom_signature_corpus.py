"""Agreement with DCMTK's dcmsign on the whole corpus: every DICOM object in
../shared/data/dicom and pydicom's test files, images or not.

Both ways, for every object both tools handle:
- signed by us, verified by ``dcmsign --verify``;
- signed by ``dcmsign`` (SHA-256, SHA-512 and its default RIPEMD-160 MAC), on the file as
  it is and after ``dcmconv +g`` (group lengths everywhere, also inside sequence items),
  verified by us.
"Agree" means both accept, or both reject. The counts are printed (pytest -s)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest
from conftest import SHARED_DATA
from cryptography.hazmat.primitives.serialization import Encoding

from workbench.provenance.standards.certificates import SignerIdentity, create_ca, issue_signer
from workbench.provenance.standards.dicom_signature.parser import DicomSignatureError
from workbench.provenance.standards.dicom_signature.sign import sign_dicom
from workbench.provenance.standards.dicom_signature.verify import verify_dicom_signatures

OK = re.compile(r"(\d+) signatures verified in dataset, (\d+) corrupted")
THEIR_MACS = {"sha256": ("--mac-sha256",), "sha512": ("--mac-sha512",), "default": ()}

pytestmark = pytest.mark.skipif(
    shutil.which("dcmsign") is None or shutil.which("dcmconv") is None,
    reason="DCMTK is not installed (apt-get install dcmtk): no corpus agreement test")


def corpus() -> list[Path]:
    files = [p for p in sorted((Path(pydicom.__file__).parent / "data" / "test_files")
                               .rglob("*.dcm")) if p.is_file()]
    if (SHARED_DATA / "dicom").is_dir():
        files += [p for p in sorted((SHARED_DATA / "dicom").rglob("*")) if p.is_file()
                  and p.suffix.lower() in ("", ".dcm")]
    return files


def _run(*args: object) -> tuple[int, str]:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _dcmtk_accepts(path: Path, ca: Path) -> bool:
    rc, out = _run("dcmsign", "--verify", "-v", "+cf", ca, path)
    m = OK.search(out)
    return rc == 0 and m is not None and int(m[1]) >= 1 and m[2] == "0"


def _we_accept(path: Path, ca_cert: object) -> tuple[bool, str]:
    try:
        results = verify_dicom_signatures(path, anchors=[ca_cert])
    except DicomSignatureError as exc:
        return False, str(exc)
    bad = [r["reason"] for r in results if not r["valid"]]
    return bool(results) and not bad, "; ".join(bad)


@pytest.fixture(scope="module")
def agreement(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """direction -> [(file, dcmtk accepts, we accept, why)] over the corpus."""
    tmp = tmp_path_factory.mktemp("corpus")
    ca_key, ca_cert = create_ca("corpus CA", "Workbench tests")
    key, cert = issue_signer(ca_key, ca_cert, "corpus signer", "Workbench tests")
    identity = SignerIdentity("corpus", key, cert, (cert, ca_cert))
    key_pem, cert_pem, ca_pem = tmp / "key.pem", tmp / "cert.pem", tmp / "ca.pem"
    key_pem.write_bytes(identity.key_pem())
    cert_pem.write_bytes(cert.public_bytes(Encoding.PEM))
    ca_pem.write_bytes(ca_cert.public_bytes(Encoding.PEM))
    rows: dict[str, list] = defaultdict(list)
    grouped = tmp / "grouped.dcm"
    for f in corpus():
        has_g = _run("dcmconv", "+g", f, grouped)[0] == 0
        for mac, flags in THEIR_MACS.items():
            for label, src in (("", f), ("+g", grouped)):
                if label and not has_g:
                    continue
                theirs = tmp / "theirs.dcm"
                if _run("dcmsign", "--sign", key_pem, cert_pem, *flags, src, theirs)[0]:
                    continue  # dcmsign cannot sign it either: not a common object
                ok, why = _we_accept(theirs, ca_cert)
                rows[f"dcmsign {mac}{label} -> ours"].append(
                    (f.name, _dcmtk_accepts(theirs, ca_pem), ok, why))
        ours = tmp / "ours.dcm"
        try:
            sign_dicom(f, ours, identity, profile="base")
        except DicomSignatureError as exc:  # we refuse: does dcmsign sign it?
            theirs = tmp / "theirs.dcm"
            signable = _run("dcmsign", "--sign", key_pem, cert_pem, f, theirs)[0] == 0
            rows["ours -> dcmsign"].append(
                (f.name, signable and _dcmtk_accepts(theirs, ca_pem), False, str(exc)))
            continue
        rows["ours -> dcmsign"].append((f.name, _dcmtk_accepts(ours, ca_pem), True, ""))
    for direction, results in rows.items():
        agree = sum(d == w for _f, d, w, _why in results)
        print(f"{direction}: {agree}/{len(results)} agree "
              f"({sum(d for _f, d, _w, _y in results)} accepted by dcmsign)")
    return rows


def test_the_corpus_is_big_enough_to_mean_something(agreement: dict[str, list]) -> None:
    assert len(agreement["ours -> dcmsign"]) >= 100
    assert len(agreement["dcmsign sha256 -> ours"]) >= 100
    assert len(agreement["dcmsign sha256+g -> ours"]) >= 100


@pytest.mark.parametrize("direction", [
    "ours -> dcmsign", *(f"dcmsign {m}{g} -> ours" for m in THEIR_MACS for g in ("", "+g"))])
def test_we_agree_with_dcmsign_on_every_object(agreement: dict[str, list],
                                               direction: str) -> None:
    """A valid DCMTK signature is never called tampered, and every signature we make
    verifies in DCMTK (both reject the same few broken objects)."""
    disagree = [(f, d, w, why) for f, d, w, why in agreement[direction] if d != w]
    assert disagree == [], disagree
