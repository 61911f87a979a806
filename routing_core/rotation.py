"""Rotation state: where each team's rotation stands and how many leads each rep took per day.

The engine only reads this state while deciding, and writes it once, through `advance`, when a
lead is actually assigned (a refusal consumes nothing). The protocol is deliberately small so
that the sync job can keep the same state in its database, inside the transaction that writes
the decision ahead of the CRM write-back:

* ``cursor(key)`` -> `Cursor`: the rotation position of a team (key = team id) or of a rule
  that rotates across teams (key = ``"rule:<rule id>"``). A key never seen returns ``Cursor()``.
* ``assigned_count(rep_id, day)`` -> leads assigned to that rep on that calendar day
  (the day is in the policy's time zone; a rep in several teams has one count).
* ``advance(key, cursor, rep_id, day)``: store the new cursor for `key` and, when `rep_id` is
  not None, add one to that rep's count for `day`.

A `Cursor` is plain data (JSON-safe via `to_json` / `from_json`) so a database can store it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where one rotation stands.

    ``last``: the member (rep or team id) chosen last; round robin continues after it in policy
    order, so a member returning from absence rejoins at its place instead of catching up.
    ``current``: smooth weighted round robin's current weights (member id -> int); a member that
    is unavailable keeps its value frozen, so it also rejoins without a burst.
    """

    last: str | None = None
    current: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"last": self.last, "current": dict(self.current)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cursor:
        return cls(last=data.get("last"), current={str(k): int(v) for k, v in
                                                    dict(data.get("current") or {}).items()})


@runtime_checkable
class RotationState(Protocol):
    """Storage for rotation cursors and per-day counts (see the module docstring)."""

    def cursor(self, key: str) -> Cursor: ...

    def assigned_count(self, rep_id: str, day: date) -> int: ...

    def advance(self, key: str, cursor: Cursor, rep_id: str | None, day: date) -> None: ...


class InMemoryRotationState:
    """Rotation state for one process: `leadgate route`, policy tests and unit tests."""

    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}
        self.counts: dict[tuple[str, date], int] = {}

    def cursor(self, key: str) -> Cursor:
        return self.cursors.get(key) or Cursor()

    def assigned_count(self, rep_id: str, day: date) -> int:
        return self.counts.get((rep_id, day), 0)

    def advance(self, key: str, cursor: Cursor, rep_id: str | None, day: date) -> None:
        self.cursors[key] = cursor
        if rep_id is not None:
            self.counts[(rep_id, day)] = self.counts.get((rep_id, day), 0) + 1

    def set_count(self, rep_id: str, day: date, count: int) -> None:
        """Seed a day's count (tests; a database-backed state loads it instead)."""
        self.counts[(rep_id, day)] = count
