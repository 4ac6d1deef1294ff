"""Signing a copy of a JPEG or PNG with a C2PA manifest (embedded, or a ``.c2pa`` sidecar);
what is signed, and how it is verified, is described in c2pa_manifest.py."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from .c2pa_manifest import (
    JPEG,
    PNG,
    C2paError,
    c2pa_context,
    c2pa_module,
    image_format,
    sidecar_for,
    verify_c2pa,
)
from .certificates import SignerIdentity

# The file name endings that go with each content type we sign.
_SUFFIXES = {JPEG: (".jpg", ".jpeg", ".jpe", ".jfif"), PNG: (".png",)}


def _check_decodes(path: Path, fmt: str) -> None:
    """Refuse a truncated or corrupt image: c2pa only walks the container's segments and
    would happily sign an image that no viewer can show."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        kind = "JPEG" if fmt == JPEG else "PNG"
        raise C2paError(f"{path}: not a complete {kind} image ({exc}); "
                        "refusing to sign it") from None


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)  # hard links, case-insensitive names
    except OSError:
        return False


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
    c2pa = c2pa_module()
    src_p, dst_p = Path(src), Path(dst)
    fmt, in_place = _checked_paths(c2pa, src_p, dst_p, sidecar)
    parent_p = Path(parent) if parent is not None else None
    steps, parent_fmt = _checked_actions(src_p, actions, parent_p)
    manifest = _manifest_definition(steps, title or (src_p.name if in_place else dst_p.name),
                                    fmt)
    manifest_bytes, signed, parent_sha = _signed_manifest(
        c2pa, manifest, identity, src_p, fmt, steps, sidecar, parent_p, parent_fmt)

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
        _write_atomically(dst_p, signed)
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


def _checked_paths(c2pa: Any, src_p: Path, dst_p: Path, sidecar: bool) -> tuple[str, bool]:
    """The source's format and whether the output is the source itself (sidecar only);
    C2paError when this source cannot be signed into this output."""
    if not src_p.is_file():
        raise C2paError(f"{src_p}: no such file")
    fmt = image_format(src_p)
    if fmt is None:
        raise C2paError(f"{src_p}: not a JPEG or PNG image (C2PA signing here supports "
                        "only those)")
    in_place = _same_file(src_p, dst_p)
    if in_place and not sidecar:
        raise C2paError(f"{dst_p}: the output must not be the input (the original is "
                        "never modified; choose another name, or use a sidecar)")
    if not in_place and dst_p.suffix.lower() not in _SUFFIXES[fmt]:
        kind = "JPEG" if fmt == JPEG else "PNG"
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
    return fmt, in_place


def _checked_actions(src_p: Path, actions: list[dict[str, Any]] | None,
                     parent_p: Path | None) -> tuple[list[dict[str, Any]], str | None]:
    """The caller's actions (copied) and the parent's format; C2paError when they clash."""
    steps = [dict(a) for a in (actions or [])]
    for a in steps:
        if not isinstance(a.get("action"), str) or not a["action"]:
            raise C2paError(f"{src_p}: every action needs an 'action' name such as "
                            f"'c2pa.edited' (got {a!r})")
    parent_fmt = None
    if parent_p is not None:
        parent_fmt = image_format(parent_p)
        if parent_fmt is None:
            raise C2paError(f"{parent_p}: the parent is not a JPEG or PNG image")
        if steps and steps[0]["action"] in ("c2pa.created", "c2pa.opened"):
            raise C2paError(f"{src_p}: with a parent, the manifest opens it (c2pa.opened); "
                            f"do not pass {steps[0]['action']!r} as well")
    return steps, parent_fmt


def _manifest_definition(steps: list[dict[str, Any]], title: str, fmt: str) -> dict[str, Any]:
    from workbench import __version__

    return {
        # Claim v2 has no free-text claim_generator; claim_generator_info is its form, and
        # verify_c2pa reports it as "workbench/<version>".
        "claim_generator_info": [{"name": "workbench", "version": __version__}],
        "title": title,
        "format": fmt,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": steps}}] if steps else [],
    }


def _signed_manifest(c2pa: Any, manifest: dict[str, Any], identity: SignerIdentity,
                     src_p: Path, fmt: str, steps: list[dict[str, Any]], sidecar: bool,
                     parent_p: Path | None, parent_fmt: str | None
                     ) -> tuple[bytes, bytes, str | None]:
    """(manifest store bytes, signed image bytes, parent's SHA-256) from c2pa-rs."""
    ctx = c2pa_context()
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
    return manifest_bytes, out.getvalue(), parent_sha


def _has_embedded_manifest(c2pa: Any, path: Path, fmt: str) -> bool:
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(fmt, f, None, context=c2pa_context())
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
