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

import base64
import binascii
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from workbench.provenance import merkle
from workbench.provenance.canonical_json import canonical_json, parse_json

__all__ = [
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "InclusionProof",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerReport",
    "SignedTreeHead",
    "TreeHead",
    "entry_hash",
    "verify_consistency_proof",
    "verify_inclusion_proof",
]

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64  # prev_hash of entry 0
EXPORT_FORMAT = "workbench-ledger-export"

_ENTRY_COLUMNS = (
    "idx, record_id, record, prev_hash, entry_hash, leaf_hash, "
    "sop_instance_uid, pixel_sha256, file_sha256, perceptual_hash, appended_at"
)
_HEAD_COLUMNS = "tree_size, root, timestamp, key_fingerprint, public_key, signature"
# Lookup column -> path of the record field it indexes. verify() recomputes them all.
_LOOKUP_FIELDS: dict[str, tuple[str, str]] = {
    "sop_instance_uid": ("subject", "sop_instance_uid"),
    "pixel_sha256": ("pixels", "sha256"),
    "file_sha256": ("file", "sha256"),
    "perceptual_hash": ("perceptual", "hash"),
}
# Hex digests are compared case-insensitively, so they are stored and queried lower-case.
_LOWERCASE_COLUMNS = frozenset({"pixel_sha256", "file_sha256", "perceptual_hash"})

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,          -- 0-based and dense: a gap is a deleted entry
    record_id TEXT NOT NULL,          -- SHA-256 hex of the record bytes
    record BLOB NOT NULL,             -- canonical JSON bytes, never re-serialised
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,         -- SHA-256(prev_hash || idx (8 bytes BE) || record)
    leaf_hash TEXT NOT NULL,          -- RFC 6962 leaf hash of the record bytes
    sop_instance_uid TEXT,
    pixel_sha256 TEXT,
    file_sha256 TEXT,
    perceptual_hash TEXT,
    appended_at TEXT NOT NULL         -- UTC ISO 8601 with Z; not covered by the chain
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_record_id ON entries(record_id);
CREATE INDEX IF NOT EXISTS entries_sop_instance_uid ON entries(sop_instance_uid);
CREATE INDEX IF NOT EXISTS entries_pixel_sha256 ON entries(pixel_sha256);
CREATE INDEX IF NOT EXISTS entries_file_sha256 ON entries(file_sha256);
CREATE INDEX IF NOT EXISTS entries_perceptual_hash ON entries(perceptual_hash);
CREATE TABLE IF NOT EXISTS tree_heads (
    tree_size INTEGER NOT NULL,
    root TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,         -- raw 32-byte Ed25519 public key, base64
    signature TEXT NOT NULL           -- Ed25519 over canonical JSON of size, root, timestamp
);
-- Guards against accidental edits through SQL (a tool, a bug). They are no defence against
-- a deliberate tamperer, who can drop them; that is what verify() is for.
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_heads_no_update BEFORE UPDATE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_heads_no_delete BEFORE DELETE ON tree_heads
    BEGIN SELECT RAISE(ABORT, 'signed tree heads are append-only'); END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');
-- Number of entries ever appended, bumped in the same transaction as each append: a second
-- witness to the size, so that deleting entries at the end is not silently a shorter chain.
INSERT OR IGNORE INTO meta(key, value) VALUES ('entry_count', '0');
"""


class LedgerError(Exception):
    """Any failure to open, read, write or use the ledger; the message names the file."""


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry_hash(prev_hash: str, index: int, record_bytes: bytes) -> str:
    """SHA-256(prev_hash bytes || index as 8-byte big-endian || record bytes), hex.

    The position is hashed so that an entry cannot be moved to another place in the chain
    even if the chain around it were recomputed to fit.
    """
    return _sha256_hex(bytes.fromhex(prev_hash) + index.to_bytes(8, "big") + record_bytes)


def _field(record: Any, path: tuple[str, str]) -> str | None:
    """record[a][b] when it is a string, else None: records index what they have."""
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def _lookup_values(record: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for column, path in _LOOKUP_FIELDS.items():
        value = _field(record, path)
        if value is not None and column in _LOWERCASE_COLUMNS:
            value = value.lower()
        out[column] = value
    return out


def _parse_phash(text: str) -> int | None:
    """A 64-bit perceptual hash from its 16 hex digits, or None if it is not one."""
    if len(text) != 16:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


# --------------------------------------------------------------------------- data classes


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


@dataclass(frozen=True)
class TreeHead:
    """The Merkle root over the first ``tree_size`` entries, at ``timestamp`` (UTC)."""

    tree_size: int
    root_hex: str
    timestamp: str

    def signing_payload(self) -> bytes:
        """The bytes an Ed25519 tree-head signature covers."""
        return canonical_json(
            {"tree_size": self.tree_size, "root": self.root_hex, "timestamp": self.timestamp})

    def to_json(self) -> dict:
        return {"tree_size": self.tree_size, "root": self.root_hex, "timestamp": self.timestamp}


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head with the Ed25519 signature over :meth:`TreeHead.signing_payload`.

    ``public_key`` is the raw 32-byte key and ``signature`` the 64-byte signature, both
    standard base64. A valid signature only says the holder of that key signed this head;
    whether the key is trusted is the trust store's question (see ``Ledger.verify``).
    """

    tree_size: int
    root_hex: str
    timestamp: str
    key_fingerprint: str
    public_key: str
    signature: str

    @property
    def head(self) -> TreeHead:
        return TreeHead(self.tree_size, self.root_hex, self.timestamp)

    def public_key_bytes(self) -> bytes:
        return base64.b64decode(self.public_key, validate=True)

    def verify_signature(self) -> bool:
        """True when ``signature`` is a valid Ed25519 signature by ``public_key``."""
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key_bytes())
            key.verify(base64.b64decode(self.signature, validate=True),
                       self.head.signing_payload())
        except (InvalidSignature, ValueError, TypeError, binascii.Error):
            return False
        return True

    def to_json(self) -> dict:
        return {
            "tree_size": self.tree_size, "root": self.root_hex, "timestamp": self.timestamp,
            "key_fingerprint": self.key_fingerprint, "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        return cls(int(data["tree_size"]), str(data["root"]), str(data["timestamp"]),
                   str(data["key_fingerprint"]), str(data["public_key"]),
                   str(data["signature"]))


@dataclass(frozen=True)
class InclusionProof:
    """RFC 6962 audit path showing leaf ``index`` is in the tree of ``tree_size`` with ``root``.

    All hashes are lower-case hex, so the proof travels as plain JSON (:meth:`to_json`).
    """

    index: int
    tree_size: int
    leaf_hash: str
    path: tuple[str, ...]
    root: str

    def to_json(self) -> dict:
        return {"index": self.index, "tree_size": self.tree_size, "leaf_hash": self.leaf_hash,
                "path": list(self.path), "root": self.root}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> InclusionProof:
        """Read a proof from its JSON form (a dict, or JSON text). Raises ValueError."""
        if isinstance(data, str | bytes):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise ValueError("an inclusion proof must be a JSON object")
        try:
            index, size = data["index"], data["tree_size"]
            leaf, path, root = data["leaf_hash"], data["path"], data["root"]
        except KeyError as exc:
            raise ValueError(f"inclusion proof lacks {exc.args[0]!r}") from None
        if not (isinstance(index, int) and isinstance(size, int)) or isinstance(index, bool):
            raise ValueError("inclusion proof index and tree_size must be integers")
        if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
            raise ValueError("inclusion proof path must be a list of hex strings")
        if not (isinstance(leaf, str) and isinstance(root, str)):
            raise ValueError("inclusion proof leaf_hash and root must be hex strings")
        return cls(index, size, leaf.lower(), tuple(p.lower() for p in path), root.lower())


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


# ------------------------------------------------------------------- offline verification


def _canonical_record_bytes(record: Mapping[str, Any] | bytes | bytearray | str) -> bytes:
    """Canonical bytes of a record given as a dict or as JSON text (re-canonicalised).

    JSON text is parsed and re-serialised, so a pretty-printed sidecar file proves the same
    record as its canonical form; any change of content changes the bytes.
    """
    if isinstance(record, bytes | bytearray | str):
        record = parse_json(bytes(record) if not isinstance(record, str) else record)
    return canonical_json(record)


def verify_inclusion_proof(
    record: Mapping[str, Any] | bytes | str,
    proof: InclusionProof | Mapping[str, Any],
    tree_head: TreeHead | SignedTreeHead | Mapping[str, Any] | None = None,
) -> bool:
    """Offline check that ``record`` is the entry the proof is about and is in its tree.

    Needs no ledger: the leaf is recomputed from the record's canonical bytes and climbed to
    the proof's root with the RFC 9162 algorithm. Pass the ``tree_head`` you trust (one
    whose signature you checked, e.g. from :meth:`Ledger.signed_tree_heads`) to also require
    the proof to be for exactly that head; without it the proof's own root is taken on
    faith. Malformed records or proofs give False, never an exception.
    """
    try:
        if not isinstance(proof, InclusionProof):
            proof = InclusionProof.from_json(proof)
        leaf = merkle.leaf_hash(_canonical_record_bytes(record))
        if leaf.hex() != proof.leaf_hash:
            return False
        if tree_head is not None:
            size, root = _head_size_and_root(tree_head)
            if size != proof.tree_size or root != proof.root:
                return False
        path = [bytes.fromhex(p) for p in proof.path]
        return merkle.verify_inclusion(leaf, proof.index, proof.tree_size, path,
                                       bytes.fromhex(proof.root))
    except (ValueError, TypeError, KeyError):
        return False


def _head_size_and_root(head: TreeHead | SignedTreeHead | Mapping[str, Any]) -> tuple[int, str]:
    """(tree_size, lower-case root hex) of a tree head object or its JSON form."""
    if isinstance(head, TreeHead | SignedTreeHead):
        return head.tree_size, head.root_hex.lower()
    root = head.get("root", head.get("root_hex"))
    size = head["tree_size"]
    if not isinstance(root, str) or not isinstance(size, int) or isinstance(size, bool):
        raise ValueError("a tree head needs an integer tree_size and a hex root")
    return size, root.lower()


def verify_consistency_proof(
    first: TreeHead | SignedTreeHead | Mapping[str, Any],
    second: TreeHead | SignedTreeHead | Mapping[str, Any],
    proof: Sequence[str],
) -> bool:
    """Offline RFC 9162 check that the ``second`` head's tree extends the ``first``'s.

    True means the first tree's entries are unchanged, in place, inside the second: nothing
    before the first head was edited, removed or reordered. Heads may be :class:`TreeHead`,
    :class:`SignedTreeHead` or dicts with ``tree_size`` and ``root``. Malformed input gives
    False.
    """
    try:
        m, first_root = _head_size_and_root(first)
        n, second_root = _head_size_and_root(second)
        nodes = [bytes.fromhex(p) for p in proof]
        return merkle.verify_consistency(m, n, bytes.fromhex(first_root),
                                         bytes.fromhex(second_root), nodes)
    except (ValueError, TypeError, KeyError):
        return False


# ------------------------------------------------------------------------------ the ledger


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
                for statement in _split_sql(_SCHEMA):
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

    @staticmethod
    def _row_entry(row: Sequence[Any]) -> LedgerEntry:
        record = row[2] if isinstance(row[2], bytes) else str(row[2]).encode("utf-8")
        return LedgerEntry(index=row[0], record_id=row[1], record_bytes=record,
                           prev_hash=row[3], entry_hash=row[4], leaf_hash=row[5],
                           sop_instance_uid=row[6], pixel_sha256=row[7], file_sha256=row[8],
                           perceptual_hash=row[9], appended_at=row[10])

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
        return data, _sha256_hex(data), _lookup_values(record)

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
                                    appended_at=_utc_now(), **lookup)
                conn.execute(
                    f"INSERT INTO entries ({_ENTRY_COLUMNS}) "
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
            row = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE idx = ?",
                               (index,)).fetchone()
        if row is None:
            raise self._error(f"no entry {index}")
        return self._row_entry(row)

    def entries(self, start: int = 0, batch: int = 500) -> Iterator[LedgerEntry]:
        """All entries from ``start`` in position order, read in batches.

        Batches keep no statement open between yields, so the caller may use the ledger
        (even append) while iterating; entries appended meanwhile are included.
        """
        position = start
        while True:
            with self._transaction() as conn:
                rows = conn.execute(
                    f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE idx >= ? ORDER BY idx "
                    "LIMIT ?", (position, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._row_entry(row)
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
            rows = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE "
                                + " AND ".join(clauses) + " ORDER BY idx", params).fetchall()
        return [self._row_entry(r) for r in rows]

    def find_by_perceptual_hash(self, phash: str,
                                max_distance: int = 10) -> list[tuple[LedgerEntry, int]]:
        """Entries whose 64-bit perceptual hash is within ``max_distance`` bits of ``phash``.

        Sorted by Hamming distance, then position. A linear scan of one indexed column: an
        exact B-tree lookup cannot answer "near", and 10^5 XOR/popcounts take milliseconds.
        """
        target = _parse_phash(phash)
        if target is None:
            raise self._error(f"perceptual hash {phash!r} is not 16 hex digits")
        hits: list[tuple[int, int]] = []
        with self._transaction() as conn:
            for idx, stored in conn.execute(
                    "SELECT idx, perceptual_hash FROM entries WHERE perceptual_hash IS NOT NULL"):
                value = _parse_phash(stored) if isinstance(stored, str) else None
                if value is None:
                    continue
                distance = (value ^ target).bit_count()
                if distance <= max_distance:
                    hits.append((distance, idx))
            hits.sort()
            out = []
            for distance, idx in hits:
                row = conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE idx = ?",
                                   (idx,)).fetchone()
                out.append((self._row_entry(row), distance))
        return out

    # ---------------------------------------------------------------- tree heads and proofs

    def tree_head(self, size: int | None = None) -> TreeHead:
        """The Merkle root over the first ``size`` entries (default: all), timestamped now.

        Computed from the stored leaf hashes in O(size); run :meth:`verify` to also check
        those against the record bytes.
        """
        with self._transaction() as conn:
            available = self._size(conn)
            size = available if size is None else size
            self._check_size(size, available, "tree size")
            leaves = self._leaf_hashes(conn, size)
        return TreeHead(size, merkle.merkle_root(leaves).hex(), _utc_now())

    def sign_tree_head(self, private_key: Ed25519PrivateKey,
                       key_fingerprint: str) -> SignedTreeHead:
        """Sign the current tree head with ``private_key`` and store it in the ledger.

        ``key_fingerprint`` is recorded as given (the key module defines fingerprints);
        the raw public key is stored beside it so that the signature can be checked with no
        key store. Copy signed heads out of the ledger too: one held elsewhere also
        catches a rewrite that deletes the heads stored here.
        """
        if not isinstance(private_key, Ed25519PrivateKey):
            raise self._error("tree heads are signed with an Ed25519 private key, not "
                              f"{type(private_key).__name__}")
        head = self.tree_head()
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        signed = SignedTreeHead(
            tree_size=head.tree_size, root_hex=head.root_hex, timestamp=head.timestamp,
            key_fingerprint=key_fingerprint, public_key=base64.b64encode(public).decode(),
            signature=base64.b64encode(private_key.sign(head.signing_payload())).decode())
        with self._transaction(immediate=True) as conn:
            conn.execute(f"INSERT INTO tree_heads ({_HEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                         (signed.tree_size, signed.root_hex, signed.timestamp,
                          signed.key_fingerprint, signed.public_key, signed.signature))
        return signed

    def signed_tree_heads(self) -> list[SignedTreeHead]:
        """Every stored signed tree head, oldest first."""
        with self._transaction() as conn:
            return self._read_heads(conn)

    def _read_heads(self, conn: sqlite3.Connection) -> list[SignedTreeHead]:
        heads = []
        for n, r in enumerate(conn.execute(
                f"SELECT {_HEAD_COLUMNS} FROM tree_heads ORDER BY rowid")):
            if not isinstance(r[0], int) or any(not isinstance(v, str) for v in r[1:]):
                raise self._error(f"signed tree head #{n + 1} is damaged (wrong column types)")
            heads.append(SignedTreeHead(*r))
        return heads

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that entry ``index`` is in the tree of the first ``tree_size`` entries."""
        with self._transaction() as conn:
            available = self._size(conn)
            size = available if tree_size is None else tree_size
            self._check_size(size, available, "tree size")
            if not 0 <= index < size:
                raise self._error(f"entry {index} is outside a tree of size {size}")
            leaves = self._leaf_hashes(conn, size)
        path = merkle.inclusion_path(index, leaves)
        return InclusionProof(index=index, tree_size=size, leaf_hash=leaves[index].hex(),
                              path=tuple(p.hex() for p in path),
                              root=merkle.merkle_root(leaves).hex())

    def consistency_proof(self, first_size: int, second_size: int) -> list[str]:
        """RFC 6962 proof (hex nodes) that the first ``second_size`` entries extend the first
        ``first_size``; check it with :func:`verify_consistency_proof`."""
        with self._transaction() as conn:
            available = self._size(conn)
            self._check_size(second_size, available, "tree size")
            self._check_size(first_size, second_size, "old tree size")
            leaves = self._leaf_hashes(conn, second_size)
        return [p.hex() for p in merkle.consistency_proof(first_size, leaves)]

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
        trusted = None if trusted_public_keys is None else {bytes(k) for k in trusted_public_keys}
        problem: tuple[int | None, str] | None = None
        leaves: list[bytes] = []
        with self._transaction() as conn:
            count_text = self._meta("entry_count")
            heads_problem: tuple[int | None, str] | None = None
            try:
                heads = self._read_heads(conn)
            except LedgerError:
                heads_problem = (None, "the tree_heads table is damaged (wrong column types)")
                heads = []
            expected_prev = GENESIS_HASH
            for row in conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY idx"):
                entry = self._row_entry(row)
                i = len(leaves)
                leaf = merkle.leaf_hash(entry.record_bytes)
                leaves.append(leaf)  # the root is reported even when an entry is bad
                if problem is None:
                    problem = self._check_entry(conn, i, entry, leaf, expected_prev)
                    expected_prev = entry.entry_hash
        size = len(leaves)
        root_hex = merkle.merkle_root(leaves).hex()

        if problem is None:
            problem = self._check_count(count_text, size)
        if problem is None:
            problem = heads_problem or self._check_heads(heads, leaves, trusted)
        if problem is None:
            return LedgerReport(True, size, None, "", root_hex)
        return LedgerReport(False, size, problem[0], problem[1], root_hex)

    def _check_entry(self, conn: sqlite3.Connection, i: int, entry: LedgerEntry,
                     leaf: bytes, expected_prev: str) -> tuple[int | None, str] | None:
        if entry.index != i:
            # Rows come in idx order, so the first skipped position is the missing one.
            return i, f"entry {i} missing (deleted?)"
        if entry.prev_hash != expected_prev:
            before = "the chain start (zeros)" if i == 0 else f"entry {i - 1}"
            return i, f"entry {i}: prev_hash does not link to {before}"
        actual_id = _sha256_hex(entry.record_bytes)
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
        for column, value in _lookup_values(record).items():
            if getattr(entry, column) != value:
                return i, f"entry {i}: lookup column {column} does not match the record"
        return None

    @staticmethod
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

    @staticmethod
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
        target = Path(path)
        tmp = target.with_name(target.name + ".partial")
        count = 0
        try:
            with self._transaction() as conn, tmp.open("wb") as out:
                heads = self._read_heads(conn)
                out.write(canonical_json({"type": "header", "format": EXPORT_FORMAT,
                                          "schema_version": SCHEMA_VERSION,
                                          "entries": self._size(conn),
                                          "signed_tree_heads": len(heads)}) + b"\n")
                for row in conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY idx"):
                    entry = self._row_entry(row)
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
            raise self._error(f"cannot export to {target}", exc) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return count

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


def _split_sql(script: str) -> list[str]:
    """The schema's statements one by one (sqlite3.executescript would COMMIT on its own).

    Statements end at a ';' that closes a line; trigger bodies keep their inner ';' because
    those are followed by ' END;' on the same line.
    """
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped:
            continue
        current.append(stripped)
        if stripped.endswith(";") and sqlite3.complete_statement("\n".join(current)):
            statements.append("\n".join(current))
            current = []
    return statements
