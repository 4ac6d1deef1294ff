"""The append-only ledger of signed capture records (SQLite, hash-chained, Merkle tree heads).

Why it is built this way:

* Each entry stores the record's canonical bytes (:func:`canonical_json`) and nothing is
  ever re-serialised, so the bytes that were hashed are the bytes an auditor reads back.
* A hash chain (each entry hash covers the previous one, the entry's position and the record
  bytes) makes any edit, deletion or reordering of stored entries visible to :meth:`verify`.
* A Merkle tree over the same records in RFC 6962 form lets an auditor get a short
  inclusion proof for one record and a consistency proof between two tree heads, and check
  them offline with the module-level functions, without this database. The leaf input is
  the canonical record itself, so whoever holds only the record JSON can recompute its leaf.
* Signed tree heads (Ed25519 over the canonical JSON of size, root and timestamp) are what
  make a wholesale rewrite visible: whoever can write the file can recompute a consistent
  chain, but not re-sign a head with a key they do not hold. Heads copied out of the
  ledger (to an auditor, a ticket, a second machine) also catch rewrites that delete the
  heads themselves; consistency proofs link such an outside head to the current ledger.
* SQLite in WAL mode with ``synchronous=FULL``: a committed append survives a process kill
  and a power loss; ``BEGIN IMMEDIATE`` serialises appends from several processes, so
  positions stay dense and the chain stays linear. Appends are O(1): they touch the last
  entry only and never recompute the tree; roots are computed when a head or proof is asked.

What the chain does not cover: ``appended_at`` (a local clock reading kept for people,
not evidence) and the lookup columns, which :meth:`Ledger.verify` recomputes from the
record bytes instead.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..records.canonical_json import canonical_json
from . import merkle
from .audit import LedgerReport, audit_ledger, export_ledger
from .entries import (
    ENTRY_COLUMNS,
    GENESIS_HASH,
    SCHEMA_VERSION,
    LedgerEntry,
    LedgerError,
    entry_hash,
    lookup_values,
    parse_phash,
    row_entry,
    sha256_hex,
    utc_now,
)
from .proofs import InclusionProof, make_consistency_proof, make_inclusion_proof
from .schema import SCHEMA, split_sql
from .tree_heads import SignedTreeHead, TreeHead, current_head, read_heads, sign_current_head

# The ledger's one object; LedgerError (every method raises it) is its to hand out too.
__all__ = ["Ledger", "LedgerError"]

class Ledger:
    """An append-only, hash-chained, Merkle-tree ledger of capture records in one SQLite file.

    One connection per object. An object may be handed between threads but is used by one
    at a time (a lock enforces it); several processes may append to the same file at once.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            from workbench.home import ledger_file

            path = ledger_file()
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # Records name studies: the file (and its -wal/-shm, which SQLite creates
                # with the database's mode) is private to the user. An empty file is an
                # empty SQLite database.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise self._error("cannot create the ledger file", exc) from exc
        try:
            # isolation_level=None: this class issues BEGIN/COMMIT itself, so it can ask for
            # BEGIN IMMEDIATE. The generous timeout is SQLite's busy wait while another
            # process holds the write lock.
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None,
                                         check_same_thread=False)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise self._error(f"cannot use write-ahead logging (journal mode {mode})")
            # FULL: every commit is fsynced before append() returns (durable across power
            # loss, not only process death). It costs an fsync per transaction, on purpose.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._open_schema()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise self._error("cannot open the ledger", exc) from exc
        except LedgerError:
            self._close_quietly()
            raise

    # ---------------------------------------------------------------- plumbing
    # (The ledger's own modules, tree_heads, proofs and audit, use these too: they are
    # this object's parts, split by subject, not outside callers.)

    def _error(self, what: str, exc: BaseException | None = None) -> LedgerError:
        return LedgerError(f"ledger {self.path}: {what}" + (f" ({exc})" if exc else ""))

    def _close_quietly(self) -> None:
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _open_schema(self) -> None:
        conn = self._connection()
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise self._error("the file is an SQLite database but not a workbench ledger")
        if "entries" not in tables:
            with self._transaction(immediate=True) as c:
                for statement in split_sql(SCHEMA):
                    c.execute(statement)
        version = self._meta("schema_version")
        if version != str(SCHEMA_VERSION):
            raise self._error(f"schema version {version!r} is not the supported "
                              f"{SCHEMA_VERSION} (a newer workbench made it?)")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._error("the ledger is closed")
        return self._conn

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; IMMEDIATE takes the write lock up front.

        Taking the write lock at BEGIN (not at the first write) is what makes concurrent
        appenders wait their turn instead of both reading the same chain tail and one
        failing at COMMIT. A deferred (read) transaction gives a consistent WAL snapshot.
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            except sqlite3.Error as exc:
                raise self._error("cannot start a transaction", exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # Fails harmlessly when nothing is left to roll back (COMMIT failed late).
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error("database error", exc) from exc
                raise

    def _meta(self, key: str) -> str | None:
        row = self._connection().execute("SELECT value FROM meta WHERE key = ?",
                                         (key,)).fetchone()
        return None if row is None else row[0]

    def _size(self, conn: sqlite3.Connection) -> int:
        # MAX(idx) is an O(1) rowid lookup; COUNT(*) would scan. A gap (deleted row) makes
        # the two differ, which verify() reports and the leaf reader below refuses.
        return conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries").fetchone()[0]

    def _leaf_hashes(self, conn: sqlite3.Connection, size: int) -> list[bytes]:
        """Stored leaf hashes of entries 0..size-1, refusing a gap."""
        leaves: list[bytes] = []
        for idx, leaf in conn.execute(
                "SELECT idx, leaf_hash FROM entries WHERE idx < ? ORDER BY idx", (size,)):
            if idx != len(leaves):
                raise self._error(f"entry {len(leaves)} missing (deleted?); run verify")
            try:
                leaves.append(bytes.fromhex(leaf))
            except (ValueError, TypeError) as exc:
                raise self._error(f"entry {idx}: stored leaf_hash is not hex; run verify",
                                  exc) from exc
        if len(leaves) != size:
            raise self._error(f"entry {len(leaves)} missing (deleted?); run verify")
        return leaves

    def _check_size(self, size: int, available: int, what: str) -> None:
        if not 0 <= size <= available:
            raise self._error(f"{what} {size} is outside 0..{available} (the ledger size)")

    # ---------------------------------------------------------------- appending

    def _prepare(self, record: Mapping[str, Any]) -> tuple[bytes, str, dict[str, str | None]]:
        if not isinstance(record, Mapping):
            raise self._error(f"a record must be a JSON object, not {type(record).__name__}")
        try:
            data = canonical_json(record)
        except (TypeError, ValueError) as exc:
            raise self._error("the record cannot be serialised canonically", exc) from exc
        return data, sha256_hex(data), lookup_values(record)

    def append(self, record: Mapping[str, Any]) -> LedgerEntry:
        """Append one record (committed and fsynced on return). O(1) in the ledger size.

        Raises :class:`LedgerError` if a record with the same bytes (record id) is already
        in the ledger: a capture is recorded once.
        """
        return self.append_many([record])[0]

    def append_many(self, records: Iterable[Mapping[str, Any]]) -> list[LedgerEntry]:
        """Append several records in one transaction: all of them or none.

        One commit (one fsync) for the batch, so bulk imports are far faster than a loop of
        :meth:`append`; the chain and the tree are the same either way.
        """
        prepared = [self._prepare(r) for r in records]  # serialise outside the write lock
        seen: set[str] = set()
        for _, record_id, _ in prepared:
            if record_id in seen:
                raise self._error(f"record {record_id} appears twice in one batch")
            seen.add(record_id)
        if not prepared:
            return []
        out: list[LedgerEntry] = []
        with self._transaction(immediate=True) as conn:
            last = conn.execute(
                "SELECT idx, entry_hash FROM entries ORDER BY idx DESC LIMIT 1").fetchone()
            index, prev = (0, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
            count = self._meta("entry_count")
            if count != str(index):
                # Entries vanished from the end (or the counter was edited): refuse to grow a
                # chain whose tail is in doubt, rather than paper over the deletion.
                raise self._error(f"the ledger is inconsistent ({count} entries appended, "
                                  f"next position {index}); run verify")
            for data, record_id, lookup in prepared:
                dup = conn.execute("SELECT idx FROM entries WHERE record_id = ?",
                                   (record_id,)).fetchone()
                if dup is not None:
                    raise self._error(f"record {record_id} is already in the ledger "
                                      f"(entry {dup[0]})")
                try:
                    ehash = entry_hash(prev, index, data)
                except ValueError as exc:  # the stored tail hash is not hex: tampered
                    raise self._error(f"entry {index - 1}: stored entry_hash is not hex; "
                                      "run verify", exc) from exc
                entry = LedgerEntry(index=index, record_id=record_id, record_bytes=data,
                                    prev_hash=prev, entry_hash=ehash,
                                    leaf_hash=merkle.leaf_hash(data).hex(),
                                    appended_at=utc_now(), **lookup)
                conn.execute(
                    f"INSERT INTO entries ({ENTRY_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry.index, entry.record_id, entry.record_bytes, entry.prev_hash,
                     entry.entry_hash, entry.leaf_hash, entry.sop_instance_uid,
                     entry.pixel_sha256, entry.file_sha256, entry.perceptual_hash,
                     entry.appended_at))
                out.append(entry)
                index, prev = index + 1, ehash
            conn.execute("UPDATE meta SET value = ? WHERE key = 'entry_count'", (str(index),))
        return out

    # ---------------------------------------------------------------- reading

    def __len__(self) -> int:
        with self._lock:
            try:
                return self._size(self._connection())
            except sqlite3.Error as exc:
                raise self._error("cannot read the ledger size", exc) from exc

    def entry(self, index: int) -> LedgerEntry:
        """The entry at position ``index`` (0-based)."""
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx = ?",
                               (index,)).fetchone()
        if row is None:
            raise self._error(f"no entry {index}")
        return row_entry(row)

    def entries(self, start: int = 0, batch: int = 500) -> Iterator[LedgerEntry]:
        """All entries from ``start`` in position order, read in batches.

        Batches keep no statement open between yields, so the caller may use the ledger
        (even append) while iterating; entries appended meanwhile are included.
        """
        position = start
        while True:
            with self._transaction() as conn:
                rows = conn.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx >= ? ORDER BY idx "
                    "LIMIT ?", (position, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield row_entry(row)
            position = rows[-1][0] + 1

    def find(self, *, sop_instance_uid: str | None = None, pixel_sha256: str | None = None,
             file_sha256: str | None = None, record_id: str | None = None) -> list[LedgerEntry]:
        """Entries matching every given field (exact match; hex digests case-insensitive)."""
        wanted = {"sop_instance_uid": sop_instance_uid, "pixel_sha256": pixel_sha256,
                  "file_sha256": file_sha256, "record_id": record_id}
        clauses, params = [], []
        for column, value in wanted.items():
            if value is None:
                continue
            clauses.append(f"{column} = ?")
            params.append(value if column == "sop_instance_uid" else value.lower())
        if not clauses:
            raise self._error("find() needs at least one field to look for")
        with self._transaction() as conn:
            rows = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE "
                                + " AND ".join(clauses) + " ORDER BY idx", params).fetchall()
        return [row_entry(r) for r in rows]

    def find_by_perceptual_hash(self, phash: str,
                                max_distance: int = 10) -> list[tuple[LedgerEntry, int]]:
        """Entries whose 64-bit perceptual hash is within ``max_distance`` bits of ``phash``.

        Sorted by Hamming distance, then position. A linear scan of one indexed column: an
        exact B-tree lookup cannot answer "near", and 10^5 XOR/popcounts take milliseconds.
        """
        target = parse_phash(phash)
        if target is None:
            raise self._error(f"perceptual hash {phash!r} is not 16 hex digits")
        hits: list[tuple[int, int]] = []
        with self._transaction() as conn:
            for idx, stored in conn.execute(
                    "SELECT idx, perceptual_hash FROM entries WHERE perceptual_hash IS NOT NULL"):
                value = parse_phash(stored) if isinstance(stored, str) else None
                if value is None:
                    continue
                distance = (value ^ target).bit_count()
                if distance <= max_distance:
                    hits.append((distance, idx))
            hits.sort()
            out = []
            for distance, idx in hits:
                row = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE idx = ?",
                                   (idx,)).fetchone()
                out.append((row_entry(row), distance))
        return out

    # ---------------------------------------------------------------- tree heads and proofs

    def tree_head(self, size: int | None = None) -> TreeHead:
        """The Merkle root over the first ``size`` entries (default: all), timestamped now.

        Computed from the stored leaf hashes in O(size); run :meth:`verify` to also check
        those against the record bytes.
        """
        return current_head(self, size)

    def sign_tree_head(self, private_key: Ed25519PrivateKey,
                       key_fingerprint: str) -> SignedTreeHead:
        """Sign the current tree head with ``private_key`` and store it in the ledger.

        ``key_fingerprint`` is recorded as given (the key module defines fingerprints);
        the raw public key is stored beside it so that the signature can be checked with no
        key store. Copy signed heads out of the ledger too: one held elsewhere also
        catches a rewrite that deletes the heads stored here.
        """
        return sign_current_head(self, private_key, key_fingerprint)

    def signed_tree_heads(self) -> list[SignedTreeHead]:
        """Every stored signed tree head, oldest first."""
        with self._transaction() as conn:
            return read_heads(self, conn)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of the first ``tree_size`` entries."""
        return make_inclusion_proof(self, index, tree_size)

    def consistency_proof(self, first_size: int, second_size: int) -> list[str]:
        """RFC 6962 proof (hex nodes) that the first ``second_size`` entries extend the first
        ``first_size``; check it with :func:`verify_consistency_proof`."""
        return make_consistency_proof(self, first_size, second_size)

    # ---------------------------------------------------------------- audit

    def verify(self, trusted_public_keys: Collection[bytes] | None = None) -> LedgerReport:
        """Re-check everything from the stored record bytes; stop at the first problem.

        For each entry in position order: no gap in positions; prev_hash links to the entry
        before; the record bytes hash to the stored record id (else: edited, or moved here
        from another entry); entry_hash and leaf_hash recompute; the record is canonical
        JSON; the lookup columns match the record. Then the appended-entries counter, and
        every stored signed tree head: valid signature by its stored key, signed by one of
        ``trusted_public_keys`` (raw 32-byte Ed25519 keys) when given, and a root equal to
        the root recomputed from the first tree_size records. Without trusted keys a
        tamperer who rewrote everything could re-sign with a key of their own.
        """
        return audit_ledger(self, trusted_public_keys)

    # ---------------------------------------------------------------- export, lifetime

    def export(self, path: Path | str) -> int:
        """Write the ledger as JSON Lines for auditors; returns the number of entries.

        Line 1 is a header; then one ``"type": "entry"`` object per entry (index, record
        parsed, record_id, prev_hash, entry_hash, leaf_hash, appended_at), then one
        ``"type": "signed_tree_head"`` object per head, all from one consistent snapshot.
        Each record's canonical bytes are ``canonical_json(line["record"])``, so an auditor
        can recompute every hash. A record whose bytes no longer parse is exported as
        ``record: null`` plus ``record_base64``, so a damaged ledger can still be examined.
        The file is written beside its destination and renamed into place.
        """
        return export_ledger(self, path)

    def close(self) -> None:
        """Close the connection; the object is unusable afterwards. Safe to call twice."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"Ledger({str(self.path)!r}, {state})"
