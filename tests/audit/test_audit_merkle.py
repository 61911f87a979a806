"""RFC 6962 Merkle trees: the published test vectors, pymerkle as an independent oracle, and
forged proofs that must be refused."""

from __future__ import annotations

import random

import pytest
from pymerkle import InmemoryTree

from audit import merkle

# Certificate Transparency's reference inputs and tree heads for sizes 0..8.
INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
          "606162636465666768696a6b6c6d6e6f"]
ROOTS = [
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
INCLUSION = [  # (0-based index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in INPUTS]
TREE = merkle.Tree(LEAVES)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_roots_match_the_reference_tree_heads() -> None:
    for size, expected in enumerate(ROOTS):
        assert merkle.root(LEAVES[:size]).hex() == expected
        assert TREE.root(size).hex() == expected


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    assert [p.hex() for p in TREE.inclusion_proof(index, size)] == path
    assert merkle.verify_inclusion(LEAVES[index], index, size, [h(p) for p in path],
                                   h(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, path: list[str]) -> None:
    assert [p.hex() for p in TREE.consistency_proof(old, new)] == path
    assert merkle.verify_consistency(old, new, h(ROOTS[old]), h(ROOTS[new]), [h(p) for p in path])


def _oracle(leaves: list[bytes]) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")  # security=True: RFC 6962 0x00/0x01 prefixes
    for data in leaves:
        tree.append_entry(data)
    return tree


def test_pymerkle_agrees_on_roots_and_proofs() -> None:
    rng = random.Random(6962)
    data = [rng.randbytes(rng.randint(0, 40)) for _ in range(70)]
    leaves = [merkle.leaf_hash(d) for d in data]
    tree = merkle.Tree(leaves)
    oracle = _oracle(data)
    for size in range(1, len(data) + 1):
        assert tree.root(size) == oracle.get_root(size)
        acc = merkle.Accumulator()
        for leaf in leaves[:size]:
            acc.add(leaf)
        assert acc.root() == oracle.get_root(size)
    for size in (1, 2, 3, 7, 8, 9, 31, 64, 70):
        for index in range(size):
            mine = tree.inclusion_proof(index, size)
            theirs = [h(p) for p in oracle.prove_inclusion(index + 1, size).serialize()["path"]]
            # pymerkle's path also lists the leaf itself; the siblings are the same hashes.
            assert sorted(mine) == sorted(p for p in theirs if p != leaves[index]) or size == 1
            assert merkle.verify_inclusion(leaves[index], index, size, mine, oracle.get_root(size))
        for old in range(1, size + 1):
            mine = tree.consistency_proof(old, size)
            # pymerkle decomposes consistency proofs differently; its roots are the oracle.
            assert merkle.verify_consistency(old, size, oracle.get_root(old),
                                             oracle.get_root(size), mine)


def test_forged_inclusion_proofs_fail() -> None:
    index, size, path = INCLUSION[1]
    proof = [h(p) for p in path]
    root = h(ROOTS[size])
    leaf = LEAVES[index]
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    assert not merkle.verify_inclusion(LEAVES[index + 1], index, size, proof, root)
    assert not merkle.verify_inclusion(leaf, index + 1, size, proof, root)  # wrong position
    assert not merkle.verify_inclusion(leaf, index, size + 1, proof, root)
    assert not merkle.verify_inclusion(leaf, index, size, proof[:-1], root)  # too short
    assert not merkle.verify_inclusion(leaf, index, size, [*proof, proof[0]], root)  # too long
    assert not merkle.verify_inclusion(leaf, index, size, proof[::-1], root)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert not merkle.verify_inclusion(leaf, index, size, flipped, root)
    assert not merkle.verify_inclusion(leaf, size, size, proof, root)  # index out of range
    # An interior node presented as a "leaf" with a shortened path must not verify.
    node = merkle.node_hash(LEAVES[4], LEAVES[5])
    assert not merkle.verify_inclusion(node, 2, size, proof[1:], root)


def test_forged_consistency_proofs_fail() -> None:
    old, new, path = CONSISTENCY[2]
    proof = [h(p) for p in path]
    good = (h(ROOTS[old]), h(ROOTS[new]))
    assert merkle.verify_consistency(old, new, *good, proof)
    assert not merkle.verify_consistency(old, new, h(ROOTS[old - 1]), good[1], proof)
    assert not merkle.verify_consistency(old, new, good[0], h(ROOTS[new - 1]), proof)
    assert not merkle.verify_consistency(old - 1, new, *good, proof)
    assert not merkle.verify_consistency(old, new, *good, proof[:-1])
    assert not merkle.verify_consistency(old, new, *good, [*proof, proof[0]])
    assert not merkle.verify_consistency(old, new, *good, [])
    assert not merkle.verify_consistency(new, old, good[1], good[0], proof)
    assert not merkle.verify_consistency(old, old, good[0], good[0], proof)  # equal sizes: empty
    # A rewritten history: the old root of another tree cannot be proven consistent.
    other = [merkle.leaf_hash(b"forged" + bytes([i])) for i in range(old)] + LEAVES[old:new]
    forged = merkle.Tree(other)
    assert not merkle.verify_consistency(old, new, good[0], forged.root(new),
                                         forged.consistency_proof(old, new))
