"""The provenance ledger: hash chain, Merkle proofs, signed tree heads, tamper detection, crashes.

Tampering is done the way an attacker with write access to the file would do it: plain
``sqlite3`` on the file, dropping the append-only triggers first. Hashes the tests expect are
recomputed here from the formulas in the design, not taken from the ledger.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from workbench.provenance.ledger import merkle
from workbench.provenance.ledger.proofs import (
    InclusionProof,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from workbench.provenance.ledger.store import Ledger, LedgerError
from workbench.provenance.ledger.tree_heads import SignedTreeHead
from workbench.provenance.records.canonical_json import canonical_json

ZERO = "0" * 64
TRIGGERS = ("entries_no_update", "entries_no_delete", "tree_heads_no_update",
            "tree_heads_no_delete")


# ----------------------------------------------------------------------------- helpers

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chain_hash(prev: str, idx: int, blob: bytes) -> str:
    return _sha(bytes.fromhex(prev) + idx.to_bytes(8, "big") + blob)


def _leaf(blob: bytes) -> str:
    return _sha(b"\x00" + blob)


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def make_record(rng: random.Random, signer: Ed25519PrivateKey, *,
                phash: str | None = None) -> dict:
    """A signed capture record with the fields the ledger indexes (random hashes)."""
    body = {
        "format": "workbench-capture/1",
        "subject": {"sop_instance_uid": f"2.25.{rng.getrandbits(96)}", "modality": "CT"},
        "pixels": {"sha256": rng.randbytes(32).hex(), "dtype": "uint16",
                   "shape": [512, 512]},
        "perceptual": {"algorithm": "dhash-64",
                       "hash": phash if phash is not None else f"{rng.getrandbits(64):016x}"},
        "file": {"sha256": rng.randbytes(32).hex(), "size": rng.randint(10_000, 10**7)},
        "captured_at": "2024-05-01T10:00:00Z",
    }
    signature = signer.sign(canonical_json(body))
    return {**body, "signature": {"algorithm": "Ed25519",
                                  "value": base64.b64encode(signature).decode()}}


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1729)


def _fill(path: Path, rng: random.Random, signer: Ed25519PrivateKey, n: int) -> list[dict]:
    records = [make_record(rng, signer) for _ in range(n)]
    with Ledger(path) as ledger:
        for record in records:
            ledger.append(record)
    return records


def tamper(path: Path, *statements: tuple[str, tuple]) -> None:
    """Edit the file directly, as an attacker would (triggers dropped first)."""
    con = sqlite3.connect(path)
    try:
        for trigger in TRIGGERS:
            con.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for sql, params in statements:
            con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def _blob(path: Path, idx: int) -> bytes:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT record FROM entries WHERE idx = ?", (idx,)).fetchone()[0]
    finally:
        con.close()


def rewrite_consistently(path: Path, target: int, mutate: Callable[[dict], None]) -> None:
    """The thorough attacker: edit one record, then recompute every hash after it."""
    con = sqlite3.connect(path)
    try:
        for trigger in TRIGGERS:
            con.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        rows = con.execute("SELECT idx, record FROM entries ORDER BY idx").fetchall()
        prev = ZERO
        for idx, blob in rows:
            record = json.loads(blob)
            if idx == target:
                mutate(record)
                blob = canonical_json(record)
            ehash = _chain_hash(prev, idx, blob)
            con.execute(
                "UPDATE entries SET record = ?, record_id = ?, prev_hash = ?, entry_hash = ?, "
                "leaf_hash = ?, pixel_sha256 = ? WHERE idx = ?",
                (blob, _sha(blob), prev, ehash, _leaf(blob), record["pixels"]["sha256"], idx))
            prev = ehash
        con.commit()
    finally:
        con.close()


def _new_pixels(record: dict) -> None:
    record["pixels"]["sha256"] = "ab" * 32


# ------------------------------------------------------------------- append and lookup

def test_append_stores_canonical_bytes_and_chains(tmp_path: Path, rng, signer) -> None:
    records = [make_record(rng, signer) for _ in range(5)]
    with Ledger(tmp_path / "l.sqlite") as ledger:
        entries = [ledger.append(r) for r in records]
        assert len(ledger) == 5
        prev = ZERO
        for i, (record, entry) in enumerate(zip(records, entries, strict=True)):
            blob = canonical_json(record)
            assert entry.index == i
            assert entry.record_bytes == blob
            assert entry.record_id == _sha(blob)
            assert entry.prev_hash == prev
            assert entry.entry_hash == _chain_hash(prev, i, blob)
            assert entry.leaf_hash == _leaf(blob)
            assert entry.appended_at.endswith("Z") and "T" in entry.appended_at
            assert ledger.entry(i) == entry
            assert entry.record == record
            prev = entry.entry_hash
        assert [e.index for e in ledger.entries()] == [0, 1, 2, 3, 4]
        assert [e.record_id for e in ledger.entries(start=3)] == [e.record_id
                                                                  for e in entries[3:]]
        with pytest.raises(LedgerError, match="no entry 5"):
            ledger.entry(5)
    # What is stored on disk is exactly the canonical bytes.
    assert _blob(tmp_path / "l.sqlite", 2) == canonical_json(records[2])


def test_find_by_each_indexed_field(tmp_path: Path, rng, signer) -> None:
    records = [make_record(rng, signer) for _ in range(6)]
    twin = make_record(rng, signer)
    twin["pixels"]["sha256"] = records[4]["pixels"]["sha256"]  # same pixels, other file
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for r in records + [twin]:
            ledger.append(r)
        r2 = records[2]
        assert [e.index for e in ledger.find(sop_instance_uid=r2["subject"]["sop_instance_uid"])
                ] == [2]
        assert [e.index for e in ledger.find(file_sha256=r2["file"]["sha256"].upper())] == [2]
        assert [e.index for e in ledger.find(record_id=_sha(canonical_json(r2)))] == [2]
        assert [e.index for e in ledger.find(pixel_sha256=records[4]["pixels"]["sha256"])
                ] == [4, 6]
        both = ledger.find(pixel_sha256=records[4]["pixels"]["sha256"],
                           file_sha256=twin["file"]["sha256"])
        assert [e.index for e in both] == [6]
        assert ledger.find(sop_instance_uid="1.2.3.4") == []
        with pytest.raises(LedgerError, match="at least one"):
            ledger.find()


def test_records_without_indexed_fields_are_stored(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        e1 = ledger.append({"note": "photo without DICOM subject"})
        e2 = ledger.append({"subject": "not an object", "pixels": {"sha256": 5}})
        assert (e1.sop_instance_uid, e1.pixel_sha256, e1.perceptual_hash) == (None, None, None)
        assert (e2.sop_instance_uid, e2.pixel_sha256) == (None, None)
        assert ledger.verify().ok


def test_duplicate_record_is_refused(tmp_path: Path, rng, signer) -> None:
    record = make_record(rng, signer)
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        ledger.append(record)
        # Same content, other key order: the same canonical bytes, so the same record.
        reordered = dict(reversed(list(record.items())))
        with pytest.raises(LedgerError, match="already in the ledger") as info:
            ledger.append(reordered)
        assert str(path) in str(info.value)
        # A batch is all-or-nothing: the fresh record before the duplicate is not kept.
        with pytest.raises(LedgerError, match="already in the ledger"):
            ledger.append_many([make_record(rng, signer), record])
        fresh = make_record(rng, signer)
        with pytest.raises(LedgerError, match="twice"):
            ledger.append_many([fresh, fresh])
        assert len(ledger) == 1
        assert ledger.verify().ok


def test_unserialisable_records_are_refused(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(LedgerError, match="canonical"):
            ledger.append({"score": 0.5})
        with pytest.raises(LedgerError, match="JSON object"):
            ledger.append(["not", "a", "dict"])  # type: ignore[arg-type]
        assert len(ledger) == 0


def test_default_path_is_under_workbench_home(_private_home: Path) -> None:
    with Ledger() as ledger:
        assert ledger.path == _private_home / "ledger.sqlite"
        ledger.append({"x": "1"})
    assert (_private_home / "ledger.sqlite").stat().st_mode & 0o777 == 0o600


def test_bad_files_and_closed_ledger_raise_ledger_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="junk.sqlite"):
        Ledger(junk)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE patients(name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(LedgerError, match="not a workbench ledger"):
        Ledger(other)
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.close()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        len(ledger)


def test_triggers_refuse_accidental_sql_edits(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 3)
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("DELETE FROM entries WHERE idx = 1")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE entries SET record = x'00' WHERE idx = 1")
    finally:
        con.close()


# ------------------------------------------------------------------------------ verify

def test_verify_clean_ledger(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    records = _fill(path, rng, signer, 50)
    with Ledger(path) as ledger:
        ledger.sign_tree_head(signer, "test-key")
        report = ledger.verify(trusted_public_keys=[_raw_public(signer)])
    assert report.ok, report.problem
    assert (report.size, report.first_bad_index, report.problem) == (50, None, "")
    leaves = [bytes.fromhex(_leaf(canonical_json(r))) for r in records]
    assert report.root_hex == merkle.merkle_root(leaves).hex()


def _swap_blobs(path: Path, a: int, b: int) -> None:
    blob_a, blob_b = _blob(path, a), _blob(path, b)
    tamper(path, ("UPDATE entries SET record = ? WHERE idx = ?", (blob_b, a)),
           ("UPDATE entries SET record = ? WHERE idx = ?", (blob_a, b)))


def _edit_one_char(path: Path, idx: int) -> None:
    blob = _blob(path, idx)
    pos = blob.index(b'"sha256":"') + len(b'"sha256":"')
    flipped = b"0" if blob[pos:pos + 1] != b"0" else b"1"
    tamper(path, ("UPDATE entries SET record = ? WHERE idx = ?",
                  (blob[:pos] + flipped + blob[pos + 1:], idx)))


TAMPERINGS = [
    ("edit record blob", lambda p: _edit_one_char(p, 17), 17, "record bytes do not match"),
    ("delete a row", lambda p: tamper(p, ("DELETE FROM entries WHERE idx = ?", (5,))),
     5, "entry 5 missing"),
    ("swap two record blobs", lambda p: _swap_blobs(p, 8, 30), 8, "those of entry 30"),
    ("edit stored entry_hash", lambda p: tamper(
        p, ("UPDATE entries SET entry_hash = ? WHERE idx = ?", ("1" * 64, 22))),
     22, "entry_hash"),
    ("edit stored prev_hash", lambda p: tamper(
        p, ("UPDATE entries SET prev_hash = ? WHERE idx = ?", ("2" * 64, 3))),
     3, "prev_hash"),
    ("edit stored leaf_hash", lambda p: tamper(
        p, ("UPDATE entries SET leaf_hash = ? WHERE idx = ?", ("3" * 64, 40))),
     40, "leaf_hash"),
    ("hide a record from lookups", lambda p: tamper(
        p, ("UPDATE entries SET sop_instance_uid = ? WHERE idx = ?", ("9.9.9", 12))),
     12, "sop_instance_uid"),
    ("delete the last two rows", lambda p: tamper(
        p, ("DELETE FROM entries WHERE idx >= ?", (48,))), 48, "at the end deleted"),
    ("delete the first row", lambda p: tamper(
        p, ("DELETE FROM entries WHERE idx = ?", (0,))), 0, "entry 0 missing"),
]


@pytest.mark.parametrize(("action", "expected_index", "expected_text"),
                         [t[1:] for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS])
def test_verify_names_first_bad_entry(tmp_path: Path, rng, signer, action, expected_index,
                                      expected_text) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 50)
    with Ledger(path) as ledger:
        assert ledger.verify().ok
    action(path)
    with Ledger(path) as ledger:
        report = ledger.verify()
    assert not report.ok
    assert report.first_bad_index == expected_index, report.problem
    assert expected_text in report.problem
    assert report.problem.startswith(f"entry {expected_index}")


def test_signed_tree_head_catches_a_wholesale_rewrite(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 30)
    with Ledger(path) as ledger:
        head = ledger.sign_tree_head(signer, "curator-key")
        assert head.verify_signature()
        assert ledger.signed_tree_heads() == [head]
    rewrite_consistently(path, 10, _new_pixels)
    with Ledger(path) as ledger:
        assert ledger.entry(10).record["pixels"]["sha256"] == "ab" * 32
        report = ledger.verify()
    # Every entry is self-consistent now; only the signed head can tell.
    assert not report.ok
    assert report.problem == "signed tree head of size 30: root does not match the entries"
    assert report.first_bad_index is None

    # Updating the stored head's root to match, without the key, breaks its signature.
    with Ledger(path) as ledger:
        new_root = ledger.tree_head().root_hex
    tamper(path, ("UPDATE tree_heads SET root = ?", (new_root,)))
    with Ledger(path) as ledger:
        report = ledger.verify()
    assert "signature does not verify" in report.problem

    # Re-signing with the attacker's own key passes the signature check, so the key must be
    # checked against the trusted ones; the ledger cannot know trust by itself.
    attacker = Ed25519PrivateKey.generate()
    tamper(path, ("DELETE FROM tree_heads", ()))
    with Ledger(path) as ledger:
        ledger.sign_tree_head(attacker, "attacker-key")
        assert ledger.verify().ok
        report = ledger.verify(trusted_public_keys=[_raw_public(signer)])
    assert not report.ok
    assert "not trusted (attacker-key)" in report.problem


def test_signed_tree_head_catches_truncation(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 20)
    with Ledger(path) as ledger:
        ledger.sign_tree_head(signer, "k")
    # A careful attacker deletes the tail and fixes the appended-entries counter too.
    tamper(path, ("DELETE FROM entries WHERE idx >= ?", (15,)),
           ("UPDATE meta SET value = '15' WHERE key = 'entry_count'", ()))
    with Ledger(path) as ledger:
        report = ledger.verify()
    assert not report.ok
    assert report.first_bad_index == 15
    assert report.problem.startswith("signed tree head of size 20: the ledger has only 15")


def test_append_refuses_a_ledger_whose_tail_was_deleted(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 5)
    tamper(path, ("DELETE FROM entries WHERE idx = ?", (4,)))
    with Ledger(path) as ledger, pytest.raises(LedgerError, match="inconsistent"):
        ledger.append(make_record(rng, signer))


def test_damaged_rows_give_reports_and_ledger_errors_not_crashes(tmp_path: Path, rng,
                                                                signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 4)
    with Ledger(path) as ledger:
        ledger.sign_tree_head(signer, "k")
    tamper(path, ("UPDATE tree_heads SET tree_size = 'four'", ()),
           ("UPDATE entries SET entry_hash = 'not hex' WHERE idx = 3", ()))
    with Ledger(path) as ledger:
        report = ledger.verify()
        assert (report.first_bad_index, report.problem) == (
            3, "entry 3: stored entry_hash does not match the entry (edited?)")
        with pytest.raises(LedgerError, match="entry 3: stored entry_hash is not hex"):
            ledger.append(make_record(rng, signer))
        with pytest.raises(LedgerError, match="damaged"):
            ledger.signed_tree_heads()
    # With the entries repaired, the damaged head is what verify reports.
    with Ledger(tmp_path / "fresh.sqlite") as fresh:
        for record in [json.loads(_blob(path, i)) for i in range(4)]:
            fresh.append(record)
        good_hash = fresh.entry(3).entry_hash
    tamper(path, ("UPDATE entries SET entry_hash = ? WHERE idx = 3", (good_hash,)))
    with Ledger(path) as ledger:
        report = ledger.verify()
    assert not report.ok
    assert report.problem == "the tree_heads table is damaged (wrong column types)"


def test_tree_head_signature_format_is_checkable_without_the_ledger(tmp_path: Path, rng,
                                                                    signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 7)
    with Ledger(path) as ledger:
        head = ledger.sign_tree_head(signer, "k")
        assert ledger.tree_head(7).root_hex == head.root_hex
        assert ledger.tree_head(0).root_hex == hashlib.sha256(b"").hexdigest()
        with pytest.raises(LedgerError, match="outside"):
            ledger.tree_head(8)
    payload = canonical_json({"tree_size": 7, "root": head.root_hex,
                              "timestamp": head.timestamp})
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(head.public_key))
    public.verify(base64.b64decode(head.signature), payload)  # raises if wrong
    assert base64.b64decode(head.public_key) == _raw_public(signer)
    forged = SignedTreeHead.from_json({**head.to_json(), "tree_size": 6})
    assert not forged.verify_signature()


# --------------------------------------------------------------------------- proofs

def test_inclusion_proof_verifies_offline(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    records = _fill(path, rng, signer, 50)
    exported: dict[int, str] = {}
    with Ledger(path) as ledger:
        head = ledger.sign_tree_head(signer, "k")
        old_head = ledger.tree_head(40)
        for i in (0, 1, 17, 31, 32, 49):
            exported[i] = json.dumps(ledger.inclusion_proof(i).to_json())
        old_proof = ledger.inclusion_proof(17, tree_size=40)
        with pytest.raises(LedgerError):
            ledger.inclusion_proof(50)
    # Offline from here: only JSON text and the records.
    for i, text in exported.items():
        proof_json = json.loads(text)
        record = records[i]
        assert proof_json["leaf_hash"] == _leaf(canonical_json(record))
        assert verify_inclusion_proof(record, proof_json)
        assert verify_inclusion_proof(record, InclusionProof.from_json(text), head)
        assert verify_inclusion_proof(canonical_json(record), proof_json)
        assert verify_inclusion_proof(json.dumps(record, indent=2), proof_json)  # pretty sidecar
        # A forged record: one character of its JSON changed.
        text_record = canonical_json(record).decode()
        pos = text_record.index('"sha256":"') + len('"sha256":"')
        forged = text_record[:pos] + ("1" if text_record[pos] != "1" else "2") + text_record[
            pos + 1:]
        assert not verify_inclusion_proof(forged, proof_json)
        # A proof that names another leaf than the record's is not about this record.
        assert not verify_inclusion_proof(record, {**proof_json, "leaf_hash": "00" * 32})
        # Another entry's record with this proof.
        assert not verify_inclusion_proof(records[(i + 1) % 50], proof_json)
        # The proof against a different root (an earlier head's).
        assert not verify_inclusion_proof(record, {**proof_json, "root": old_head.root_hex})
        assert not verify_inclusion_proof(record, proof_json, old_head)
    assert verify_inclusion_proof(records[17], old_proof, old_head)
    assert not verify_inclusion_proof(records[17], old_proof, head)
    assert not verify_inclusion_proof(records[17], {"index": 17})  # malformed: False


def test_consistency_proof_between_tree_heads(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    _fill(path, rng, signer, 20)
    with Ledger(path) as ledger:
        first = ledger.sign_tree_head(signer, "k")
        for _ in range(30):
            ledger.append(make_record(rng, signer))
        second = ledger.sign_tree_head(signer, "k")
        proof = ledger.consistency_proof(20, 50)
        assert ledger.consistency_proof(50, 50) == []
        with pytest.raises(LedgerError):
            ledger.consistency_proof(20, 51)
    assert verify_consistency_proof(first, second, proof)
    assert verify_consistency_proof(first.to_json(), second.to_json(), json.loads(
        json.dumps(proof)))
    assert not verify_consistency_proof(second, first, proof)
    assert not verify_consistency_proof(first, second, proof[:-1])

    # Edit an old entry (before the first head) and recompute everything consistently: the
    # ledger's new head cannot be proved to extend the head the auditor kept.
    rewrite_consistently(path, 7, _new_pixels)
    with Ledger(path) as ledger:
        rewritten = ledger.tree_head()
        new_proof = ledger.consistency_proof(20, 50)
        assert rewritten.root_hex != second.root_hex
        assert not verify_consistency_proof(first, rewritten, new_proof)
        report = ledger.verify()
        assert report.problem == "signed tree head of size 20: root does not match the entries"


# ------------------------------------------------------------------------- perceptual

def test_find_by_perceptual_hash_orders_by_hamming_distance(tmp_path: Path, rng,
                                                            signer) -> None:
    base = 0x0123456789ABCDEF
    flips = {"d0": 0, "d1": 1 << 63, "d3": 0b111 << 20, "d10": (1 << 10) - 1,
             "d11": (1 << 11) - 1, "d40": (1 << 40) - 1}
    distances = {name: bin(mask).count("1") for name, mask in flips.items()}
    assert distances == {"d0": 0, "d1": 1, "d3": 3, "d10": 10, "d11": 11, "d40": 40}
    by_name = {}
    with Ledger(tmp_path / "l.sqlite") as ledger:
        for name in ["d40", "d3", "d11", "d0", "d10", "d1"]:
            phash = f"{base ^ flips[name]:016x}"
            by_name[ledger.append(make_record(rng, signer, phash=phash)).index] = name
        ledger.append({"perceptual": {"hash": "not-hex"}})  # skipped, not an error
        hits = ledger.find_by_perceptual_hash(f"{base:016X}")
        assert [(by_name[e.index], d) for e, d in hits] == [
            ("d0", 0), ("d1", 1), ("d3", 3), ("d10", 10)]
        assert [by_name[e.index] for e, _ in ledger.find_by_perceptual_hash(
            f"{base:016x}", max_distance=0)] == ["d0"]
        assert len(ledger.find_by_perceptual_hash(f"{base:016x}", max_distance=64)) == 6
        with pytest.raises(LedgerError, match="16 hex digits"):
            ledger.find_by_perceptual_hash("abc")


# ------------------------------------------------------------------------------ export

def test_export_lets_an_auditor_recompute_everything(tmp_path: Path, rng, signer) -> None:
    path = tmp_path / "l.sqlite"
    records = _fill(path, rng, signer, 12)
    with Ledger(path) as ledger:
        ledger.sign_tree_head(signer, "k")
        assert ledger.export(tmp_path / "audit.jsonl") == 12
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    header, entries, heads = lines[0], lines[1:13], lines[13:]
    assert header["type"] == "header" and header["entries"] == 12
    prev = ZERO
    leaves = []
    for i, line in enumerate(entries):
        assert line["type"] == "entry" and line["index"] == i
        assert line["record"] == records[i]
        blob = canonical_json(line["record"])
        assert line["record_id"] == _sha(blob)
        assert line["prev_hash"] == prev
        assert line["entry_hash"] == _chain_hash(prev, i, blob)
        assert line["leaf_hash"] == _leaf(blob)
        assert line["appended_at"].endswith("Z")
        prev = line["entry_hash"]
        leaves.append(bytes.fromhex(line["leaf_hash"]))
    assert len(heads) == 1 and heads[0]["type"] == "signed_tree_head"
    assert heads[0]["root"] == merkle.merkle_root(leaves).hex()
    assert SignedTreeHead.from_json(heads[0]).verify_signature()
    assert not (tmp_path / "audit.jsonl.partial").exists()


# ---------------------------------------------------------------------- crash safety

CHILD = r"""
import secrets, sys
from pathlib import Path
from workbench.provenance.ledger.store import Ledger

ledger = Ledger(Path(sys.argv[1]))
tag = sys.argv[2]
i = 0
while True:
    record = {"subject": {"sop_instance_uid": f"2.25.{tag}.{i}"},
              "pixels": {"sha256": secrets.token_hex(32)},
              "file": {"sha256": secrets.token_hex(32)},
              "perceptual": {"hash": secrets.token_hex(8)}}
    entry = ledger.append(record)
    # Reported only once append() has returned, i.e. after COMMIT.
    sys.stdout.write(entry.record_id + "\n")
    sys.stdout.flush()
    i += 1
"""


def test_sigkill_during_appends_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    Ledger(path).close()  # created up front so children race on appends, not on the schema
    env = dict(os.environ)  # carries this test's private WORKBENCH_HOME
    rng = random.Random(4242)
    reported: set[str] = set()
    kills = 0
    round_no = 0
    while kills < 24:
        # Two writers at once: appends from several processes interleave under the lock.
        children = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), f"{round_no}{k}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                    for k in range(2)]
        round_no += 1
        try:
            for child in children:
                for _ in range(rng.randint(3, 10)):
                    line = child.stdout.readline()
                    assert line.endswith(b"\n"), child.stderr.read().decode()[-2000:]
                    reported.add(line.decode().strip())
            for child in children:
                time.sleep(rng.uniform(0.0, 0.03))
                child.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                rest = child.stdout.read()
                # Only whole lines were reported; a torn last line is not a claim.
                reported.update(line.decode() for line in rest.split(b"\n")[:-1])
                child.wait()
                child.stdout.close()
                child.stderr.close()
        assert all(child.returncode == -signal.SIGKILL for child in children)

    with Ledger(path) as ledger:
        stored = [e.record_id for e in ledger.entries()]
        indices = [e.index for e in ledger.entries()]
        report = ledger.verify()
    assert kills >= 20
    assert len(reported) >= 24 * 3
    assert reported <= set(stored), f"{len(reported - set(stored))} committed records lost"
    assert indices == list(range(len(stored)))
    assert report.ok, report.problem
    assert report.size == len(stored)
