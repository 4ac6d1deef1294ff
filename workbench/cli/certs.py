"""``workbench certs``: the X.509 certificates DICOM and C2PA signatures need.

    workbench certs new NAME [--org ORG]       a local CA (made once, trusted) + a signer
    workbench certs import NAME --pkcs12 F | --cert CHAIN.pem --key KEY.pem
    workbench certs list                       own signers and trusted CAs
    workbench certs trust CA.pem --label L     trust a CA explicitly
    workbench certs export NAME                the signer's chain as PEM (for peers)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .plumbing import EXIT_OK, CommandError, passphrase


def cmd_certs(args: argparse.Namespace) -> int:
    from ..provenance.standards import certificates as c

    try:
        return _dispatch(args, c)
    except c.CertificateError as exc:
        raise CommandError(str(exc)) from None


def _dispatch(args: argparse.Namespace, c: Any) -> int:
    if args.action == "new":
        ident = _new_signer(args, c)
        print(f"signer {ident.name!r}: {ident.certificate.subject.rfc4514_string()}, issued "
              f"by {ident.certificate.issuer.rfc4514_string()}, valid to "
              f"{ident.certificate.not_valid_after_utc:%Y-%m-%d}")
    elif args.action == "import":
        if bool(args.pkcs12) == bool(args.cert):
            raise CommandError("give either --pkcs12 FILE or --cert CHAIN.pem --key KEY.pem")
        store = passphrase(args, confirm=True)
        if args.pkcs12:
            folder = c.import_pkcs12(args.name, args.pkcs12, args.password or "", store)
        else:
            if not args.key:
                raise CommandError("--cert needs --key")
            folder = c.import_pem(args.name, args.cert, args.key, args.password or "", store)
        print(f"imported {args.name!r} into {folder}")
    elif args.action == "list":
        for folder in sorted(p for p in c.x509_dir().iterdir() if p.is_dir()):
            cert = c.read_certificates(folder / "cert.pem")[0]
            trusted, why = c.verify_chain(c.read_certificates(folder / "chain.pem"))
            print(f"{folder.name:<20} {cert.subject.rfc4514_string():<40} "
                  f"to {cert.not_valid_after_utc:%Y-%m-%d}  "
                  f"{'trusted chain' if trusted else 'untrusted: ' + why}")
        for cert in c.trust_anchors():
            print(f"{'(trusted CA)':<20} {cert.subject.rfc4514_string()}")
    elif args.action == "trust":
        certs = c.read_certificates(args.certificate)
        for cert in certs:
            path = c.trust_anchor(cert, args.label if len(certs) == 1 else
                                  f"{args.label}-{cert.serial_number:x}"[:60])
            print(f"trusted {cert.subject.rfc4514_string()} ({path.name})")
    elif args.action == "export":
        chain = c.identity_folder(args.name) / "chain.pem"
        if not chain.is_file():
            raise CommandError(f"no certificate named {args.name!r} (see 'workbench certs "
                               "list')")
        sys.stdout.write(chain.read_text())
    return EXIT_OK


def _new_signer(args: argparse.Namespace, c: Any) -> Any:
    """A signer issued by the local CA, creating (and trusting) the CA the first time."""
    secret = passphrase(args, confirm=True)
    ca_folder = c.x509_dir() / "local-ca"
    if not (ca_folder / "key.pem").is_file():
        return c.create_local_pki(args.name, secret, organisation=args.org or "")
    ca = c.load_identity("local-ca", secret)
    key, cert = c.issue_signer(ca.key, ca.certificate, args.name, args.org or "")
    c.save_identity(args.name, key, [cert, ca.certificate], secret)
    return c.SignerIdentity(args.name, key, cert, (cert, ca.certificate))


def _certs_arguments(p: argparse.ArgumentParser) -> None:
    cs = p.add_subparsers(dest="action", required=True)
    new = cs.add_parser("new", help="a signer certificate from the local CA (made once)")
    new.add_argument("name", help="e.g. the device or site: 'CR room 3'")
    new.add_argument("--org", help="organisation in the certificate")
    new.add_argument("--passphrase-file", metavar="FILE")
    imp = cs.add_parser("import", help="a signer from PKCS#12 or PEM files")
    imp.add_argument("name")
    imp.add_argument("--pkcs12", metavar="FILE")
    imp.add_argument("--cert", metavar="CHAIN.pem")
    imp.add_argument("--key", metavar="KEY.pem")
    imp.add_argument("--password", help="of the PKCS#12 file or the PEM key")
    imp.add_argument("--passphrase-file", metavar="FILE", help="to store the key with")
    cs.add_parser("list", help="own signers and trusted CAs")
    t = cs.add_parser("trust", help="trust a CA certificate (PEM or DER)")
    t.add_argument("certificate")
    t.add_argument("--label", required=True)
    e = cs.add_parser("export", help="print a signer's certificate chain (PEM)")
    e.add_argument("name")
    p.set_defaults(handler=cmd_certs)


ARGUMENTS = {"certs": _certs_arguments}
