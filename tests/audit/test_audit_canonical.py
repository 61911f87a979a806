"""Canonical JSON: the fast encoder path must give exactly the bytes of the rfc8785 package."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from unittest import mock
from uuid import UUID

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import NotCanonical, _floats_as_strings, canonical, normalise

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_fast_path_equals_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(normalise(value)[0])
    except UnicodeEncodeError:  # lone surrogates are refused by both
        with pytest.raises(NotCanonical):
            canonical(value)
        return
    assert canonical(value) == expected


# Numbers of every size and text that looks like number tokens: the fast path's scan for
# floats, long integers and wide characters must send every one of them the right way.
tricky_values = st.recursive(
    st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["0.5,", "x.1]", "e+20}", "1e-07,", "9007199254740993", "\ud7ff",
                       "\U0001f600", "2026.11.2"]) | st.text(alphabet="0123456789.e+-,]}\"", max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet="ab\uff61\U0001f600", max_size=3), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(tricky_values)
def test_numbers_of_every_size_are_canonical_or_refused(value: Any) -> None:
    try:
        norm, _ = normalise(value)
    except NotCanonical:  # an integer outside +-2**53-1: refused on every path
        with pytest.raises(NotCanonical):
            canonical(value)
        return
    assert canonical(value) == rfc8785.dumps(norm)


def test_floats_and_decimals_become_strings() -> None:
    assert canonical({"b": 0.41, "a": [5.0, Decimal("1.10")]}) == b'{"a":["5.0","1.10"],"b":"0.41"}'
    assert canonical({"t": datetime(2026, 11, 24, 10, 15, 2, tzinfo=UTC)}) == \
        b'{"t":"2026-11-24T10:15:02.000000Z"}'


def test_keys_sort_by_utf16_code_units() -> None:
    # U+FF61 sorts after U+1F600 by code point but before it in UTF-16 (surrogates D83D...).
    value = {"\uff61": 1, "\U0001f600": 2}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).index("\U0001f600".encode()) < canonical(value).index("\uff61".encode())


def test_a_float_beside_a_large_integer_or_a_wide_key_takes_the_walk() -> None:
    # The float is read back as a string first; what is still suspect after that must not
    # come out of the fast path.
    with pytest.raises(NotCanonical, match=r"\$\.n: integer"):
        canonical({"s": 0.5, "n": 2**60})
    value = {"s": 0.5, "\uff61": 1, "\U0001f600": 2}
    assert canonical(value) == rfc8785.dumps(normalise(value)[0])


def test_values_outside_json_are_refused() -> None:
    with pytest.raises(NotCanonical, match="outside"):
        canonical({"n": 2**60})
    with pytest.raises(NotCanonical):
        canonical({"x": object()})
    with pytest.raises(NotCanonical):
        canonical({"x": float("nan")})


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from([float("nan"), float("inf"), float("-inf")]),
       st.integers(0, 3))
def test_a_non_finite_float_anywhere_is_refused(value: Any, bad: float, depth: int) -> None:
    # orjson writes NaN and infinities as null: its bytes must never be taken for them.
    nested: Any = bad
    for level in range(depth):
        nested = {"k": [value, nested]} if level % 2 else [None, nested]
    with pytest.raises(NotCanonical):
        canonical({"v": value, "x": nested})


class Colour(Enum):
    RED = "red"


@dataclass
class Point:
    x: int


@pytest.mark.parametrize("odd", [UUID(int=7), Colour.RED, Point(1), {1: "int key"},
                                 {1: "a", "1": "b"}, {True: 1}, b"bytes"])
def test_types_orjson_knows_but_json_does_not_are_refused(odd: Any) -> None:
    with pytest.raises(NotCanonical):
        canonical({"a": [None, {"b": odd}]})


def test_values_that_json_converts_keep_their_canonical_bytes() -> None:
    # Datetimes, Decimals and tuples are not what orjson reads back: the other paths encode them.
    value = {"t": datetime(2026, 11, 24, 10, 15, 2, 5, tzinfo=UTC), "d": Decimal("0.10"),
             "p": ("a", 1, None, True), "n": None}
    assert canonical(value) == rfc8785.dumps(normalise(value)[0]) == (
        b'{"d":"0.10","n":null,"p":["a",1,null,true],"t":"2026-11-24T10:15:02.000005Z"}')


def test_plain_json_takes_the_fast_path() -> None:
    value = {"id": "eu-mortgage-esis", "leaves": [{"path": "lead.country", "ok": True,
                                                   "value": "DE", "n": 12, "x": None}],
             "name": "Zoë Ångström"}
    assert canonical(value) == rfc8785.dumps(value)
    with mock.patch("audit.canonical._encode", side_effect=AssertionError("slow path")):
        assert canonical(value) == rfc8785.dumps(value)
        with pytest.raises(AssertionError, match="slow path"):
            canonical({"at": ("a", 1)})  # a tuple is not what orjson reads back


def test_floats_take_the_fast_path_as_the_strings_of_their_repr() -> None:
    # Screening scores are in every decision: orjson's bytes with each float token quoted,
    # as its repr, with neither the C encoder nor the walk.
    value = {"score": 0.8512, "tiny": [1e-07, 0.00001, -0.0, 1e+20, 1.5e-300],
             "gates": [{"actual": 250000.0, "rule": "e-1"}], "n": 12, "last": 2.5}
    expected = rfc8785.dumps(normalise(value)[0])
    assert b'"tiny":["1e-07","1e-05","-0.0","1e+20","1.5e-300"]' in expected
    with mock.patch("audit.canonical._encode", side_effect=AssertionError("slow path")), \
            mock.patch("audit.canonical.normalise", side_effect=AssertionError("walk")):
        assert canonical(value) == expected


def test_float_look_alikes_inside_strings_are_left_alone() -> None:
    # Quotes are counted: a token after an odd number of them is inside a string.
    data = b'{"a":"x:1.5,y:2e-7]","b":[0.5,"c,1.25]"],"d":1e+20}'
    assert _floats_as_strings(data) == \
        b'{"a":"x:1.5,y:2e-7]","b":["0.5","c,1.25]"],"d":"1e+20"}'
    # An escaped quote would upset the count: not handled here (the caller walks instead).
    assert _floats_as_strings(b'{"a":"q\\"1.5,","b":0.5}') is None
    for value in ({"a": "x:1.5,", "b": 0.5}, {"a": 'q"1.5,"', "b": [0.25, 'r"]']}):
        assert canonical(value) == rfc8785.dumps(normalise(value)[0])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4),
       st.none() | st.text(max_size=8),
       st.none() | st.just({"withheld": "subject erased"})
       | st.just({"alg": "A256GCM", "ct": "q83v", "nonce": "AAEC"}))
def test_envelope_assembled_around_the_payload_equals_canonical(
        payload: dict[str, Any], subject: str | None, personal: dict[str, str] | None) -> None:
    from json.encoder import encode_basestring

    from audit.ledger import EntryIn, _envelope_bytes

    prev, seq, entry_id, ledger_id, now = bytes(range(32)), 42, "01J0", "L1", "2026-01-01T00:00Z"
    envelope = {"chain": {"prev": prev.hex(), "seq": seq}, "id": entry_id, "kind": "decision",
                "ledger": ledger_id, "payload": payload, "personal": personal,
                "subject": subject, "time": now, "v": 1}
    assembled = _envelope_bytes(prev, seq, entry_id, EntryIn("decision", subject, payload),
                                personal, encode_basestring(ledger_id),
                                f',"time":{encode_basestring(now)},"v":1}}')
    try:
        expected = canonical(envelope)
    except NotCanonical:
        assert assembled is None
        return
    assert assembled is None or assembled == expected
