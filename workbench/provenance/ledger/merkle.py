"""Merkle trees as Certificate Transparency defines them (RFC 6962 section 2.1, SHA-256).

Why this exact construction: an auditor should be able to check our inclusion and
consistency proofs with any RFC 6962 / RFC 9162 implementation, not only with ours. So the
hashing (domain-separated leaves and nodes), the tree shape (the left subtree is the largest
power of two strictly smaller than the tree size) and the proof formats follow the RFCs
exactly; the verifiers are the RFC 9162 algorithms, which need nothing but the proof, the
sizes and the roots.

Everything here is a pure function of its arguments. Hashes are raw 32-byte ``bytes``.
Tree computations are iterative and linear in the number of leaves, because the ledger calls
them on its whole history (around 10^5 leaves), where recursion over slices would copy the
leaf list at every level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "inclusion_path",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "roots_at_sizes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
# RFC 6962 2.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data).

    The 0x00 prefix (versus 0x01 for interior nodes) is RFC 6962's second-preimage defence:
    no leaf can be passed off as an interior node, or the other way round.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node over two child hashes."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962: the largest power of two with k < n (n must be at least 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(stack: list[bytes]) -> bytes:
    """Root of a tree whose left-to-right perfect subtrees have the roots in ``stack``.

    RFC 6962 splits n leaves into a perfect left subtree of the largest power of two below
    n and the rest, recursively, so the tree over n leaves is the perfect subtrees of n's
    binary decomposition (largest first) joined from the right.
    """
    root = stack[-1]
    for left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def _stack_push(stack: list[bytes], count: int, leaf: bytes) -> None:
    """Add the ``count``-th leaf (1-based) to a stack of perfect-subtree roots.

    Each trailing zero bit of ``count`` means two equal-sized perfect subtrees are now side
    by side and merge into one: amortised one node hash per leaf, and the stack holds at
    most log2(n) + 1 hashes.
    """
    stack.append(leaf)
    while count & 1 == 0:
        right = stack.pop()
        stack[-1] = node_hash(stack[-1], right)
        count >>= 1


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 2.1 over already-hashed leaves (see :func:`leaf_hash`).

    Computed in one pass with a stack of perfect-subtree roots: n - 1 node hashes, O(log n)
    memory, no recursion.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    stack: list[bytes] = []
    for count, leaf in enumerate(leaf_hashes, start=1):
        _stack_push(stack, count, leaf)
    return _fold(stack)


def roots_at_sizes(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The roots of the trees over the first ``s`` leaves, for every ``s`` in ``sizes``.

    One pass over the leaves whatever the number of sizes: the ledger uses it to check every
    signed tree head it holds without recomputing the tree once per head. Sizes larger than
    the number of leaves are absent from the result.
    """
    wanted = sorted(set(sizes))
    out: dict[int, bytes] = {}
    if not wanted:
        return out
    if wanted[0] < 0:
        raise ValueError(f"tree size {wanted[0]} is negative")
    pos = 0
    if wanted[0] == 0:
        out[0] = EMPTY_ROOT
        pos = 1
    stack: list[bytes] = []
    for count, leaf in enumerate(leaf_hashes, start=1):
        if pos == len(wanted):
            break
        _stack_push(stack, count, leaf)
        if count == wanted[pos]:
            out[count] = _fold(stack)
            pos += 1
    return out


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) without copying the slice."""
    if lo == hi:
        return EMPTY_ROOT
    stack: list[bytes] = []
    for count in range(1, hi - lo + 1):
        _stack_push(stack, count, leaves[lo + count - 1])
    return _fold(stack)


def inclusion_path(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 2.1.1: the audit path of leaf ``index``, leaf level first.

    Walks the RFC's recursion from the top as a loop: at each split the sibling subtree's
    root joins the path and the walk continues into the half holding the leaf. The sibling
    subtrees are disjoint, so the whole path costs under n node hashes.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    siblings: list[bytes] = []  # collected top-down, returned bottom-up as the RFC orders it
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if m < k:
            siblings.append(_subtree_root(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            siblings.append(_subtree_root(leaf_hashes, lo, lo + k))
            lo, m = lo + k, m - k
    siblings.reverse()
    return siblings


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf ``index`` is in the tree with ``root``?

    Needs no tree: ``fn``/``sn`` track the leaf's and the last leaf's positions while
    climbing, which tells on which side each path element sits and when the leaf lies on
    the tree's right edge (where a level has no sibling). A path too short or too long for
    the tree size fails, so a proof cannot be replayed against another size.
    """
    if not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 2.1.2: evidence that the first m leaves are unchanged.

    SUBPROOF as a loop: while the old tree (the first ``m`` leaves of the current subtree)
    is not the whole subtree, descend into the half it ends in and record the other half's
    root. ``complete`` is the RFC's flag ``b``: it is false once the walk has gone right,
    after which the old tree's last subtree root is itself part of the proof. The proof is
    empty for m == n (nothing to prove) and, by convention, for m == 0.
    """
    n = len(leaf_hashes)
    if not 0 <= m <= n:
        raise ValueError(f"old tree size {m} is outside 0..{n}")
    if m == 0 or m == n:
        return []
    proof: list[bytes] = []  # top-down; the RFC lists it bottom-up
    lo, hi, mm, complete = 0, n, m, True
    while mm != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if mm <= k:
            proof.append(_subtree_root(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_subtree_root(leaf_hashes, lo, lo + k))
            lo, mm, complete = lo + k, mm - k, False
    if not complete:
        proof.append(_subtree_root(leaf_hashes, lo, hi))
    proof.reverse()
    return proof


def verify_consistency(
    m: int, n: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree of size ``n`` an append-only extension of size ``m``?

    Rebuilds both roots from the proof alone: ``fr`` from the nodes that lie in the old tree,
    ``sr`` from all of them. If the old tree is a perfect subtree its root is not in the
    proof (the verifier has it), so it is prepended. Equal sizes need an empty proof and
    equal roots; every tree extends the empty tree.
    """
    if not 0 <= m <= n:
        return False
    if m == n:
        return not proof and first_root == second_root
    if m == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
