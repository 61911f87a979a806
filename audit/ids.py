"""Entry ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

Generated here rather than with python-ulid's objects because appends make one per entry and
that route (and the pure-Python base64.b32encode) costs more than hashing the entry.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> two characters


def new_ulid() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -10, -10)])
