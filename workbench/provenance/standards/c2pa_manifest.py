"""C2PA Content Credentials for JPEG and PNG exports, signed and verified offline.

The workbench's own capture records (record.py) prove what a hospital captured; C2PA is the
open standard other tools read. c2pa_signing.py writes a C2PA manifest into a *copy* of an
image (or beside it as a ``.c2pa`` sidecar) with the X.509 signer from certificates.py;
this module reads one back with trust decided only by anchors the user chose, and holds
what both share (the c2pa-python import, the offline settings, sidecar names).

What is signed (one manifest, C2PA claim v2 as c2pa-rs writes it):

- ``c2pa.hash.data``: SHA-256 over the whole file except the manifest itself, so any
  changed byte of the image data is ``assertion.dataHash.mismatch``;
- ``c2pa.actions.v2``: ``c2pa.created`` with digitalSourceType ``digitalCapture`` for a
  capture-time signature, or, when a parent is given, ``c2pa.opened`` (linked to the parent
  ingredient) followed by the caller's actions, e.g. ``c2pa.edited`` describing an attack;
- optionally ``c2pa.ingredient.v3``: the parent image (its C2PA manifest too, when it has
  one), with the parent file's SHA-256 in the ingredient description;
- the claim generator ``workbench/<version>`` and the title.

Signature: PS256 (RSASSA-PSS, SHA-256) with the signer's RSA key, certificate chain in the
COSE header, no time-stamp authority (offline: the signing time is not independently
attested). No thumbnail is embedded: a sidecar may travel apart from the image, and a
thumbnail would be a copy of patient imagery inside it.

Verification never uses the network (no OCSP, no remote manifests) and trusts only the
anchors given (default: the CA certificates under ``trust/x509``).

``c2pa-python`` is an optional dependency (``pip install 'workbench[c2pa]'``); it is imported
only when a function here is called.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .certificates import trust_anchors_pem

SIDECAR_SUFFIX = ".c2pa"
TRUST_LIST_URI = "workbench:trust/x509"

# The content types we sign and read, by magic number (never by file name: a renamed file
# must not be signed as something it is not).
JPEG, PNG = "image/jpeg", "image/png"

# C2PA's offline verification settings: trust on, only our anchors, nothing fetched.
_VERIFY = {
    "verify_after_reading": True,
    "verify_trust": True,
    "ocsp_fetch": False,
    "remote_manifest_fetch": False,
}


class C2paError(Exception):
    """A C2PA problem the user can act on; the message names the file."""


def c2pa_module() -> Any:
    try:
        import c2pa
    except ImportError:  # the optional dependency is absent
        raise C2paError("C2PA support needs the optional package c2pa-python "
                        "(pip install 'workbench[c2pa]')") from None
    return c2pa


def c2pa_available() -> bool:
    """Whether c2pa-python can be imported (the CLI and GUI hide C2PA otherwise)."""
    try:
        c2pa_module()
    except C2paError:
        return False
    return True


def sidecar_for(path: str | os.PathLike[str]) -> Path:
    """Where sign_c2pa writes the manifest store of ``path`` when it is not embedded:
    ``path + ".c2pa"`` (``scan.png.c2pa``), so ``scan.jpg`` and ``scan.png`` in one folder
    never share a sidecar."""
    return Path(str(path) + SIDECAR_SUFFIX)


def _sidecars(path: Path) -> list[Path]:
    """Sidecars verify_c2pa looks for, in order: ours, then c2patool's and c2pa-rs's
    convention (the extension replaced: ``scan.c2pa``), so their sidecars verify too."""
    ours, theirs = sidecar_for(path), path.with_suffix(SIDECAR_SUFFIX)
    return [ours] if theirs in (ours, path) else [ours, theirs]


def image_format(path: Path) -> str | None:
    """The content type from the first bytes, or None if neither JPEG nor PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise C2paError(f"{path}: {exc.strerror or exc}") from None
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def c2pa_context(anchors_pem: bytes | None = None) -> Any:
    c2pa = c2pa_module()
    config: dict[str, Any] = {
        "verify": dict(_VERIFY),
        # No thumbnail: see the module docstring (patient imagery, sidecars travel apart).
        "builder": {"thumbnail": {"enabled": False}},
    }
    if anchors_pem and anchors_pem.strip():
        _check_anchors(anchors_pem)
        # c2pa-rs 0.91 (c2pa-python 0.38): ``trust.anchors`` is a list of trust lists, each
        # with a kind; ``trust.user_anchors`` / ``trust.trust_anchors`` still work but are
        # deprecated. The trust_uri names the list in validation_results.trustListUri.
        config["trust"] = {"anchors": [{"trust_anchors": anchors_pem.decode("utf-8", "replace"),
                                        "trust_kind": "manifest",
                                        "trust_uri": TRUST_LIST_URI}]}
    try:
        return c2pa.Context(c2pa.Settings.from_dict(config))
    except c2pa.C2paError as exc:
        raise C2paError(f"the trust anchors could not be loaded ({exc})") from None


def _check_anchors(anchors_pem: bytes) -> None:
    """c2pa only parses the anchors while validating a file, and its error then looks like
    a damaged manifest; bad anchors must be the anchors' error, not every file's."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(anchors_pem)
    except ValueError as exc:
        raise C2paError(f"the trust anchors are not PEM CA certificates ({exc})") from None


def _codes(entries: Any) -> list[str]:
    return [e["code"] for e in entries or [] if isinstance(e, dict) and e.get("code")]


def _claim_generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        first = info[0]
        return f"{first['name']}/{first['version']}" if first.get("version") else first["name"]
    return str(manifest.get("claim_generator") or "")  # claim v1 manifests from other tools


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        label = assertion.get("label", "")
        if label == "c2pa.actions" or label.startswith("c2pa.actions.v"):
            out.extend((assertion.get("data") or {}).get("actions") or [])
    return out


def _reason(state: str, codes: list[str], signer: str) -> str:
    listed = ", ".join(codes)
    if state == "Trusted":
        return (f"intact: the image data match the manifest, signed by {signer}, whose "
                "certificate chains to a trusted CA")
    if state == "Valid":
        why = f" ({listed})" if listed else ""
        return (f"intact but not trusted: the image data match the manifest, but the signer "
                f"{signer} does not chain to a trusted CA{why}; trust its CA to accept it")
    if "assertion.dataHash.mismatch" in codes:
        return f"tampered: the image data changed after signing ({listed})"
    if "signingCredential.expired" in codes:
        # Offline signing has no time stamp, so validity is judged at verification time.
        return (f"invalid: the signer's certificate has expired, and without a time stamp "
                f"nothing shows the signature was made while it was valid ({listed})")
    return f"invalid: the C2PA manifest fails validation ({listed or 'no reason given'})"


def verify_c2pa(path: str | os.PathLike[str], *,
                anchors_pem: bytes | None = None) -> dict[str, Any]:
    """Validate the C2PA manifest of ``path``, offline, trusting only ``anchors_pem``
    (default: the CA certificates under ``trust/x509``; ``b""`` trusts nothing).

    The manifest is the embedded one; when the file has none, a sidecar: ``path + ".c2pa"``
    (what sign_c2pa writes), else c2patool's ``<stem>.c2pa``. Embedded first, as c2pa-rs
    does: a leftover sidecar cannot override what the file itself carries.

    Returns {"state": "Trusted" | "Valid" | "Invalid" | "missing", "failure_codes",
    "manifest_label", "signer", "actions", "claim_generator", "reason", "source"
    ("embedded" | "sidecar" | None), "sidecar" (its path or None), "path", "title",
    "ingredients"}. "Valid" means intact but not signed by a trusted certificate
    (``signingCredential.untrusted``); a file without a manifest (e.g. a re-encoded copy)
    is "missing", never "Valid".
    """
    c2pa = c2pa_module()
    p = Path(path)
    if not p.is_file():
        raise C2paError(f"{p}: no such file")
    fmt = image_format(p)  # None: let c2pa detect other formats it knows (WebP, TIFF, ...)
    ctx = c2pa_context(trust_anchors_pem() if anchors_pem is None else anchors_pem)
    result: dict[str, Any] = {
        "state": "missing", "failure_codes": [], "manifest_label": None, "signer": None,
        "actions": [], "claim_generator": None, "source": None, "sidecar": None,
        "path": str(p), "title": None, "ingredients": [],
        "reason": ("no C2PA manifest: the file carries none (a re-encoded or stripped copy "
                   "loses it), so its provenance cannot be checked with C2PA"),
    }
    side = next((c for c in _sidecars(p) if c.is_file()), None)
    store = _read_store(c2pa, p, fmt, None, ctx, result)
    if store is None and side is not None and result["state"] == "missing":
        try:
            manifest_data = side.read_bytes()
        except OSError as exc:
            raise C2paError(f"{side}: {exc.strerror or exc}") from None
        result.update(source="sidecar", sidecar=str(side))
        store = _read_store(c2pa, p, fmt, manifest_data, ctx, result)
    if store is None:
        return result  # "missing", or "Invalid" for a damaged manifest

    label = store.get("active_manifest")
    manifest = (store.get("manifests") or {}).get(label) or {}
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes: list[str] = []
    for code in _codes(store.get("validation_status")) + _codes(results.get("failure")):
        if code not in codes:
            codes.append(code)
    sig = manifest.get("signature_info") or {}
    signer = ", ".join(x for x in (sig.get("common_name"), sig.get("issuer")) if x) or None
    state = store.get("validation_state") or ("Invalid" if codes else "Valid")
    if state not in ("Trusted", "Valid", "Invalid"):
        state = "Invalid"  # an unknown state must never read as a pass
    result.update(
        state=state, failure_codes=codes, manifest_label=label, signer=signer,
        actions=_actions(manifest), claim_generator=_claim_generator(manifest),
        source=result["source"] or "embedded", title=manifest.get("title"),
        ingredients=[{k: i.get(k) for k in ("title", "relationship", "description",
                                            "active_manifest")}
                     for i in manifest.get("ingredients") or []],
        reason=_reason(state, codes, signer or "an unnamed signer"))
    return result


def _read_store(c2pa: Any, p: Path, fmt: str | None, manifest_data: bytes | None,
                ctx: Any, result: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest store as JSON, or None: no manifest (result untouched) or a damaged
    one (result set to Invalid). Errors about the file itself raise C2paError."""
    try:
        with open(p, "rb") as stream:
            reader = c2pa.Reader.try_create(fmt, stream, manifest_data, context=ctx)
            if reader is None:
                return None
            with reader:
                store: dict[str, Any] = json.loads(reader.json())
                return store
    except c2pa.C2paError.NotSupported:
        raise C2paError(f"{p}: not an image format C2PA can read") from None
    except c2pa.C2paError.Other as exc:
        if "could not be parsed" in str(exc):  # the container itself is broken
            raise C2paError(f"{p}: the file is corrupt or not a valid image ({exc})") from None
        _unreadable(result, exc, manifest_data is not None)
    except (c2pa.C2paError.Io, c2pa.C2paError.FileNotFound) as exc:
        raise C2paError(f"{p}: cannot be read ({exc})") from None
    except c2pa.C2paError as exc:
        # A manifest is there but broken (bad JUMBF/CBOR, unparsable certificate, ...).
        _unreadable(result, exc, manifest_data is not None)
    except OSError as exc:
        raise C2paError(f"{p}: {exc.strerror or exc}") from None
    return None


def _unreadable(result: dict[str, Any], exc: Exception, sidecar: bool) -> None:
    # C2PA's catch-all status code: the manifest exists but cannot be validated at all.
    result.update(state="Invalid", failure_codes=["general.error"],
                  source="sidecar" if sidecar else "embedded",
                  reason=f"invalid: the C2PA manifest is damaged and cannot be validated "
                         f"({exc})")
