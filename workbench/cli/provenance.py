"""Headless provenance commands: keys, sign, verify, ledger (no Qt import).

Exit codes: 0 all good, 1 some file failed verification/signing, 2 usage or I/O error.
The key passphrase comes from $WORKBENCH_KEY_PASSPHRASE, --passphrase-file, or an
interactive prompt; never from a plain argument (it would show in `ps` and shell history).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A usage or I/O problem: printed on one line, exit status 2."""


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _passphrase(args: argparse.Namespace, *, confirm: bool = False) -> str:
    from .provenance.keys import PASSPHRASE_ENV, passphrase_from_env_or_file

    try:
        value = passphrase_from_env_or_file(getattr(args, "passphrase_file", None))
    except OSError as exc:
        raise CommandError(f"cannot read the passphrase file: {exc.strerror or exc}") from None
    if value:
        return value
    if not sys.stdin.isatty():
        raise CommandError(f"no passphrase: set {PASSPHRASE_ENV} or use --passphrase-file")
    value = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != value:
        raise CommandError("the passphrases differ")
    return value


def _ledger(args: argparse.Namespace, *, must_exist: bool = False) -> Any:
    """The ledger named by --ledger, else the default one; None with --no-ledger."""
    if getattr(args, "no_ledger", False):
        return None
    from .home import ledger_file
    from .provenance.ledger import Ledger, LedgerError

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
    from .provenance import keys

    if args.keys_command == "new":
        info = keys.generate_key(_passphrase(args, confirm=True), label=args.label or "")
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
        from .cli_standard_sign import sign_standard

        return sign_standard(args, _passphrase(args))
    if args.out:
        raise CommandError("--out is for --dicom-signature and --c2pa (our own records are "
                           "sidecars beside the originals)")
    from .progress_bar import ProgressBar
    from .provenance import keys
    from .provenance.signing import FAILED, REFUSED, SIGNED, SKIPPED, sign_paths

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise CommandError(f"{missing[0]}: no such file or folder")
    info = keys.resolve_key(args.key)
    private = keys.load_private_key(info.fingerprint, _passphrase(args))
    ledger = _ledger(args)
    bar = ProgressBar("signing")
    try:
        report = sign_paths(args.paths, private, ledger=ledger, force=args.force,
                            progress=bar.update)
    finally:
        if ledger is not None:
            ledger.close()
    for o in report.outcomes:
        if o.status in (FAILED, REFUSED):
            print(f"{o.status}: {o.message or o.path}", file=sys.stderr)
    print(f"{report.count(SIGNED)} signed, {report.count(SKIPPED)} already signed, "
          f"{report.count(REFUSED)} refused (changed since signed), {report.count(FAILED)} failed"
          f" — key {info.fingerprint[:16]}")
    return EXIT_FAILED if report.count(FAILED) or report.count(REFUSED) else EXIT_OK


# --- verify ----------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    from .progress_bar import ProgressBar
    from .provenance.verify import verify_paths

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise CommandError(f"{missing[0]}: no such file or folder")
    if args.engine != "ray" and (args.address or args.workers):
        raise CommandError("--address and --workers are for --engine ray")
    if args.engine == "ray":
        from .evaluation.engines import ray_available

        if not ray_available():  # before opening anything: nothing to undo
            from .evaluation.engines import RAY_MISSING

            raise CommandError(RAY_MISSING)
    ledger = _ledger(args)
    bar = None if args.json else ProgressBar("verifying")
    try:
        if args.engine == "ray":
            from .provenance.verify_batch import VerifyBatchError, verify_paths_on_ray

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
            print(json.dumps(r.to_json()))
    else:
        _print_table(results)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


def _display_names(paths: list[str]) -> list[str]:
    """Paths relative to their common folder, so same-named files stay distinguishable."""
    import os

    if len(paths) <= 1:
        return [Path(p).name for p in paths]
    common = os.path.commonpath([str(Path(p).resolve().parent) for p in paths])
    return [os.path.relpath(Path(p).resolve(), common) for p in paths]


def _print_table(results: list) -> None:
    marks = {"pass": "ok", "fail": "FAIL", "warn": "warn", "skip": "-"}
    names = ("signature", "signer", "pixels", "metadata", "file", "ledger")
    shown = _display_names([r.path for r in results])
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
        if not r.ok or standard:
            print(f"{'':<{width}}  -> {r.summary}")
    good = sum(r.ok for r in results)
    print(f"{good} of {len(results)} intact")


# --- ledger ----------------------------------------------------------------------------------
def cmd_ledger(args: argparse.Namespace) -> int:
    from .provenance import ledger as ledger_mod

    if args.ledger_command == "check-proof":  # offline: no ledger needed
        from .provenance.canonical_json import parse_json

        record = parse_json(Path(args.record).read_bytes())
        proof = parse_json(Path(args.proof).read_bytes())
        ok = ledger_mod.verify_inclusion_proof(record, proof.get("proof", proof))
        print("inclusion proof valid" if ok else "inclusion proof INVALID")
        return EXIT_OK if ok else EXIT_FAILED
    led = _ledger(args, must_exist=True)
    try:
        if args.ledger_command == "verify":
            # Tree heads count only when signed by a key in the trust store: anyone who
            # rewrites the file can also re-sign its heads with a key of their own.
            import base64

            from .provenance.keys import trusted_keys

            trusted = [base64.b64decode(k.public_key_b64) for k in trusted_keys()]
            report = led.verify(trusted_public_keys=trusted)
            print(f"{led.path}: {report.size} entries, root {report.root_hex}")
            if report.ok:
                print("ledger intact: hash chain, Merkle tree and signed tree heads verify")
                return EXIT_OK
            print(f"LEDGER DAMAGED: {report.problem}")
            return EXIT_FAILED
        if args.ledger_command == "proof":
            index = _find_entry(led, args.record)
            proof = led.inclusion_proof(index)
            doc = {"ledger": str(led.path), "proof": proof.to_json(),
                   "record_id": led.entry(index).record_id}
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
                from .provenance import keys

                info = keys.resolve_key(args.key)
                private = keys.load_private_key(info.fingerprint, _passphrase(args))
                head = led.sign_tree_head(private, info.fingerprint)
                print(f"signed tree head: size {head.tree_size}, root {head.root_hex}")
            else:
                head = led.tree_head()
                print(f"tree head: size {head.tree_size}, root {head.root_hex}")
            return EXIT_OK
    finally:
        led.close()
    raise CommandError("ledger: choose verify, proof, export, head or check-proof")


def _find_entry(led: Any, what: str) -> int:
    """An entry by record id (prefix), a sidecar/record file, or an image file."""
    p = Path(what)
    if p.is_file():
        from .provenance.record import read_record, record_id, sidecar_path

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


# --- parser ----------------------------------------------------------------------------------
def build_parsers(sub: Any) -> None:
    k = sub.add_parser("keys", help="signing keys and the trust store")
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

    s = sub.add_parser("sign", help="sign images (files or folders, recursive; resumable)")
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

    v = sub.add_parser("verify", help="verify images against their capture records")
    v.add_argument("paths", nargs="+", metavar="PATH")
    v.add_argument("--json", action="store_true", help="one JSON object per file")
    v.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                   help="where files are verified: here (default), or as Ray tasks in "
                        "chunks of 16 files; same results, same order")
    v.add_argument("--address", metavar="ADDR",
                   help="Ray: the cluster's address (default: a local instance); the "
                        "archive and ledger must be at the same paths on every node")
    v.add_argument("--workers", type=_positive_int, metavar="N",
                   help="Ray: CPUs of a local instance (default: all)")
    _add_ledger_options(v)
    v.set_defaults(handler=cmd_verify)

    led = sub.add_parser("ledger", help="the tamper-evident ledger of records")
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


def run(argv: Sequence[str], build: Any = None, user_errors: tuple = ()) -> int:
    """Parse ``argv`` with the given sub-command builder (default: this module's) and run
    the handler. Problems the user can act on print one line and exit 2, never a
    traceback."""
    parser = argparse.ArgumentParser(prog="workbench")
    (build or build_parsers)(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from .imaging.errors import ImageLoadError
    from .models.card import ModelLoadError
    from .provenance.keys import KeyStoreError
    from .provenance.record import RecordError

    try:
        return args.handler(args)
    except (CommandError, KeyStoreError, RecordError, ImageLoadError, ModelLoadError,
            *user_errors) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        _err(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}".lstrip(": "))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


PROVENANCE_COMMANDS = ("keys", "sign", "verify", "ledger")
