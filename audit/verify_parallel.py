"""Verifying a large SQLite ledger on several cores.

Workers each read a contiguous range of entries straight from the database file (read-only) and
do the per-entry work: hash the bytes, compare the stored hash, and check the chain prefix and the
columns against the bytes, linking each entry to the one before it inside the range. Ranges start
at multiples of a power of two at least as large as the range ("aligned"), so each worker also
folds its entry hashes into RFC 6962 subtrees of its own: the tree's state at any size inside the
range is the state before the range followed by the worker's stack. Workers report that stack at
each checkpoint's size and at the end; the parent links the ranges at their boundaries and checks
key announcements and checkpoints in order, with no per-entry work left. (A range that is not
aligned sends its entry hashes for the parent to fold.) Any failure sends the ledger through the
sequential verifier, so diagnostics are always the same.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
from dataclasses import dataclass, field
from json.encoder import encode_basestring

from audit.db import SQLITE_MMAP, sqlite_read_only_uri
from audit.schema import entries_sql

MIN_ENTRIES = 200_000  # below this, starting processes costs more than it saves


@dataclass
class Chunk:
    lo: int
    hi: int
    ok: bool = True
    first_prev: str = ""  # hex prev recorded by the first entry
    last_hash: bytes = b""
    leaves: bytes = b""
    kinds: dict[str, int] = field(default_factory=dict)
    specials: list[tuple[int, str, bytes]] = field(default_factory=list)
    aligned: bool = False
    # Aligned ranges: the range's own Merkle stack (and entry hash) at each requested size, and
    # at its end.
    stacks: dict[int, tuple[list[bytes], bytes]] = field(default_factory=dict)
    stack: list[bytes] = field(default_factory=list)


def is_aligned(lo: int, hi: int) -> bool:
    """Do entries lo..hi form subtrees of their own (no merge with entries before lo)?"""
    before = lo - 1
    return before == 0 or hi - before <= (before & -before)


def check_range(path: str, ledger_id: str, lo: int, hi: int, marks: frozenset[int] = frozenset(),
                keep_leaves: bool = True) -> Chunk:
    """Entries lo..hi (inclusive) of the SQLite ledger at `path`; `marks`: the sizes at which the
    Merkle stack is wanted (checkpoints)."""
    chunk = Chunk(lo, hi, aligned=is_aligned(lo, hi))
    fold = chunk.aligned
    keep_leaves = keep_leaves or not fold
    stack = chunk.stack
    stacks = chunk.stacks
    conn = sqlite3.connect(sqlite_read_only_uri(path), uri=True)
    try:
        conn.execute(f"PRAGMA mmap_size={SQLITE_MMAP}")
        cursor = conn.execute(entries_sql("sqlite", seq_range=True), (lo, hi))
        sha = hashlib.sha256
        leaves: list[bytes] = []
        last = b""
        kinds = chunk.kinds
        expected = lo
        prev_hex = ""
        while True:
            rows = cursor.fetchmany(10_000)
            if not rows:
                break
            for seq, entry_id, kind, subject, time, body, stored in rows:
                if seq != expected or body is None:  # the sequential walk names it
                    chunk.ok = False
                    return chunk
                digest = sha(b"\x00" + body).digest()
                if digest != stored:
                    chunk.ok = False
                    return chunk
                if seq == lo:
                    prev_hex = body[18:82].decode("ascii", "replace")
                    chunk.first_prev = prev_hex
                head = (f'{{"chain":{{"prev":"{prev_hex}","seq":{seq}}},"id":"{entry_id}",'
                        f'"kind":"{kind}","ledger":"{ledger_id}","payload":').encode()
                subj = "null" if subject is None else encode_basestring(subject)
                tail = f',"subject":{subj},"time":"{time}","v":1}}'.encode()
                if not (body.startswith(head) and body.endswith(tail)):
                    chunk.ok = False
                    return chunk
                if kind in ("key_rotation", "checkpoint"):
                    chunk.specials.append((seq, kind, body))
                kinds[kind] = kinds.get(kind, 0) + 1
                if keep_leaves:
                    leaves.append(digest)
                if fold:
                    stack.append(digest)
                    n = seq - lo
                    while n & 1:
                        right = stack.pop()
                        stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
                        n >>= 1
                    if seq in marks:
                        stacks[seq] = (list(stack), digest)
                prev_hex = digest.hex()
                last = digest
                expected += 1
        if expected != hi + 1 or hi < lo:
            chunk.ok = False
            return chunk
        chunk.leaves = b"".join(leaves)
        chunk.last_hash = last
        return chunk
    finally:
        conn.close()


def _check_range_args(args: tuple[str, str, int, int, frozenset[int], bool]) -> Chunk:
    return check_range(*args)


def parallel_chunks(path: str, ledger_id: str, size: int, workers: int | None = None, *,
                    marks: frozenset[int] = frozenset(),
                    keep_leaves: bool = True) -> list[Chunk] | None:
    """The checked ranges, or None when a range failed (the caller then goes sequentially).
    `marks`: checkpoint sizes; `keep_leaves`: send every entry hash back (else only aligned
    ranges' Merkle stacks)."""
    count = workers or min(os.cpu_count() or 1, 4)
    if count < 2 or size < MIN_ENTRIES:
        return None
    step = -(-size // count)
    aligned_step = 1 << (step - 1).bit_length()  # a power of two: every range aligned
    if -(-size // aligned_step) == count:  # unless that would leave a worker idle
        step = aligned_step
    ranges = [(path, ledger_id, lo, min(lo + step - 1, size), marks, keep_leaves)
              for lo in range(1, size + 1, step)]
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(len(ranges)) as pool:
        chunks = pool.map(_check_range_args, ranges)
    if not all(c.ok for c in chunks):
        return None
    return chunks
