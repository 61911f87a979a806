"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.

Leaves are the ledger's entry hashes, which already are RFC 6962 leaf hashes
SHA-256(0x00 || entry bytes); interior nodes are SHA-256(0x01 || left || right); the tree of n
leaves splits at the largest power of two below n. Proofs and their verification follow
RFC 9162 sections 2.1.3 and 2.1.4.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Accumulator:
    """Roots of a growing tree in O(log n) memory: the perfect subtrees of its left edge."""

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def add(self, leaf: bytes) -> None:
        stack = self._stack
        stack.append(leaf)
        n = self.size
        while n & 1:  # each trailing one bit of the old size is a pair of equal subtrees
            right = stack.pop()
            stack[-1] = hashlib.sha256(b"\x01" + stack[-1] + right).digest()
            n >>= 1
        self.size += 1

    @classmethod
    def restore(cls, size: int, frontier: bytes) -> Accumulator:
        """From `frontier()` bytes (one 32-byte hash per one bit of size, left to right)."""
        acc = cls()
        acc.size = size
        acc._stack = [frontier[i:i + 32] for i in range(0, len(frontier), 32)]
        if len(acc._stack) != size.bit_count():
            raise ValueError(f"frontier of {len(acc._stack)} hashes does not fit size {size}")
        return acc

    def frontier(self) -> bytes:
        return b"".join(self._stack)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            result = hashlib.sha256(b"\x01" + left + result).digest()
        return result


def root(leaves: Sequence[bytes]) -> bytes:
    acc = Accumulator()
    for leaf in leaves:
        acc.add(leaf)
    return acc.root()


class Tree:
    """A static tree over known leaf hashes, for proofs. Keeps every perfect subtree hash."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels: list[list[bytes]] = [list(leaves)]
        level = self._levels[0]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of some tree over these leaves."""
        n = hi - lo
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self._levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        return self.subtree(0, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]), leaf side first."""
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no leaf {index} in a tree of {size}")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.subtree(lo, lo + k))
                lo += k
        path.reverse()
        return path

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 PROOF(old, D[0:new])."""
        if not 0 < old <= new <= self.size:
            raise ValueError(f"no consistency proof from {old} to {new}")
        path: list[bytes] = []
        lo, hi, m, whole = 0, new, old, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                path.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.subtree(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            path.append(self.subtree(lo, hi))
        path.reverse()
        return path


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2 (with the trivial cases: old == new, old == 0)."""
    if old < 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
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
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
