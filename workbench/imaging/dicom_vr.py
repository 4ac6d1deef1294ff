"""DICOM value representations as the byte-level code needs them (PS3.5 6.2): which
values are strings with insignificant trailing padding, and how wide a binary value's
words are when its byte order changes. One table for the reader's exports, the header
fingerprint and the signature MAC."""

from __future__ import annotations

import struct

#: text VRs, padded with a space to even length
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UR", "UT"})
#: every string VR: the text ones and UI (padded with NUL)
STRING_VRS = TEXT_VRS | {"UI"}
#: byte width of one value of the VRs whose byte order follows the transfer syntax
SWAP_WIDTH = {"US": 2, "SS": 2, "OW": 2, "AT": 2, "UL": 4, "SL": 4, "FL": 4, "OL": 4,
              "OF": 4, "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}


def swapped(value: bytes, vr: str, from_little: bool, to_little: bool) -> bytes:
    """``value`` of ``vr`` in the other byte order when the orders differ (words of the
    VR's width); unchanged for byte-wise VRs or a length that is not a whole number of
    words."""
    width = SWAP_WIDTH.get(vr)
    if from_little == to_little or not width or len(value) % width:
        return value
    fmt = {2: "H", 4: "L", 8: "Q"}[width]
    n = len(value) // width
    values = struct.unpack(("<" if from_little else ">") + fmt * n, value)
    return struct.pack(("<" if to_little else ">") + fmt * n, *values)
