"""A database-backed RotationState: the routing core's protocol, stored in sync_rotation and
sync_daily_counts, changed only inside the sync job's write-ahead transaction (and a rep's day
count by an officer's approval, `count_assignment`: an assignment either way).

The first time the engine asks for a team's cursor it reads every team's row, and the first
time it asks for a rep's count on a day every rep's count of that day (one query each instead of
one per key), holding row locks on PostgreSQL (`FOR UPDATE`) so that a concurrent worker waits
for this transaction instead of reading a position that is about to move; the write-ahead transaction already holds
the ledger's single-writer lock, so workers of one source are serialised twice over and never
use the same rotation slot. Changes are kept in memory and written by `flush()` in the same
transaction: if it rolls back (or the process dies), no rotation step happened.

`read_only=True` (dry runs) reads the same state but never writes, so a dry run sees what a real
run would decide without moving the rotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from routing_core.rotation import Cursor, InMemoryRotationState
from sync.state import dumps, loads, sync_daily_counts, sync_rotation, utcnow

_START = Cursor()


@dataclass(frozen=True)
class RotationSnapshot:
    """The rotation state a batch can read, as plain values: every cursor and slot count, and
    every rep's count on `days`. Values at their start (no cursor, 0) are left out, so a row
    never written and a row at its start compare equal."""

    cursors: dict[str, Cursor] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)
    counts: dict[tuple[str, date], int] = field(default_factory=dict)
    days: frozenset[date] = frozenset()

    @classmethod
    def of(cls, cursors: dict[str, Cursor], slots: dict[str, int],
           counts: dict[tuple[str, date], int], days: set[date] | frozenset[date]
           ) -> RotationSnapshot:
        return cls({k: c for k, c in cursors.items() if c != _START},
                   {k: n for k, n in slots.items() if n},
                   {k: n for k, n in counts.items() if n and k[1] in days}, frozenset(days))


class SnapshotRotation(InMemoryRotationState):
    """The routing core's in-memory rotation state, started from a snapshot, with the sync
    job's slots: what a batch decided in another process reads and advances. `days` are the
    days whose counts were read or changed; a day not in the snapshot is assumed to have no
    counts yet, and the process that commits checks that (sync.writeahead.Ahead.applies)."""

    def __init__(self, start: RotationSnapshot) -> None:
        super().__init__()
        self.cursors.update(start.cursors)
        self.counts.update(start.counts)
        self.slots = dict(start.slots)
        self.days = set(start.days)

    def assigned_count(self, rep_id: str, day: date) -> int:
        self.days.add(day)
        return super().assigned_count(rep_id, day)

    def advance(self, key: str, cursor: Cursor, rep_id: str | None, day: date) -> None:
        if rep_id is not None:
            self.days.add(day)
        super().advance(key, cursor, rep_id, day)

    def take_slot(self, team_id: str) -> int:
        self.slots[team_id] = self.slots.get(team_id, 0) + 1
        return self.slots[team_id]

    def snapshot(self) -> RotationSnapshot:
        return RotationSnapshot.of(self.cursors, self.slots, self.counts, self.days)


class DbRotationState:
    def __init__(self, conn: sa.Connection, *, read_only: bool = False) -> None:
        self.conn = conn
        self.read_only = read_only
        self._lock = conn.dialect.name == "postgresql" and not read_only
        self._cursors: dict[str, Cursor] = {}
        self._slots: dict[str, int] = {}
        self._known: set[str] = set()  # keys with a row in sync_rotation
        self._dirty: set[str] = set()
        self._counts: dict[tuple[str, date], int] = {}
        self._count_known: set[tuple[str, date]] = set()
        self._count_dirty: set[tuple[str, date]] = set()
        self._days: set[date] = set()  # days whose counts are loaded
        self._loaded_all = False  # sync_rotation read

    # -- the RotationState protocol -------------------------------------------------------
    def cursor(self, key: str) -> Cursor:
        if key not in self._cursors:
            self._load(key)
        return self._cursors[key]

    def assigned_count(self, rep_id: str, day: date) -> int:
        k = (rep_id, day)
        if day not in self._days:
            self._load_day(day)
        return self._counts.get(k, 0)

    def _load_day(self, day: date) -> None:
        """Every rep's count for `day` in one query (a batch asks for most reps)."""
        query = sa.select(sync_daily_counts.c.rep_id, sync_daily_counts.c.count).where(
            sync_daily_counts.c.day == day.isoformat())
        if self._lock:
            query = query.with_for_update()
        for rep_id, count in self.conn.execute(query):
            k = (rep_id, day)
            if k not in self._counts:
                self._counts[k] = int(count)
                self._count_known.add(k)
        self._days.add(day)

    def advance(self, key: str, cursor: Cursor, rep_id: str | None, day: date) -> None:
        self.cursor(key)  # make sure the row is locked/loaded before it changes
        self._cursors[key] = cursor
        self._dirty.add(key)
        if rep_id is not None:
            k = (rep_id, day)
            self._counts[k] = self.assigned_count(rep_id, day) + 1
            self._count_dirty.add(k)

    # -- slots: the sync job numbers each assignment's rotation step per team --------------
    def take_slot(self, team_id: str) -> int:
        self.cursor(team_id)
        self._slots[team_id] += 1
        self._dirty.add(team_id)
        return self._slots[team_id]

    # -- a batch decided elsewhere (sync/decide_ahead.py) ---------------------------------
    def snapshot(self, days: frozenset[date] | None = None) -> RotationSnapshot:
        """The whole state (every row; the counts of `days`, by default of the days read so
        far), as this transaction holds it now."""
        days = frozenset(self._days) if days is None else days
        self._load_all()
        for day in days - self._days:
            self._load_day(day)
        return RotationSnapshot.of(self._cursors, self._slots, self._counts, days)

    def adopt(self, final: RotationSnapshot) -> None:
        """Take `final` as the state after this batch: what differs is written by flush()."""
        self._load_all()
        for key in set(self._cursors) | set(final.cursors) | set(final.slots):
            cursor, slots = final.cursors.get(key, _START), final.slots.get(key, 0)
            if self._cursors.get(key, _START) != cursor or self._slots.get(key, 0) != slots:
                self._cursors[key], self._slots[key] = cursor, slots
                self._dirty.add(key)
        for day in final.days - self._days:
            self._load_day(day)
        for k in {k for k in self._counts if k[1] in final.days} | set(final.counts):
            if self._counts.get(k, 0) != final.counts.get(k, 0):
                self._counts[k] = final.counts.get(k, 0)
                self._count_dirty.add(k)

    def _load(self, key: str) -> None:
        self._load_all()
        if key not in self._cursors:
            self._cursors[key] = Cursor()
            self._slots[key] = 0

    def _load_all(self) -> None:
        """Every team's rotation row in one query (there are few), the first time one is
        needed."""
        if not self._loaded_all:
            query = sa.select(sync_rotation.c.team_id, sync_rotation.c.state,
                              sync_rotation.c.slots_used)
            if self._lock:
                query = query.with_for_update()
            for row in self.conn.execute(query):
                if row.team_id not in self._cursors:
                    self._cursors[row.team_id] = Cursor.from_json(loads(row.state))
                    self._slots[row.team_id] = int(row.slots_used)
                    self._known.add(row.team_id)
            self._loaded_all = True

    def flush(self) -> None:
        """Write the changed cursors, slots and counts (inside the caller's transaction): one
        UPDATE and one INSERT statement per table, each with all its rows."""
        if self.read_only:
            return
        now = utcnow()
        teams = sorted(self._dirty)
        old = [{"k": key, "s": dumps(self._cursors[key].to_json()), "n": self._slots[key]}
               for key in teams if key in self._known]
        new = [{"team_id": key, "state": dumps(self._cursors[key].to_json()),
                "slots_used": self._slots[key], "updated_at": now}
               for key in teams if key not in self._known]
        if old:
            self.conn.execute(sa.update(sync_rotation)
                              .where(sync_rotation.c.team_id == sa.bindparam("k"))
                              .values(state=sa.bindparam("s"), slots_used=sa.bindparam("n"),
                                      updated_at=now), old)
        if new:
            self.conn.execute(sa.insert(sync_rotation), new)
            self._known.update(teams)
        self._dirty.clear()
        keys = sorted(self._count_dirty)
        old = [{"r": rep_id, "d": day.isoformat(), "n": self._counts[(rep_id, day)]}
               for rep_id, day in keys if (rep_id, day) in self._count_known]
        new = [{"rep_id": rep_id, "day": day.isoformat(), "count": self._counts[(rep_id, day)]}
               for rep_id, day in keys if (rep_id, day) not in self._count_known]
        if old:
            self.conn.execute(sa.update(sync_daily_counts)
                              .where(sync_daily_counts.c.rep_id == sa.bindparam("r"),
                                     sync_daily_counts.c.day == sa.bindparam("d"))
                              .values(count=sa.bindparam("n")), old)
        if new:
            self.conn.execute(sa.insert(sync_daily_counts), new)
            self._count_known.update(keys)
        self._count_dirty.clear()


def count_assignment(conn: sa.Connection, rep_id: str, day: date) -> int:
    """Count one more assignment for `rep_id` on `day` (an officer's approval), inside the
    caller's write transaction, which holds the ledger's writer lock as every write-ahead does;
    returns the count before it, so that a rep's daily cap sees manual assignments too."""
    key = (sync_daily_counts.c.rep_id == rep_id) & (sync_daily_counts.c.day == day.isoformat())
    before = conn.execute(sa.select(sync_daily_counts.c.count).where(key)).scalar()
    if before is None:
        conn.execute(sa.insert(sync_daily_counts).values(rep_id=rep_id, day=day.isoformat(),
                                                         count=1))
        return 0
    conn.execute(sa.update(sync_daily_counts).where(key).values(count=int(before) + 1))
    return int(before)
