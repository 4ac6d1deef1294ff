"""Verification: is this image the one that was captured? Names every check.

Checks, each pass / fail / warn / skip with a plain-language message:
record (found, and how), signature, signer (trusted), pixels, metadata, file bytes,
ledger. A lossless re-encode passes pixels and metadata and fails only the file bytes:
that is "re-encoded, pixels intact", not tampering.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...imaging.errors import ImageLoadError, NoPixelDataError
from ...imaging.medical_image import MedicalImage
from .fingerprint import (
    PIXEL_ALGORITHM,
    attribute_hmac,
    compressed_frame_hashes,
    dataset_sha256,
    file_sha256,
    identity_values,
    pixel_fingerprint,
    stored_header,
    unused_bits,
)
from .keys import trusted_key
from .record import RecordError, check_signature, read_record, record_id, sidecar_path
from .record_lookup import BY_APPEARANCE, find_record, record_of_entry

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"

# Verdicts, worst first.
TAMPERED, INVALID, UNTRUSTED, UNSIGNED, ERROR = (
    "tampered", "invalid-signature", "untrusted", "unsigned", "error")
# No record of its own; the ledger's nearest by appearance differs from it. Not
# "tampered": a perceptual hash finds the next slice of a signed series, or a second photo
# of the same lesion, as readily as a changed copy, and cannot tell them apart.
LOOKALIKE = "look-alike"
REENCODED, INTACT = "re-encoded", "intact"


@dataclass
class Check:
    name: str
    status: str
    message: str


@dataclass
class VerificationResult:
    path: str
    verdict: str
    summary: str
    checks: list[Check] = field(default_factory=list)
    record_source: str = ""
    record_id: str = ""
    notes: list[str] = field(default_factory=list)  # what the readers warned about

    @property
    def ok(self) -> bool:
        """Intact, or re-encoded with pixels and metadata intact."""
        return self.verdict in (INTACT, REENCODED)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        out["checks"] = {c.name: {"status": c.status, "message": c.message} for c in self.checks}
        return out


def _open_ledger(ledger: Any) -> Any:
    """The ledger to use: one given, else the default one if it exists, else None."""
    if ledger is not None:
        return ledger if ledger is not False else None
    from ...home import ledger_file

    if not ledger_file().is_file():
        return None
    from ..ledger.store import Ledger

    return Ledger(ledger_file())


def verify_image(path: str | os.PathLike[str], *, record: dict | None = None,
                 ledger: Any = None, image: MedicalImage | None = None) -> VerificationResult:
    """Verify one image against its record (given, sidecar, or found in the ledger).

    ``ledger``: a Ledger, None for the default ledger when it exists, False for none.
    """
    path = str(path)
    try:
        if image is None:
            from ...imaging.loader import load_image

            image = load_image(path)
    except NoPixelDataError as exc:
        # a DICOM object that is not an image (SR, RT plan, ECG): no capture record of
        # ours can exist for it, but its PS3.15 signatures can still be checked
        from ..standards.standard_signatures import verify_non_image

        return verify_non_image(path, exc.reason)
    except ImageLoadError as exc:
        led = _open_ledger(ledger)
        try:
            return _verify_undecodable(path, exc, record, led)
        finally:
            if led is not None and led is not ledger:
                led.close()
    led = _open_ledger(ledger)
    try:
        result = _verify(path, image, record, led)
    finally:
        if led is not None and led is not ledger:
            led.close()
    # DICOM PS3.15 signatures and C2PA manifests, beside our own record
    from ..standards.standard_signatures import combine, standard_checks

    extra = standard_checks(path, image)
    if extra:
        result.checks.extend(extra)
        result.verdict, result.summary = combine(result.verdict, result.summary,
                                                 result.checks)
    return result


def _verify(path: str, image: MedicalImage, record: dict | None,
            ledger: Any) -> VerificationResult:
    checks: list[Check] = []
    damaged = ""  # why the sidecar could not be read, when the ledger stood in for it
    if record is not None:
        source = "record given"
    else:
        try:
            record, source = find_record(image, ledger)
        except RecordError as exc:
            if ledger is not None:
                # A crash can leave a sidecar empty or cut short (the ledger's fsynced
                # entry is the durable copy of a record, the sidecar a copy beside the
                # image): the image is judged by the ledger's record, and the damaged
                # sidecar is named, never taken for a changed image
                record, source = find_record(image, ledger, sidecar=False)
                damaged = str(exc)
            if record is None:
                checks.append(Check("record", FAIL, str(exc) if not damaged else
                                    f"{damaged}; and {source}"))
                return VerificationResult(path, TAMPERED, "record unreadable", checks,
                                          "sidecar")
    if record is None:
        checks.append(Check("record", FAIL, source))
        return VerificationResult(path, UNSIGNED, "unsigned: no capture record found", checks)
    checks.append(Check("record", PASS, f"found: {source}"))
    rid = record_id(record)

    sig_ok, sig_msg = check_signature(record)
    checks.append(Check("signature", PASS if sig_ok else FAIL, sig_msg))
    checks.append(_signer_check(record, sig_ok))
    checks.append(_pixel_check(image, record))
    # the header before the identifying attributes: reading those converts their elements
    # in the loaded data set, the other form a record's header may have been hashed in
    header = _header_check(image, record)
    checks.append(_metadata_check(image, record))
    checks.append(header)
    checks.append(_file_check(image, record, checks[-3].status == PASS
                              and checks[-1].status != FAIL, checks[-1].status == PASS))
    checks.append(_ledger_check(ledger, rid))
    if damaged:
        checks.append(Check("sidecar", WARN, f"{damaged}: the ledger's record was used"))

    result = VerificationResult(path, *_verdict(checks), checks, source, rid)
    if BY_APPEARANCE in source and result.verdict == TAMPERED and sig_ok:
        _as_lookalike(result, record)
    if damaged:
        result.summary += " (by the ledger's record: the sidecar beside it is unreadable)"
    return result


def _as_lookalike(result: VerificationResult, record: dict) -> None:
    """A record found by appearance alone, whose image differs from this one: say what
    is known (this image has no record; it resembles that one and differs from it), not
    that this image was changed."""
    signed = (record.get("subject") or {}).get("file_name") or "a signed image"
    result.verdict = LOOKALIKE
    result.summary = (f"unsigned look-alike: no record of this image; it resembles "
                      f"{signed} ({result.record_source}) and differs from it "
                      f"({result.summary}): a changed copy of that image, or another image "
                      "like it (a neighbouring slice, a second photo)")
    result.checks[0] = Check("record", WARN, "no record of this image; the nearest "
                             f"look-alike's: {result.record_source}")


def _verify_undecodable(path: str, exc: ImageLoadError, record: dict | None,
                        ledger: Any) -> VerificationResult:
    """A file that no longer decodes is still judged against its record when it has one.

    It decoded when it was signed, so if its bytes changed since, it was altered: an edit
    of Rows or BitsAllocated, or damaged pixel data, is tampering, named at the header
    check where the header tells, and never only a load 'error'. The same bytes that no
    longer decode (or a decoder or size limit of this machine) stay an error.
    """
    from ...imaging.errors import CorruptImageError, TruncatedFileError

    failed = VerificationResult(path, ERROR, str(exc), [Check("image", FAIL, exc.reason)])
    if not isinstance(exc, CorruptImageError | TruncatedFileError):
        return failed
    ds = _header_only(Path(path))
    try:
        if record is not None:
            source = "record given"
        elif sidecar_path(path).is_file():
            record, source = read_record(sidecar_path(path)), f"sidecar {sidecar_path(path).name}"
        else:
            record, source = _ledger_record(ledger, ds, path)
    except (RecordError, OSError):
        return failed
    if record is None:
        return failed
    sig_ok, sig_msg = check_signature(record)
    now = _file_sha256_or_none(path)
    if sig_ok and now == (record.get("file") or {}).get("sha256"):
        return failed  # the signed bytes themselves: this machine's decoder, not tampering
    checks = [Check("record", PASS, f"found: {source}"),
              Check("signature", PASS if sig_ok else FAIL, sig_msg),
              _signer_check(record, sig_ok),
              Check("pixels", FAIL, f"the pixel data no longer decodes ({exc.reason})")]
    if ds is not None:
        checks.append(_header_check_of(ds, record))
    checks.append(Check("file", FAIL, "file bytes differ from the signed ones"))
    checks.append(_ledger_check(ledger, record_id(record)))
    if not sig_ok:
        summary = "record or signature altered: " + sig_msg
    else:
        header = [c.message for c in checks if c.name == "header" and c.status == FAIL]
        summary = "; ".join([*header, f"changed since signing: the pixel data no longer "
                             f"decodes ({exc.reason})"])
    return VerificationResult(path, TAMPERED, summary, checks, source, record_id(record))


def _header_only(path: Path) -> Any:
    from ...imaging.dicom_reader import read_dicom_header

    try:
        return read_dicom_header(path)[0]
    except ImageLoadError:
        return None


def _ledger_record(ledger: Any, ds: Any, path: str) -> tuple[dict | None, str]:
    if ledger is None:
        return None, ""
    uid = ds.get("SOPInstanceUID") if ds is not None else None
    hits = ledger.find(sop_instance_uid=str(uid)) if uid else []
    if hits:
        return record_of_entry(hits[-1]), f"ledger entry {hits[-1].index} by SOP Instance UID"
    return None, ""


def _file_sha256_or_none(path: str) -> str | None:
    try:
        return file_sha256(Path(path))
    except OSError:
        return None


def _signer_check(record: dict, sig_ok: bool) -> Check:
    signer = record.get("signer") or {}
    fp = str(signer.get("key_fingerprint", ""))
    if not sig_ok:
        return Check("signer", SKIP, "not checked: the signature is not valid")
    trusted = trusted_key(fp)
    if trusted is None:
        return Check("signer", FAIL, f"key {fp[:16]} is not in your trust store")
    if trusted.public_key_b64 != signer.get("public_key"):
        return Check("signer", FAIL, f"key {fp[:16]} differs from the trusted key of that name")
    return Check("signer", PASS, f"trusted key {fp[:16]} ({trusted.label})")


def _pixel_check(image: MedicalImage, record: dict) -> Check:
    want = record.get("pixels") or {}
    if want.get("algorithm") != PIXEL_ALGORITHM:
        return Check("pixels", SKIP, f"unknown pixel algorithm {want.get('algorithm')!r}")
    fp = pixel_fingerprint(image)
    if fp.sha256 == want.get("sha256"):
        return _unused_bits_check(image, want)
    compressed = record.get("compressed")
    if compressed and compressed_frame_hashes(image) == compressed.get("frames_sha256"):
        return Check("pixels", PASS, "compressed frames identical (this decoder renders the "
                     "lossy data slightly differently)")
    header = want.get("header") or {}
    if header != fp.header:
        diffs = [k for k in sorted(set(header) | set(fp.header))
                 if header.get(k) != fp.header.get(k)]
        return Check("pixels", FAIL, "pixels changed: image geometry or encoding differs ("
                     + ", ".join(diffs) + ")")
    old = want.get("frames_sha256") or []
    changed = [i + 1 for i, (a, b) in enumerate(zip(old, fp.frame_sha256, strict=False))
               if a != b]
    where = "" if len(old) <= 1 else f" in frame(s) {_ranges(changed)} of {len(old)}"
    return Check("pixels", FAIL, f"pixels changed{where}")


def _unused_bits_check(image: MedicalImage, want: dict) -> Check:
    """Decoded values match; the bits decoders mask off (outside Bits Stored) must too,
    where the record kept them and this encoding still carries them."""
    intact = "decoded pixel values identical to the captured ones"
    recorded = want.get("unused_bits")
    if not recorded:
        return Check("pixels", PASS, intact)
    now = unused_bits(image)
    if now is None:
        return Check("pixels", PASS, intact + " (the bits outside Bits Stored, which the "
                     "original kept, are not carried by this encoding)")
    if now["sha256"] != recorded.get("sha256"):
        return Check("pixels", FAIL, "pixels changed: the bits outside Bits Stored (above "
                     f"the High Bit) differ ({now['nonzero_words']} words set now, "
                     f"{recorded.get('nonzero_words')} when captured); decoded values "
                     "are unchanged, but these bits may hold overlays")
    return Check("pixels", PASS, intact + ", and the bits outside Bits Stored too")


def _ranges(numbers: list[int]) -> str:
    if len(numbers) > 8:
        return ", ".join(map(str, numbers[:8])) + f" … ({len(numbers)} frames)"
    return ", ".join(map(str, numbers))


def _metadata_check(image: MedicalImage, record: dict) -> Check:
    meta = record.get("metadata") or {}
    attributes = meta.get("attributes") or []
    try:
        salt = bytes.fromhex(meta.get("salt", ""))
    except ValueError:
        return Check("metadata", FAIL, "the record's metadata salt is malformed")
    values = identity_values(image, attributes)
    want = meta.get("attribute_hmacs") or {}
    changed = [k for k in attributes if attribute_hmac(salt, k, values.get(k)) != want.get(k)]
    if changed:
        return Check("metadata", FAIL, "identifying attributes changed: " + ", ".join(changed))
    return Check("metadata", PASS, f"{len(attributes)} identifying attributes unchanged")


def _header_check(image: MedicalImage, record: dict) -> Check:
    """Every element of a DICOM header (record.header), beyond the identifying ones."""
    if image.kind != "dicom":
        return Check("header", SKIP, "not DICOM: the photo's identifying tags are checked")
    return _header_check_of(stored_header(image), record, as_loaded=image.metadata)


def _header_check_of(ds: Any, record: dict, *, as_loaded: Any = None) -> Check:
    want = record.get("header")
    if not want:
        return Check("header", WARN, "the record predates whole-header hashing: only the "
                     "identifying attributes were recorded")
    from .header import HEADER_ALGORITHM, header_changes

    if want.get("algorithm") != HEADER_ALGORITHM:
        return Check("header", SKIP, f"unknown header algorithm {want.get('algorithm')!r}")
    try:
        same, message = header_changes(ds, want, as_loaded=as_loaded)
    except Exception as exc:  # a header pydicom cannot walk is not a verified one
        return Check("header", FAIL, f"cannot read the header to compare it ({exc})")
    return Check("header", PASS if same else FAIL, message)


def _file_check(image: MedicalImage, record: dict, pixels_ok: bool,
                header_ok: bool = False) -> Check:
    recorded = record.get("file") or {}
    if file_sha256(image.path) == recorded.get("sha256"):
        return Check("file", PASS, "file bytes identical")
    want_dataset = recorded.get("dataset_sha256")
    if want_dataset is not None and dataset_sha256(image.path) == want_dataset:
        # what an archive does to every instance it stores: only group 0002 is its own
        return Check("file", PASS, "data set bytes identical (file meta header written anew,"
                     " as a PACS does)")
    if (pixels_ok and header_ok and recorded.get("transfer_syntax")
            and recorded["transfer_syntax"] == image.transfer_syntax
            and _same_encapsulation(image, record)):
        # DICOM network transfer and archives rewrite the byte layout (group lengths,
        # defined or undefined sequence lengths, the file meta) but not the encoding
        return Check("file", PASS, "same transfer syntax, every covered data element and "
                     "the pixel data identical; only the byte layout differs (file meta, "
                     "group lengths), as DICOM network transfer and archives rewrite it")
    if pixels_ok:
        return Check("file", WARN, f"file bytes differ: re-encoded ({image.transfer_syntax_name}),"
                     " pixels intact")
    return Check("file", FAIL, "file bytes differ")


def _same_encapsulation(image: MedicalImage, record: dict) -> bool:
    """Compressed pixel data: the very frame bytes the record names (decoded values alone
    could hide a lossy re-compression that happens to decode the same). Native: nothing
    more to compare."""
    compressed = record.get("compressed")
    if not compressed:
        return compressed_frame_hashes(image) is None
    return compressed_frame_hashes(image) == compressed.get("frames_sha256")


def _ledger_check(ledger: Any, rid: str) -> Check:
    if ledger is None:
        return Check("ledger", SKIP, "no ledger to check")
    hits = ledger.find(record_id=rid)
    if hits:
        return Check("ledger", PASS, f"record is entry {hits[0].index} of the ledger")
    return Check("ledger", WARN, "record is not in this ledger")


def _verdict(checks: list[Check]) -> tuple[str, str]:
    by = {c.name: c for c in checks}
    if by["signature"].status == FAIL:
        return TAMPERED, "record or signature altered: " + by["signature"].message
    problems = [by[n].message for n in ("pixels", "metadata", "header")
                if n in by and by[n].status == FAIL]
    if problems:
        return TAMPERED, "; ".join(problems)
    if by["signer"].status == FAIL:
        return UNTRUSTED, "intact, but signed by an untrusted key: " + by["signer"].message
    if by["file"].status == WARN:
        header = by.get("header")
        return REENCODED, ("re-encoded, pixels and header intact"
                           if header is not None and header.status == PASS
                           else "re-encoded, pixels intact")
    return INTACT, "signed and intact"


def list_files(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """The files to verify, in order: files as given, folders recursively (``find_images``'
    sorted walk). Every engine verifies this list."""
    from ...imaging.loader import find_images

    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(find_images(p) if p.is_dir() else [p])
    return files


def verify_one_safely(path: str | os.PathLike[str], ledger: Any) -> VerificationResult:
    """verify_image, where an unexpected failure on one file is that file's error result
    (named, one line) and never stops the rest of a folder."""
    import warnings

    from ...imaging.warning_notes import unique_texts

    with warnings.catch_warnings(record=True) as caught:
        # pydicom's and the decoders' warnings belong to this file: kept with its result
        # (printed under its name), not sprayed on stderr without one
        warnings.simplefilter("always")
        try:
            result = verify_image(path, ledger=ledger if ledger is not None else False)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            message = f"{path}: cannot verify ({type(exc).__name__}: {first})"
            result = VerificationResult(str(path), ERROR, message,
                                        [Check("image", FAIL, message)])
    result.notes += [t for t in unique_texts(caught) if t not in result.notes]
    return result


def verify_paths(paths: list[str | os.PathLike[str]], *, ledger: Any = None,
                 progress: Any = None, cancelled: Any = None) -> list[VerificationResult]:
    """Verify files and folders (recursively). ``progress(done, total, name)``."""
    files = list_files(paths)
    led = _open_ledger(ledger)
    results = []
    try:
        for i, f in enumerate(files):
            if cancelled and cancelled():
                break
            results.append(verify_one_safely(f, led))
            if progress:
                progress(i + 1, len(files), f.name)
    finally:
        if led is not None and led is not ledger:
            led.close()
    return results
