"""Canonical JSON (RFC 8785, JCS) for everything the ledger hashes or signs.

Values are normalised first: no floats in the ledger (a float becomes its shortest decimal
string, as do Decimals), datetimes become RFC 3339 UTC strings. On that domain (no floats,
integers within +-2**53-1, keys whose UTF-16 order equals their code-point order) the C JSON
encoder with sorted keys and no whitespace produces exactly the bytes of `rfc8785.dumps`, and
about ten times faster; tests check the two agree. Anything outside that domain (keys with
characters from U+D800 up) goes through the `rfc8785` package itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import rfc8785

MAX_SAFE_INT = 2**53 - 1


def _default(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    raise NotCanonical(f"{type(value).__name__} is not JSON")


def compact_encoder(default: Callable[[Any], Any], *, ensure_ascii: bool,
                    allow_nan: bool) -> Callable[[Any], str]:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), ...)` with the C encoder made
    once: JSONEncoder.encode builds a new one per call, which costs as much as encoding a small
    object. No circular-reference check: the values encoded here are trees."""
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=allow_nan, sort_keys=True,
                                separators=(",", ":"), default=default,
                                check_circular=False).encode
    quote = json.encoder.encode_basestring_ascii if ensure_ascii else \
        json.encoder.encode_basestring
    encoder = make(None, default, quote, None, ":", ",", True, False, allow_nan)
    return lambda value: "".join(encoder(value, 0))


_encode = compact_encoder(_default, ensure_ascii=False, allow_nan=False)
# Encoded output the fast path must not keep. Every pattern starts at a rare literal, which
# the regex engine finds by fast search; a look-alike inside a string only costs the slow path.
# - a float: Python's repr of a finite float has '.' or a signed exponent, and in compact JSON a
#   number ends at ',', '}' or ']' ("0.41,", "1.5e-07]", "1e+20}");
# - an integer of 16 digits or more (possibly outside +-2**53-1): digits mapped to '0' first, so
#   that a plain substring search finds the run;
# - a character from U+D800 up (UTF-8 lead bytes 0xED-0xF4), where UTF-16 key order may differ.
_FLOAT = re.compile(rb"\.[0-9]+[,}\]]").search
_EXPONENT = re.compile(rb"e[-+][0-9]+[,}\]]").search
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 16
_WIDE = re.compile(rb"[\xed-\xf4]").search


def _suspect(data: bytes) -> bool:
    if not data.isascii() and _WIDE(data):
        return True
    return bool(_FLOAT(data) or _EXPONENT(data)
                or _LONG_INTEGER in data.translate(_DIGITS_AS_ZERO))


class NotCanonical(ValueError):
    """A value the ledger cannot store as canonical JSON (named by its path)."""


def rfc3339(moment: datetime) -> str:
    """UTC, microseconds, 'Z': fixed width so that strings sort as times do."""
    if moment.tzinfo is None:
        raise NotCanonical("naive datetime: the ledger stores UTC times only")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise(value: Any, path: str = "$") -> tuple[Any, bool]:
    """(JSON-safe copy, whether a key needs the rfc8785 package's UTF-16 ordering)."""
    if value is None or isinstance(value, (str, bool)):
        return value, False
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise NotCanonical(f"{path}: integer {value} is outside +-2**53-1; store it as a string")
        return value, False
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonical(f"{path}: {value!r} is not a JSON number")
        return repr(value), False
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NotCanonical(f"{path}: {value!r} is not a number")
        return str(value), False
    if isinstance(value, datetime):
        return rfc3339(value), False
    if isinstance(value, date):
        return value.isoformat(), False
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        wide = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: key {key!r} is not a string")
            if key and max(key) >= "\ud800":
                wide = True
            out[key], sub_wide = normalise(item, f"{path}.{key}")
            wide = wide or sub_wide
        return out, wide
    if isinstance(value, (list, tuple)):
        items = []
        wide = False
        for index, item in enumerate(value):
            norm, sub_wide = normalise(item, f"{path}[{index}]")
            items.append(norm)
            wide = wide or sub_wide
        return items, wide
    raise NotCanonical(f"{path}: {type(value).__name__} is not JSON")


def dumps_normalised(value: Any, wide: bool) -> bytes:
    """Canonical bytes of an already normalised value."""
    if wide:
        return rfc8785.dumps(value)
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate in a string
        raise NotCanonical(f"not valid Unicode text: {exc.reason}") from exc


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of `value` (after normalisation)."""
    data: bytes | None = None
    if isinstance(value, (dict, list)):  # a bare scalar has no token before it: slow path
        try:
            data = _encode(value).encode("utf-8")
        except (TypeError, ValueError, RecursionError):  # incl. UnicodeEncodeError
            data = None  # let the walk name the offending path
    if data is not None and _suspect(data):
        # Usually only floats (screening scores): read the text back with every float token
        # kept as its own digits, a string, which is what `normalise` makes of a float; all
        # in C, and a third of the cost of the walk below.
        data = _encode(json.loads(data, parse_float=str)).encode("utf-8")
        if _suspect(data):  # a large integer or a wide key: only the walk gets it right
            data = None
    if data is None:
        norm, wide = normalise(value)
        return dumps_normalised(norm, wide)
    return data


class Canonical(bytes):
    """A payload already encoded by `canonical()`, by the process that made it: the ledger
    then only places these bytes in the envelope (sync/decide_ahead.py encodes decisions in a
    second process)."""

    @classmethod
    def of(cls, value: Any) -> Canonical:
        return cls(canonical(value))
