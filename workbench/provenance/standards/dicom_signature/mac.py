"""The MAC of a DICOM signature: which bytes it covers and how they are encoded.

What the MAC covers, byte for byte (PS3.3 C.12.1.1.3.1, as DCMTK's ``dcmsign``, the
reference implementation, reads it; its ``--verify`` accepts what sign.py writes and
verify.py verifies what ``dcmsign --sign`` writes):

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
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from ....imaging.dicom_vr import STRING_VRS, TEXT_VRS, swapped
from .parser import (
    EXPLICIT_LE,
    LONG_VRS,
    DicomSignatureError,
    Element,
    Syntax,
    tag_name,
)
from .tags import (
    CERTIFICATE_OF_SIGNER,
    CERTIFIED_TIMESTAMP,
    CERTIFIED_TIMESTAMP_TYPE,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    ITEM,
    ITEM_DELIMITER,
    MAC_PARAMETERS_SEQUENCE,
    SEQUENCE_DELIMITER,
    SIGNATURE,
)

# Signature item attributes kept out of the MAC (PS3.3 C.12.1.1.3.1.2): they are written
# after the MAC is known, or (timestamps) added later by a timestamp authority.
_NOT_IN_ITEM_MAC = {CERTIFICATE_OF_SIGNER, SIGNATURE, CERTIFIED_TIMESTAMP_TYPE,
                    CERTIFIED_TIMESTAMP}
# Text VRs (imaging.dicom_vr) are padded with a space to even length, UI and binary VRs
# with NUL. String VRs' trailing padding is not significant (PS3.5 6.2): DCMTK, the
# reference, hashes them without extra trailing padding (and UIDs without any white
# space), so a value stored as "HP_EXAMPLE  " is signed as "HP_EXAMPLE".

# MAC Algorithm defined terms (PS3.3 C.12.1.1.3.1.2) -> hashlib name, DigestInfo prefix
# (RFC 8017 9.2 notes; RIPEMD-160 is OID 1.3.36.3.2.1).
MACS: dict[str, tuple[str, bytes]] = {
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


def padded(value: bytes, vr: str) -> bytes:
    if len(value) % 2 == 0:
        return value
    return value + (b" " if vr in TEXT_VRS else b"\0")


def normalised(value: bytes, vr: str, strip_nul: bool = False) -> bytes:
    """A string value as DCMTK's dcmsign hashes it (its DcmByteString with automatic input
    data correction, the default): trailing padding characters removed (space; NUL for
    a UID, whose white space is removed everywhere), then padded to even length again.
    DCMTK 3.6.7 and 3.6.8 stop there; later versions also strip trailing NULs from text
    values (``strip_nul``), so a NUL-padded text value hashes differently in the two. Other
    VRs are returned unchanged. See docs/dicom-signatures.md."""
    if vr not in STRING_VRS or not value:
        return value
    if vr == "UI":
        value = bytes(b for b in value if b not in b" \t\n\r\v\f")
        return padded(value.rstrip(b"\0"), vr)
    return padded(value.rstrip(b" \0" if strip_nul else b" "), vr)


def has_nul_padded_text(elements: list[Element]) -> bool:
    """Whether a text value ends in NUL somewhere (the one case where DCMTK versions hash
    differently), so that verification needs to try both."""
    for el in elements:
        if el.items is not None:
            if any(has_nul_padded_text(item) for item in el.items):
                return True
        elif el.vr in TEXT_VRS and el.value and el.value.endswith(b"\0"):
            return True
    return False


def tag_bytes(tag: int, syn: Syntax) -> bytes:
    return struct.pack(syn.endian + "HH", tag >> 16, tag & 0xFFFF)


def _contains_un(el: Element) -> bool:
    if el.vr == "UN":
        return True
    return any(_contains_un(sub) for item in el.items or () for sub in item)


def _signable_tag(tag: int) -> bool:
    """PS3.3 C.12.1.1.3.1.1: never in Data Elements Signed nor in the MAC."""
    group, elem = tag >> 16, tag & 0xFFFF
    return not (elem == 0 or tag == 0x00080001 or group < 0x0008 or group == 0xFFFA
                or tag == MAC_PARAMETERS_SEQUENCE or tag == 0xFFFCFFFC
                or tag in (ITEM_DELIMITER, SEQUENCE_DELIMITER))


def signable(el: Element) -> bool:
    return _signable_tag(el.tag) and not _contains_un(el)


def _mac_feed(el: Element, syn: Syntax, h: Any, strip_nul: bool = False) -> None:
    """Feed one element to the MAC in the signature format (see the module docstring)."""
    tag = tag_bytes(el.tag, syn)
    if el.items is not None or el.fragments is not None:
        vr = "SQ" if el.items is not None else "OB"
        h.update(tag + (vr.encode() + b"\0\0" if syn.explicit else b""))
        item_tag, seq_end = tag_bytes(ITEM, syn), tag_bytes(SEQUENCE_DELIMITER, syn)
        if el.items is not None:
            for item in el.items:
                h.update(item_tag)
                # inside items too, group lengths and the like stay out (DCMTK's
                # DcmItem::writeSignatureFormat writes only signable elements)
                for sub in sorted(item, key=lambda e: e.tag):
                    if signable(sub):
                        _mac_feed(sub, syn, h, strip_nul)
        else:
            for fragment in el.fragments or ():
                h.update(item_tag)
                h.update(fragment)
        h.update(seq_end)
        return
    value = normalised(padded(swapped(el.value, el.vr, el.little, syn.little), el.vr), el.vr,
                       strip_nul)
    if not syn.explicit:
        h.update(tag + struct.pack(syn.endian + "L", len(value)))
    elif el.vr in LONG_VRS:
        h.update(tag + el.vr.encode() + b"\0\0" + struct.pack(syn.endian + "L", len(value)))
    else:
        if len(value) > 0xFFFF:
            raise DicomSignatureError(f"{tag_name(el.tag)} is too long for VR {el.vr}")
        h.update(tag + el.vr.encode() + struct.pack(syn.endian + "H", len(value)))
    h.update(value)


def mac_syntax(uid: str) -> Syntax | None:
    """The encoding a MAC Calculation Transfer Syntax UID stands for. Compressed transfer
    syntaxes are Explicit VR Little Endian with encapsulated Pixel Data, which the
    signature format writes the same way whatever the codec, so all of them qualify."""
    from pydicom.uid import UID

    if uid == IMPLICIT_VR_LITTLE_ENDIAN:
        return Syntax(False, True)
    if uid == EXPLICIT_VR_BIG_ENDIAN:
        return Syntax(True, False)
    if uid == EXPLICIT_VR_LITTLE_ENDIAN or UID(uid).is_transfer_syntax:
        return EXPLICIT_LE
    return None


def compute_mac(elements: list[Element], signed_tags: list[int], signature_item:
                 list[Element], mac_name: str, syn: Syntax, strip_nul: bool = False
                 ) -> tuple[bytes, list[str]]:
    """The MAC and the problems that make it unreproducible (unsignable elements);
    ``strip_nul``: hash text values as DCMTK after 3.6.8 does (see :func:`normalised`)."""
    h = hashlib.new(MACS[mac_name][0])
    wanted = set(signed_tags)
    problems = []
    for el in sorted(elements, key=lambda e: e.tag):
        if el.tag not in wanted:
            continue
        if not signable(el):
            problems.append(f"signed attribute {tag_name(el.tag)} now has VR UN (its "
                            "encoding was lost, e.g. by an implicit VR copy)")
            continue
        _mac_feed(el, syn, h, strip_nul)
    for el in sorted(signature_item, key=lambda e: e.tag):
        if el.tag not in _NOT_IN_ITEM_MAC and signable(el):
            _mac_feed(el, syn, h, strip_nul)
    return h.digest(), problems
