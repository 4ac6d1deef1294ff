"""Refuse a deflated DICOM bomb before pydicom inflates it.

With the Deflated Explicit VR Little Endian transfer syntax the whole dataset after the
file meta is one raw-deflate stream, and pydicom inflates all of it into memory before
reading a single element (``stop_before_pixels`` included). A 780 KB file declaring a
20000x20000 16-bit image becomes 800 MB, then twice that in copies, before the pixel
size check in the reader can run. So the stream is inflated here first, in bounded
chunks that are counted and thrown away, and refused once it outgrows what
:func:`limits.check_decoded_size` would accept for the file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from .limits import check_decoded_size

DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}
_CHUNK = 1 << 20
_OUT_CHUNK = 1 << 24


def check_deflated_dataset(path: Path, limit: int | None = None) -> None:
    """Raise ImageTooLargeError when ``path`` is a deflated DICOM whose dataset inflates
    to more than the size guard allows; anything else (not DICOM, not deflated, a meta
    header we cannot walk) is left to the reader, which reports it properly."""
    try:
        with open(path, "rb") as fh:
            if fh.read(132)[128:132] != b"DICM" or _transfer_syntax(fh) != DEFLATED:
                return
            _count_inflated(path, fh, limit)
    except (OSError, struct.error, zlib.error):
        return  # the reader's own error is the one to show


def _transfer_syntax(fh) -> str | None:
    """Walk the group 0002 elements (always explicit VR little endian) and leave the file
    positioned at the first dataset byte."""
    syntax = None
    while True:
        start = fh.tell()
        tag = fh.read(4)
        if len(tag) < 4:
            return syntax
        group, element = struct.unpack("<HH", tag)
        if group != 0x0002:
            fh.seek(start)
            return syntax
        vr = fh.read(2)
        if vr in _LONG_VRS:
            fh.read(2)
            (length,) = struct.unpack("<I", fh.read(4))
        else:
            (length,) = struct.unpack("<H", fh.read(2))
        value = fh.read(length)
        if element == 0x0010:
            syntax = value.rstrip(b"\0 ").decode("ascii", "replace")


def _count_inflated(path: Path, fh, limit: int | None) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while not inflater.eof:
        data = fh.read(_CHUNK)
        if not data:
            return
        while data:
            total += len(inflater.decompress(data, _OUT_CHUNK))
            data = inflater.unconsumed_tail
            # the same rule as for decoded pixels: over the limit, or a bomb's ratio
            check_decoded_size(path, total, limit, "its Deflated dataset, inflated so far")
