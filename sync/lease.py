"""One active run per source: a lease row in the database, taken over when it expires.

A run holds its lease by heartbeating (renewing `expires_at`); a run that dies stops
heartbeating and the next run takes the lease over once it has expired, or at once when the
holder's process is provably gone (cron on one machine after a crash). Taking and renewing are
single conditional UPDATE/INSERT statements, so two runs starting at once cannot both win, on
SQLite or PostgreSQL. Times are the database's clock, not each worker's: workers whose clocks
disagree still agree on when a lease expires.

A run also *fences* its work with the lease (`hold`): the write-ahead of each page and each
cursor move renew the lease in their own transaction and fail with `LeaseLost` when another
run holds it, so a run that stalled past its lease (suspended, paused by a debugger, starved)
cannot decide, or move the cursor, over the run that took it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa

from audit.db import IDLE_IN_TRANSACTION_SECONDS, is_sqlite
from routing_core.errors import LeadgateError
from sync.state import sync_leases

DEFAULT_TTL = 120.0  # seconds without a heartbeat before another run may take over
# How long taking the lease waits for its row's lock: past the server's end of a stalled
# holder's transaction (audit.db.IDLE_IN_TRANSACTION_SECONDS).
LOCK_WAIT_SECONDS = 2 * IDLE_IN_TRANSACTION_SECONDS
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout


class LeaseLost(LeadgateError):
    """Another run took the lease over (ours expired): stop before doing more work."""


@dataclass(frozen=True)
class LeaseHeld:
    """The lease is held by someone else (who, and until when unless renewed)."""

    name: str
    holder: str
    expires_at: float


def db_time(conn: sa.Connection) -> float:
    """Now, in seconds since the epoch, by the database's clock (PostgreSQL's; a SQLite file
    is on this machine, whose clock is the one all its writers share)."""
    if is_sqlite(conn.engine):
        return time.time()
    return float(conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())"))
                 .scalar_one())


@cache
def this_host() -> str | None:
    """Where a process id means one process: the host name and its PID namespace on this boot.
    Two containers sharing a host name (host networking) have different PID namespaces, two
    machines cloned with one name different boots. None when /proc cannot tell."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    digest = hashlib.sha256(f"{boot}\n{namespace}".encode()).hexdigest()[:12]
    return f"{socket.gethostname()}/{digest}"


def default_holder(run_id: str) -> str:
    return f"{this_host() or socket.gethostname()}:{os.getpid()}:{run_id}"


def _dead_here(holder: str) -> bool:
    """The holder ran where this process runs (same host, boot and PID namespace) and its
    process no longer exists. Anything less certain waits for the lease to expire."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    here = this_host()
    if here is None or host != here or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists (another user's process)
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


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
        self.taken_over: str | None = None  # run id of a dead run whose lease we took

    def acquire(self) -> LeaseHeld | None:
        """Take the lease; return None on success, or who holds it. On PostgreSQL a holder
        stalled inside a transaction locks the lease row until the server ends that transaction
        (audit.db.IDLE_IN_TRANSACTION_SECONDS): the take waits for that, and longer than that
        only for a holder still at work, whose lease it then reports as held."""
        try:
            return self._acquire()
        except sa.exc.OperationalError as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(sync_leases)
                                   .where(sync_leases.c.name == self.name)).first()
            if row is None:  # pragma: no cover - released meanwhile: the next run takes it
                return LeaseHeld(self.name, "(released while this run waited)", 0.0)
            return LeaseHeld(self.name, row.holder, row.expires_at)

    def _acquire(self) -> LeaseHeld | None:
        with self.engine.begin() as conn:
            if not is_sqlite(conn.engine):
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
            now = db_time(conn)
            values = {"holder": self.holder, "run_id": self.run_id, "acquired_at": now,
                      "heartbeat_at": now, "expires_at": now + self.ttl}
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
                if _dead_here(row.holder):
                    # Its process is gone (killed, crashed) on this very host: no need to
                    # wait for the expiry. Only this exact holder's row is replaced.
                    taken = conn.execute(
                        sa.update(sync_leases)
                        .where(sync_leases.c.name == self.name,
                               sync_leases.c.holder == row.holder)
                        .values(**values)).rowcount
                    if taken == 1:
                        self.taken_over = row.run_id
                        return None
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
                return self._acquire()
            return LeaseHeld(self.name, row.holder, row.expires_at)

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken over)."""
        with self.engine.begin() as conn:
            return self._renew(conn)

    def _renew(self, conn: sa.Connection) -> bool:
        now = db_time(conn)
        renewed = conn.execute(
            sa.update(sync_leases)
            .where(sync_leases.c.name == self.name, sync_leases.c.holder == self.holder)
            .values(heartbeat_at=now, expires_at=now + self.ttl)
        ).rowcount
        if renewed != 1:
            self.lost = True
        return renewed == 1

    def hold(self, conn: sa.Connection) -> None:
        """Renew the lease inside `conn`'s transaction, or raise LeaseLost: what that
        transaction commits is committed by the lease's holder. On PostgreSQL the renewal
        locks the lease row until the commit, so no other run can take it meanwhile."""
        if self.lost or not self._renew(conn):
            raise self.lost_error()

    def lost_error(self) -> LeaseLost:
        return LeaseLost(f"the lease of {self.name} expired and another run took it; this run "
                         "stopped (what it decided is written back by the run that holds it)",
                         fix="raise --lease-ttl if runs stall this long")

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

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def release(self, conn: sa.Connection) -> bool:
        """Give the lease up inside `conn`'s transaction (stop the heartbeat first); False when
        it was not ours any more."""
        released = conn.execute(
            sa.delete(sync_leases)
            .where(sync_leases.c.name == self.name, sync_leases.c.holder == self.holder)
        ).rowcount
        if released != 1:
            self.lost = True
        return released == 1
