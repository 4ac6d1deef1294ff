"""Tree heads: the Merkle root over the first entries of the ledger, and its Ed25519
signature. A signed head is what makes a wholesale rewrite of the ledger visible: whoever
can write the file can recompute a chain, but not re-sign a head with a key they lack."""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..records.canonical_json import canonical_json
from . import merkle
from .entries import utc_now

if TYPE_CHECKING:
    from .store import Ledger

HEAD_COLUMNS = "tree_size, root, timestamp, key_fingerprint, public_key, signature"


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




def current_head(ledger: Ledger, size: int | None = None) -> TreeHead:
    """The head over the first ``size`` entries (default: all), from the stored leaf hashes."""
    with ledger._transaction() as conn:
        available = ledger._size(conn)
        size = available if size is None else size
        ledger._check_size(size, available, "tree size")
        leaves = ledger._leaf_hashes(conn, size)
    return TreeHead(size, merkle.merkle_root(leaves).hex(), utc_now())


def sign_current_head(ledger: Ledger, private_key: Ed25519PrivateKey,
                      key_fingerprint: str) -> SignedTreeHead:
    """Sign the ledger's current head and store it there (see ``Ledger.sign_tree_head``)."""
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ledger._error("tree heads are signed with an Ed25519 private key, not "
                            f"{type(private_key).__name__}")
    head = current_head(ledger)
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = SignedTreeHead(
        tree_size=head.tree_size, root_hex=head.root_hex, timestamp=head.timestamp,
        key_fingerprint=key_fingerprint, public_key=base64.b64encode(public).decode(),
        signature=base64.b64encode(private_key.sign(head.signing_payload())).decode())
    with ledger._transaction(immediate=True) as conn:
        conn.execute(f"INSERT INTO tree_heads ({HEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                     (signed.tree_size, signed.root_hex, signed.timestamp,
                      signed.key_fingerprint, signed.public_key, signed.signature))
    return signed


def read_heads(ledger: Ledger, conn: sqlite3.Connection) -> list[SignedTreeHead]:
    """Every stored signed head, oldest first; a damaged row is a LedgerError."""
    heads = []
    for n, r in enumerate(conn.execute(
            f"SELECT {HEAD_COLUMNS} FROM tree_heads ORDER BY rowid")):
        if not isinstance(r[0], int) or any(not isinstance(v, str) for v in r[1:]):
            raise ledger._error(f"signed tree head #{n + 1} is damaged (wrong column types)")
        heads.append(SignedTreeHead(*r))
    return heads
