"""``workbench sign --dicom-signature SIGNER | --c2pa SIGNER --out DIR``: standard
signatures on copies of the images (the originals are never changed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .plumbing import EXIT_FAILED, EXIT_OK, CommandError, ProgressBar


def sign_standard(args: argparse.Namespace, passphrase: str) -> int:
    from ..imaging.loader import find_images, is_dicom_file, load_image
    from ..provenance.standards import certificates

    if args.dicom_signature and args.c2pa:
        raise CommandError("--dicom-signature and --c2pa sign different kinds of files: "
                           "run them one at a time")
    if not args.out:
        raise CommandError("standard signatures write signed copies: give --out DIR")
    out = Path(args.out)
    files: list[Path] = []
    for p in map(Path, args.paths):
        if not p.exists():
            raise CommandError(f"{p}: no such file or folder")
        files.extend(find_images(p) if p.is_dir() else [p])
    out.mkdir(parents=True, exist_ok=True)
    try:
        identity = certificates.load_identity(args.dicom_signature or args.c2pa, passphrase)
    except certificates.CertificateError as exc:
        raise CommandError(str(exc)) from None
    signed = failed = skipped = 0
    bar = ProgressBar("signing")
    for i, f in enumerate(files):
        dst = out / f.name
        try:
            if dst.resolve() == f.resolve():
                raise CommandError(f"{f}: --out must not be the folder of the originals")
            if args.dicom_signature:
                # any DICOM object, image or not (SR, RT plan, ECG): dcmsign signs them
                if not is_dicom_file(f):
                    skipped += 1
                    continue
                from ..provenance.standards.dicom_signature.sign import sign_dicom

                sign_dicom(f, dst, identity, profile=args.profile)
            else:
                if load_image(f).kind != "photo" or f.suffix.lower() not in (
                        ".jpg", ".jpeg", ".png"):
                    skipped += 1
                    continue
                from ..provenance.standards.c2pa_signing import sign_c2pa

                sign_c2pa(f, dst, identity, sidecar=args.sidecar)
            signed += 1
        except CommandError:
            raise
        except Exception as exc:  # one bad file never stops the rest
            failed += 1
            print(f"failed: {f}: {str(exc).splitlines()[0]}", file=sys.stderr)
        finally:
            bar.update(i + 1, len(files), f.name)
    what = "DICOM signature" if args.dicom_signature else "C2PA manifest"
    print(f"{signed} signed with a {what} by {identity.certificate.subject.rfc4514_string()} "
          f"into {out}, {skipped} skipped (not {'DICOM' if args.dicom_signature else 'JPEG/PNG'})"
          f", {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK
