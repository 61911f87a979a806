"""A database-backed RotationState: the routing core's protocol, stored in sync_rotation and
sync_daily_counts, changed only inside the sync job's write-ahead transaction.

It reads a key's cursor (and a rep's daily count) the first time the engine asks for it, holding
a row lock on PostgreSQL (`FOR UPDATE`) so that a concurrent worker waits for this transaction
instead of reading a position that is about to move; the write-ahead transaction already holds
the ledger's single-writer lock, so workers of one source are serialised twice over and never
use the same rotation slot. Changes are kept in memory and written by `flush()` in the same
transaction: if it rolls back (or the process dies), no rotation step happened.

`read_only=True` (dry runs) reads the same state but never writes, so a dry run sees what a real
run would decide without moving the rotation.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from routing_core.rotation import Cursor
from sync.state import dumps, loads, sync_daily_counts, sync_rotation, utcnow


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

    # -- the RotationState protocol -------------------------------------------------------
    def cursor(self, key: str) -> Cursor:
        if key not in self._cursors:
            self._load(key)
        return self._cursors[key]

    def assigned_count(self, rep_id: str, day: date) -> int:
        k = (rep_id, day)
        if k not in self._counts:
            query = sa.select(sync_daily_counts.c.count).where(
                sync_daily_counts.c.rep_id == rep_id,
                sync_daily_counts.c.day == day.isoformat())
            if self._lock:
                query = query.with_for_update()
            row = self.conn.execute(query).first()
            self._counts[k] = 0 if row is None else int(row[0])
            if row is not None:
                self._count_known.add(k)
        return self._counts[k]

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

    def _load(self, key: str) -> None:
        query = sa.select(sync_rotation.c.state, sync_rotation.c.slots_used).where(
            sync_rotation.c.team_id == key)
        if self._lock:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            self._cursors[key] = Cursor()
            self._slots[key] = 0
        else:
            self._cursors[key] = Cursor.from_json(loads(row.state))
            self._slots[key] = int(row.slots_used)
            self._known.add(key)

    def flush(self) -> None:
        """Write the changed cursors, slots and counts (inside the caller's transaction)."""
        if self.read_only:
            return
        now = utcnow()
        for key in sorted(self._dirty):
            values = {"state": dumps(self._cursors[key].to_json()),
                      "slots_used": self._slots[key], "updated_at": now}
            if key in self._known:
                self.conn.execute(sa.update(sync_rotation)
                                  .where(sync_rotation.c.team_id == key).values(**values))
            else:
                self.conn.execute(sa.insert(sync_rotation).values(team_id=key, **values))
                self._known.add(key)
        self._dirty.clear()
        for rep_id, day in sorted(self._count_dirty):
            count = self._counts[(rep_id, day)]
            if (rep_id, day) in self._count_known:
                self.conn.execute(sa.update(sync_daily_counts).where(
                    sync_daily_counts.c.rep_id == rep_id,
                    sync_daily_counts.c.day == day.isoformat()).values(count=count))
            else:
                self.conn.execute(sa.insert(sync_daily_counts).values(
                    rep_id=rep_id, day=day.isoformat(), count=count))
                self._count_known.add((rep_id, day))
        self._count_dirty.clear()
