"""What signing does to one file, the one rule that ``workbench sign`` and the GUI's Sign
action share (they used to differ: the GUI re-signed files the command line skipped).

- No sidecar: sign.
- A sidecar holding a valid record of exactly these bytes: skip. Signing is resumable, and
  signing again would only add a second ledger entry for the same capture.
- A sidecar whose record no longer matches the file (the bytes changed), or that cannot be
  read, or whose signature does not verify: refuse. Signing again would bless a changed
  file and hide the evidence; the existing sidecar is kept.
- ``force`` signs in every case: the user has decided that the current bytes are the
  original.

Whose key signed the existing record does not matter here; trust is what verifying asks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..imaging.medical_image import MedicalImage

SIGN, SKIP, REFUSE = "sign", "skip", "refuse"


@dataclass(frozen=True)
class SigningDecision:
    """What signing should do with ``path`` (``action``: SIGN, SKIP or REFUSE), and why in
    one line that names the file. ``image`` is the decoded image to sign, when the caller
    already had it (the GUI), so the file is not decoded twice."""

    path: Path
    action: str
    reason: str
    image: MedicalImage | None = field(default=None, compare=False, repr=False)

    @property
    def signs(self) -> bool:
        return self.action == SIGN


def decide_signing(path: str | os.PathLike[str], image: MedicalImage | None = None, *,
                   force: bool = False) -> SigningDecision:
    """Sign, skip or refuse ``path`` (see the module's rules); reads the sidecar and, when
    there is one, hashes the file. Raises OSError when the file cannot be read."""
    from ..provenance.records.fingerprint import file_sha256
    from ..provenance.records.record import (
        RecordError,
        check_signature,
        read_record,
        sidecar_path,
    )

    path = Path(path)
    side = sidecar_path(path)
    if force:
        why = "signed again (force)" if side.is_file() else "not signed yet"
        return SigningDecision(path, SIGN, f"{path}: {why}", image)
    if not side.is_file():
        return SigningDecision(path, SIGN, f"{path}: not signed yet", image)
    try:
        record = read_record(side)
    except RecordError as exc:
        return SigningDecision(path, REFUSE, f"{path}: {exc}", image)
    ok, why = check_signature(record)
    if not ok:
        return SigningDecision(path, REFUSE, f"{path}: existing sidecar is not valid ({why})",
                               image)
    if (record.get("file") or {}).get("sha256") != file_sha256(path):
        return SigningDecision(path, REFUSE, f"{path}: file changed since it was signed "
                               "(existing sidecar kept)", image)
    return SigningDecision(path, SKIP, f"{path}: sidecar already holds a valid record of "
                           "this file", image)


def sign_as_decided(decision: SigningDecision, private_key: Any, *,
                    ledger: Any = None) -> dict[str, Any]:
    """Carry out a SIGN decision: build and sign the record, append it to ``ledger`` (when
    given) and write the sidecar; returns the record. A SKIP or REFUSE decision raises
    ValueError with its reason: the caller asked for something the policy ruled out.
    ImageLoadError (the file is no image) and OSError (the sidecar cannot be written)
    propagate."""
    if not decision.signs:
        raise ValueError(decision.reason)
    from ..provenance.records.signing import sign_image

    # sign_image: an unwritable folder fails before the ledger entry; a sidecar never
    # exists without its entry.
    return sign_image(decision.path, private_key, ledger=ledger, image=decision.image)
