"""Canonical JSON: the one byte serialisation that is hashed and signed.

It follows RFC 8785 (JSON Canonicalization Scheme) for the values our records contain:
object keys sorted, no insignificant whitespace, UTF-8, strings escaped as JSON requires
and nothing more. Records hold no floating-point numbers (numbers that are not integers
are written as strings), which keeps the scheme exact without ECMAScript number
formatting; a float is refused rather than serialised ambiguously. Keys are ASCII, so
sorting by code point equals RFC 8785's sorting by UTF-16 code unit.
"""

from __future__ import annotations

import json
from typing import Any


def _check(value: Any, path: str = "$") -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:  # beyond what every JSON reader keeps exactly
            raise ValueError(f"{path}: integer {value} is outside the exact JSON range")
        return
    if isinstance(value, float):
        raise TypeError(f"{path}: floats are not allowed in canonical records (use a string)")
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: object keys must be strings, not {type(k).__name__}")
            _check(v, f"{path}.{k}")
        return
    raise TypeError(f"{path}: {type(value).__name__} cannot be serialised canonically")


_LIMIT = 2**53 - 1


def _valid(value: Any) -> bool:
    """Whether ``_check`` would pass, without building a path for every value: a signed
    record has hundreds of header entries, and the paths cost more than the check. On
    False, ``_check`` runs to name the offending value."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -_LIMIT <= value <= _LIMIT
    if kind is dict:
        return all(type(k) is str for k in value) and all(map(_valid, value.values()))
    if kind is list or kind is tuple:
        return all(map(_valid, value))
    return False  # subclasses and everything else: the full check decides


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of ``value`` (dicts, lists, str, int, bool, None)."""
    if not _valid(value):
        _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def parse_json(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate keys (which would make two readings possible)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    return json.loads(data, object_pairs_hook=no_duplicates, parse_float=_no_float)


def _no_float(text: str) -> Any:
    raise ValueError(f"non-integer number {text} in a canonical record")
