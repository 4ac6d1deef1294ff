"""One ledger entry: the record bytes, how each entry chains to the one before, and the
lookup columns recomputed from the record. Shared by the store, the tree heads, the
proofs and the audit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..records.canonical_json import parse_json

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64  # prev_hash of entry 0

ENTRY_COLUMNS = (
    "idx, record_id, record, prev_hash, entry_hash, leaf_hash, "
    "sop_instance_uid, pixel_sha256, file_sha256, perceptual_hash, appended_at"
)
# Lookup column -> path of the record field it indexes. verify() recomputes them all.
_LOOKUP_FIELDS: dict[str, tuple[str, str]] = {
    "sop_instance_uid": ("subject", "sop_instance_uid"),
    "pixel_sha256": ("pixels", "sha256"),
    "file_sha256": ("file", "sha256"),
    "perceptual_hash": ("perceptual", "hash"),
}
# Hex digests are compared case-insensitively, so they are stored and queried lower-case.
_LOWERCASE_COLUMNS = frozenset({"pixel_sha256", "file_sha256", "perceptual_hash"})

class LedgerError(Exception):
    """Any failure to open, read, write or use the ledger; the message names the file."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(prev_hash: str, index: int, record_bytes: bytes) -> str:
    """SHA-256(prev_hash bytes || index as 8-byte big-endian || record bytes), hex.

    The position is hashed so that an entry cannot be moved to another place in the chain
    even if the chain around it were recomputed to fit.
    """
    return sha256_hex(bytes.fromhex(prev_hash) + index.to_bytes(8, "big") + record_bytes)


def _field(record: Any, path: tuple[str, str]) -> str | None:
    """record[a][b] when it is a string, else None: records index what they have."""
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def lookup_values(record: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for column, path in _LOOKUP_FIELDS.items():
        value = _field(record, path)
        if value is not None and column in _LOWERCASE_COLUMNS:
            value = value.lower()
        out[column] = value
    return out


def parse_phash(text: str) -> int | None:
    """A 64-bit perceptual hash from its 16 hex digits, or None if it is not one."""
    if len(text) != 16:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


@dataclass(frozen=True)
class LedgerEntry:
    """One stored entry. ``record_bytes`` are the exact canonical bytes that were hashed."""

    index: int
    record_id: str
    record_bytes: bytes
    prev_hash: str
    entry_hash: str
    leaf_hash: str
    appended_at: str
    sop_instance_uid: str | None = None
    pixel_sha256: str | None = None
    file_sha256: str | None = None
    perceptual_hash: str | None = None

    @property
    def record(self) -> dict:
        """The record parsed from its stored bytes (a fresh dict each time)."""
        return parse_json(self.record_bytes)



def row_entry(row: Sequence[Any]) -> LedgerEntry:
    """A LedgerEntry from a row of ENTRY_COLUMNS."""
    record = row[2] if isinstance(row[2], bytes) else str(row[2]).encode("utf-8")
    return LedgerEntry(index=row[0], record_id=row[1], record_bytes=record,
                       prev_hash=row[3], entry_hash=row[4], leaf_hash=row[5],
                       sop_instance_uid=row[6], pixel_sha256=row[7], file_sha256=row[8],
                       perceptual_hash=row[9], appended_at=row[10])
