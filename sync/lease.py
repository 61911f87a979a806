"""One active run per source: a lease row in the database, taken over when it expires.

A run holds its lease by heartbeating (renewing `expires_at`); a run that dies stops
heartbeating and the next run takes the lease over once it has expired. Taking and renewing are
single conditional UPDATE/INSERT statements, so two runs starting at once cannot both win, on
SQLite or PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from sync.state import sync_leases

DEFAULT_TTL = 120.0  # seconds without a heartbeat before another run may take over


@dataclass(frozen=True)
class LeaseHeld:
    """The lease is held by someone else (who, and until when unless renewed)."""

    name: str
    holder: str
    expires_at: float


def default_holder(run_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"


class Lease:
    def __init__(self, engine: sa.Engine, name: str, holder: str, run_id: str,
                 ttl: float = DEFAULT_TTL) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.run_id = run_id
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def acquire(self) -> LeaseHeld | None:
        """Take the lease; return None on success, or who holds it."""
        now = time.time()
        values = {"holder": self.holder, "run_id": self.run_id, "acquired_at": now,
                  "heartbeat_at": now, "expires_at": now + self.ttl}
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(sync_leases)
                .where(sync_leases.c.name == self.name)
                .where(sa.or_(sync_leases.c.expires_at < now,
                              sync_leases.c.holder == self.holder))
                .values(**values)
            ).rowcount
            if taken == 1:
                return None
            row = conn.execute(
                sa.select(sync_leases).where(sync_leases.c.name == self.name)
            ).first()
            if row is not None:
                return LeaseHeld(self.name, row.holder, row.expires_at)
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(sync_leases).values(name=self.name, **values))
            return None
        except sa.exc.IntegrityError:
            # Someone inserted it between our UPDATE and INSERT: they hold it.
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(sync_leases).where(sync_leases.c.name == self.name)
                ).first()
            if row is None:  # pragma: no cover - released in between; try once more
                return self.acquire()
            return LeaseHeld(self.name, row.holder, row.expires_at)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken over)."""
        now = time.time()
        with self.engine.begin() as conn:
            renewed = conn.execute(
                sa.update(sync_leases)
                .where(sync_leases.c.name == self.name, sync_leases.c.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
            ).rowcount
        if renewed != 1:
            self.lost = True
        return renewed == 1

    def start_heartbeat(self, every: float | None = None) -> None:
        interval = every if every is not None else max(self.ttl / 4, 0.5)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        return
                except Exception:  # noqa: BLE001 - a failed beat is retried on the next tick
                    continue

        self._thread = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(sync_leases)
                .where(sync_leases.c.name == self.name, sync_leases.c.holder == self.holder)
            )
