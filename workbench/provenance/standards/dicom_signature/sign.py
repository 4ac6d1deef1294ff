"""Signing a DICOM file: a copy with one more digital signature.

Signing writes a new file and never touches the source: the new elements are spliced
into a byte-exact copy of the source, so every other byte (values, padding, private
tags, the File Meta Information) is what the source held.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from ..certificates import SignerIdentity
from .mac import (
    SIGNING_MACS,
    compute_mac,
    padded,
    signable,
    swapped,
    tag_bytes,
)
from .parser import (
    EXPLICIT_LE,
    LONG_VRS,
    Dataset,
    DicomSignatureError,
    Element,
    Syntax,
    find_element,
    new_element,
    parse_file,
    tag_name,
    us_value,
)
from .profiles import CREATOR_REQUIRED, PROFILES, PURPOSES, purpose_item
from .tags import (
    CERTIFICATE_OF_SIGNER,
    CERTIFICATE_TYPE,
    CERTIFICATE_TYPE_TAG,
    DATA_ELEMENTS_SIGNED,
    DIGITAL_SIGNATURE_DATETIME,
    DIGITAL_SIGNATURE_UID,
    DIGITAL_SIGNATURES_SEQUENCE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    ITEM,
    MAC_ALGORITHM,
    MAC_CALCULATION_TRANSFER_SYNTAX_UID,
    MAC_ID_NUMBER,
    MAC_PARAMETERS_SEQUENCE,
    SEQUENCE_DELIMITER,
    SIGNATURE,
    UNDEFINED_LENGTH,
)
from .verify import verify_dicom_signatures


def _now_dt() -> tuple[dt.datetime, str]:
    now = dt.datetime.now(dt.UTC)
    # DICOM DT with fraction and offset, as dcmsign writes it.
    return now, now.strftime("%Y%m%d%H%M%S.%f") + "+0000"


def _encode(el: Element, syn: Syntax) -> bytes:
    """Ordinary (defined length) encoding of an element built for a new signature, in ``syn``."""
    tag = tag_bytes(el.tag, syn)
    if el.items is not None:
        body = b"".join(
            tag_bytes(ITEM, syn) + struct.pack(syn.endian + "L", len(content)) + content
            for content in (b"".join(_encode(sub, syn) for sub in item) for item in el.items))
        vr = "SQ"
    else:
        body = padded(swapped(el.value, el.vr, el.little, syn.little), el.vr)
        vr = el.vr
    if not syn.explicit:
        return tag + struct.pack(syn.endian + "L", len(body)) + body
    if vr in LONG_VRS:
        return tag + vr.encode() + b"\0\0" + struct.pack(syn.endian + "L", len(body)) + body
    return tag + vr.encode() + struct.pack(syn.endian + "H", len(body)) + body


def _allocate_mac_id(elements: list[Element]) -> int:
    used = set()
    for tag in (DIGITAL_SIGNATURES_SEQUENCE, MAC_PARAMETERS_SEQUENCE):
        seq = find_element(elements, tag)
        for item in (seq.items or []) if seq is not None else []:
            value = us_value(find_element(item, MAC_ID_NUMBER))
            if value is not None:
                used.add(value)
    for candidate in range(0x10000):
        if candidate not in used:
            return candidate
    raise DicomSignatureError("all 65536 MAC ID numbers are in use")


def _append_item(ds: Dataset, tag: int, item: list[Element]) -> tuple[int, int, bytes]:
    """(start, end, bytes) replacing or inserting the sequence ``tag`` with ``item`` added.
    An existing sequence keeps its items byte for byte (earlier signatures stay valid)."""
    syn = ds.syntax
    content = b"".join(_encode(sub, syn) for sub in item)
    new_item = tag_bytes(ITEM, syn) + struct.pack(syn.endian + "L", len(content)) + content
    existing = find_element(ds.elements, tag)
    if existing is not None and existing.items is not None:
        header = tag_bytes(tag, syn) + (b"SQ\0\0" if syn.explicit else b"")
        header += struct.pack(syn.endian + "L", UNDEFINED_LENGTH)
        old_items = ds.buffer[existing.content_start:existing.content_end]
        delimiter = tag_bytes(SEQUENCE_DELIMITER, syn) + b"\0\0\0\0"
        return existing.start, existing.end, header + old_items + new_item + delimiter
    if existing is not None:
        raise DicomSignatureError(f"{tag_name(tag)} is present but is not a sequence")
    encoded = _encode(Element(tag, "SQ", items=[item]), syn)
    after = [e.start for e in ds.elements if e.tag > tag]
    at = min(after) if after else len(ds.buffer)
    return at, at, encoded


def sign_dicom(src: str | os.PathLike[str], dst: str | os.PathLike[str],
               identity: SignerIdentity, *, profile: str = "creator",
               mac_algorithm: str = "SHA256", purpose: int | None = None) -> dict[str, Any]:
    """Write ``dst``: a copy of ``src`` with one more DICOM digital signature.

    ``profile`` "creator" (Creator RSA, PS3.15 C.2: the SOP Class/Instance, Study and
    Series Instance UIDs must be present) or "base" (Base RSA, C.1); both sign every
    eligible attribute of the main data set, as ``dcmsign`` does by default, Pixel Data
    (native or encapsulated) included. ``purpose`` is a Digital Signature Purpose code
    (1-18, see PURPOSES); None means the profile's default: 14 "Source Signature" for
    the creator profile, none for base; 0 means none. The source is only read; ``dst``
    must be another path (an existing ``dst`` is replaced). The written file is verified
    before this returns. Returns what was signed."""
    from pydicom.uid import generate_uid

    src_path, dst_path = Path(src), Path(dst)
    mac_algorithm, purpose = _checked_request(src_path, dst_path, identity, profile,
                                              mac_algorithm, purpose)
    cert = identity.certificate
    now, now_text = _now_dt()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise DicomSignatureError(
            f"the certificate {cert.subject.rfc4514_string()} is not valid now (valid "
            f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}); "
            "the signature would be invalid")

    try:
        data = src_path.read_bytes()
    except OSError as exc:
        raise DicomSignatureError(f"{src_path}: {exc.strerror or exc}") from None
    source_sha256 = hashlib.sha256(data).hexdigest()
    ds = parse_file(data)
    signed_tags = _tags_to_sign(ds, profile, src_path)

    mac_id = _allocate_mac_id(ds.elements)
    uid = str(generate_uid(prefix=None))  # 2.25.<UUID>: needs no registered root
    item = _signature_item(ds, identity, signed_tags, mac_id, uid, now_text, purpose,
                           mac_algorithm)
    # Explicit VR Little Endian, except for encapsulated Pixel Data: then the file's own
    # (compressed) transfer syntax, as dcmsign does. The bytes hashed are the same, but a
    # reader that takes Explicit VR LE literally would have to decompress the pixels to
    # re-encode them (dcmsign refuses: "unable to use the selected transfer syntax").
    encapsulated = any(e.fragments is not None for e in ds.elements)
    mac_ts = ds.transfer_syntax if encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
    mac_item = [new_element(MAC_ID_NUMBER, "US", struct.pack("<H", mac_id)),
                new_element(MAC_CALCULATION_TRANSFER_SYNTAX_UID, "UI", mac_ts),
                new_element(MAC_ALGORITHM, "CS", mac_algorithm),
                new_element(DATA_ELEMENTS_SIGNED, "AT",
                            b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF)
                                     for t in signed_tags))]
    out = _signed_file_bytes(ds, mac_item, item)
    _write_replacing(dst_path, out)
    _check_written(dst_path, uid)
    return {
        "path": str(dst_path), "uid": uid, "datetime": now_text, "mac_id": mac_id,
        "mac_algorithm": mac_algorithm, "mac_transfer_syntax": mac_ts,
        "profile": profile, "purpose": PURPOSES.get(purpose),
        "elements_signed": len(signed_tags), "signer": cert.subject.rfc4514_string(),
        "transfer_syntax": ds.transfer_syntax, "source_sha256": source_sha256,
        "sha256": hashlib.sha256(out).hexdigest(),
    }


def _checked_request(src_path: Path, dst_path: Path, identity: SignerIdentity, profile: str,
                     mac_algorithm: str, purpose: int | None) -> tuple[str, int]:
    """The MAC algorithm's defined term and the purpose code (0: none) of a request that
    can be signed; ValueError or DicomSignatureError saying why one cannot."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    mac_algorithm = mac_algorithm.upper().replace("-", "")
    if mac_algorithm not in SIGNING_MACS:
        raise ValueError(f"MAC algorithm {mac_algorithm!r} is not offered for new signatures "
                         f"(use one of {', '.join(SIGNING_MACS)})")
    if purpose is None:
        purpose = 14 if profile == "creator" else 0
    if purpose and purpose not in PURPOSES:
        raise ValueError(f"signature purpose must be 1-18 (see PURPOSES), not {purpose}")
    if src_path.resolve() == dst_path.resolve() or (
            src_path.exists() and dst_path.exists() and os.path.samefile(src_path, dst_path)):
        raise ValueError(f"{dst_path}: the signed copy must not replace the source file")
    if not isinstance(identity.key, rsa.RSAPrivateKey):
        raise DicomSignatureError("the Base and Creator RSA profiles need an RSA key")
    cert = identity.certificate
    if cert.public_key().public_numbers() != identity.key.public_key().public_numbers():
        raise DicomSignatureError("the certificate does not belong to the private key")
    return mac_algorithm, purpose


def _tags_to_sign(ds: Dataset, profile: str, src_path: Path) -> list[int]:
    """Every eligible attribute of the main data set, in tag order, as dcmsign signs by
    default; the Creator RSA profile's required ones must be among them."""
    signed = [e for e in sorted(ds.elements, key=lambda e: e.tag) if signable(e)]
    signed_tags = [e.tag for e in signed]
    if not signed:
        raise DicomSignatureError(f"{src_path}: nothing to sign")
    if profile == "creator":
        missing = [t for t in CREATOR_REQUIRED if t not in signed_tags]
        if missing:
            raise DicomSignatureError(
                "the Creator RSA profile signs " + ", ".join(tag_name(t) for t in missing)
                + ", which the file lacks (use profile 'base')")
    if len(signed_tags) * 4 > 0xFFFF:
        raise DicomSignatureError("too many attributes for one Data Elements Signed list")
    return signed_tags


def _signature_item(ds: Dataset, identity: SignerIdentity, signed_tags: list[int],
                    mac_id: int, uid: str, now_text: str, purpose: int,
                    mac_algorithm: str) -> list[Element]:
    """The Digital Signatures Sequence item, its Signature made over the MAC."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from cryptography.hazmat.primitives.serialization import Encoding

    item = [new_element(MAC_ID_NUMBER, "US", struct.pack("<H", mac_id)),
            new_element(DIGITAL_SIGNATURE_UID, "UI", uid),
            new_element(DIGITAL_SIGNATURE_DATETIME, "DT", now_text),
            new_element(CERTIFICATE_TYPE_TAG, "CS", CERTIFICATE_TYPE),
            new_element(CERTIFICATE_OF_SIGNER, "OB",
                        identity.certificate.public_bytes(Encoding.DER))]
    if purpose:
        item.append(purpose_item(purpose))
    mac, problems = compute_mac(ds.elements, signed_tags, item, mac_algorithm, EXPLICIT_LE)
    if problems:  # cannot happen: only signable elements were chosen
        raise DicomSignatureError("; ".join(problems))
    algo = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(),
            "SHA512": hashes.SHA512()}[mac_algorithm]
    signature = identity.key.sign(mac, padding.PKCS1v15(), Prehashed(algo))
    item.append(new_element(SIGNATURE, "OB", signature))
    item.sort(key=lambda e: e.tag)
    return item


def _signed_file_bytes(ds: Dataset, mac_item: list[Element], item: list[Element]) -> bytes:
    """The source file's bytes with both items spliced in (deflated again if it was)."""
    body = ds.buffer
    edits = sorted([_append_item(ds, MAC_PARAMETERS_SEQUENCE, mac_item),
                    _append_item(ds, DIGITAL_SIGNATURES_SEQUENCE, item)], reverse=True)
    for start, end, replacement in edits:  # from the end, so offsets stay right
        body = body[:start] + replacement + body[end:]
    if ds.deflated:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        body = packer.compress(body) + packer.flush()
    return ds.prefix + body


def _write_replacing(dst_path: Path, out: bytes) -> None:
    """Write beside ``dst_path`` and rename into place: no half-written signed file."""
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst_path.with_name(f".{dst_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(out)
        os.replace(tmp, dst_path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_written(dst_path: Path, uid: str) -> None:
    """Check what was written, with our own verifier: a signature that does not verify
    must never be handed out (the file is removed)."""
    check = next((r for r in verify_dicom_signatures(dst_path, anchors=[])
                  if r["uid"] == uid), None)
    if check is None or not check["valid"]:
        dst_path.unlink(missing_ok=True)
        raise DicomSignatureError("the signed copy did not verify: "
                                  + (check["reason"] if check else "signature not found"))
