"""Capture records: what was captured, hashed and signed, and their sidecar files.

A record is a JSON object (schema ``workbench.capture-record/1``). Its signature is an
Ed25519 signature over the canonical JSON (RFC 8785 style, see canonical_json.py) of the
record without its ``signature`` member. The sidecar ``<image name>.wbsig.json`` sits
next to the image; the original file is never touched.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ... import __version__
from ...imaging.medical_image import MedicalImage
from .canonical_json import canonical_json, parse_json
from .fingerprint import fingerprints
from .keys import ALGORITHM, fingerprint_of, public_key_from_b64, raw_public_key

SCHEMA = "workbench.capture-record/1"
SIDECAR_SUFFIX = ".wbsig.json"


class RecordError(Exception):
    """A record or sidecar that cannot be read or is not a capture record."""


def sidecar_path(image_path: str | os.PathLike[str]) -> Path:
    p = Path(image_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_of(image: MedicalImage) -> dict[str, Any]:
    """Who/what the record is about, in clear: the identifiers a lookup needs."""
    ds = image.metadata if image.kind == "dicom" else None

    def uid(keyword: str) -> str | None:
        value = ds.get(keyword) if ds is not None else None
        return str(value) if value else None

    return {
        # a name that is not UTF-8 (Latin-1 from an old share) is kept readable, with its
        # odd bytes escaped, instead of making the record impossible to encode
        "file_name": os.fsencode(Path(image.path).name).decode("utf-8", "backslashreplace"),
        "kind": image.kind,
        "modality": image.modality,
        "rows": image.rows,
        "columns": image.columns,
        "frames": image.n_frames,
        "sop_class_uid": uid("SOPClassUID"),
        "sop_instance_uid": uid("SOPInstanceUID"),
        "study_instance_uid": uid("StudyInstanceUID"),
        "series_instance_uid": uid("SeriesInstanceUID"),
    }


def build_record(image: MedicalImage, *, captured_at: str | None = None,
                 salt: bytes | None = None) -> dict[str, Any]:
    """An unsigned record of ``image`` (call :func:`sign_record` next)."""
    return {
        "schema": SCHEMA,
        "subject": subject_of(image),
        **fingerprints(image, salt=salt),
        "captured_at": captured_at or utc_now(),
        "tool": {"name": "workbench", "version": __version__},
    }


def signing_bytes(record: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in record.items() if k != "signature"})


def record_id(record: dict[str, Any]) -> str:
    """SHA-256 of the canonical signed record: its identity in the ledger."""
    return hashlib.sha256(canonical_json(record)).hexdigest()


def sign_record(record: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """Return a copy of ``record`` with the signer and the Ed25519 signature added."""
    raw = raw_public_key(private_key.public_key())
    signed = {k: v for k, v in record.items() if k != "signature"}
    signed["signer"] = {"algorithm": ALGORITHM, "key_fingerprint": fingerprint_of(raw),
                        "public_key": base64.b64encode(raw).decode()}
    signed["signature"] = base64.b64encode(private_key.sign(signing_bytes(signed))).decode()
    return signed


def check_signature(record: dict[str, Any]) -> tuple[bool, str]:
    """(valid, reason). Checks the signature with the public key the record carries and
    that this key's fingerprint is the one named; trust is a separate question."""
    from cryptography.exceptions import InvalidSignature

    signer = record.get("signer")
    sig = record.get("signature")
    if not isinstance(signer, dict) or not isinstance(sig, str):
        return False, "the record has no signer or no signature"
    try:
        public = public_key_from_b64(signer["public_key"])
        if fingerprint_of(raw_public_key(public)) != signer.get("key_fingerprint"):
            return False, "the signer's public key does not match its fingerprint"
        raw_sig = base64.b64decode(sig, validate=True)
        if base64.b64encode(raw_sig).decode("ascii") != sig or \
                base64.b64encode(raw_public_key(public)).decode("ascii") != signer["public_key"]:
            # base64 with other padding bits decodes to the same bytes: a record whose text
            # changed must not verify as the one signed
            return False, "the signature or key is not in canonical base64 (record altered)"
        public.verify(raw_sig, signing_bytes(record))
    except InvalidSignature:
        return False, "the signature does not match the record (record or signature altered)"
    except Exception as exc:
        return False, f"the signature cannot be checked ({type(exc).__name__})"
    return True, f"valid Ed25519 signature by key {signer['key_fingerprint'][:16]}"


def write_sidecar(record: dict[str, Any], image_path: str | os.PathLike[str],
                  before_commit: Any = None) -> Path:
    """Write the sidecar atomically (a crash never leaves half a record).

    ``before_commit()`` runs once the record's bytes are safely beside the image but
    before they become its sidecar (the ledger append): a folder we cannot write to fails
    first, so the ledger never holds an entry whose sidecar could not be written.

    Without ``before_commit`` (no ledger) the sidecar is the record's only copy, so it is
    put on disk (fsync) before and after its rename; with a ledger, the ledger's fsynced
    entry is the durable copy and verification falls back on it when a crash left the
    sidecar empty, so the sidecar is not synced (that would double the disk waits)."""
    from ..durable import fsync_dir, write_synced

    path = sidecar_path(image_path)
    tmp = path.with_name(path.name + ".tmp")
    only_copy = before_commit is None
    data = canonical_json(record) + b"\n"
    if only_copy:
        write_synced(tmp, data)
    else:
        tmp.write_bytes(data)
    try:
        if before_commit is not None:
            before_commit()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if only_copy:
        fsync_dir(path.parent)
    return path


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordError(f"{p}: cannot read the record ({exc.strerror or exc})") from None
    try:
        record = parse_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"{p}: not a valid JSON record ({exc})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise RecordError(f"{p}: not a {SCHEMA} record")
    return record
