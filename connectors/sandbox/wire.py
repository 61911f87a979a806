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


def sf_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod, base-62 number, case-safe suffix.

    The suffix is Salesforce's own checksum (one character per 5-character chunk encoding
    which letters are upper case), so ids look and validate like real ones.
    """
    body = ""
    n = number
    for _ in range(10):
        n, r = divmod(n, 62)
        body = _B62[r] + body
    id15 = prefix + _POD + body
    return id15 + _suffix(id15)


def _suffix(id15: str) -> str:
    out = []
    for chunk in range(3):
        bits = 0
        for pos in range(5):
            c = id15[chunk * 5 + pos]
            if "A" <= c <= "Z":
                bits |= 1 << pos
        out.append(_CHECKSUM[bits])
    return "".join(out)


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


def ms_to_sf(ms: int) -> str:
    """Salesforce dateTime on the wire: 2026-01-01T10:00:00.000+0000."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}+0000"
    )


def ms_to_iso(ms: int) -> str:
    """HubSpot dateTime on the wire: 2026-01-01T10:00:00.123Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


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
