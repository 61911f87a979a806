"""ULIDs (48-bit millisecond time + 80 random bits, Crockford base32): decision ids and
ledger entry ids.

Generated here rather than with python-ulid's objects because a sync run makes two per lead
and that route (a generator object, a lock, the pure-Python base32) costs more than hashing
the ledger entry.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters


def new_ulid(ms: int | None = None) -> str:
    """A new ULID for the time `ms` (milliseconds since the epoch; now when None)."""
    if ms is None:
        ms = int(time.time() * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -10, -10)])


def ulid_ms(text: str) -> int | None:
    """The time part of ULID `text` in milliseconds since the epoch; None if it is not one."""
    if len(text) != 26:
        return None
    value = 0
    for char in text[:10].upper():
        digit = _ALPHABET.find(char)
        if digit < 0:
            return None
        value = value * 32 + digit
    return value if text[0] in "01234567" else None  # 48 bits: the first char is below 8
