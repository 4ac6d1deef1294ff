"""keys / sign / verify / ledger from the command line, as an auditor's script runs them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from conftest import pydicom_test_file

PASS = "auditor passphrase"


@pytest.fixture
def env(_private_home):
    e = dict(os.environ)
    e["WORKBENCH_HOME"] = str(_private_home)
    e["WORKBENCH_KEY_PASSPHRASE"] = PASS
    return e


def wb(env, *args, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=env, timeout=300, stdin=stdin)


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "archive"
    (folder / "series2").mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(pydicom_test_file(name), folder / name)
    shutil.copy(pydicom_test_file("JPEG2000.dcm"), folder / "series2" / "JPEG2000.dcm")
    return folder


def test_keys_sign_verify_round_trip(env, archive):
    out = wb(env, "keys", "new", "--label", "PACS gateway")
    assert out.returncode == 0, out.stderr
    fp = out.stdout.split()[2]
    listing = wb(env, "keys", "list").stdout
    assert fp in listing and "PACS gateway" in listing

    signed = wb(env, "sign", str(archive))
    assert signed.returncode == 0, signed.stderr
    assert "3 signed, 0 already signed" in signed.stdout
    assert "signing [" in signed.stderr  # progress bar
    again = wb(env, "sign", str(archive))
    assert "0 signed, 3 already signed" in again.stdout

    verified = wb(env, "verify", str(archive))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "3 of 3 intact" in verified.stdout

    js = wb(env, "verify", "--json", str(archive))
    objects = [json.loads(line) for line in js.stdout.splitlines()]
    assert len(objects) == 3 and all(o["ok"] and o["verdict"] == "intact" for o in objects)
    assert {c for o in objects for c in o["checks"]} == {
        "record", "signature", "signer", "pixels", "metadata", "header", "file", "ledger"}
    assert all(o["checks"]["ledger"]["status"] == "pass" for o in objects)


def test_tampered_file_fails_with_exit_1_and_names_the_check(env, archive):
    wb(env, "keys", "new")
    wb(env, "sign", str(archive))
    target = archive / "MR_small.dcm"
    ds = pydicom.dcmread(target)
    arr = ds.pixel_array.copy()
    arr[5, 5] -= 1
    ds.PixelData = arr.tobytes()
    ds.save_as(target)
    out = wb(env, "verify", "--json", str(archive))
    assert out.returncode == 1
    by_name = {Path(o["path"]).name: o for o in map(json.loads, out.stdout.splitlines())}
    mr = by_name["MR_small.dcm"]
    assert mr["verdict"] == "tampered" and mr["checks"]["pixels"]["status"] == "fail"
    assert mr["checks"]["signature"]["status"] == "pass"
    assert by_name["CT_small.dcm"]["ok"]
    table = wb(env, "verify", str(archive))
    assert table.returncode == 1 and "-> pixels changed" in table.stdout
    # the changed file is not silently re-signed
    resign = wb(env, "sign", str(archive))
    assert resign.returncode == 1 and "changed since it was signed" in resign.stderr


def test_usage_and_io_errors_exit_2(env, archive, tmp_path):
    assert wb(env, "verify", str(tmp_path / "missing.dcm")).returncode == 2
    no_pass = dict(env)
    no_pass.pop("WORKBENCH_KEY_PASSPHRASE")
    wb(env, "keys", "new")
    out = wb(no_pass, "sign", str(archive))
    assert out.returncode == 2 and "WORKBENCH_KEY_PASSPHRASE" in out.stderr
    wrong = dict(env, WORKBENCH_KEY_PASSPHRASE="wrong")
    out = wb(wrong, "sign", str(archive))
    assert out.returncode == 2 and "wrong passphrase" in out.stderr
    assert "Traceback" not in out.stderr
    # the passphrase is never accepted as a plain argument
    assert wb(env, "sign", "--passphrase", PASS, str(archive)).returncode == 2
    pf = tmp_path / "pass.txt"
    pf.write_text(PASS + "\n")
    out = wb(no_pass, "sign", "--passphrase-file", str(pf), str(archive))
    assert out.returncode == 0 and "3 signed" in out.stdout


def test_ledger_verify_proof_and_offline_check(env, archive, tmp_path, _private_home):
    wb(env, "keys", "new")
    wb(env, "sign", str(archive))
    head = wb(env, "ledger", "head", "--sign")
    assert head.returncode == 0 and "signed tree head: size 3" in head.stdout
    ok = wb(env, "ledger", "verify")
    assert ok.returncode == 0 and "ledger intact" in ok.stdout

    proof_file = tmp_path / "proof.json"
    out = wb(env, "ledger", "proof", str(archive / "CT_small.dcm"), "--out", str(proof_file))
    assert out.returncode == 0, out.stderr
    sidecar = archive / "CT_small.dcm.wbsig.json"
    check = wb(env, "ledger", "check-proof", str(sidecar), str(proof_file))
    assert check.returncode == 0 and "inclusion proof valid" in check.stdout
    forged = tmp_path / "forged.json"
    forged.write_text(sidecar.read_text().replace("CT_small.dcm", "CT_smalx.dcm"))
    bad = wb(env, "ledger", "check-proof", str(forged), str(proof_file))
    assert bad.returncode == 1 and "INVALID" in bad.stdout

    export = tmp_path / "ledger.jsonl"
    assert wb(env, "ledger", "export", str(export)).returncode == 0
    assert len([ln for ln in export.read_text().splitlines() if '"record"' in ln]) == 3

    db = _private_home / "ledger.sqlite"
    with sqlite3.connect(db) as conn:  # an attacker with the file drops the guard first
        conn.execute("DROP TRIGGER entries_no_update")
        blob = conn.execute("SELECT record FROM entries WHERE idx = 1").fetchone()[0]
        conn.execute("UPDATE entries SET record = ? WHERE idx = 1",
                     (blob.replace(b'"MR_small.dcm"', b'"MR_smalX.dcm"'),))
    damaged = wb(env, "ledger", "verify")
    assert damaged.returncode == 1 and "entry 1" in damaged.stdout


def test_sign_signs_a_tree_head_so_a_truncated_ledger_is_caught(env, archive, tmp_path,
                                                                _private_home):
    wb(env, "keys", "new")
    plain = wb(env, "ledger", "verify")  # no ledger yet, or an empty one: nothing claimed
    assert "tree heads verify" not in plain.stdout
    signed = wb(env, "sign", str(archive))
    assert signed.returncode == 0 and "tree head of 3 entries signed" in signed.stdout
    ok = wb(env, "ledger", "verify")
    assert ok.returncode == 0 and "1 signed tree head(s) verify" in ok.stdout
    assert "covers 3 of 3 entries" in ok.stdout

    db = _private_home / "ledger.sqlite"
    with sqlite3.connect(db) as conn:  # an attacker deletes the last entry
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"
                                    ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM entries WHERE idx = 2")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'entry_count'")
    cut = wb(env, "ledger", "verify")
    assert cut.returncode == 1 and "LEDGER DAMAGED" in cut.stdout
    assert "entries at the end deleted" in cut.stdout


def test_a_ledger_without_signed_heads_says_so(env, archive, _private_home):
    wb(env, "keys", "new")
    wb(env, "sign", str(archive))
    db = _private_home / "ledger.sqlite"
    with sqlite3.connect(db) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"
                                    ).fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM tree_heads")
    out = wb(env, "ledger", "verify")
    assert "NO signed tree head" in out.stdout and "tree heads verify" not in out.stdout


def test_an_inclusion_proof_is_self_contained_and_checked_against_its_signed_head(
        env, archive, tmp_path):
    wb(env, "keys", "new")
    wb(env, "sign", str(archive))
    proof_file = tmp_path / "proof.json"
    assert wb(env, "ledger", "proof", str(archive / "MR_small.dcm"), "--out",
              str(proof_file)).returncode == 0
    doc = json.loads(proof_file.read_text())
    assert doc["format"] == "workbench.inclusion-proof/1"
    assert doc["signed_tree_head"]["tree_size"] == 3 and doc["proof"]["tree_size"] == 3
    assert str(tmp_path) not in proof_file.read_text()  # no local paths
    assert "ledger" not in doc
    sidecar = archive / "MR_small.dcm.wbsig.json"
    ok = wb(env, "ledger", "check-proof", str(sidecar), str(proof_file))
    assert ok.returncode == 0 and "(trusted)" in ok.stdout
    # a head whose root was swapped for the proof's convenience: the signature says no
    forged = dict(doc)
    forged["signed_tree_head"] = {**doc["signed_tree_head"], "tree_size": 2}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bad = wb(env, "ledger", "check-proof", str(sidecar), str(tmp_path / "forged.json"))
    assert bad.returncode == 1 and "signature does not verify" in bad.stdout
    # the same proof, checked by someone who does not trust the signing key
    other = {**env, "WORKBENCH_HOME": str(tmp_path / "elsewhere")}
    untrusted = wb(other, "ledger", "check-proof", str(sidecar), str(proof_file))
    assert untrusted.returncode == 1 and "not in your trust store" in untrusted.stdout


def test_a_sidecar_that_cannot_be_written_leaves_no_ledger_entry(env, tmp_path,
                                                                 _private_home):
    """Signing into a folder we cannot write to failed after the ledger append, leaving
    an entry for a file that has no record beside it. (Root ignores permissions, so the
    sidecar's place is taken by a folder, which nobody can write a file over.)"""
    folder = tmp_path / "readonly"
    folder.mkdir()
    shutil.copy(pydicom_test_file("CT_small.dcm"), folder / "CT_small.dcm")
    (folder / "CT_small.dcm.wbsig.json.tmp").mkdir()
    wb(env, "keys", "new")
    out = wb(env, "sign", str(folder))
    assert out.returncode == 1 and "0 signed" in out.stdout and "1 failed" in out.stdout
    assert not (folder / "CT_small.dcm.wbsig.json").exists()
    with sqlite3.connect(_private_home / "ledger.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_a_damaged_key_file_is_not_called_a_wrong_passphrase(env, archive, _private_home):
    wb(env, "keys", "new")
    key_file = next((_private_home / "keys").glob("*.key"))
    key_file.write_bytes(key_file.read_bytes()[:200])  # cut short
    out = wb(env, "sign", str(archive))
    assert out.returncode == 2 and "is damaged" in out.stderr
    assert "wrong passphrase" not in out.stderr


def test_a_passphrase_file_others_can_read_gets_a_warning(env, archive, tmp_path):
    wb(env, "keys", "new")
    pf = tmp_path / "pass.txt"
    pf.write_text(PASS + "\n")
    pf.chmod(0o644)
    no_env = {k: v for k, v in env.items() if k != "WORKBENCH_KEY_PASSPHRASE"}
    out = wb(no_env, "sign", "--passphrase-file", str(pf), str(archive))
    assert out.returncode == 0 and "readable by others (mode 0644)" in out.stderr
    pf.chmod(0o600)
    for side in archive.rglob("*.wbsig.json"):
        side.unlink()
    out = wb(no_env, "sign", "--passphrase-file", str(pf), str(archive))
    assert out.returncode == 0 and "readable by others" not in out.stderr
