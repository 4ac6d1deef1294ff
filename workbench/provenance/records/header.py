"""The header fingerprint of a DICOM object: every data element of the data set, so that
an edit of any attribute (PatientName, StudyDate, a window, a private tag) is tampering,
while a lossless re-encoding keeps it. Specified in docs/fingerprint.md ("header").

What is left out, because a lossless re-encoding legitimately changes it or because other
parts of the record cover it:
- the File Meta Information (group 0002: transfer syntax, implementation) and every group
  length (gggg,0000), Length to End (0008,0001), item and sequence delimiters;
- Pixel Data, Float and Double Float Pixel Data (the pixel fingerprint covers their
  decoded values; their encapsulation is the transfer syntax's business);
- Data Set Trailing Padding (FFFC,FFFC), and the DICOM signature sequences (FFFA,FFFA)
  and (4FFE,0001), which a later signature adds without changing the image.

Each element's canonical value is independent of the transfer syntax: binary values as
little-endian bytes, string values without trailing padding (spaces, NULs: PS3.5 6.2
calls it insignificant), a UN value that reads as text likewise (an implicit VR copy of
a private text attribute), and a sequence as the digests of its items' canonical
elements, whatever their length encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

from ...imaging.dicom_vr import STRING_VRS, swapped

HEADER_ALGORITHM = "workbench-dicom-header-v1"
HMAC_HEX = 16  # 64 bits: enough to name what changed; the signed digest protects the rest

_LEFT_OUT = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x00080001, 0xFFFAFFFA,
                       0x4FFE0001, 0xFFFCFFFC})


def covered(tag: int) -> bool:
    """Whether an element of this tag is in the header fingerprint."""
    group, element = tag >> 16, tag & 0xFFFF
    return not (element == 0 or group < 0x0008 or group == 0xFFFE or tag in _LEFT_OUT)


def _vr(ds: Any, elem: Any, tag: int) -> str:
    """The element's VR: from the file when explicit, else the data dictionary's, else for
    a private tag the private dictionary's under its creator (what pydicom would give it
    on conversion), else UN. Looked up without converting anything: hashing a header must
    not change the data set it hashes (a second pass would then hash other bytes)."""
    if getattr(elem, "VR", None):
        return str(elem.VR)
    from pydicom.datadict import dictionary_VR, private_dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        pass
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 and 0x0010 <= element <= 0x00FF:  # a private creator (PS3.5 7.8.1)
        return "LO"
    if group % 2 and element & 0xFF00:
        creator = _creator(ds.get_item((group << 16) | (element >> 8)))
        if creator:
            try:
                return str(private_dictionary_VR(tag, creator))
            except KeyError:
                pass
    return "UN"


def _creator(elem: Any) -> str:
    """A private creator element's name, from its stored bytes or converted value,
    trailing padding stripped as pydicom strips it."""
    value = getattr(elem, "value", None)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    return value.rstrip("\0 ") if isinstance(value, str) else ""


def canonical_value(ds: Any, tag: int, little: bool | None = None) -> bytes:
    """The bytes of one element's value that the header fingerprint hashes (see the
    module docstring). ``little``: the data set's byte order when the caller has it
    (``_little_endian(ds)``, which is the same for every element of one data set and,
    through pydicom's attribute look-up, costs more than the rest of a short element)."""
    if little is None:
        little = _little_endian(ds)
    elem = ds.get_item(tag)  # not ds[tag], which converts it: the stored bytes
    vr = _vr(ds, elem, tag)
    try:
        return _canonical(ds, tag, elem, vr, little)
    except Exception:  # a value pydicom cannot convert: its stored bytes, as they are
        raw = getattr(elem, "value", b"")
        return bytes(raw) if isinstance(raw, (bytes, bytearray)) else repr(raw).encode()


def _canonical(ds: Any, tag: int, elem: Any, vr: str, little: bool) -> bytes:
    undefined = getattr(elem, "length", 0) == 0xFFFFFFFF
    items = None
    if vr == "SQ" or (vr == "UN" and undefined):  # UN of undefined length: CP-246
        items = ds[tag].value or []
    elif vr == "UN" and isinstance(getattr(elem, "value", None), bytes) \
            and elem.value[:4] == b"\xfe\xff\x00\xe0":
        items = _implicit_items(elem.value)  # a sequence written without its VR
    if items is not None:
        digests = [hashlib.sha256(_item_bytes(item)).digest() for item in items]
        return b"SQ" + struct.pack("<L", len(digests)) + b"".join(digests)
    raw = getattr(elem, "value", b"")
    if raw is None:
        raw = b""
    elif isinstance(raw, (bytes, bytearray)):  # stored bytes, in the file's byte order
        raw = swapped(bytes(raw), vr, little, True)
    else:  # an element pydicom has converted: encoded again, little endian
        raw = _encoded(elem)
    if vr in STRING_VRS or (vr == "UN" and _looks_like_text(raw)):
        raw = raw.rstrip(b" \0")
    return raw


def _implicit_items(value: bytes) -> Any:
    """A UN value that starts with an item tag read as an implicit VR LE sequence (how an
    implicit VR copy writes a private sequence); None when it is not one."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_sequence

    try:
        return read_sequence(DicomBytesIO(value), True, True, len(value), "iso8859")
    except Exception:
        return None


def _little_endian(ds: Any) -> bool:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None:
        return str(syntax) != "1.2.840.10008.1.2.2"
    encoding = getattr(ds, "original_encoding", (None, True))
    return encoding[1] is not False


def _looks_like_text(raw: bytes) -> bool:
    """A UN value that is text (a private string attribute read without its VR): printable
    characters, at least one letter or digit, padding only at the end."""
    body = raw.rstrip(b" \0")
    return bool(body) and all(0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D, 0x1B)
                              for b in body) and any(chr(b).isalnum() for b in body)


def _encoded(elem: Any) -> bytes:
    """A converted element's value as pydicom writes it in explicit VR little endian."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, elem)
    data = fp.getvalue()
    long_vr = data[4:6] in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC",
                            b"UN", b"UR", b"UT", b"UV")
    return data[12:] if long_vr else data[8:]


def _item_bytes(item: Any) -> bytes:
    out = bytearray()
    little = _little_endian(item)
    for tag in sorted(map(int, item.keys())):  # tags: iterating converts elements
        if covered(tag):
            value = canonical_value(item, tag, little)
            out += struct.pack("<LL", tag, len(value)) + value
    return bytes(out)


def element_values(ds: Any) -> dict[int, bytes]:
    """Tag -> canonical value of every covered top-level element."""
    little = _little_endian(ds)
    return {tag: canonical_value(ds, tag, little) for tag in sorted(map(int, ds.keys()))
            if covered(tag)}


def _element_hmac(salt: bytes, tag: int, value: bytes, keyed: Any = None) -> str:
    """``keyed``: ``hmac.new(salt, digestmod=sha256)`` made once for all elements (a copy
    of it skips hashing the padded key again; the digest is the same)."""
    h = keyed.copy() if keyed is not None else hmac.new(salt, digestmod=hashlib.sha256)
    h.update(struct.pack("<L", tag) + value)
    return h.hexdigest()[:HMAC_HEX]


def _digest(values: dict[int, bytes]) -> str:
    h = hashlib.sha256()
    for tag, value in values.items():
        h.update(struct.pack("<L", tag) + hashlib.sha256(value).digest())
    return h.hexdigest()


def header_fingerprint(ds: Any, salt: bytes) -> dict[str, Any]:
    """The "header" part of a record: the digest of every covered element, and one salted
    HMAC per element so that verification names what changed without the record holding
    the values in clear."""
    values = element_values(ds)
    keyed = hmac.new(salt, digestmod=hashlib.sha256)
    return {"algorithm": HEADER_ALGORITHM, "sha256": _digest(values), "salt": salt.hex(),
            "elements": {f"{tag:08X}": _element_hmac(salt, tag, v, keyed)
                         for tag, v in values.items()}}


def tag_label(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def header_changes(ds: Any, want: dict[str, Any], *,
                   as_loaded: Any = None) -> tuple[bool, str]:
    """Whether the header is the recorded one, and a message naming what changed.

    ``ds``: the data set as stored (imaging/stored_dataset.py). ``as_loaded``: the same
    data set as the reader left it, some elements converted by pydicom. Records made
    before the header was hashed from a stored view hashed that form, which differs from
    the stored bytes only where pydicom's conversion does not write them back as they
    were (spaces inside a multi-valued string). Each form is a function of the file's
    bytes alone, so a header whose digest matches either is the one that was signed; an
    element is named as changed only when neither form of it matches its HMAC."""
    values = element_values(ds)
    if _digest(values) == want.get("sha256"):
        return True, f"all {len(values)} header elements unchanged"
    loaded = element_values(as_loaded) if as_loaded is not None and as_loaded is not ds \
        else values
    if loaded is not values and _digest(loaded) == want.get("sha256"):
        return True, f"all {len(loaded)} header elements unchanged"
    try:
        salt = bytes.fromhex(want.get("salt", ""))
    except ValueError:
        return False, "the record's header salt is malformed"
    recorded = {int(t, 16): h for t, h in (want.get("elements") or {}).items()}
    keyed = hmac.new(salt, digestmod=hashlib.sha256)
    changed = [t for t, v in values.items()
               if t in recorded and recorded[t] not in {
                   _element_hmac(salt, t, v, keyed),
                   _element_hmac(salt, t, loaded.get(t, v), keyed)}]
    added = [t for t in values if t not in recorded]
    removed = [t for t in recorded if t not in values]
    parts = []
    for what, tags in (("changed", changed), ("added", added), ("removed", removed)):
        if tags:
            names = ", ".join(tag_label(t) for t in tags[:8])
            parts.append(f"{what}: {names}" + (f" (+{len(tags) - 8} more)"
                                               if len(tags) > 8 else ""))
    return False, "header " + "; ".join(parts or ["digest differs"])
