"""Inclusion and consistency proofs (RFC 6962/9162): made from the ledger, and checked
offline (``workbench ledger check-proof``) by whoever holds only a record and a proof."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..records.canonical_json import canonical_json, parse_json
from . import merkle
from .tree_heads import SignedTreeHead, TreeHead

if TYPE_CHECKING:
    from .store import Ledger


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


def make_inclusion_proof(ledger: Ledger, index: int,
                         tree_size: int | None = None) -> InclusionProof:
    """Proof that entry ``index`` is in the tree of the first ``tree_size`` entries."""
    with ledger._transaction() as conn:
        available = ledger._size(conn)
        size = available if tree_size is None else tree_size
        ledger._check_size(size, available, "tree size")
        if not 0 <= index < size:
            raise ledger._error(f"entry {index} is outside a tree of size {size}")
        leaves = ledger._leaf_hashes(conn, size)
    path = merkle.inclusion_path(index, leaves)
    return InclusionProof(index=index, tree_size=size, leaf_hash=leaves[index].hex(),
                          path=tuple(p.hex() for p in path),
                          root=merkle.merkle_root(leaves).hex())


def make_consistency_proof(ledger: Ledger, first_size: int, second_size: int) -> list[str]:
    """RFC 6962 proof (hex nodes) that the first ``second_size`` entries extend the first
    ``first_size``."""
    with ledger._transaction() as conn:
        available = ledger._size(conn)
        ledger._check_size(second_size, available, "tree size")
        ledger._check_size(first_size, second_size, "old tree size")
        leaves = ledger._leaf_hashes(conn, second_size)
    return [p.hex() for p in merkle.consistency_proof(first_size, leaves)]
