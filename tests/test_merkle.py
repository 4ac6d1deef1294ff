"""RFC 6962 Merkle tree functions against a naive recursive transcription of the RFC."""

from __future__ import annotations

import hashlib
import random

import pytest

from workbench.provenance.ledger import merkle

MAX_SIZE = 64


# --- Reference: RFC 6962 section 2.1 transcribed literally (recursive, slice-copying). ---

def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(data: list[bytes]) -> bytes:
    """MTH over the raw leaf inputs (not pre-hashed), as the RFC writes it."""
    n = len(data)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + data[0])
    k = _k(n)
    return _sha(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:]))


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, data[:k]) + [ref_mth(data[k:])]
    return ref_path(m - k, data[k:]) + [ref_mth(data[:k])]


def ref_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [ref_mth(data)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, data[:k], b) + [ref_mth(data[k:])]
    return ref_subproof(m - k, data[k:], False) + [ref_mth(data[:k])]


def ref_proof(m: int, data: list[bytes]) -> list[bytes]:
    return ref_subproof(m, data, True)


# --- Fixtures ---

def _data(n: int, seed: int = 6962) -> list[bytes]:
    rng = random.Random(seed)
    # Variable-length inputs, so a leaf hash is never mistaken for a leaf input.
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(n)]


DATA = _data(MAX_SIZE)
LEAVES = [merkle.leaf_hash(d) for d in DATA]


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


# --- Hashing and roots ---

def test_hash_prefixes_are_rfc6962_domain_separation() -> None:
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert merkle.node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(
        b"\x01" + b"L" * 32 + b"R" * 32).digest()
    # A leaf over the concatenation of two hashes is not the node over them.
    a, b = LEAVES[0], LEAVES[1]
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


def test_empty_tree_root_is_sha256_of_empty_string() -> None:
    expected = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert merkle.merkle_root([]) == expected
    assert expected == merkle.EMPTY_ROOT


def test_single_leaf_root_is_the_leaf_hash() -> None:
    # RFC 6962: MTH({d0}) = SHA-256(0x00 || d0); for the empty input that is this known value.
    assert merkle.merkle_root([merkle.leaf_hash(b"")]).hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@pytest.mark.parametrize("n", range(1, MAX_SIZE + 1))
def test_root_matches_reference(n: int) -> None:
    assert merkle.merkle_root(LEAVES[:n]) == ref_mth(DATA[:n])


def test_root_shape_is_largest_power_of_two_split_not_pairwise_balanced() -> None:
    # Size 5 must be node(MTH(0..3), leaf4), not node(MTH(0..2), MTH(3..4)) or similar.
    lv = LEAVES
    left = merkle.node_hash(merkle.node_hash(lv[0], lv[1]), merkle.node_hash(lv[2], lv[3]))
    assert merkle.merkle_root(lv[:5]) == merkle.node_hash(left, lv[4])


def test_roots_at_sizes_match_individual_roots() -> None:
    sizes = [0, 1, 2, 3, 7, 8, 33, 64, 64, 100]
    roots = merkle.roots_at_sizes(iter(LEAVES), sizes)
    assert set(roots) == {0, 1, 2, 3, 7, 8, 33, 64}  # 100 is beyond the leaves
    for size, root in roots.items():
        assert root == ref_mth(DATA[:size])
    with pytest.raises(ValueError):
        merkle.roots_at_sizes(LEAVES, [-1])


def test_root_of_100k_leaves_is_linear_and_not_recursive() -> None:
    # Deep recursion would hit Python's limit long before this; the result must still be
    # the split-tree root, checked by recomputing it through the top-level RFC split.
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100_003)]
    k = 65536
    expected = merkle.node_hash(merkle.merkle_root(leaves[:k]), merkle.merkle_root(leaves[k:]))
    assert merkle.merkle_root(leaves) == expected


# --- Inclusion ---

@pytest.mark.parametrize("n", range(1, MAX_SIZE + 1))
def test_inclusion_paths_match_reference_and_verify(n: int) -> None:
    root = merkle.merkle_root(LEAVES[:n])
    for i in range(n):
        path = merkle.inclusion_path(i, LEAVES[:n])
        assert path == ref_path(i, DATA[:n]), (n, i)
        assert merkle.verify_inclusion(LEAVES[i], i, n, path, root), (n, i)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 31, 32, 33, 64])
def test_tampered_inclusion_fails(n: int) -> None:
    root = merkle.merkle_root(LEAVES[:n])
    other_leaf = merkle.leaf_hash(b"not in the tree")
    for i in range(n):
        path = merkle.inclusion_path(i, LEAVES[:n])
        assert not merkle.verify_inclusion(other_leaf, i, n, path, root)
        assert not merkle.verify_inclusion(LEAVES[i], i, n, path, _flip(root))
        if n > 1:
            # Claiming another position, or the next tree (its size with its root), must fail.
            # (The size alone is not bound: the root is what commits to it.)
            assert not merkle.verify_inclusion(LEAVES[i], (i + 1) % n, n, path, root)
            if n < MAX_SIZE:
                next_root = merkle.merkle_root(LEAVES[:n + 1])
                assert not merkle.verify_inclusion(LEAVES[i], i, n + 1, path, next_root)
            for j in range(len(path)):
                bad = list(path)
                bad[j] = _flip(bad[j], 3)
                assert not merkle.verify_inclusion(LEAVES[i], i, n, bad, root)
            assert not merkle.verify_inclusion(LEAVES[i], i, n, path[:-1], root)
            assert not merkle.verify_inclusion(LEAVES[i], i, n, path + [root], root)
        # The raw leaf input in place of its hash must not verify.
        assert not merkle.verify_inclusion(DATA[i], i, n, path, root)
    assert not merkle.verify_inclusion(LEAVES[0], n, n, [], root)
    assert not merkle.verify_inclusion(LEAVES[0], -1, n, [], root)


def test_inclusion_path_rejects_out_of_range_index() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_path(3, LEAVES[:3])
    with pytest.raises(ValueError):
        merkle.inclusion_path(0, [])


# --- Consistency ---

@pytest.mark.parametrize("n", range(1, MAX_SIZE + 1))
def test_consistency_proofs_match_reference_and_verify(n: int) -> None:
    second = merkle.merkle_root(LEAVES[:n])
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(m, LEAVES[:n])
        assert proof == ref_proof(m, DATA[:n]), (m, n)
        first = merkle.merkle_root(LEAVES[:m])
        assert merkle.verify_consistency(m, n, first, second, proof), (m, n)


def test_consistency_proof_of_equal_sizes_is_empty() -> None:
    root = merkle.merkle_root(LEAVES[:10])
    assert merkle.consistency_proof(10, LEAVES[:10]) == []
    assert merkle.verify_consistency(10, 10, root, root, [])
    assert not merkle.verify_consistency(10, 10, root, _flip(root), [])
    assert not merkle.verify_consistency(10, 10, root, root, [root])


def test_every_tree_extends_the_empty_tree() -> None:
    assert merkle.consistency_proof(0, LEAVES[:5]) == []
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, merkle.merkle_root(LEAVES[:5]), [])


@pytest.mark.parametrize("n", [2, 3, 4, 7, 8, 9, 16, 17, 33, 64])
def test_tampered_consistency_fails(n: int) -> None:
    second = merkle.merkle_root(LEAVES[:n])
    for m in range(1, n):
        proof = merkle.consistency_proof(m, LEAVES[:n])
        first = merkle.merkle_root(LEAVES[:m])
        assert not merkle.verify_consistency(m, n, _flip(first), second, proof), (m, n)
        assert not merkle.verify_consistency(m, n, first, _flip(second), proof), (m, n)
        assert not merkle.verify_consistency(m, n, first, second, []), (m, n)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = _flip(bad[j], 5)
            assert not merkle.verify_consistency(m, n, first, second, bad), (m, n, j)
        assert not merkle.verify_consistency(m, n, first, second, proof[:-1]), (m, n)
        assert not merkle.verify_consistency(m, n, first, second, proof + [second]), (m, n)
        # The same proof must not link the old head to the next tree, nor run backwards.
        if n < MAX_SIZE:
            next_root = merkle.merkle_root(LEAVES[:n + 1])
            assert not merkle.verify_consistency(m, n + 1, first, next_root, proof), (m, n)
        assert not merkle.verify_consistency(n, m, second, first, proof), (m, n)


@pytest.mark.parametrize("n", [2, 5, 8, 21, 64])
def test_consistency_detects_a_rewritten_old_leaf(n: int) -> None:
    """An old tree head and a new tree whose history was edited: no honest proof links them."""
    for m in range(1, n):
        first = merkle.merkle_root(LEAVES[:m])
        edited = list(LEAVES[:n])
        edited[m - 1] = merkle.leaf_hash(DATA[m - 1] + b"!")
        proof = merkle.consistency_proof(m, edited)
        assert not merkle.verify_consistency(m, n, first, merkle.merkle_root(edited), proof)


def test_consistency_proof_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        merkle.consistency_proof(6, LEAVES[:5])
    with pytest.raises(ValueError):
        merkle.consistency_proof(-1, LEAVES[:5])
    root = merkle.merkle_root(LEAVES[:5])
    assert not merkle.verify_consistency(6, 5, root, root, [root])
    assert not merkle.verify_consistency(-1, 5, root, root, [])
