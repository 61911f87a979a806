"""Wire helpers shared by both emulated APIs: ids, timestamps, JSON."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_INDEX = {c: n for n, c in enumerate(_B62)}
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "5g"  # the two "server" characters after the key prefix, fixed for the sandbox org


_PAIRS = [a + b for a in _B62 for b in _B62]  # two base-62 digits at a time
_UPPER_BITS = str.maketrans({c: ("1" if "A" <= c <= "Z" else "0") for c in _B62})


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod, base-62 number, case-safe suffix.

    The suffix is Salesforce's own checksum (one character per 5-character chunk encoding
    which letters are upper case), so ids look and validate like real ones. Ids of one
    prefix sort in the order of their numbers.
    """
    parts = []
    n = number
    for _ in range(5):
        n, r = divmod(n, 3844)
        parts.append(_PAIRS[r])
    id15 = prefix + _POD + "".join(reversed(parts))
    return id15 + _suffix(id15)


def _suffix(id15: str) -> str:
    bits = id15.translate(_UPPER_BITS)
    return (_CHECKSUM[int(bits[4::-1], 2)] + _CHECKSUM[int(bits[9:4:-1], 2)]
            + _CHECKSUM[int(bits[14:9:-1], 2)])


def sf_id_number(value: str, prefix: str) -> int | None:
    """The number inside an id minted by `sf_id` with this prefix, or None.

    Accepts the 15- and 18-character forms, as Salesforce does.
    """
    if len(value) == 18:
        if _suffix(value[:15]) != value[15:].upper() and _suffix(value[:15]) != value[15:]:
            return None
        value = value[:15]
    if len(value) != 15 or not value.startswith(prefix + _POD):
        return None
    n = 0
    for c in value[5:]:
        d = _B62_INDEX.get(c)
        if d is None:
            return None
        n = n * 62 + d
    return n


def looks_like_sf_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) in (15, 18)
        and all(c in _B62_INDEX for c in value)
    )


def now_ms() -> int:
    return int(time.time() * 1000)


_DAYS: dict[int, str] = {}  # day number -> "YYYY-MM-DD": formatting dates is hot on query pages


def _stamp(ms: int) -> str:
    day, rest = divmod(ms, 86_400_000)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
    s, milli = divmod(rest, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{date}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


_SF_SEEN: dict[int, str] = {}  # records carry the same stamp in 3 fields: format it once


def ms_to_sf(ms: int) -> str:
    """Salesforce dateTime on the wire: 2026-01-01T10:00:00.000+0000."""
    text = _SF_SEEN.get(ms)
    if text is None:
        if len(_SF_SEEN) > 50_000:
            _SF_SEEN.clear()
        text = _SF_SEEN[ms] = _stamp(ms) + "+0000"
    return text


def ms_to_iso(ms: int) -> str:
    """HubSpot dateTime on the wire: 2026-01-01T10:00:00.123Z."""
    return _stamp(ms) + "Z"


def parse_datetime_ms(text: str) -> int:
    """Parse an ISO 8601 date-time (Z, +hh:mm, +hhmm or naive = UTC) into epoch ms."""
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    elif len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit() and t[-3] != ":":
        t = t[:-2] + ":" + t[-2:]
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def correlation_id() -> str:
    return str(uuid.uuid4())
