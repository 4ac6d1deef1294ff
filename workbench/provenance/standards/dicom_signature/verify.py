"""Verifying the DICOM digital signatures of a file: every signature, main data set and
items, with its MAC recomputed, its RSA (or ECDSA) signature checked, the certificate's
validity at the signing time and its trust.

Verification parses the file
itself (not through pydicom's value conversion) so the MAC sees the stored bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from ..certificates import trust_anchors, verify_chain
from .mac import MACS, compute_mac, has_nul_padded_text, mac_syntax, signable
from .parser import (
    Dataset,
    DicomSignatureError,
    Element,
    at_list,
    dataset_bytes,
    find_element,
    parse_elements,
    parse_file,
    tag_name,
    text_value,
    transfer_syntax_flags,
    us_value,
)
from .profiles import classify_profile, purpose_text
from .tags import (
    CERTIFICATE_OF_SIGNER,
    CERTIFICATE_TYPE,
    CERTIFICATE_TYPE_TAG,
    CERTIFIED_TIMESTAMP,
    DATA_ELEMENTS_SIGNED,
    DIGITAL_SIGNATURE_DATETIME,
    DIGITAL_SIGNATURE_UID,
    DIGITAL_SIGNATURES_SEQUENCE,
    MAC_ALGORITHM,
    MAC_CALCULATION_TRANSFER_SYNTAX_UID,
    MAC_ID_NUMBER,
    MAC_PARAMETERS_SEQUENCE,
    ORIGINAL_ATTRIBUTES_SEQUENCE,
    SIGNATURE,
)


def _parse_dicom_dt(value: str) -> dt.datetime | None:
    """A DICOM DT (YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]) as an aware datetime (UTC if no
    offset); None when it does not parse."""
    v = value.strip()
    offset = dt.timedelta(0)
    for sign in "+-":
        if sign in v[4:]:
            i = v.rindex(sign)
            zone = v[i + 1:]
            if len(zone) == 4 and zone.isdigit():
                minutes = int(zone[:2]) * 60 + int(zone[2:])
                offset = dt.timedelta(minutes=minutes if sign == "+" else -minutes)
            v = v[:i]
            break
    main, _, frac = v.partition(".")
    fmt = "%Y%m%d%H%M%S"[:{4: 2, 6: 4, 8: 6, 10: 8, 12: 10, 14: 12}.get(len(main), 0)]
    if not fmt:
        return None
    try:
        parsed = dt.datetime.strptime(main, fmt)
    except ValueError:
        return None
    if frac.isdigit():
        parsed = parsed.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return parsed.replace(tzinfo=dt.timezone(offset))


def _rsa_recover(public_key: Any, signature: bytes) -> bytes | None:
    """The encoded message inside an RSA signature (RFC 8017 8.2.2 steps 1-2), or None."""
    numbers = public_key.public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    if len(signature) != k:
        return None
    s = int.from_bytes(signature, "big")
    if s >= numbers.n:
        return None
    return pow(s, numbers.e, numbers.n).to_bytes(k, "big")


def _check_signature(public_key: Any, signature: bytes, mac: bytes, mac_name: str
                     ) -> tuple[bool, str]:
    """(valid, why not). RSA: EMSA-PKCS1-v1_5 re-encoding compared with the recovered
    message (RFC 8017 8.2.2), which also tells a changed MAC (the data changed) from a
    signature that is not this key's (signature or certificate replaced). ECDSA (which
    dcmsign can also write) through ``cryptography``."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public_key, rsa.RSAPublicKey):
        em = _rsa_recover(public_key, signature)
        prefix = MACS[mac_name][1]
        t = prefix + mac
        if em is not None and len(em) >= len(t) + 11:
            expected = b"\x00\x01" + b"\xff" * (len(em) - len(t) - 3) + b"\x00" + t
            if hmac.compare_digest(em, expected):
                return True, ""
            # A well-formed block with this algorithm's DigestInfo but another digest:
            # the key is right, so the signed bytes are what changed.
            if em[:len(em) - len(mac)] == expected[:len(em) - len(mac)]:
                return False, "MAC mismatch (data changed after signing)"
            if em[:2] == b"\x00\x01" and b"\x00\x30" in em[2:]:
                return False, ("the signature holds a digest of another algorithm than "
                               f"MAC Algorithm {mac_name} (MAC Parameters changed)")
        return False, ("signature does not match the certificate's key (signature or "
                       "certificate replaced)")
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        algo = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(),
                "SHA512": hashes.SHA512(), "SHA1": hashes.SHA1()}.get(mac_name)
        if algo is None:
            return False, f"ECDSA with MAC algorithm {mac_name} is not supported here"
        try:  # without the pad byte an odd-length DER signature gets in DICOM
            public_key.verify(_der_exact(signature), mac, ec.ECDSA(Prehashed(algo)))
        except InvalidSignature:
            return False, "MAC mismatch or signature invalid (ECDSA)"
        return True, ""
    return False, f"unsupported public key type {type(public_key).__name__}"


class _Invalid(Exception):
    """Why a signature is not valid (the text after "signature <uid>: ")."""


def _verify_one(elements: list[Element], item: list[Element], location: str,
                anchors: list[Any]) -> dict[str, Any]:
    uid = text_value(find_element(item, DIGITAL_SIGNATURE_UID))
    when = text_value(find_element(item, DIGITAL_SIGNATURE_DATETIME))
    mac_id = us_value(find_element(item, MAC_ID_NUMBER))
    result: dict[str, Any] = {
        "uid": uid, "datetime": when, "location": location, "mac_id": mac_id,
        "signer": None, "issuer": None, "profile": None, "purpose": purpose_text(item),
        "mac_algorithm": None, "mac_transfer_syntax": None, "elements_signed": 0,
        "unsigned_elements": [], "timestamp": "absent", "valid": False, "trusted": False,
        "reason": "",
    }
    label = f"signature {uid or '(no UID)'}"
    if find_element(item, CERTIFIED_TIMESTAMP) is not None:
        result["timestamp"] = "present, not verified"
    try:
        cert = _check_mac_and_signature(elements, item, result)
        _check_signing_time(cert, when)
    except _Invalid as why:
        result["reason"] = f"{label}: {why}"
        return result
    result["valid"] = True
    trusted, trust_reason = verify_chain([cert], anchors)
    result["trusted"] = trusted
    result["reason"] = (f"{label}: valid; {trust_reason}" if trusted
                        else f"{label}: valid, but certificate not trusted: {trust_reason}")
    if result["unsigned_elements"]:
        # Valid covers only what was signed: attributes added later are not vouched for.
        shown = result["unsigned_elements"]
        result["reason"] += (f"; {len(shown)} attribute(s) not covered by this signature: "
                             + ", ".join(shown[:5]) + (" ..." if len(shown) > 5 else ""))
    return result


def _mac_parameters(elements: list[Element], mac_id: int | None,
                    result: dict[str, Any]) -> tuple[str, str, list[int]]:
    """MAC Algorithm, MAC Calculation Transfer Syntax and Data Elements Signed of the MAC
    Parameters item of ``mac_id``, noted in ``result`` with what they leave unsigned."""
    mac_params = find_element(elements, MAC_PARAMETERS_SEQUENCE)
    params_items = (mac_params.items or []) if mac_params is not None else []
    params = next((p for p in params_items
                   if us_value(find_element(p, MAC_ID_NUMBER)) == mac_id), None)
    if mac_id is None or params is None:
        raise _Invalid(f"no MAC Parameters item for MAC ID {mac_id}")
    mac_name = text_value(find_element(params, MAC_ALGORITHM)).upper()
    mac_ts = text_value(find_element(params, MAC_CALCULATION_TRANSFER_SYNTAX_UID))
    signed_tags = at_list(find_element(params, DATA_ELEMENTS_SIGNED))
    result.update(mac_algorithm=mac_name, mac_transfer_syntax=mac_ts,
                  elements_signed=len(signed_tags))
    signed = set(signed_tags)
    result["unsigned_elements"] = [tag_name(e.tag) for e in sorted(elements,
                                   key=lambda e: e.tag) if signable(e) and e.tag not in signed]
    return mac_name, mac_ts, signed_tags


def _signer_certificate(item: list[Element], result: dict[str, Any]) -> Any:
    """The Certificate of Signer, its subject and issuer noted in ``result``."""
    from cryptography import x509

    cert_type = text_value(find_element(item, CERTIFICATE_TYPE_TAG))
    cert_el = find_element(item, CERTIFICATE_OF_SIGNER)
    if cert_type != CERTIFICATE_TYPE or cert_el is None:
        raise _Invalid(f"certificate type {cert_type or '(none)'} is not {CERTIFICATE_TYPE}")
    try:
        cert = x509.load_der_x509_certificate(_der_exact(cert_el.value))
    except ValueError as exc:
        raise _Invalid(f"the Certificate of Signer cannot be read ({exc})") from None
    result["signer"] = cert.subject.rfc4514_string()
    result["issuer"] = cert.issuer.rfc4514_string()
    return cert


def _check_mac_and_signature(elements: list[Element], item: list[Element],
                             result: dict[str, Any]) -> Any:
    """The signer's certificate once the MAC recomputes and the Signature over it is the
    certificate key's; _Invalid saying why not (checks in the order dcmsign makes them)."""
    mac_name, mac_ts, signed_tags = _mac_parameters(elements, result["mac_id"], result)
    cert = _signer_certificate(item, result)
    if mac_name not in MACS:
        raise _Invalid(f"unknown MAC algorithm {mac_name!r}")
    try:
        hashlib.new(MACS[mac_name][0])
    except ValueError:
        raise _Invalid(f"MAC algorithm {mac_name} is not available in this Python/OpenSSL "
                       "build (RIPEMD-160 needs OpenSSL's legacy provider)") from None
    syn = mac_syntax(mac_ts)
    if syn is None:
        raise _Invalid(f"unsupported MAC Calculation Transfer Syntax {mac_ts!r}")
    if not signed_tags:
        raise _Invalid("Data Elements Signed is empty")
    sig_el = find_element(item, SIGNATURE)
    if sig_el is None or not sig_el.value:
        raise _Invalid("no Signature")
    public_key = cert.public_key()
    result["profile"] = classify_profile(elements, signed_tags, mac_name, public_key)

    mac, problems = compute_mac(elements, signed_tags, item, mac_name, syn)
    present = {e.tag for e in elements}
    absent = [t for t in signed_tags if t not in present]
    ok, why = _check_signature(public_key, sig_el.value, mac, mac_name)
    if not ok and has_nul_padded_text(elements):
        # DCMTK after 3.6.8 hashes NUL-padded text without the NUL (mac.normalised)
        mac, problems = compute_mac(elements, signed_tags, item, mac_name, syn, True)
        ok, why = _check_signature(public_key, sig_el.value, mac, mac_name)
    if not ok:
        detail = []
        if absent:
            detail.append("signed attribute(s) removed: "
                          + ", ".join(tag_name(t) for t in absent[:5]))
        detail.extend(problems)
        raise _Invalid(why + (f" [{'; '.join(detail)}]" if detail else ""))
    return cert


def _check_signing_time(cert: Any, when: str) -> None:
    """As DCMTK does: the certificate must have been valid when the signature was made."""
    signed_at = _parse_dicom_dt(when)
    if signed_at is None:
        raise _Invalid(f"Digital Signature DateTime {when!r} is not a DICOM DT")
    if not cert.not_valid_before_utc <= signed_at <= cert.not_valid_after_utc:
        raise _Invalid(f"the certificate was not valid at the signature time {when} (valid "
                       f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                       f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)")


def _der_exact(value: bytes) -> bytes:
    """The DER certificate without the pad byte an odd-length certificate gets in DICOM."""
    if len(value) >= 4 and value[0] == 0x30 and value[1] & 0x80:
        n = value[1] & 0x7F
        if 0 < n <= 4 and len(value) >= 2 + n:
            total = 2 + n + int.from_bytes(value[2:2 + n], "big")
            return value[:total]
    if len(value) >= 2 and value[0] == 0x30 and value[1] < 0x80:
        return value[:2 + value[1]]
    return value


def _signature_containers(elements: list[Element], location: str):
    """Every data set or item holding a Digital Signatures Sequence, with its location,
    except inside the Original Attributes Sequence (values before a change, whose
    signatures are historical and cannot verify in place; DCMTK skips them too)."""
    if find_element(elements, DIGITAL_SIGNATURES_SEQUENCE) is not None:
        yield elements, location
    for el in elements:
        if el.items is None or el.tag in (DIGITAL_SIGNATURES_SEQUENCE,
                                          MAC_PARAMETERS_SEQUENCE,
                                          ORIGINAL_ATTRIBUTES_SEQUENCE):
            continue
        for i, item in enumerate(el.items):
            yield from _signature_containers(item, f"{location} > {tag_name(el.tag)}[{i}]")


def verify_dicom_signatures(path_or_dataset: str | os.PathLike[str] | Any, *,
                            anchors: list[Any] | None = None) -> list[dict[str, Any]]:
    """Every digital signature of a DICOM file (a path, the file's bytes, or a pydicom
    Dataset, which pydicom re-encodes first), main data set and sequence items, each
    checked: MAC recomputed, RSA signature verified against the Certificate of Signer,
    certificate valid at the signature time (``valid``), and the certificate issued by
    one of ``anchors`` (``trusted``; None means the explicitly trusted CAs,
    ``certificates.trust_anchors()``). An empty list when the file has no signature.

    Each entry: uid, datetime, location, mac_id, signer, issuer, profile ("creator" when
    the Creator RSA profile's attributes are all signed, else "base"), purpose,
    mac_algorithm, mac_transfer_syntax, elements_signed, unsigned_elements (present
    but not covered: e.g. added after signing), timestamp, valid, trusted, reason."""
    if isinstance(path_or_dataset, (str, os.PathLike)):
        try:
            data = Path(path_or_dataset).read_bytes()
        except OSError as exc:
            raise DicomSignatureError(f"{path_or_dataset}: {exc.strerror or exc}") from None
        ds = parse_file(data)
    elif isinstance(path_or_dataset, bytes | bytearray):
        ds = parse_file(bytes(path_or_dataset))
    else:
        data, ts = dataset_bytes(path_or_dataset)
        syn, _ = transfer_syntax_flags(ts)
        ds = Dataset(syn, ts, data, b"", False)
        ds.elements, _ = parse_elements(data, 0, len(data), syn, None)
    anchors = trust_anchors() if anchors is None else list(anchors)
    results = []
    for elements, location in _signature_containers(ds.elements, "main data set"):
        sequence = find_element(elements, DIGITAL_SIGNATURES_SEQUENCE)
        for item in (sequence.items or []) if sequence is not None else []:
            results.append(_verify_one(elements, item, location, anchors))
    return results
