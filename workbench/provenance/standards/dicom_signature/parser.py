"""DICOM Digital Signatures (PS3.15 Annex C, PS3.3 C.12.1.1.3), interoperable with DCMTK.

A DICOM signature lives *inside* the file: a Digital Signatures Sequence (FFFA,FFFA) item
holds the signer's X.509 certificate and an RSA signature of a MAC (a hash), and a MAC
Parameters Sequence (4FFE,0001) item, linked by the MAC ID Number, lists the attributes
the MAC covers (Data Elements Signed) and how they were encoded for it. Because the MAC
is computed over a canonical re-encoding (Explicit VR Little Endian), the signature
survives a change of transfer syntax (implicit VR, big endian) but not a change of any
signed value, and not a lossy or lossless re-compression of the pixel data.

What the MAC covers, byte for byte (PS3.3 C.12.1.1.3.1, as DCMTK's ``dcmsign``, the
reference implementation, reads it; its ``--verify`` accepts what this module writes and
this module verifies what ``dcmsign --sign`` writes):

1. The data elements listed in Data Elements Signed, in tag order, each encoded in the MAC
   Calculation Transfer Syntax: tag, VR, value length and value, odd values padded.
   Never eligible: group lengths (gggg,0000), Length to End (0008,0001), groups below
   0008 (the File Meta Information), the two signature sequences, Data Set Trailing
   Padding (FFFC,FFFC) and elements whose VR is UN (their encoding cannot be recovered
   after a change of transfer syntax), including sequences holding a UN element.
2. Sequences are encoded without their value length (it depends on defined/undefined
   length encoding): tag, VR and reserved bytes; each item as its tag (FFFE,E000) without
   item length and without an Item Delimitation Item; after the last item, the Sequence
   Delimitation Item tag (FFFE,E0DD) without its length. Encapsulated (compressed)
   Pixel Data is encoded the same way: tag, ``OB``, then every fragment (the Basic Offset
   Table included) as item tag and bytes without item length, then (FFFE,E0DD).
3. Then the attributes of the Digital Signatures Sequence item itself other than
   Certificate of Signer, Signature, Certified Timestamp Type and Certified Timestamp:
   MAC ID Number, Digital Signature UID, Digital Signature DateTime, Certificate Type and
   the Digital Signature Purpose Code Sequence when present. So the signing time and the
   purpose cannot be changed without breaking the signature.

The Signature is RSASSA-PKCS1-v1_5 of that MAC (the MAC's DigestInfo is what is signed).

Signing writes a new file and never touches the source: the new elements are spliced
into a byte-exact copy of the source, so every other byte (values, padding, private
tags, the File Meta Information) is what the source held. Verification parses the file
itself (not through pydicom's value conversion) so the MAC sees the stored bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .certificates import SignerIdentity, trust_anchors, verify_chain

# --- constants -------------------------------------------------------------------------

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
CERTIFICATE_TYPE = "X509_1993_SIG"
PROFILES = ("creator", "base")

DIGITAL_SIGNATURES_SEQUENCE = 0xFFFAFFFA
MAC_PARAMETERS_SEQUENCE = 0x4FFE0001
MAC_ID_NUMBER = 0x04000005
MAC_CALCULATION_TRANSFER_SYNTAX_UID = 0x04000010
MAC_ALGORITHM = 0x04000015
DATA_ELEMENTS_SIGNED = 0x04000020
DIGITAL_SIGNATURE_UID = 0x04000100
DIGITAL_SIGNATURE_DATETIME = 0x04000105
CERTIFICATE_TYPE_TAG = 0x04000110
CERTIFICATE_OF_SIGNER = 0x04000115
SIGNATURE = 0x04000120
CERTIFIED_TIMESTAMP_TYPE = 0x04000305
CERTIFIED_TIMESTAMP = 0x04000310
PURPOSE_CODE_SEQUENCE = 0x04000401
ORIGINAL_ATTRIBUTES_SEQUENCE = 0x04000561
CODE_VALUE, CODING_SCHEME_DESIGNATOR, CODE_MEANING = 0x00080100, 0x00080102, 0x00080104
PIXEL_DATA = 0x7FE00010
PIXEL_REPRESENTATION = 0x00280103
ITEM, ITEM_DELIMITER, SEQUENCE_DELIMITER = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF

# Signature item attributes kept out of the MAC (PS3.3 C.12.1.1.3.1.2): they are written
# after the MAC is known, or (timestamps) added later by a timestamp authority.
_NOT_IN_ITEM_MAC = {CERTIFICATE_OF_SIGNER, SIGNATURE, CERTIFIED_TIMESTAMP_TYPE,
                    CERTIFIED_TIMESTAMP}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Explicit VR: these VRs have 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = _words("OB OD OF OL OV OW SQ SV UC UN UR UT UV")
_SHORT_VRS = _words("AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US")
# Byte width of one value for the VRs whose byte order depends on the transfer syntax.
_SWAP_WIDTH = {"US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4,
               "OF": 4, "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}
# Text VRs are padded with a space to even length, UI with NUL, binary with NUL.
_TEXT_VRS = _words("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UR UT")
_LUT_DESCRIPTORS = {0x00281101, 0x00281102, 0x00281103, 0x00283002, 0x00189219}

# MAC Algorithm defined terms (PS3.3 C.12.1.1.3.1.2) -> hashlib name, DigestInfo prefix
# (RFC 8017 9.2 notes; RIPEMD-160 is OID 1.3.36.3.2.1).
_MACS: dict[str, tuple[str, bytes]] = {
    "RIPEMD160": ("ripemd160", bytes.fromhex("3021300906052b2403020105000414")),
    "MD5": ("md5", bytes.fromhex("3020300c06082a864886f70d020505000410")),
    "SHA1": ("sha1", bytes.fromhex("3021300906052b0e03021a05000414")),
    "SHA256": ("sha256", bytes.fromhex("3031300d060960864801650304020105000420")),
    "SHA384": ("sha384", bytes.fromhex("3041300d060960864801650304020205000430")),
    "SHA512": ("sha512", bytes.fromhex("3051300d060960864801650304020305000440")),
}
# New signatures only with SHA-2: MD5 and SHA-1 are broken for signatures and RIPEMD-160
# is missing from many OpenSSL 3 builds (it needs the legacy provider).
SIGNING_MACS = ("SHA256", "SHA384", "SHA512")

# Digital Signature Purpose codes (CID 7007, ASTM E1762), written as dcmsign writes them.
PURPOSES = {
    1: "Author's Signature", 2: "Coauthor's Signature", 3: "Co-participant's Signature",
    4: "Transcriptionist/Recorder Signature", 5: "Verification Signature",
    6: "Validation Signature", 7: "Consent Signature", 8: "Signature Witness Signature",
    9: "Event Witness Signature", 10: "Identity Witness Signature",
    11: "Consent Witness Signature", 12: "Interpreter Signature", 13: "Review Signature",
    14: "Source Signature", 15: "Addendum Signature", 16: "Modification Signature",
    17: "Administrative (Error/Edit) Signature", 18: "Timestamp Signature",
}
PURPOSE_SCHEME = "ASTM-sigpurpose"

# Creator RSA profile (PS3.15 C.2): always signed ...
CREATOR_REQUIRED = (0x00080016, 0x00080018, 0x0020000D, 0x0020000E)
# ... and signed whenever present: SOP creation date/time and the attributes of the
# General Equipment, General Image, Image Pixel, SR Document General/Content, Waveform and
# Multi-frame Functional Groups modules (the modules of the image, SR and waveform IODs;
# PS3.15 C.2 lists more IOD-specific modules). Used to *classify* a signature: ours
# always sign every eligible attribute, which covers all of them.
CREATOR_IF_PRESENT = frozenset({
    0x00080012, 0x00080013,
    # General Equipment
    0x00080070, 0x00080080, 0x00080081, 0x00081010, 0x00081040, 0x00081041, 0x00081090,
    0x00181000, 0x00181020, 0x00181008, 0x00181009, 0x0018100A, 0x00181002, 0x00181050,
    0x00181200, 0x00181201, 0x00280120,
    # General Image
    0x00200013, 0x00200020, 0x00080023, 0x00080033, 0x00080008, 0x00200012, 0x00080022,
    0x00080032, 0x0008002A, 0x00201002, 0x00204000, 0x00280300, 0x00280301, 0x00280302,
    0x00282110, 0x00282112, 0x00282114, 0x00880200, 0x20500020, 0x00083010, 0x00409096,
    0x00200062, 0x00082218, 0x00082228,
    # Image Pixel
    0x00280002, 0x00280004, 0x00280010, 0x00280011, 0x00280100, 0x00280101, 0x00280102,
    0x00280103, 0x00280006, 0x00280034, 0x00280106, 0x00280107, 0x00281101, 0x00281102,
    0x00281103, 0x00281201, 0x00281202, 0x00281203, 0x00282000, 0x00282002, 0x7FE00010,
    0x7FE00001, 0x7FE00002, 0x00287FE0, 0x00280121,
    # SR Document General / Content
    0x0040A496, 0x0040A491, 0x0040A492, 0x0040A493, 0x0040A073, 0x0040A078, 0x0040A07A,
    0x0040A07C, 0x0040A360, 0x0040A525, 0x0040A370, 0x0040A372, 0x0040A375, 0x0040A385,
    0x0008114A, 0x0040A040, 0x0040A043, 0x0040A050, 0x0040A504, 0x0040A032, 0x0040A171,
    0x0040A730,
    # Waveform, Waveform Annotation
    0x54000100, 0x003A0230, 0x003A0231, 0x003A0240, 0x0040B020,
    # Multi-frame Functional Groups
    0x52009229, 0x52009230, 0x00280008, 0x00220028, 0x00209228, 0x00286010, 0x00209161,
    0x00200242, 0x00209162, 0x00209163,
})


class DicomSignatureError(Exception):
    """A DICOM file that cannot be signed (or parsed); the message says why."""


# --- a byte-level DICOM parser ---------------------------------------------------------
# pydicom converts values on reading (e.g. Specific Character Set, stripped padding),
# and a MAC must see the stored bytes, so the data set is walked here and pydicom is only
# asked for its data dictionary (the VRs of implicit VR data).


@dataclass(frozen=True)
class _Syntax:
    explicit: bool
    little: bool

    @property
    def endian(self) -> str:
        return "<" if self.little else ">"


_EXPLICIT_LE = _Syntax(True, True)


@dataclass
class _Element:
    tag: int
    vr: str
    value: bytes = b""  # stored bytes, in the byte order of ``little``
    little: bool = True
    items: list[list[_Element]] | None = None  # a sequence
    fragments: list[bytes] | None = None  # encapsulated pixel data
    start: int = 0  # offsets in the data set buffer: header start ...
    end: int = 0  # ... just past the element (delimiter included)
    content_start: int = 0  # first item (sequences)
    content_end: int = 0  # end of the last item, before a Sequence Delimitation Item


@dataclass
class _Dataset:
    syntax: _Syntax
    transfer_syntax: str
    buffer: bytes  # the data set (inflated when deflated)
    prefix: bytes  # preamble + File Meta Information, byte for byte
    deflated: bool
    elements: list[_Element] = field(default_factory=list)


def _tag_str(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _tag_name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    try:
        kw = keyword_for_tag(tag)
    except Exception:  # noqa: BLE001 - a name is cosmetic
        kw = ""
    if not kw and (tag >> 16) % 2:
        kw = "private"
    return f"{_tag_str(tag)} {kw}".rstrip()


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


def _read_header(buf: bytes, pos: int, syn: _Syntax) -> tuple[int, int]:
    if pos + 8 > len(buf):
        raise DicomSignatureError(f"data set truncated at byte {pos}")
    group, elem, length = struct.unpack_from(syn.endian + "HHL", buf, pos)
    return (group << 16) | elem, length


def _parse_fragments(buf: bytes, pos: int, syn: _Syntax) -> tuple[list[bytes], int, int]:
    fragments = []
    while True:
        tag, length = _read_header(buf, pos, syn)
        if tag == SEQUENCE_DELIMITER:
            return fragments, pos, pos + 8
        if tag != ITEM or length == UNDEFINED_LENGTH or pos + 8 + length > len(buf):
            raise DicomSignatureError(f"malformed encapsulated Pixel Data at byte {pos}")
        fragments.append(buf[pos + 8:pos + 8 + length])
        pos += 8 + length


def _parse_items(buf: bytes, pos: int, end: int | None, syn: _Syntax,
                 pixel_rep: int | None) -> tuple[list[list[_Element]], int, int]:
    """Items of a sequence: up to ``end`` (defined length) or to the Sequence Delimitation
    Item. Returns (items, end of the last item, position after the sequence)."""
    items: list[list[_Element]] = []
    while True:
        if end is not None and pos >= end:
            return items, pos, pos
        tag, length = _read_header(buf, pos, syn)
        if tag == SEQUENCE_DELIMITER and end is None:
            return items, pos, pos + 8
        if tag != ITEM:
            raise DicomSignatureError(f"expected an item tag at byte {pos}, found "
                                      f"{_tag_str(tag)}")
        pos += 8
        if length == UNDEFINED_LENGTH:
            elements, pos = _parse_elements(buf, pos, len(buf), syn, pixel_rep,
                                            in_undefined_item=True)
        else:
            if pos + length > len(buf):
                raise DicomSignatureError(f"item at byte {pos - 8} runs past the end")
            elements, _ = _parse_elements(buf, pos, pos + length, syn, pixel_rep)
            pos += length
        items.append(elements)


def _parse_elements(buf: bytes, pos: int, end: int, syn: _Syntax, pixel_rep: int | None,
                    *, in_undefined_item: bool = False) -> tuple[list[_Element], int]:
    elements: list[_Element] = []
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
            if vr in _LONG_VRS:
                if pos + 12 > len(buf):
                    raise DicomSignatureError(f"data set truncated at byte {pos}")
                (length,) = struct.unpack_from(syn.endian + "L", buf, pos + 8)
                pos += 12
            elif vr in _SHORT_VRS:
                (length,) = struct.unpack_from(syn.endian + "H", buf, pos + 6)
                pos += 8
            else:
                raise DicomSignatureError(f"unknown VR {vr!r} for {_tag_str(tag)} at byte "
                                          f"{pos}")
        else:
            vr = _dictionary_vr(tag, creators)
            pos += 8
        el = _Element(tag, vr, little=syn.little, start=start)
        if length == UNDEFINED_LENGTH:
            if tag == PIXEL_DATA and vr != "SQ":
                el.vr = "OB"  # encapsulated: always OB (PS3.5 A.4)
                el.content_start = pos
                el.fragments, el.content_end, pos = _parse_fragments(buf, pos, syn)
            else:
                # A sequence, or UN of undefined length whose items are implicit VR LE
                # (PS3.5 6.2.2); the latter is not signable, but must be walked.
                item_syn = syn if vr == "SQ" or not syn.explicit else _Syntax(False, True)
                el.content_start = pos
                el.items, el.content_end, pos = _parse_items(buf, pos, None, item_syn,
                                                             pixel_rep)
        else:
            if pos + length > len(buf):
                raise DicomSignatureError(f"{_tag_str(tag)} at byte {start} runs past the "
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


def _transfer_syntax_flags(uid: str) -> tuple[_Syntax, bool]:
    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return _Syntax(False, True), False
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return _Syntax(True, False), False
    # Every other transfer syntax, compressed ones included, is explicit VR LE (PS3.5 A).
    return _Syntax(True, True), uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN


def _parse_file(data: bytes) -> _Dataset:
    """Preamble and File Meta Information (kept as bytes), then the data set."""
    pos = 132 if data[128:132] == b"DICM" else 0
    ts = ""
    meta_start = pos
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6].decode("latin-1")
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<L", data, pos + 8)
            hdr = 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            hdr = 8
        if elem == 0x0010:
            ts = data[pos + hdr:pos + hdr + length].decode("ascii", "replace").strip(" \0")
        pos += hdr + length
    if not ts:
        if pos == meta_start == 0 and data[128:132] != b"DICM":
            # A bare data set: explicit VR if the bytes after the first tag read as a VR.
            vr = data[4:6].decode("latin-1", "replace")
            ts = (EXPLICIT_VR_LITTLE_ENDIAN if vr in _LONG_VRS | _SHORT_VRS
                  else IMPLICIT_VR_LITTLE_ENDIAN)
        else:
            raise DicomSignatureError("the File Meta Information has no Transfer Syntax UID")
    syn, deflated = _transfer_syntax_flags(ts)
    body = data[pos:]
    if deflated:
        try:
            body = zlib.decompress(body, -15)
        except zlib.error as exc:
            raise DicomSignatureError(f"cannot inflate the deflated data set ({exc})") from None
    ds = _Dataset(syn, ts, body, data[:pos], deflated)
    ds.elements, _ = _parse_elements(body, 0, len(body), syn, None)
    return ds


# --- encoding --------------------------------------------------------------------------


def _swap(value: bytes, vr: str, from_little: bool, to_little: bool) -> bytes:
    width = _SWAP_WIDTH.get(vr)
    if from_little == to_little or not width or len(value) % width:
        return value
    fmt = {2: "H", 4: "L", 8: "Q"}[width]
    n = len(value) // width
    values = struct.unpack(("<" if from_little else ">") + fmt * n, value)
    return struct.pack(("<" if to_little else ">") + fmt * n, *values)


def _padded(value: bytes, vr: str) -> bytes:
    if len(value) % 2 == 0:
        return value
    return value + (b" " if vr in _TEXT_VRS else b"\0")


def _tag_bytes(tag: int, syn: _Syntax) -> bytes:
    return struct.pack(syn.endian + "HH", tag >> 16, tag & 0xFFFF)


def _contains_un(el: _Element) -> bool:
    if el.vr == "UN":
        return True
    return any(_contains_un(sub) for item in el.items or () for sub in item)


def _signable_tag(tag: int) -> bool:
    """PS3.3 C.12.1.1.3.1.1: never in Data Elements Signed nor in the MAC."""
    group, elem = tag >> 16, tag & 0xFFFF
    return not (elem == 0 or tag == 0x00080001 or group < 0x0008 or group == 0xFFFA
                or tag == MAC_PARAMETERS_SEQUENCE or tag == 0xFFFCFFFC
                or tag in (ITEM_DELIMITER, SEQUENCE_DELIMITER))


def _signable(el: _Element) -> bool:
    return _signable_tag(el.tag) and not _contains_un(el)


def _mac_feed(el: _Element, syn: _Syntax, h: Any) -> None:
    """Feed one element to the MAC in the signature format (see the module docstring)."""
    tag = _tag_bytes(el.tag, syn)
    if el.items is not None or el.fragments is not None:
        vr = "SQ" if el.items is not None else "OB"
        h.update(tag + (vr.encode() + b"\0\0" if syn.explicit else b""))
        item_tag, seq_end = _tag_bytes(ITEM, syn), _tag_bytes(SEQUENCE_DELIMITER, syn)
        if el.items is not None:
            for item in el.items:
                h.update(item_tag)
                for sub in sorted(item, key=lambda e: e.tag):
                    _mac_feed(sub, syn, h)
        else:
            for fragment in el.fragments or ():
                h.update(item_tag)
                h.update(fragment)
        h.update(seq_end)
        return
    value = _padded(_swap(el.value, el.vr, el.little, syn.little), el.vr)
    if not syn.explicit:
        h.update(tag + struct.pack(syn.endian + "L", len(value)))
    elif el.vr in _LONG_VRS:
        h.update(tag + el.vr.encode() + b"\0\0" + struct.pack(syn.endian + "L", len(value)))
    else:
        if len(value) > 0xFFFF:
            raise DicomSignatureError(f"{_tag_name(el.tag)} is too long for VR {el.vr}")
        h.update(tag + el.vr.encode() + struct.pack(syn.endian + "H", len(value)))
    h.update(value)


def _encode(el: _Element, syn: _Syntax) -> bytes:
    """Ordinary (defined length) encoding of an element this module built, in ``syn``."""
    tag = _tag_bytes(el.tag, syn)
    if el.items is not None:
        body = b"".join(
            _tag_bytes(ITEM, syn) + struct.pack(syn.endian + "L", len(content)) + content
            for content in (b"".join(_encode(sub, syn) for sub in item) for item in el.items))
        vr = "SQ"
    else:
        body = _padded(_swap(el.value, el.vr, el.little, syn.little), el.vr)
        vr = el.vr
    if not syn.explicit:
        return tag + struct.pack(syn.endian + "L", len(body)) + body
    if vr in _LONG_VRS:
        return tag + vr.encode() + b"\0\0" + struct.pack(syn.endian + "L", len(body)) + body
    return tag + vr.encode() + struct.pack(syn.endian + "H", len(body)) + body


def _new(tag: int, vr: str, value: bytes | str) -> _Element:
    raw = value.encode("ascii") if isinstance(value, str) else value
    return _Element(tag, vr, raw, little=True)


def _mac_syntax(uid: str) -> _Syntax | None:
    """The encoding a MAC Calculation Transfer Syntax UID stands for. Compressed transfer
    syntaxes are Explicit VR Little Endian with encapsulated Pixel Data, which the
    signature format writes the same way whatever the codec, so all of them qualify."""
    from pydicom.uid import UID

    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return _Syntax(False, True)
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return _Syntax(True, False)
    if uid == EXPLICIT_VR_LITTLE_ENDIAN or UID(uid).is_transfer_syntax:
        return _EXPLICIT_LE
    return None


def _compute_mac(elements: list[_Element], signed_tags: list[int], signature_item:
                 list[_Element], mac_name: str, syn: _Syntax) -> tuple[bytes, list[str]]:
    """The MAC and the problems that make it unreproducible (unsignable elements)."""
    h = hashlib.new(_MACS[mac_name][0])
    wanted = set(signed_tags)
    problems = []
    for el in sorted(elements, key=lambda e: e.tag):
        if el.tag not in wanted:
            continue
        if not _signable(el):
            problems.append(f"signed attribute {_tag_name(el.tag)} now has VR UN (its "
                            "encoding was lost, e.g. by an implicit VR copy)")
            continue
        _mac_feed(el, syn, h)
    for el in sorted(signature_item, key=lambda e: e.tag):
        if el.tag not in _NOT_IN_ITEM_MAC and _signable(el):
            _mac_feed(el, syn, h)
    return h.digest(), problems


# --- values ----------------------------------------------------------------------------


def _text(el: _Element | None) -> str:
    return el.value.decode("latin-1").strip(" \0") if el is not None else ""


def _us(el: _Element | None) -> int | None:
    if el is None or len(el.value) < 2:
        return None
    return struct.unpack_from("<H" if el.little else ">H", el.value)[0]


def _at_list(el: _Element | None) -> list[int]:
    if el is None:
        return []
    n = len(el.value) // 4
    pairs = struct.unpack(("<" if el.little else ">") + "HH" * n, el.value[:4 * n])
    return [(pairs[i] << 16) | pairs[i + 1] for i in range(0, len(pairs), 2)]


def _find(elements: list[_Element], tag: int) -> _Element | None:
    return next((e for e in elements if e.tag == tag), None)


def _now_dt() -> tuple[dt.datetime, str]:
    now = dt.datetime.now(dt.UTC)
    # DICOM DT with fraction and offset, as dcmsign writes it.
    return now, now.strftime("%Y%m%d%H%M%S.%f") + "+0000"


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


# --- RSA -------------------------------------------------------------------------------


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
        prefix = _MACS[mac_name][1]
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


# --- signing ---------------------------------------------------------------------------


def _purpose_item(purpose: int) -> _Element:
    meaning = PURPOSES[purpose]
    item = [_new(CODE_VALUE, "SH", str(purpose)),
            _new(CODING_SCHEME_DESIGNATOR, "SH", PURPOSE_SCHEME),
            _new(CODE_MEANING, "LO", meaning)]
    return _Element(PURPOSE_CODE_SEQUENCE, "SQ", items=[item])


def _allocate_mac_id(elements: list[_Element]) -> int:
    used = set()
    for tag in (DIGITAL_SIGNATURES_SEQUENCE, MAC_PARAMETERS_SEQUENCE):
        seq = _find(elements, tag)
        for item in (seq.items or []) if seq is not None else []:
            value = _us(_find(item, MAC_ID_NUMBER))
            if value is not None:
                used.add(value)
    for candidate in range(0x10000):
        if candidate not in used:
            return candidate
    raise DicomSignatureError("all 65536 MAC ID numbers are in use")


def _append_item(ds: _Dataset, tag: int, item: list[_Element]) -> tuple[int, int, bytes]:
    """(start, end, bytes) replacing or inserting the sequence ``tag`` with ``item`` added.
    An existing sequence keeps its items byte for byte (earlier signatures stay valid)."""
    syn = ds.syntax
    content = b"".join(_encode(sub, syn) for sub in item)
    new_item = _tag_bytes(ITEM, syn) + struct.pack(syn.endian + "L", len(content)) + content
    existing = _find(ds.elements, tag)
    if existing is not None and existing.items is not None:
        header = _tag_bytes(tag, syn) + (b"SQ\0\0" if syn.explicit else b"")
        header += struct.pack(syn.endian + "L", UNDEFINED_LENGTH)
        old_items = ds.buffer[existing.content_start:existing.content_end]
        delimiter = _tag_bytes(SEQUENCE_DELIMITER, syn) + b"\0\0\0\0"
        return existing.start, existing.end, header + old_items + new_item + delimiter
    if existing is not None:
        raise DicomSignatureError(f"{_tag_name(tag)} is present but is not a sequence")
    encoded = _encode(_Element(tag, "SQ", items=[item]), syn)
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
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from cryptography.hazmat.primitives.serialization import Encoding
    from pydicom.uid import generate_uid

    src_path, dst_path = Path(src), Path(dst)
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
    ds = _parse_file(data)

    signed = [e for e in sorted(ds.elements, key=lambda e: e.tag) if _signable(e)]
    signed_tags = [e.tag for e in signed]
    if not signed:
        raise DicomSignatureError(f"{src_path}: nothing to sign")
    if profile == "creator":
        missing = [t for t in CREATOR_REQUIRED if t not in signed_tags]
        if missing:
            raise DicomSignatureError(
                "the Creator RSA profile signs " + ", ".join(_tag_name(t) for t in missing)
                + ", which the file lacks (use profile 'base')")
    if len(signed_tags) * 4 > 0xFFFF:
        raise DicomSignatureError("too many attributes for one Data Elements Signed list")

    mac_id = _allocate_mac_id(ds.elements)
    uid = str(generate_uid(prefix=None))  # 2.25.<UUID>: needs no registered root
    item = [_new(MAC_ID_NUMBER, "US", struct.pack("<H", mac_id)),
            _new(DIGITAL_SIGNATURE_UID, "UI", uid),
            _new(DIGITAL_SIGNATURE_DATETIME, "DT", now_text),
            _new(CERTIFICATE_TYPE_TAG, "CS", CERTIFICATE_TYPE),
            _new(CERTIFICATE_OF_SIGNER, "OB", cert.public_bytes(Encoding.DER))]
    if purpose:
        item.append(_purpose_item(purpose))
    # Explicit VR Little Endian, except for encapsulated Pixel Data: then the file's own
    # (compressed) transfer syntax, as dcmsign does. The bytes hashed are the same, but a
    # reader that takes Explicit VR LE literally would have to decompress the pixels to
    # re-encode them (dcmsign refuses: "unable to use the selected transfer syntax").
    encapsulated = any(e.fragments is not None for e in ds.elements)
    mac_ts = ds.transfer_syntax if encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
    mac, problems = _compute_mac(ds.elements, signed_tags, item, mac_algorithm, _EXPLICIT_LE)
    if problems:  # cannot happen: only signable elements were chosen
        raise DicomSignatureError("; ".join(problems))
    algo = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(),
            "SHA512": hashes.SHA512()}[mac_algorithm]
    signature = identity.key.sign(mac, padding.PKCS1v15(), Prehashed(algo))
    item.append(_new(SIGNATURE, "OB", signature))
    item.sort(key=lambda e: e.tag)

    mac_item = [_new(MAC_ID_NUMBER, "US", struct.pack("<H", mac_id)),
                _new(MAC_CALCULATION_TRANSFER_SYNTAX_UID, "UI", mac_ts),
                _new(MAC_ALGORITHM, "CS", mac_algorithm),
                _new(DATA_ELEMENTS_SIGNED, "AT",
                     b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in signed_tags))]

    body = ds.buffer
    edits = sorted([_append_item(ds, MAC_PARAMETERS_SEQUENCE, mac_item),
                    _append_item(ds, DIGITAL_SIGNATURES_SEQUENCE, item)], reverse=True)
    for start, end, replacement in edits:  # from the end, so offsets stay right
        body = body[:start] + replacement + body[end:]
    if ds.deflated:
        packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        body = packer.compress(body) + packer.flush()
    out = ds.prefix + body

    dst_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst_path.with_name(f".{dst_path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(out)
        os.replace(tmp, dst_path)
    finally:
        tmp.unlink(missing_ok=True)

    # Check what was written, with our own verifier: a signature that does not verify
    # must never be handed out.
    check = next((r for r in verify_dicom_signatures(dst_path, anchors=[])
                  if r["uid"] == uid), None)
    if check is None or not check["valid"]:
        dst_path.unlink(missing_ok=True)
        raise DicomSignatureError("the signed copy did not verify: "
                                  + (check["reason"] if check else "signature not found"))
    return {
        "path": str(dst_path), "uid": uid, "datetime": now_text, "mac_id": mac_id,
        "mac_algorithm": mac_algorithm, "mac_transfer_syntax": mac_ts,
        "profile": profile, "purpose": PURPOSES.get(purpose),
        "elements_signed": len(signed_tags), "signer": cert.subject.rfc4514_string(),
        "transfer_syntax": ds.transfer_syntax, "source_sha256": source_sha256,
        "sha256": hashlib.sha256(out).hexdigest(),
    }


# --- verification ----------------------------------------------------------------------


def _classify(elements: list[_Element], signed_tags: list[int], mac_name: str,
              public_key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(public_key, rsa.RSAPublicKey) or mac_name not in _MACS:
        return None
    signed = set(signed_tags)
    present = {e.tag for e in elements if _signable(e)}
    overlays = {t for t in present if 0x6000 <= t >> 16 <= 0x601E and not (t >> 16) % 2}
    if all(t in signed for t in CREATOR_REQUIRED) and all(
            t in signed for t in present & (CREATOR_IF_PRESENT | overlays)):
        return "creator"
    return "base"


def _purpose_text(item: list[_Element]) -> str | None:
    seq = _find(item, PURPOSE_CODE_SEQUENCE)
    if seq is None or not seq.items:
        return None
    code = seq.items[0]
    meaning, value = _text(_find(code, CODE_MEANING)), _text(_find(code, CODE_VALUE))
    return f"{meaning} ({value})" if meaning else value or None


def _verify_one(elements: list[_Element], item: list[_Element], location: str,
                anchors: list[Any]) -> dict[str, Any]:
    from cryptography import x509

    uid = _text(_find(item, DIGITAL_SIGNATURE_UID))
    when = _text(_find(item, DIGITAL_SIGNATURE_DATETIME))
    mac_id = _us(_find(item, MAC_ID_NUMBER))
    result: dict[str, Any] = {
        "uid": uid, "datetime": when, "location": location, "mac_id": mac_id,
        "signer": None, "issuer": None, "profile": None, "purpose": _purpose_text(item),
        "mac_algorithm": None, "mac_transfer_syntax": None, "elements_signed": 0,
        "unsigned_elements": [], "timestamp": "absent", "valid": False, "trusted": False,
        "reason": "",
    }
    label = f"signature {uid or '(no UID)'}"
    if _find(item, CERTIFIED_TIMESTAMP) is not None:
        result["timestamp"] = "present, not verified"

    def fail(why: str) -> dict[str, Any]:
        result["reason"] = f"{label}: {why}"
        return result

    mac_params = _find(elements, MAC_PARAMETERS_SEQUENCE)
    params_items = (mac_params.items or []) if mac_params is not None else []
    params = next((p for p in params_items if _us(_find(p, MAC_ID_NUMBER)) == mac_id), None)
    if mac_id is None or params is None:
        return fail(f"no MAC Parameters item for MAC ID {mac_id}")
    mac_name = _text(_find(params, MAC_ALGORITHM)).upper()
    mac_ts = _text(_find(params, MAC_CALCULATION_TRANSFER_SYNTAX_UID))
    signed_tags = _at_list(_find(params, DATA_ELEMENTS_SIGNED))
    result.update(mac_algorithm=mac_name, mac_transfer_syntax=mac_ts,
                  elements_signed=len(signed_tags))
    signed = set(signed_tags)
    result["unsigned_elements"] = [_tag_name(e.tag) for e in sorted(elements,
                                   key=lambda e: e.tag) if _signable(e) and e.tag not in signed]

    cert_type = _text(_find(item, CERTIFICATE_TYPE_TAG))
    cert_el = _find(item, CERTIFICATE_OF_SIGNER)
    if cert_type != CERTIFICATE_TYPE or cert_el is None:
        return fail(f"certificate type {cert_type or '(none)'} is not {CERTIFICATE_TYPE}")
    try:
        cert = x509.load_der_x509_certificate(_der_exact(cert_el.value))
    except ValueError as exc:
        return fail(f"the Certificate of Signer cannot be read ({exc})")
    result["signer"] = cert.subject.rfc4514_string()
    result["issuer"] = cert.issuer.rfc4514_string()
    if mac_name not in _MACS:
        return fail(f"unknown MAC algorithm {mac_name!r}")
    try:
        hashlib.new(_MACS[mac_name][0])
    except ValueError:
        return fail(f"MAC algorithm {mac_name} is not available in this Python/OpenSSL "
                    "build (RIPEMD-160 needs OpenSSL's legacy provider)")
    syn = _mac_syntax(mac_ts)
    if syn is None:
        return fail(f"unsupported MAC Calculation Transfer Syntax {mac_ts!r}")
    if not signed_tags:
        return fail("Data Elements Signed is empty")
    sig_el = _find(item, SIGNATURE)
    if sig_el is None or not sig_el.value:
        return fail("no Signature")
    public_key = cert.public_key()
    result["profile"] = _classify(elements, signed_tags, mac_name, public_key)

    mac, problems = _compute_mac(elements, signed_tags, item, mac_name, syn)
    present = {e.tag for e in elements}
    absent = [t for t in signed_tags if t not in present]
    ok, why = _check_signature(public_key, sig_el.value, mac, mac_name)
    if not ok:
        detail = []
        if absent:
            detail.append("signed attribute(s) removed: "
                          + ", ".join(_tag_name(t) for t in absent[:5]))
        detail.extend(problems)
        return fail(why + (f" [{'; '.join(detail)}]" if detail else ""))
    # As DCMTK does: the certificate must have been valid when the signature was made.
    signed_at = _parse_dicom_dt(when)
    if signed_at is None:
        return fail(f"Digital Signature DateTime {when!r} is not a DICOM DT")
    if not cert.not_valid_before_utc <= signed_at <= cert.not_valid_after_utc:
        return fail(f"the certificate was not valid at the signature time {when} (valid "
                    f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                    f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)")
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


def _signature_containers(elements: list[_Element], location: str):
    """Every data set or item holding a Digital Signatures Sequence, with its location,
    except inside the Original Attributes Sequence (values before a change, whose
    signatures are historical and cannot verify in place; DCMTK skips them too)."""
    if _find(elements, DIGITAL_SIGNATURES_SEQUENCE) is not None:
        yield elements, location
    for el in elements:
        if el.items is None or el.tag in (DIGITAL_SIGNATURES_SEQUENCE,
                                          MAC_PARAMETERS_SEQUENCE,
                                          ORIGINAL_ATTRIBUTES_SEQUENCE):
            continue
        for i, item in enumerate(el.items):
            yield from _signature_containers(item, f"{location} > {_tag_name(el.tag)}[{i}]")


def _dataset_bytes(dataset: Any) -> tuple[bytes, str]:
    """A pydicom Dataset as data set bytes and the transfer syntax they are in: its own
    (File Meta Information, else the encoding it was read with). pydicom re-encodes the
    values, which can differ from the stored bytes, so prefer verifying the file itself."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    meta = getattr(dataset, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if ts:
        syn, _ = _transfer_syntax_flags(ts)
    else:
        implicit, little = getattr(dataset, "original_encoding", (None, None))
        syn = _Syntax(not implicit, little is not False)
        ts = (IMPLICIT_VR_LITTLE_ENDIAN if not syn.explicit else EXPLICIT_VR_BIG_ENDIAN
              if not syn.little else EXPLICIT_VR_LITTLE_ENDIAN)
    if ts == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        ts = EXPLICIT_VR_LITTLE_ENDIAN  # deflate is a stream encoding, not the values'
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = not syn.explicit
    buffer.is_little_endian = syn.little
    write_dataset(buffer, dataset)
    return buffer.getvalue(), ts


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
        ds = _parse_file(data)
    elif isinstance(path_or_dataset, bytes | bytearray):
        ds = _parse_file(bytes(path_or_dataset))
    else:
        data, ts = _dataset_bytes(path_or_dataset)
        syn, _ = _transfer_syntax_flags(ts)
        ds = _Dataset(syn, ts, data, b"", False)
        ds.elements, _ = _parse_elements(data, 0, len(data), syn, None)
    anchors = trust_anchors() if anchors is None else list(anchors)
    results = []
    for elements, location in _signature_containers(ds.elements, "main data set"):
        sequence = _find(elements, DIGITAL_SIGNATURES_SEQUENCE)
        for item in (sequence.items or []) if sequence is not None else []:
            results.append(_verify_one(elements, item, location, anchors))
    return results
