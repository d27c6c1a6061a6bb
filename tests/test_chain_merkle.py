"""RFC 6962 Merkle log (native and reference), and the original-style ``MerkleTree``."""

from __future__ import annotations

import hashlib
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import _core, _reference
from proxilion.audit import MerkleTree

# Certificate Transparency's reference tree (RFC 6962 test data).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def ct_tree(impl: ModuleType) -> object:
    t = impl.MerkleLog()
    for leaf in CT_LEAVES:
        t.append(leaf)
    return t


def test_rfc6962_reference_roots_and_proofs(impl: ModuleType) -> None:
    t = ct_tree(impl)
    assert len(t) == t.size == 8
    for size, want in enumerate(CT_ROOTS):
        assert t.root(size).hex() == want
    for (index, size), want in CT_INCLUSION.items():
        proof = t.inclusion_proof(index, size)
        assert [p.hex() for p in proof] == want
        leaf = impl.merkle_leaf_hash(CT_LEAVES[index])
        assert leaf == t.leaf_hash(index)
        assert impl.merkle_verify_inclusion(leaf, index, size, proof, t.root(size))


def test_every_proof_verifies_for_every_size(impl: ModuleType) -> None:
    t = impl.MerkleLog()
    n = 37
    t.extend_leaves(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(n)))
    for size in range(1, n + 1):
        root = t.root(size)
        for index in range(size):
            proof = t.inclusion_proof(index, size)
            leaf = t.leaf_hash(index)
            assert impl.merkle_verify_inclusion(leaf, index, size, proof, root)
            assert not impl.merkle_verify_inclusion(leaf, index, size, proof, bytes(32))
            assert not impl.merkle_verify_inclusion(bytes(32), index, size, proof, root)
            if size > 1:
                assert not impl.merkle_verify_inclusion(leaf, index, size, proof[:-1], root)
                assert not impl.merkle_verify_inclusion(leaf, (index + 1) % size, size, proof, root)
        for old in range(1, size + 1):
            proof = t.consistency_proof(old, size)
            old_root = t.root(old)
            assert impl.merkle_verify_consistency(old, size, old_root, root, proof)
            assert not impl.merkle_verify_consistency(old, size, bytes(32), root, proof)
            if old < size:
                assert not impl.merkle_verify_consistency(old, size, old_root, bytes(32), proof)
                assert not impl.merkle_verify_consistency(old, size, old_root, root, [])
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not impl.merkle_verify_consistency(old, size, old_root, root, bad)


def test_bad_arguments(impl: ModuleType) -> None:
    t = ct_tree(impl)
    with pytest.raises(ValueError, match="leaf index 8 is out of range for tree size 8"):
        t.inclusion_proof(8)
    with pytest.raises(ValueError, match="tree size 9 is larger than the 8 leaves held"):
        t.root(9)
    with pytest.raises(ValueError, match="consistency needs 0 < old size <= new size"):
        t.consistency_proof(0, 4)
    with pytest.raises(ValueError, match="consistency needs 0 < old size <= new size"):
        t.consistency_proof(5, 4)
    with pytest.raises(ValueError, match="multiple of 32 bytes"):
        t.extend_leaves(b"abc")
    with pytest.raises(ValueError, match="multiple of 32 bytes"):
        t.extend_leaf_hashes(b"abc")
    with pytest.raises(OverflowError):
        t.inclusion_proof(-1)
    # Malformed proofs are simply not valid.
    root = t.root()
    assert not impl.merkle_verify_inclusion(b"short", 0, 8, [], root)
    assert not impl.merkle_verify_inclusion(t.leaf_hash(0), 0, 8, [b"x" * 31], root)
    assert not impl.merkle_verify_inclusion(t.leaf_hash(0), 8, 8, [], root)
    assert not impl.merkle_verify_consistency(0, 8, root, root, [])
    assert impl.merkle_verify_consistency(8, 8, root, root, [])
    assert not impl.merkle_verify_consistency(8, 8, root, root, [root])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.data())
def test_native_matches_reference(leaves: list[bytes], data: st.DataObject) -> None:
    a, b = _core.MerkleLog(), _reference.MerkleLog()
    for leaf in leaves:
        assert a.append(leaf) == b.append(leaf)
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    assert a.root(size) == b.root(size)
    assert a.inclusion_proof(index, size) == b.inclusion_proof(index, size)
    assert a.consistency_proof(old, size) == b.consistency_proof(old, size)


def _pair(left: str, right: str) -> str:
    text = left.replace("sha256:", "") + right.replace("sha256:", "")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_original_merkle_tree_roots_and_fixed_odd_leaf_proofs() -> None:
    leaves = ["sha256:" + hashlib.sha256(bytes([i])).hexdigest() for i in range(5)]
    tree = MerkleTree()
    with pytest.raises(ValueError, match="Cannot compute root of empty tree"):
        tree.compute_root()
    for i, leaf in enumerate(leaves):
        assert tree.add_leaf(leaf) == i
    assert tree.leaf_count == 5 and tree.root is None
    # The original's formula: odd last node paired with itself, hex text concatenated.
    l1 = [_pair(leaves[0], leaves[1]), _pair(leaves[2], leaves[3]), _pair(leaves[4], leaves[4])]
    l2 = [_pair(l1[0], l1[1]), _pair(l1[2], l1[2])]
    root = _pair(l2[0], l2[1])
    assert tree.compute_root() == root == tree.root
    # Every leaf's proof verifies, the odd last one included (the original's fails there).
    for i, leaf in enumerate(leaves):
        proof = tree.get_proof(i)
        assert tree.verify_proof(leaf, proof, root)
        assert not tree.verify_proof(leaves[(i + 1) % 5], proof, root)
    assert tree.get_proof(4)[0] == (leaves[4], "R")
    with pytest.raises(IndexError):
        tree.get_proof(5)
    single = MerkleTree()
    single.add_leaf(leaves[0])
    assert single.compute_root() == leaves[0]
    assert single.get_proof(0) == []
    assert tree.to_dict() == {"leaves": leaves, "root": root, "leaf_count": 5}
    tree.clear()
    assert tree.leaf_count == 0 and tree.root is None
