"""The signature profiles (Base and Creator RSA, PS3.15 C.1-C.2) and the purpose codes:
what a new signature must cover and say, and which profile an existing one meets.
"""

from __future__ import annotations

from typing import Any

from .mac import MACS, signable
from .parser import Element, find_element, new_element, text_value
from .tags import (
    CODE_MEANING,
    CODE_VALUE,
    CODING_SCHEME_DESIGNATOR,
    PURPOSE_CODE_SEQUENCE,
)

PROFILES = ("creator", "base")

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


def purpose_item(purpose: int) -> Element:
    meaning = PURPOSES[purpose]
    item = [new_element(CODE_VALUE, "SH", str(purpose)),
            new_element(CODING_SCHEME_DESIGNATOR, "SH", PURPOSE_SCHEME),
            new_element(CODE_MEANING, "LO", meaning)]
    return Element(PURPOSE_CODE_SEQUENCE, "SQ", items=[item])


def purpose_text(item: list[Element]) -> str | None:
    seq = find_element(item, PURPOSE_CODE_SEQUENCE)
    if seq is None or not seq.items:
        return None
    code = seq.items[0]
    meaning = text_value(find_element(code, CODE_MEANING))
    value = text_value(find_element(code, CODE_VALUE))
    return f"{meaning} ({value})" if meaning else value or None


def classify_profile(elements: list[Element], signed_tags: list[int], mac_name: str,
              public_key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(public_key, rsa.RSAPublicKey) or mac_name not in MACS:
        return None
    signed = set(signed_tags)
    present = {e.tag for e in elements if signable(e)}
    overlays = {t for t in present if 0x6000 <= t >> 16 <= 0x601E and not (t >> 16) % 2}
    if all(t in signed for t in CREATOR_REQUIRED) and all(
            t in signed for t in present & (CREATOR_IF_PRESENT | overlays)):
        return "creator"
    return "base"
