"""A byte-level DICOM parser for signatures: the data set as stored, element by element.

pydicom converts values on reading (e.g. Specific Character Set, stripped padding), and a
MAC must see the stored bytes, so the data set is walked here and pydicom is only asked
for its data dictionary (the VRs of implicit VR data) and, for a Dataset given in memory,
to write it out first.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from .tags import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    ITEM,
    ITEM_DELIMITER,
    PIXEL_DATA,
    PIXEL_REPRESENTATION,
    SEQUENCE_DELIMITER,
    UNDEFINED_LENGTH,
)


class DicomSignatureError(Exception):
    """A DICOM file that cannot be signed (or parsed); the message says why."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Explicit VR: these VRs have 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
LONG_VRS = _words("OB OD OF OL OV OW SQ SV UC UN UR UT UV")
_SHORT_VRS = _words("AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US")
_LUT_DESCRIPTORS = {0x00281101, 0x00281102, 0x00281103, 0x00283002, 0x00189219}


@dataclass(frozen=True)
class Syntax:
    explicit: bool
    little: bool

    @property
    def endian(self) -> str:
        return "<" if self.little else ">"


EXPLICIT_LE = Syntax(True, True)


@dataclass
class Element:
    tag: int
    vr: str
    value: bytes = b""  # stored bytes, in the byte order of ``little``
    little: bool = True
    items: list[list[Element]] | None = None  # a sequence
    fragments: list[bytes] | None = None  # encapsulated pixel data
    start: int = 0  # offsets in the data set buffer: header start ...
    end: int = 0  # ... just past the element (delimiter included)
    content_start: int = 0  # first item (sequences)
    content_end: int = 0  # end of the last item, before a Sequence Delimitation Item


@dataclass
class Dataset:
    syntax: Syntax
    transfer_syntax: str
    buffer: bytes  # the data set (inflated when deflated)
    prefix: bytes  # preamble + File Meta Information, byte for byte
    deflated: bool
    elements: list[Element] = field(default_factory=list)


def tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def tag_name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    try:
        kw = keyword_for_tag(tag)
    except Exception:  # noqa: BLE001 - a name is cosmetic
        kw = ""
    if not kw and (tag >> 16) % 2:
        kw = "private"
    return f"{tag_str(tag)} {kw}".rstrip()


def _dictionary_vr(tag: int, creators: dict[tuple[int, int], str]) -> str:
    """The VR of an implicit VR element, as a DICOM reader without the file's VRs must
    guess it: the data dictionary (private dictionary by private creator), else UN."""
    from pydicom.datadict import dictionary_VR, private_dictionary_VR

    group, elem = tag >> 16, tag & 0xFFFF
    if elem == 0:
        return "UL"  # group length
    if group % 2:
        if 0x0010 <= elem <= 0x00FF:
            return "LO"  # private creator
        creator = creators.get((group, elem >> 8))
        if creator is None:
            return "UN"
        try:
            return str(private_dictionary_VR(tag, creator))
        except KeyError:
            return "UN"
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _resolve_ambiguous(vr: str, tag: int, pixel_representation: int | None) -> str:
    """Implicit VR data cannot say US from SS or OB from OW; resolve as DCMTK and PS3.5
    A.1 do: pixel-value attributes follow Pixel Representation, LUT descriptors are US,
    and OB-or-OW data (Pixel Data, Overlay Data, LUT Data) is OW in implicit VR."""
    if " or " not in vr:
        return vr
    if vr == "US or SS":
        if tag in _LUT_DESCRIPTORS:
            return "US"
        return "SS" if pixel_representation == 1 else "US"
    if "OW" in vr:
        return "OW"
    return vr.split(" or ")[0]


def _read_header(buf: bytes, pos: int, syn: Syntax) -> tuple[int, int]:
    if pos + 8 > len(buf):
        raise DicomSignatureError(f"data set truncated at byte {pos}")
    group, elem, length = struct.unpack_from(syn.endian + "HHL", buf, pos)
    return (group << 16) | elem, length


def _parse_fragments(buf: bytes, pos: int, syn: Syntax) -> tuple[list[bytes], int, int]:
    fragments = []
    while True:
        tag, length = _read_header(buf, pos, syn)
        if tag == SEQUENCE_DELIMITER:
            return fragments, pos, pos + 8
        if tag != ITEM or length == UNDEFINED_LENGTH or pos + 8 + length > len(buf):
            raise DicomSignatureError(f"malformed encapsulated Pixel Data at byte {pos}")
        fragments.append(buf[pos + 8:pos + 8 + length])
        pos += 8 + length


def _parse_items(buf: bytes, pos: int, end: int | None, syn: Syntax,
                 pixel_rep: int | None) -> tuple[list[list[Element]], int, int]:
    """Items of a sequence: up to ``end`` (defined length) or to the Sequence Delimitation
    Item. Returns (items, end of the last item, position after the sequence)."""
    items: list[list[Element]] = []
    while True:
        if end is not None and pos >= end:
            return items, pos, pos
        tag, length = _read_header(buf, pos, syn)
        if tag == SEQUENCE_DELIMITER and end is None:
            return items, pos, pos + 8
        if tag != ITEM:
            raise DicomSignatureError(f"expected an item tag at byte {pos}, found "
                                      f"{tag_str(tag)}")
        pos += 8
        if length == UNDEFINED_LENGTH:
            elements, pos = parse_elements(buf, pos, len(buf), syn, pixel_rep,
                                            in_undefined_item=True)
        else:
            if pos + length > len(buf):
                raise DicomSignatureError(f"item at byte {pos - 8} runs past the end")
            elements, _ = parse_elements(buf, pos, pos + length, syn, pixel_rep)
            pos += length
        items.append(elements)


def parse_elements(buf: bytes, pos: int, end: int, syn: Syntax, pixel_rep: int | None,
                    *, in_undefined_item: bool = False) -> tuple[list[Element], int]:
    elements: list[Element] = []
    creators: dict[tuple[int, int], str] = {}
    while pos < end:
        start = pos
        tag, length = _read_header(buf, pos, syn)
        if tag == ITEM_DELIMITER and in_undefined_item:
            pos += 8
            break
        group = tag >> 16
        if syn.explicit and group != 0xFFFE:
            vr = buf[pos + 4:pos + 6].decode("latin-1")
            if vr in LONG_VRS:
                if pos + 12 > len(buf):
                    raise DicomSignatureError(f"data set truncated at byte {pos}")
                (length,) = struct.unpack_from(syn.endian + "L", buf, pos + 8)
                pos += 12
            elif vr in _SHORT_VRS:
                (length,) = struct.unpack_from(syn.endian + "H", buf, pos + 6)
                pos += 8
            else:
                raise DicomSignatureError(f"unknown VR {vr!r} for {tag_str(tag)} at byte "
                                          f"{pos}")
        else:
            vr = _dictionary_vr(tag, creators)
            pos += 8
        el = Element(tag, vr, little=syn.little, start=start)
        if length == UNDEFINED_LENGTH:
            if tag == PIXEL_DATA and vr != "SQ":
                el.vr = "OB"  # encapsulated: always OB (PS3.5 A.4)
                el.content_start = pos
                el.fragments, el.content_end, pos = _parse_fragments(buf, pos, syn)
            else:
                # A sequence, or UN of undefined length whose items are implicit VR LE
                # (PS3.5 6.2.2): that is a sequence (CP-246), and DCMTK reads and signs
                # it as SQ, so it is one here too.
                item_syn = syn if vr == "SQ" or not syn.explicit else Syntax(False, True)
                el.content_start = pos
                el.items, el.content_end, pos = _parse_items(buf, pos, None, item_syn,
                                                             pixel_rep)
                el.vr = "SQ"
        else:
            if pos + length > len(buf):
                raise DicomSignatureError(f"{tag_str(tag)} at byte {start} runs past the "
                                          "end of the file")
            if vr == "SQ":
                el.content_start = pos
                el.items, el.content_end, _ = _parse_items(buf, pos, pos + length, syn,
                                                           pixel_rep)
            else:
                el.value = buf[pos:pos + length]
            pos += length
        el.end = pos
        if group % 2 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF and el.value:
            creators[(group, tag & 0xFFFF)] = el.value.decode("latin-1").strip(" \0")
        if tag == PIXEL_REPRESENTATION and len(el.value) >= 2:
            (pixel_rep,) = struct.unpack_from(syn.endian + "H", el.value)
        elements.append(el)
    for el in elements:  # after the whole item: Pixel Representation may come later
        el.vr = _resolve_ambiguous(el.vr, el.tag, pixel_rep)
    return elements, pos


def transfer_syntax_flags(uid: str) -> tuple[Syntax, bool]:
    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return Syntax(False, True), False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return Syntax(True, False), False
    # Every other transfer syntax, compressed ones included, is explicit VR LE (PS3.5 A).
    return Syntax(True, True), uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN


def detect_transfer_syntax(data: bytes, pos: int) -> str:
    """The uncompressed transfer syntax a data set starting at ``pos`` is in: explicit VR
    when the bytes after the first tag read as a VR; big endian when its group number
    only makes sense byte-swapped (group 0x0008 reads as 0x0800 little endian)."""
    if pos + 8 > len(data):
        raise DicomSignatureError("no data set after the File Meta Information")
    explicit = data[pos + 4:pos + 6].decode("latin-1", "replace") in LONG_VRS | _SHORT_VRS
    (group_le,) = struct.unpack_from("<H", data, pos)
    (group_be,) = struct.unpack_from(">H", data, pos)
    big = explicit and group_be < group_le and group_be <= 0x0FFF
    if big:
        return EXPLICIT_VR_BIG_ENDIAN
    return EXPLICIT_VR_LITTLE_ENDIAN if explicit else IMPLICIT_VR_LITTLE_ENDIAN


def parse_file(data: bytes) -> Dataset:
    """Preamble and File Meta Information (kept as bytes), then the data set."""
    pos = 132 if data[128:132] == b"DICM" else 0
    ts = ""
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6].decode("latin-1")
        if vr in LONG_VRS:
            (length,) = struct.unpack_from("<L", data, pos + 8)
            hdr = 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            hdr = 8
        if elem == 0x0010:
            ts = data[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0")
        pos += hdr + length
    if not ts:
        # A bare data set, or File Meta Information without a Transfer Syntax UID: read
        # the encoding off the first element, as DCMTK and pydicom do.
        ts = detect_transfer_syntax(data, pos)
    syn, deflated = transfer_syntax_flags(ts)
    body = data[pos:]
    if deflated:
        try:
            body = zlib.decompress(body, -15)
        except zlib.error as exc:
            raise DicomSignatureError(f"cannot inflate the deflated data set ({exc})") from None
    ds = Dataset(syn, ts, body, data[:pos], deflated)
    ds.elements, _ = parse_elements(body, 0, len(body), syn, None)
    return ds


def dataset_bytes(dataset: Any) -> tuple[bytes, str]:
    """A pydicom Dataset as data set bytes and the transfer syntax they are in: its own
    (File Meta Information, else the encoding it was read with). pydicom re-encodes the
    values, which can differ from the stored bytes, so prefer verifying the file itself."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    meta = getattr(dataset, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if ts:
        syn, _ = transfer_syntax_flags(ts)
    else:
        implicit, little = getattr(dataset, "original_encoding", (None, None))
        syn = Syntax(not implicit, little is not False)
        ts = (IMPLICIT_VR_LITTLE_ENDIAN if not syn.explicit else EXPLICIT_VR_BIG_ENDIAN
              if not syn.little else EXPLICIT_VR_LITTLE_ENDIAN)
    if ts == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        ts = EXPLICIT_VR_LITTLE_ENDIAN  # deflate is a stream encoding, not the values'
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = not syn.explicit
    buffer.is_little_endian = syn.little
    write_dataset(buffer, dataset)
    return buffer.getvalue(), ts


def new_element(tag: int, vr: str, value: bytes | str) -> Element:
    raw = value.encode("ascii") if isinstance(value, str) else value
    return Element(tag, vr, raw, little=True)


def text_value(el: Element | None) -> str:
    return el.value.decode("latin-1").strip(" \0") if el is not None else ""


def us_value(el: Element | None) -> int | None:
    if el is None or len(el.value) < 2:
        return None
    return struct.unpack_from("<H" if el.little else ">H", el.value)[0]


def at_list(el: Element | None) -> list[int]:
    if el is None:
        return []
    n = len(el.value) // 4
    pairs = struct.unpack(("<" if el.little else ">") + "HH" * n, el.value[:4 * n])
    return [(pairs[i] << 16) | pairs[i + 1] for i in range(0, len(pairs), 2)]


def find_element(elements: list[Element], tag: int) -> Element | None:
    return next((e for e in elements if e.tag == tag), None)
