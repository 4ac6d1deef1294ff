"""The parts of a ``multipart/related`` body (RFC 2387), as WADO-RS sends instances.

dicomweb-client decodes each part into a pydicom Dataset, which a verifier cannot use: a
data set written back by pydicom is not the bytes the archive holds. This keeps them."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


class MultipartError(ValueError):
    pass


def boundary_of(content_type: str) -> str:
    m = _BOUNDARY.search(content_type or "")
    if m is None:
        raise MultipartError(f"not a multipart response (Content-Type {content_type!r})")
    return m.group(1).strip()


def split_parts(body: bytes, content_type: str) -> list[bytes]:
    """The body of each part, without its headers, in order."""
    delimiter = b"--" + boundary_of(content_type).encode("ascii")
    parts: list[bytes] = []
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("multipart body without its boundary")
    while True:
        start += len(delimiter)
        if body[start:start + 2] == b"--":  # the close delimiter
            return parts
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("multipart body cut short (no closing boundary)")
        part = body[start:end]
        headers_end = part.find(b"\r\n\r\n")
        if headers_end < 0:
            raise MultipartError("multipart part without a header block")
        parts.append(part[headers_end + 4:])
        start = end + 2
