from __future__ import annotations

from datetime import date

from routing_core.rotation import Cursor, InMemoryRotationState, RotationState
from routing_core.screening import NullScreener, Screener, ScreeningResult


def test_in_memory_state_implements_protocol_and_counts() -> None:
    state = InMemoryRotationState()
    assert isinstance(state, RotationState)
    day = date(2026, 11, 24)
    assert state.cursor("t") == Cursor()
    state.advance("t", Cursor(last="a", current={"a": -1}), "a", day)
    state.advance("rule:r", Cursor(last="t"), None, day)
    assert state.cursor("t").last == "a"
    assert state.assigned_count("a", day) == 1
    assert state.assigned_count("a", date(2026, 11, 25)) == 0
    assert Cursor.from_json(state.cursor("t").to_json()) == state.cursor("t")


def test_null_screener_checks_nothing() -> None:
    assert isinstance(NullScreener(), Screener)
    assert NullScreener().screen(None) == ()  # type: ignore[arg-type]
    result = ScreeningResult("sanctions", "ofac", "sha256:x", True, 0.97, {"name": "X"})
    assert result.to_json()["matched"] == {"name": "X"}
