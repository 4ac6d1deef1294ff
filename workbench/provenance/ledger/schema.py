"""The ledger's SQLite schema: its tables, indexes and append-only triggers, and how it is
applied in one transaction."""

from __future__ import annotations

import sqlite3

from .entries import SCHEMA_VERSION

SCHEMA = f"""
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


def split_sql(script: str) -> list[str]:
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
