"""Canonical JSON (RFC 8785, JCS) for everything the ledger hashes or signs.

Values are normalised first: no floats in the ledger (a float becomes its shortest decimal
string, as do Decimals), datetimes become RFC 3339 UTC strings. On that domain (no floats,
integers within +-2**53-1, keys whose UTF-16 order equals their code-point order) a JSON encoder
with sorted keys, no whitespace and no escaping beyond JSON's own produces exactly the bytes of
`rfc8785.dumps`; tests check they agree. Three ways, fastest first:

- orjson, for plain JSON values (dicts, lists, strings, booleans, None, small integers): it
  encodes a 5 kB decision in 5 us, the C encoder of `json` in 55. It writes NaN as null and
  knows types the ledger refuses (UUIDs, enums, dataclasses), so its bytes are kept only when
  they read back as a value equal to the one given and hold nothing suspect (34 us in all;
  told OPT_STRICT_INTEGER, it refuses integers outside +-2**53-1 itself);
- the C encoder of `json`, for values with datetimes, Decimals, tuples or floats (floats read
  back as their own digits, as strings);
- the walk (`normalise`), which names the path of anything outside the domain, and the
  `rfc8785` package for keys with characters from U+D800 up.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
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
# Encoded output the fast paths must not keep; a look-alike inside a string only costs a slower
# path.
# - a float: a finite float is written with a '.' or a signed exponent (Python's repr and
#   orjson alike: "1e-07" / "1e-7", "1e+20"), and in compact JSON a number ends at ',', '}' or
#   ']' ("0.41,", "1.5e-07]", "1e+20}"). 'e' is common in text (ids like "eu-mortgage-esis"),
#   so the exponent's pattern runs only where a digit, 'e', a sign and a digit occur at all;
# - an integer of 16 digits or more (possibly outside +-2**53-1);
# - a character from U+D800 up (UTF-8 lead bytes 0xED-0xF4), where UTF-16 key order may differ.
# Digits are mapped to '0' first, so that plain substring searches find the digit runs.
_FLOAT = re.compile(rb"\.[0-9]+[,}\]]").search
_EXPONENT = re.compile(rb"e[-+][0-9]+[,}\]]").search
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 16
_WIDE = re.compile(rb"[\xed-\xf4]").search


def _suspect(data: bytes, *, integers: bool = True) -> bool:
    """Whether `data` may hold a float, a wide character or (unless `integers` is False: orjson
    refused every integer outside +-2**53-1 itself) a long integer."""
    if not data.isascii() and _WIDE(data):
        return True
    if _FLOAT(data):
        return True
    if not integers:  # the digit map costs as much as everything else here
        return _EXPONENT(data) is not None
    zeros = data.translate(_DIGITS_AS_ZERO)
    return _LONG_INTEGER in zeros or (
        (b"0e+0" in zeros or b"0e-0" in zeros) and _EXPONENT(data) is not None)


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


def _orjson(value: dict[str, Any] | list[Any]) -> bytes | None:
    """orjson's sorted compact bytes of `value`; None when orjson refuses it (a key that is not
    a string, a lone surrogate, an integer outside +-2**53-1, an unknown type): the walk then names
    the offending path. Datetimes and Decimals go through `_default`."""
    try:
        return orjson.dumps(value, default=_default,
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    except orjson.JSONEncodeError:
        return None


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of `value` (after normalisation)."""
    data: bytes | None = None
    integers = True  # whether `data` may still hold an integer outside +-2**53-1
    if isinstance(value, (dict, list)):  # a bare scalar has no token before it: slow path
        data = _orjson(value)
        integers = False  # orjson refused those itself (OPT_STRICT_INTEGER)
        # Kept only if they read back as an equal value, which rules out what orjson writes
        # its own way (NaN and infinities as null; UUIDs, enums, dataclasses) and what the
        # C encoder converts (datetimes, Decimals, tuples).
        if data is not None and orjson.loads(data) != value:
            integers = True
            try:
                data = _encode(value).encode("utf-8")
            except (TypeError, ValueError, RecursionError):
                data = None
    if data is not None and _suspect(data, integers=integers):
        # Usually only floats (screening scores), which `normalise` stores as their repr.
        data = _floats_as_strings(data)
        if data is not None and _suspect(data, integers=integers):  # a large integer or a
            data = None                                  # wide key: only the walk gets it right
    if data is None:
        norm, wide = normalise(value)
        return dumps_normalised(norm, wide)
    return data


# A float token of compact JSON ends in '.digits' or in a signed exponent (both encoders sign
# it), just before ',', '}' or ']'; it starts after the ':', ',' or '[' before it.
# (Two searches: each starts at a literal, which the regex engine scans for quickly; as one
# alternation it was three times slower.)
_FLOAT_ENDS = (re.compile(rb"\.[0-9]+(?=[,}\]])").finditer,
               re.compile(rb"e[-+][0-9]+(?=[,}\]])").finditer)
_FLOAT_TOKEN = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?").fullmatch


def _floats_as_strings(data: bytes) -> bytes | None:
    """Compact JSON `data` with every float token replaced by the JSON string of its repr,
    as `normalise` stores a float (orjson writes 1e-7 and 0.00001 where repr gives 1e-07 and
    1e-05). A token is outside every string when an even number of quotes precedes it; None
    when a string holds an escaped quote, which breaks that count."""
    if b"\\" in data and b'\\"' in data:
        return None
    parts: list[bytes] = []
    last = 0  # end of the last token replaced
    counted = quotes = 0  # quotes in data[:counted]
    for end in sorted(match.end() for find in _FLOAT_ENDS for match in find(data)):
        start = max(data.rfind(b":", last, end), data.rfind(b",", last, end),
                    data.rfind(b"[", last, end)) + 1
        if start <= last or not _FLOAT_TOKEN(data, start, end):
            continue
        quotes += data.count(b'"', counted, start)
        counted = start
        if quotes % 2 == 0:
            parts += (data[last:start], b'"', repr(float(data[start:end])).encode(), b'"')
            last = end
    parts.append(data[last:])
    return b"".join(parts)


class Canonical(bytes):
    """A payload already encoded by `canonical()`, by the process that made it: the ledger
    then only places these bytes in the envelope (sync/decide_ahead.py encodes decisions in a
    second process)."""

    @classmethod
    def of(cls, value: Any) -> Canonical:
        return cls(canonical(value))
