"""C2PA Content Credentials for JPEG and PNG exports, signed and verified offline.

The workbench's own capture records (record.py) prove what a hospital captured; C2PA is the
open standard other tools read. This module writes a C2PA manifest into a *copy* of an
image (or beside it as a ``.c2pa`` sidecar) with the X.509 signer from certificates.py, and
reads one back with trust decided only by anchors the user chose.

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

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .certificates import SignerIdentity, trust_anchors_pem

SIDECAR_SUFFIX = ".c2pa"
TRUST_LIST_URI = "workbench:trust/x509"

# The content types we sign, by magic number (never by file name: a renamed file must not
# be signed as something it is not) and the file name endings that go with each.
_JPEG, _PNG = "image/jpeg", "image/png"
_SUFFIXES = {_JPEG: (".jpg", ".jpeg", ".jpe", ".jfif"), _PNG: (".png",)}

# C2PA's offline verification settings: trust on, only our anchors, nothing fetched.
_VERIFY = {
    "verify_after_reading": True,
    "verify_trust": True,
    "ocsp_fetch": False,
    "remote_manifest_fetch": False,
}


class C2paError(Exception):
    """A C2PA problem the user can act on; the message names the file."""


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:  # the optional dependency is absent
        raise C2paError("C2PA support needs the optional package c2pa-python "
                        "(pip install 'workbench[c2pa]')") from None
    return c2pa


def c2pa_available() -> bool:
    """Whether c2pa-python can be imported (the CLI and GUI hide C2PA otherwise)."""
    try:
        _c2pa()
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


def _sniff(path: Path) -> str | None:
    """The content type from the first bytes, or None if neither JPEG nor PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise C2paError(f"{path}: {exc.strerror or exc}") from None
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    return None


def _check_decodes(path: Path, fmt: str) -> None:
    """Refuse a truncated or corrupt image: c2pa only walks the container's segments and
    would happily sign an image that no viewer can show."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        kind = "JPEG" if fmt == _JPEG else "PNG"
        raise C2paError(f"{path}: not a complete {kind} image ({exc}); "
                        "refusing to sign it") from None


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)  # hard links, case-insensitive names
    except OSError:
        return False


def _settings(anchors_pem: bytes | None = None) -> Any:
    c2pa = _c2pa()
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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _subject(identity: SignerIdentity) -> str:
    return identity.certificate.subject.rfc4514_string()


def sign_c2pa(src: str | os.PathLike[str], dst: str | os.PathLike[str],
              identity: SignerIdentity, *, actions: list[dict[str, Any]] | None = None,
              title: str | None = None, sidecar: bool = False,
              parent: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Sign a copy of the JPEG or PNG ``src`` as ``dst`` with a C2PA manifest.

    ``actions`` are C2PA actions (``{"action": "c2pa.edited", "softwareAgent": ...,
    "parameters": {"description": ...}}``). C2PA 2.x requires the first action to be
    ``c2pa.created`` or ``c2pa.opened``; it is added here: ``c2pa.opened`` of ``parent``
    when one is given (the image this one was derived from, recorded as an ingredient),
    otherwise ``c2pa.created`` with digitalSourceType digitalCapture (a caller may pass
    its own ``c2pa.created`` first, with another digitalSourceType).

    ``sidecar=True`` leaves the image bytes unchanged: ``dst`` is a byte-identical copy of
    ``src`` and the manifest store is written to ``dst + ".c2pa"``. In sidecar mode ``dst``
    may be ``src`` itself: then only ``src + ".c2pa"`` is written and no copy is made.
    Otherwise ``dst`` must differ from ``src`` (``src`` is never modified).

    Returns {"manifest_label", "algorithm", "signer", "output", "sidecar" (path or None),
    "format", "actions", "parent_sha256" (or None)}.
    """
    from workbench import __version__

    c2pa = _c2pa()
    src_p, dst_p = Path(src), Path(dst)
    if not src_p.is_file():
        raise C2paError(f"{src_p}: no such file")
    fmt = _sniff(src_p)
    if fmt is None:
        raise C2paError(f"{src_p}: not a JPEG or PNG image (C2PA signing here supports "
                        "only those)")
    in_place = _same_file(src_p, dst_p)
    if in_place and not sidecar:
        raise C2paError(f"{dst_p}: the output must not be the input (the original is "
                        "never modified; choose another name, or use a sidecar)")
    if not in_place and dst_p.suffix.lower() not in _SUFFIXES[fmt]:
        kind = "JPEG" if fmt == _JPEG else "PNG"
        raise C2paError(f"{dst_p}: {src_p.name} is a {kind} image; name the output "
                        f"with {' or '.join(_SUFFIXES[fmt][:2])}")
    if not dst_p.parent.is_dir():
        raise C2paError(f"{dst_p.parent}: no such folder")
    _check_decodes(src_p, fmt)
    if sidecar and _has_embedded_manifest(c2pa, src_p, fmt):
        # Readers use an embedded manifest before any sidecar: ours would never be read.
        raise C2paError(f"{src_p}: the image already carries an embedded C2PA manifest, "
                        "which readers use before a sidecar; sign it embedded instead "
                        "(with the signed file as parent to keep its history)")

    steps = [dict(a) for a in (actions or [])]
    for a in steps:
        if not isinstance(a.get("action"), str) or not a["action"]:
            raise C2paError(f"{src_p}: every action needs an 'action' name such as "
                            f"'c2pa.edited' (got {a!r})")
    parent_p = Path(parent) if parent is not None else None
    parent_fmt = None
    if parent_p is not None:
        parent_fmt = _sniff(parent_p)
        if parent_fmt is None:
            raise C2paError(f"{parent_p}: the parent is not a JPEG or PNG image")
        if steps and steps[0]["action"] in ("c2pa.created", "c2pa.opened"):
            raise C2paError(f"{src_p}: with a parent, the manifest opens it (c2pa.opened); "
                            f"do not pass {steps[0]['action']!r} as well")
    manifest: dict[str, Any] = {
        # Claim v2 has no free-text claim_generator; claim_generator_info is its form, and
        # verify_c2pa reports it as "workbench/<version>".
        "claim_generator_info": [{"name": "workbench", "version": __version__}],
        "title": title or (src_p.name if in_place else dst_p.name),
        "format": fmt,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": steps}}] if steps else [],
    }

    ctx = _settings()
    parent_sha = None
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.PS256, identity.chain_pem(),
                               identity.key_pem(), None)  # None: no TSA (offline)
    out = io.BytesIO()
    try:
        with c2pa.Signer.from_info(info) as signer, \
                c2pa.Builder(manifest, context=ctx) as builder:
            if parent_p is not None:
                # EDIT intent: c2pa-rs adds c2pa.opened linked to the parentOf ingredient.
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
                parent_sha = _file_sha256(parent_p)
                with open(parent_p, "rb") as f:
                    # C2PA 2.x ingredients carry no hash of a parent without a manifest;
                    # the description keeps the original's file hash for the record.
                    builder.add_ingredient(
                        {"title": parent_p.name, "relationship": "parentOf",
                         "description": f"sha256:{parent_sha}"}, parent_fmt, f)
            elif not steps or steps[0]["action"] not in ("c2pa.created", "c2pa.opened"):
                # CREATE intent: c2pa-rs adds c2pa.created with this source type first.
                builder.set_intent(c2pa.C2paBuilderIntent.CREATE,
                                   c2pa.C2paDigitalSourceType.DIGITAL_CAPTURE)
            if sidecar:
                builder.set_no_embed()
            with open(src_p, "rb") as source:
                manifest_bytes = builder.sign(signer, fmt, source, out)
    except c2pa.C2paError as exc:
        raise C2paError(f"{src_p}: C2PA signing failed ({exc})") from None
    except OSError as exc:
        raise C2paError(f"{exc.filename or src_p}: {exc.strerror or exc}") from None

    output = src_p if in_place else dst_p
    side = sidecar_for(dst_p) if sidecar else None
    written: list[Path] = []
    if side is not None:
        _write_atomically(side, manifest_bytes)
        written.append(side)
        if not in_place:
            # The copy is src's bytes exactly (not c2pa's pass-through output), so
            # "unchanged" holds by construction; the read-back below checks the hash.
            _write_atomically(dst_p, src_p.read_bytes())
            written.append(dst_p)
    else:
        _write_atomically(dst_p, out.getvalue())
        written.append(dst_p)

    # Read it back: the label and actions as a reader sees them, and a last check that
    # what was written validates (trust aside: b"" trusts nothing here).
    report = verify_c2pa(output, anchors_pem=b"")
    if report["state"] not in ("Valid", "Trusted"):
        for path in written:  # never leave a signed file behind that does not validate
            path.unlink(missing_ok=True)
        raise C2paError(f"{output}: the signed output does not validate "
                        f"({report['reason']})")
    return {
        "manifest_label": report["manifest_label"],
        "algorithm": "PS256",
        "signer": _subject(identity),
        "output": str(output),
        "sidecar": str(side) if side else None,
        "format": fmt,
        "actions": report["actions"],
        "parent_sha256": parent_sha,
    }


def _has_embedded_manifest(c2pa: Any, path: Path, fmt: str) -> bool:
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(fmt, f, None, context=_settings())
    except c2pa.C2paError:
        return True  # something C2PA-like that does not even parse: do not add a sidecar
    if reader is None:
        return False
    reader.close()
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder: a failure leaves no half file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    c2pa = _c2pa()
    p = Path(path)
    if not p.is_file():
        raise C2paError(f"{p}: no such file")
    fmt = _sniff(p)  # None: let c2pa detect other formats it knows (WebP, TIFF, ...)
    ctx = _settings(trust_anchors_pem() if anchors_pem is None else anchors_pem)
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
