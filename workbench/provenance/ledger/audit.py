"""The audit of a whole ledger (re-checking every entry, the counter and every signed
tree head from the stored bytes) and its export as JSON Lines for auditors."""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records.canonical_json import canonical_json, parse_json
from . import merkle
from .entries import (
    ENTRY_COLUMNS,
    GENESIS_HASH,
    SCHEMA_VERSION,
    LedgerEntry,
    LedgerError,
    entry_hash,
    lookup_values,
    row_entry,
    sha256_hex,
)
from .tree_heads import SignedTreeHead, read_heads

if TYPE_CHECKING:
    from .store import Ledger

EXPORT_FORMAT = "workbench-ledger-export"


@dataclass(frozen=True)
class LedgerReport:
    """Outcome of :meth:`Ledger.verify`.

    ``first_bad_index`` is the first entry found wrong (None when the problem is not tied to
    one entry, e.g. a bad signature); ``problem`` says what is wrong, '' when ``ok``;
    ``root_hex`` is the Merkle root recomputed from the stored record bytes.
    """

    ok: bool
    size: int
    first_bad_index: int | None
    problem: str
    root_hex: str

    def __str__(self) -> str:
        if self.ok:
            return f"ledger ok: {self.size} entries, root {self.root_hex}"
        return f"ledger NOT ok: {self.problem}"




def audit_ledger(ledger: Ledger,
                 trusted_public_keys: Collection[bytes] | None = None) -> LedgerReport:
    """Re-check everything from the stored record bytes (see ``Ledger.verify``)."""
    trusted = None if trusted_public_keys is None else {bytes(k) for k in trusted_public_keys}
    problem: tuple[int | None, str] | None = None
    leaves: list[bytes] = []
    with ledger._transaction() as conn:
        count_text = ledger._meta("entry_count")
        heads_problem: tuple[int | None, str] | None = None
        try:
            heads = read_heads(ledger, conn)
        except LedgerError:
            heads_problem = (None, "the tree_heads table is damaged (wrong column types)")
            heads = []
        expected_prev = GENESIS_HASH
        for row in conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY idx"):
            entry = row_entry(row)
            i = len(leaves)
            leaf = merkle.leaf_hash(entry.record_bytes)
            leaves.append(leaf)  # the root is reported even when an entry is bad
            if problem is None:
                problem = _check_entry(conn, i, entry, leaf, expected_prev)
                expected_prev = entry.entry_hash
    size = len(leaves)
    root_hex = merkle.merkle_root(leaves).hex()

    if problem is None:
        problem = _check_count(count_text, size)
    if problem is None:
        problem = heads_problem or _check_heads(heads, leaves, trusted)
    if problem is None:
        return LedgerReport(True, size, None, "", root_hex)
    return LedgerReport(False, size, problem[0], problem[1], root_hex)


def _check_entry(conn: sqlite3.Connection, i: int, entry: LedgerEntry,
                 leaf: bytes, expected_prev: str) -> tuple[int | None, str] | None:
    if entry.index != i:
        # Rows come in idx order, so the first skipped position is the missing one.
        return i, f"entry {i} missing (deleted?)"
    if entry.prev_hash != expected_prev:
        before = "the chain start (zeros)" if i == 0 else f"entry {i - 1}"
        return i, f"entry {i}: prev_hash does not link to {before}"
    actual_id = sha256_hex(entry.record_bytes)
    if actual_id != entry.record_id:
        owner = conn.execute("SELECT idx FROM entries WHERE record_id = ?",
                             (actual_id,)).fetchone()
        if owner is not None and owner[0] != i:
            return i, (f"entry {i}: record bytes are those of entry {owner[0]} "
                       "(entries reordered?)")
        return i, f"entry {i}: record bytes do not match its hash chain (edited?)"
    if entry_hash(entry.prev_hash, i, entry.record_bytes) != entry.entry_hash:
        return i, f"entry {i}: stored entry_hash does not match the entry (edited?)"
    if leaf.hex() != entry.leaf_hash:
        return i, f"entry {i}: stored leaf_hash does not match the record (edited?)"
    try:
        record = parse_json(entry.record_bytes)
        canonical = canonical_json(record)
    except (ValueError, TypeError, UnicodeDecodeError):
        return i, f"entry {i}: record is not valid canonical JSON"
    if canonical != entry.record_bytes or not isinstance(record, dict):
        return i, f"entry {i}: record is not a canonical JSON object"
    for column, value in lookup_values(record).items():
        if getattr(entry, column) != value:
            return i, f"entry {i}: lookup column {column} does not match the record"
    return None


def _check_count(count_text: str | None, size: int) -> tuple[int | None, str] | None:
    try:
        count = int(count_text) if count_text is not None else None
    except ValueError:
        count = None
    if count is None:
        return None, "the appended-entries counter in the meta table is missing or damaged"
    if count > size:
        return size, (f"entry {size} missing: {count} entries were appended but only "
                      f"{size} remain (entries at the end deleted?)")
    if count < size:
        return count, (f"entry {count}: not appended through the ledger (only {count} "
                       "appends recorded)")
    return None


def _check_heads(heads: list[SignedTreeHead], leaves: list[bytes],
                 trusted: set[bytes] | None) -> tuple[int | None, str] | None:
    size = len(leaves)
    roots = merkle.roots_at_sizes(leaves, [h.tree_size for h in heads if h.tree_size >= 0])
    for head in heads:
        label = f"signed tree head of size {head.tree_size}"
        if head.tree_size < 0:
            return None, f"{label}: negative size"
        if not head.verify_signature():
            return None, f"{label}: signature does not verify"
        if trusted is not None and head.public_key_bytes() not in trusted:
            return None, (f"{label}: signed by a key that is not trusted "
                          f"({head.key_fingerprint})")
        if head.tree_size > size:
            return size, (f"{label}: the ledger has only {size} entries "
                          "(entries at the end deleted?)")
        if roots[head.tree_size].hex() != head.root_hex.lower():
            return None, f"{label}: root does not match the entries"
    return None


def export_ledger(ledger: Ledger, path: Path | str) -> int:
    """Write the ledger as JSON Lines (see ``Ledger.export``); the number of entries."""
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    count = 0
    try:
        with ledger._transaction() as conn, tmp.open("wb") as out:
            heads = read_heads(ledger, conn)
            out.write(canonical_json({"type": "header", "format": EXPORT_FORMAT,
                                      "schema_version": SCHEMA_VERSION,
                                      "entries": ledger._size(conn),
                                      "signed_tree_heads": len(heads)}) + b"\n")
            for row in conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY idx"):
                entry = row_entry(row)
                line: dict[str, Any] = {
                    "type": "entry", "index": entry.index, "record_id": entry.record_id,
                    "prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash,
                    "leaf_hash": entry.leaf_hash, "appended_at": entry.appended_at}
                try:
                    line["record"] = entry.record
                except (ValueError, UnicodeDecodeError):
                    line["record"] = None
                    line["record_base64"] = base64.b64encode(entry.record_bytes).decode()
                out.write(canonical_json(line) + b"\n")
                count += 1
            for head in heads:
                out.write(canonical_json({"type": "signed_tree_head", **head.to_json()})
                          + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ledger._error(f"cannot export to {target}", exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
