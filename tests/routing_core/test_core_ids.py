"""routing_core.ids: the ULIDs of decisions and ledger entries, read back by python-ulid."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

from routing_core.engine import new_decision_id
from routing_core.ids import new_ulid


def test_entry_ids_are_ulids_of_now() -> None:
    ids = [new_ulid() for _ in range(200)]
    assert all(str(ULID.from_str(i)) == i and len(i) == 26 for i in ids)
    assert len(set(ids)) == 200
    assert abs(ULID.from_str(ids[0]).timestamp - datetime.now(UTC).timestamp()) < 5


def test_a_decision_id_carries_the_decision_time() -> None:
    at = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)
    ids = {new_decision_id(at) for _ in range(100)}
    assert len(ids) == 100  # 80 random bits each
    for decision_id in ids:
        assert ULID.from_str(decision_id).datetime == datetime(2026, 12, 3, 9, 30, 15, 123000,
                                                               tzinfo=UTC)
    # The largest time a ULID holds (year 10889) still fits its 26 characters.
    assert str(ULID.from_str(new_ulid(2**48 - 1))).startswith("7ZZZZZZZZZ")
