"""Provenance commands: keys, sign, verify, ledger (no Qt, no torch).

Exit codes: 0 all good, 1 some file failed verification/signing, 2 usage or I/O error.
Whether a file is signed, skipped or refused is the signing policy's decision
(``workbench.session.signing_policy``), the same one the GUI's Sign action follows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .plumbing import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    ProgressBar,
    passphrase,
    positive_int,
    print_json_line,
)


def _ledger(args: argparse.Namespace, *, must_exist: bool = False) -> Any:
    """The ledger named by --ledger, else the default one; None with --no-ledger."""
    if getattr(args, "no_ledger", False):
        return None
    from ..home import ledger_file
    from ..provenance.ledger.store import Ledger, LedgerError

    path = Path(args.ledger) if getattr(args, "ledger", None) else ledger_file()
    if must_exist and not path.is_file():
        raise CommandError(f"{path}: no ledger there yet")
    try:
        return Ledger(path)
    except LedgerError as exc:
        raise CommandError(str(exc)) from None


def _add_ledger_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", metavar="FILE", help="ledger file (default: in WORKBENCH_HOME)")
    p.add_argument("--no-ledger", action="store_true", help="do not use a ledger")


# --- keys ------------------------------------------------------------------------------------
def cmd_keys(args: argparse.Namespace) -> int:
    from ..provenance.records import keys

    if args.keys_command == "new":
        info = keys.generate_key(passphrase(args, confirm=True), label=args.label or "")
        default = keys.default_key_fingerprint() == info.fingerprint
        print(f"new key {info.fingerprint} ({info.label or 'no label'})")
        print(f"  private key encrypted in {keys.keys_dir()}; public key trusted"
              + ("; default signing key" if default else ""))
        return EXIT_OK
    if args.keys_command == "list":
        own, trusted = keys.list_keys(), keys.trusted_keys()
        default = keys.default_key_fingerprint()
        print("own keys:" if own else "own keys: none ('workbench keys new' makes one)")
        for k in own:
            flag = "*" if k.fingerprint == default else " "
            print(f" {flag} {k.fingerprint}  {k.label or '-'}  created {k.created}")
        print("trusted keys:" if trusted else "trusted keys: none")
        for k in trusted:
            print(f"   {k.fingerprint}  {k.label or '-'}")
        return EXIT_OK
    if args.keys_command == "trust":
        try:
            info = keys.trust_key(Path(args.public_key), args.label)
        except OSError as exc:
            raise CommandError(f"{args.public_key}: {exc.strerror or exc}") from None
        print(f"trusted {info.fingerprint} as {info.label!r}")
        return EXIT_OK
    if args.keys_command == "untrust":
        info = keys.untrust_key(args.fingerprint)
        print(f"no longer trusted: {info.fingerprint} ({info.label})")
        return EXIT_OK
    if args.keys_command == "export":
        fp = keys.resolve_key(args.fingerprint).fingerprint
        sys.stdout.write(keys.export_public_key_pem(fp).decode())
        return EXIT_OK
    raise CommandError("keys: choose new, list, trust, untrust or export")


# --- sign ------------------------------------------------------------------------------------
def cmd_sign(args: argparse.Namespace) -> int:
    if args.dicom_signature or args.c2pa:
        from .standard_sign import sign_standard

        return sign_standard(args, passphrase(args))
    if args.out:
        raise CommandError("--out is for --dicom-signature and --c2pa (our own records are "
                           "sidecars beside the originals)")
    from ..provenance.records import keys

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise CommandError(f"{missing[0]}: no such file or folder")
    info = keys.resolve_key(args.key)
    private = keys.load_private_key(info.fingerprint, passphrase(args))
    ledger = _ledger(args)
    head = None
    try:
        counts = _sign_files(_files_to_sign(args.paths), private, ledger, force=args.force)
        if ledger is not None and counts["signed"]:
            # a signed tree head after each batch: deleting entries from the end of the
            # ledger (or rewriting it) no longer goes unnoticed by 'ledger verify'
            head = ledger.sign_tree_head(private, info.fingerprint)
    finally:
        if ledger is not None:
            ledger.close()
    print(f"{counts['signed']} signed, {counts['skipped']} already signed, "
          f"{counts['refused']} refused (changed since signed), {counts['failed']} failed"
          f" — key {info.fingerprint[:16]}")
    if head is not None:
        print(f"ledger: tree head of {head.tree_size} entries signed (root {head.root_hex[:16]}…)")
    return EXIT_FAILED if counts["failed"] or counts["refused"] else EXIT_OK


def _files_to_sign(paths: list[str]) -> list[Path]:
    from ..imaging.loader import find_images

    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(find_images(p) if p.is_dir() else [p])
    return files


def _sign_files(files: list[Path], private_key: Any, ledger: Any, *,
                force: bool) -> dict[str, int]:
    """Sign, skip or refuse each file as the signing policy decides; one bad file never
    stops the rest. Returns how many of each. Files are prepared on worker processes and
    committed to the ledger a batch at a time (session.batch_signing)."""
    from ..session.batch_signing import FAILED, REFUSED, SIGNED, SKIPPED, sign_files

    bar = ProgressBar("signing")
    outcomes = sign_files(files, private_key, ledger=ledger, force=force,
                          progress=bar.update)
    counts = dict.fromkeys(("signed", "skipped", "refused", "failed"), 0)
    label = {SIGNED: "signed", SKIPPED: "skipped", REFUSED: "refused", FAILED: "failed"}
    problems = []  # printed after the progress bar, not through it
    for o in outcomes:
        counts[label[o.status]] += 1
        if o.status == REFUSED:
            problems.append(f"sidecar mismatch: {o.message}")
        elif o.status == FAILED:
            problems.append(f"failed: {o.message}")
        # printed under this file's name, not through the progress bar without one
        problems += [f"note: {o.path}: {text}" for text in o.notes]
    for line in problems:
        print(line, file=sys.stderr)
    return counts


# --- verify ----------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    from ..provenance.records.verify import verify_paths

    if args.pacs and args.paths:
        raise CommandError("verify either files and folders or --pacs URL, not both")
    if not args.pacs and not args.paths:
        raise CommandError("name the files or folders to verify, or --pacs URL")
    if (args.study or args.since) and not args.pacs:
        raise CommandError("--study and --since select instances of --pacs URL")
    if args.study and args.since:
        raise CommandError("--study UID or --since DATE, not both")
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise CommandError(f"{missing[0]}: no such file or folder")
    if args.engine != "ray" and (args.address or args.workers):
        raise CommandError("--address and --workers are for --engine ray")
    if args.engine == "ray":
        from ..runtime.ray_tasks import ray_available

        if not ray_available():  # before opening anything: nothing to undo
            from ..runtime.ray_tasks import RAY_MISSING

            raise CommandError(RAY_MISSING)
    ledger = _ledger(args)
    bar = None if args.json else ProgressBar("verifying")
    try:
        if args.pacs:
            from .pacs import verify_pacs

            results = verify_pacs(args, ledger, bar)
        elif args.engine == "ray":
            from ..provenance.records.verify_batch import VerifyBatchError, verify_paths_on_ray

            try:
                results = verify_paths_on_ray(
                    args.paths, ledger=ledger if ledger is not None else False,
                    address=args.address, workers=args.workers,
                    progress=bar.update if bar else None)
            except VerifyBatchError as exc:
                raise CommandError(str(exc)) from None
        else:
            results = verify_paths(
                args.paths, ledger=ledger if ledger is not None else False,
                progress=bar.update if bar else None)
    finally:
        if ledger is not None:
            ledger.close()
    if args.json:
        for r in results:
            print_json_line(r.to_json())
    else:
        # an archive's instances by SOP Instance UID (the path is their WADO-RS address)
        _print_table(results, [r.path.rsplit("/", 1)[-1] for r in results]
                     if args.pacs else None)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED



def _display_names(paths: list[str]) -> list[str]:
    """Paths relative to their common folder, so same-named files stay distinguishable."""
    import os

    if len(paths) <= 1:
        return [Path(p).name for p in paths]
    # abspath, not resolve(): a symlink loop is a file to report, not a crash of the table
    common = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return [os.path.relpath(os.path.abspath(p), common) for p in paths]


def _print_table(results: list, shown: list[str] | None = None) -> None:
    marks = {"pass": "ok", "fail": "FAIL", "warn": "warn", "skip": "-"}
    names = ("signature", "signer", "pixels", "metadata", "header", "file", "ledger")
    shown = shown or _display_names([r.path for r in results])
    width = max([len(n) for n in shown] + [4])
    print(f"{'file':<{width}}  {'verdict':<17} " + " ".join(f"{n:<9}" for n in names)
          + " standard")
    for r, name in zip(results, shown, strict=True):
        cells = []
        for n in names:
            c = r.check(n)
            cells.append(f"{marks.get(c.status, c.status) if c else '-':<9}")
        # DICOM PS3.15 signatures and C2PA manifests, beside our own record's checks
        standard = [f"{'DICOM' if c.name.startswith('DICOM') else 'C2PA'} "
                    f"{marks.get(c.status, c.status)}" for c in r.checks
                    if c.name.startswith(("DICOM signature", "C2PA"))]
        print(f"{name:<{width}}  {r.verdict:<17} " + " ".join(cells) + " "
              + (", ".join(standard) or "-"))
        if not r.ok or standard or r.check("sidecar"):  # a damaged sidecar is said
            print(f"{'':<{width}}  -> {r.summary}")
        for note in getattr(r, "notes", []):
            print(f"{'':<{width}}  note: {note}")
    good = sum(r.ok for r in results)
    print(f"{good} of {len(results)} intact")


# --- ledger ----------------------------------------------------------------------------------
def cmd_ledger(args: argparse.Namespace) -> int:
    if args.ledger_command == "check-proof":  # offline: no ledger needed
        from ..provenance.records.canonical_json import parse_json

        record = parse_json(Path(args.record).read_bytes())
        proof = parse_json(Path(args.proof).read_bytes())
        return _check_proof(record, proof)
    led = _ledger(args, must_exist=True)
    try:
        if args.ledger_command == "verify":
            # Tree heads count only when signed by a key in the trust store: anyone who
            # rewrites the file can also re-sign its heads with a key of their own.
            import base64

            from ..provenance.records.keys import trusted_keys

            trusted = [base64.b64decode(k.public_key_b64) for k in trusted_keys()]
            report = led.verify(trusted_public_keys=trusted)
            print(f"{led.path}: {report.size} entries, root {report.root_hex}")
            if report.ok:
                heads = led.signed_tree_heads()
                if not heads:
                    print("hash chain and Merkle tree verify; NO signed tree head: entries "
                          "deleted from the end of the ledger could not be detected (sign "
                          "one: 'workbench ledger head --sign')")
                    return EXIT_OK
                last = max(h.tree_size for h in heads)
                print(f"ledger intact: hash chain, Merkle tree and {len(heads)} signed tree "
                      f"head(s) verify (the latest covers {last} of {report.size} entries)")
                if last < report.size:
                    print(f"note: the last {report.size - last} entries are after the latest "
                          "signed head; sign one to cover them")
                return EXIT_OK
            print(f"LEDGER DAMAGED: {report.problem}")
            return EXIT_FAILED
        if args.ledger_command == "proof":
            index = _find_entry(led, args.record)
            covering = [h for h in led.signed_tree_heads() if h.tree_size > index]
            if not covering:
                raise CommandError(f"no signed tree head covers entry {index} yet: sign one "
                                   "('workbench ledger head --sign'), then ask for the proof")
            head = covering[-1]
            proof = led.inclusion_proof(index, head.tree_size)
            # self-contained: the signed head and its key travel with the proof, and no
            # local path does (docs/ledger.md says how to check it without the workbench)
            doc = {"format": "workbench.inclusion-proof/1",
                   "record_id": led.entry(index).record_id, "proof": proof.to_json(),
                   "signed_tree_head": head.to_json()}
            text = json.dumps(doc, indent=2)
            if args.out:
                Path(args.out).write_text(text + "\n")
                print(f"inclusion proof of entry {index} written to {args.out}")
            else:
                print(text)
            return EXIT_OK
        if args.ledger_command == "export":
            led.export(Path(args.out))
            print(f"{len(led)} entries exported to {args.out}")
            return EXIT_OK
        if args.ledger_command == "head":
            if args.sign:
                from ..provenance.records import keys

                info = keys.resolve_key(args.key)
                private = keys.load_private_key(info.fingerprint, passphrase(args))
                head = led.sign_tree_head(private, info.fingerprint)
                print(f"signed tree head: size {head.tree_size}, root {head.root_hex}")
            else:
                head = led.tree_head()
                print(f"tree head: size {head.tree_size}, root {head.root_hex}")
            return EXIT_OK
    finally:
        led.close()
    raise CommandError("ledger: choose verify, proof, export, head or check-proof")


def _check_proof(record: Any, doc: Any) -> int:
    """An inclusion proof checked offline: the record's leaf climbs to the root of the
    signed tree head inside the proof, whose Ed25519 signature verifies and whose key is
    in the trust store (a head signed by anyone else proves nothing)."""
    import base64

    from ..provenance.ledger.proofs import verify_inclusion_proof
    from ..provenance.ledger.tree_heads import SignedTreeHead
    from ..provenance.records.keys import trusted_keys

    head_json = doc.get("signed_tree_head") if isinstance(doc, dict) else None
    if not head_json:
        print("inclusion proof INVALID: it carries no signed tree head (an old proof, or "
              "not one of ours): its root would be taken on faith")
        return EXIT_FAILED
    try:
        head = SignedTreeHead.from_json(head_json)
    except (KeyError, TypeError, ValueError):
        print("inclusion proof INVALID: its signed tree head is malformed")
        return EXIT_FAILED
    if not head.verify_signature():
        print("inclusion proof INVALID: the tree head's signature does not verify")
        return EXIT_FAILED
    if not verify_inclusion_proof(record, doc.get("proof", {}), head):
        print("inclusion proof INVALID: the record is not the entry it proves, or the "
              "path does not reach the signed root")
        return EXIT_FAILED
    trusted = {base64.b64decode(k.public_key_b64) for k in trusted_keys()}
    if head.public_key_bytes() not in trusted:
        print(f"inclusion proof valid, but the tree head is signed by key "
              f"{head.key_fingerprint[:16]}, which is not in your trust store")
        return EXIT_FAILED
    print(f"inclusion proof valid: entry {doc['proof']['index']} of the signed tree head of "
          f"{head.tree_size} entries, key {head.key_fingerprint[:16]} (trusted)")
    return EXIT_OK


def _find_entry(led: Any, what: str) -> int:
    """An entry by record id (prefix), a sidecar/record file, or an image file."""
    p = Path(what)
    if p.is_file():
        from ..provenance.records.record import read_record, record_id, sidecar_path

        source = p if p.name.endswith(".json") else sidecar_path(p)
        if not source.is_file():
            raise CommandError(f"{p}: no record or sidecar")
        hits = led.find(record_id=record_id(read_record(source)))
    else:
        hits = [e for e in led.entries() if e.record_id.startswith(what.lower())] if \
            len(what) >= 8 else []
    if not hits:
        raise CommandError(f"{what}: not found in the ledger")
    return hits[-1].index


# --- arguments -------------------------------------------------------------------------------
def _keys_arguments(k: argparse.ArgumentParser) -> None:
    ks = k.add_subparsers(dest="keys_command", required=True)
    new = ks.add_parser("new", help="create an Ed25519 signing key (encrypted)")
    new.add_argument("--label", help="what the key is for (device, site)")
    new.add_argument("--passphrase-file", metavar="FILE")
    ks.add_parser("list", help="own and trusted keys")
    t = ks.add_parser("trust", help="trust a public key (PEM file or base64)")
    t.add_argument("public_key", metavar="PUBLIC_KEY_FILE")
    t.add_argument("--label", required=True, help="whose key it is (device, site)")
    u = ks.add_parser("untrust", help="remove a key from the trust store")
    u.add_argument("fingerprint", metavar="FINGERPRINT_PREFIX")
    e = ks.add_parser("export", help="print an own public key as PEM")
    e.add_argument("fingerprint", nargs="?", metavar="FINGERPRINT_PREFIX")
    k.set_defaults(handler=cmd_keys)


def _sign_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--key", metavar="FINGERPRINT_PREFIX", help="default: the default key")
    s.add_argument("--passphrase-file", metavar="FILE")
    s.add_argument("--force", action="store_true",
                   help="sign again even where a sidecar exists (also changed files)")
    std = s.add_argument_group(
        "standard signatures (signed copies in --out; originals untouched)")
    std.add_argument("--dicom-signature", metavar="SIGNER",
                     help="a DICOM PS3.15 digital signature with this X.509 signer "
                          "('workbench certs new SIGNER')")
    std.add_argument("--profile", choices=("creator", "base"), default="creator",
                     help="DICOM signature profile (Creator RSA or Base RSA)")
    std.add_argument("--c2pa", metavar="SIGNER",
                     help="a C2PA manifest (JPEG/PNG) with this X.509 signer")
    std.add_argument("--sidecar", action="store_true", help="C2PA: manifest beside the copy")
    std.add_argument("--out", metavar="DIR", help="folder for the signed copies")
    _add_ledger_options(s)
    s.set_defaults(handler=cmd_sign)


def _verify_arguments(v: argparse.ArgumentParser) -> None:
    v.add_argument("paths", nargs="*", metavar="PATH")
    v.add_argument("--json", action="store_true", help="one JSON object per file")
    pacs = v.add_argument_group("an archive where it lives (DICOMweb)")
    pacs.add_argument("--pacs", metavar="URL",
                      help="verify the PACS's instances, e.g. http://host:8042/dicom-web")
    pacs.add_argument("--study", metavar="UID", help="only this study")
    pacs.add_argument("--since", metavar="DATE", help="only studies dated DATE or later")
    v.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                   help="where files are verified: here (default), or as Ray tasks in "
                        "chunks of 16 files; same results, same order")
    v.add_argument("--address", metavar="ADDR",
                   help="Ray: the cluster's address (default: a local instance); the "
                        "archive and ledger must be at the same paths on every node")
    v.add_argument("--workers", type=positive_int, metavar="N",
                   help="Ray: CPUs of a local instance (default: all)")
    _add_ledger_options(v)
    v.set_defaults(handler=cmd_verify)


def _ledger_arguments(led: argparse.ArgumentParser) -> None:
    ls = led.add_subparsers(dest="ledger_command", required=True)
    lv = ls.add_parser("verify", help="check the hash chain, Merkle tree and tree heads")
    lp = ls.add_parser("proof", help="inclusion proof of one record")
    lp.add_argument("record", metavar="RECORD",
                    help="record id (prefix of 8+), sidecar file, or signed image")
    lp.add_argument("--out", metavar="FILE")
    lx = ls.add_parser("export", help="all entries as JSON Lines, for auditors")
    lx.add_argument("out", metavar="FILE")
    lh = ls.add_parser("head", help="the current tree head (--sign to sign it)")
    lh.add_argument("--sign", action="store_true")
    lh.add_argument("--key", metavar="FINGERPRINT_PREFIX")
    lh.add_argument("--passphrase-file", metavar="FILE")
    lc = ls.add_parser("check-proof", help="check an exported inclusion proof offline")
    lc.add_argument("record", metavar="RECORD_JSON")
    lc.add_argument("proof", metavar="PROOF_JSON")
    for p in (lv, lp, lx, lh):
        p.add_argument("--ledger", metavar="FILE", help="default: in WORKBENCH_HOME")
    led.set_defaults(handler=cmd_ledger)


ARGUMENTS = {"keys": _keys_arguments, "sign": _sign_arguments, "verify": _verify_arguments,
             "ledger": _ledger_arguments}


def user_errors() -> tuple[type[Exception], ...]:
    from ..pacs.dicomweb import PacsError

    return (PacsError,)
