"""The sync tables: migrations 0002 and later match sync/state.py, leases, database rotation state."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import db
from routing_core.rotation import Cursor
from sync.lease import Lease, LeaseLost, default_holder, this_host
from sync.rotation_db import DbRotationState
from sync.state import dumps, loads, metadata


def test_migration_creates_exactly_the_tables_of_sync_state(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diffs if "sync_" in repr(d)]
    assert ours == [], ours
    assert db.current_revision(engine) is not None


def test_migration_downgrades_cleanly(engine: sa.Engine) -> None:
    db.downgrade(engine, "0001_ledger")
    assert not sa.inspect(engine).has_table("sync_decisions")
    db.upgrade(engine)
    assert sa.inspect(engine).has_table("sync_decisions")


def test_lease_one_holder_then_takeover_after_expiry(engine: sa.Engine) -> None:
    first = Lease(engine, "crm", "host:1:a", "a", ttl=0.5)
    second = Lease(engine, "crm", "host:2:b", "b", ttl=30)
    assert first.acquire() is None
    held = second.acquire()
    assert held is not None and held.holder == "host:1:a"
    time.sleep(0.7)  # the first run "died": no heartbeat
    assert second.acquire() is None
    assert first.renew() is False and first.lost  # a late heartbeat must not steal it back
    again = Lease(engine, "crm", "host:3:c", "c").acquire()
    assert again is not None and again.holder == "host:2:b"
    with engine.begin() as conn:
        assert second.release(conn) and not first.release(conn)
    assert Lease(engine, "crm", "host:3:c", "c").acquire() is None


def test_heartbeat_keeps_the_lease(engine: sa.Engine) -> None:
    lease = Lease(engine, "crm", "h:1:a", "a", ttl=0.6)
    assert lease.acquire() is None
    lease.start_heartbeat(every=0.1)
    time.sleep(1.0)
    assert Lease(engine, "crm", "h:2:b", "b").acquire() is not None
    lease.stop_heartbeat()
    with engine.begin() as conn:
        assert lease.release(conn)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_dead_holder_is_taken_over_at_once_only_where_its_pid_means_it(
        engine: sa.Engine) -> None:
    assert this_host() is not None  # /proc tells the boot and PID namespace here
    pid = _dead_pid()
    host = this_host() or ""
    # Same host name, another PID namespace or boot (a container with host networking, a
    # cloned machine): the pid says nothing about that process, so the lease is waited for.
    name, _, digest = host.partition("/")
    for elsewhere in (f"{name}/{'0' * len(digest)}:{pid}:a", f"{name}:{pid}:a"):
        first = Lease(engine, "crm", elsewhere, "a", ttl=60)
        assert first.acquire() is None
        held = Lease(engine, "crm", default_holder("b"), "b").acquire()
        assert held is not None and held.holder == elsewhere
        with engine.begin() as conn:
            first.release(conn)
    # Here, and its process gone: taken over at once.
    dead = Lease(engine, "crm", f"{host}:{pid}:c", "c", ttl=60)
    assert dead.acquire() is None
    taker = Lease(engine, "crm", default_holder("d"), "d")
    assert taker.acquire() is None and taker.taken_over == "c"


def test_a_run_whose_lease_was_taken_commits_nothing_more(engine: sa.Engine) -> None:
    first = Lease(engine, "crm", "host:1:a", "a", ttl=0.5)
    assert first.acquire() is None
    with engine.begin() as conn:
        first.hold(conn)  # held: renews in the caller's transaction
    time.sleep(0.7)  # stalled past its lease, and another run took it
    second = Lease(engine, "crm", "host:2:b", "b", ttl=30)
    assert second.acquire() is None
    assert not first.lost  # its heartbeat has not noticed yet
    with pytest.raises(LeaseLost, match="another run took it"):
        with engine.begin() as conn:
            first.hold(conn)
    assert first.lost
    with engine.begin() as conn:
        second.hold(conn)
        assert not first.release(conn)  # not ours to give up


def test_lease_expiry_is_by_the_database_clock(pg_engine: sa.Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = Lease(pg_engine, "crm", "host:1:a", "a", ttl=120)
    assert first.acquire() is None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 125)  # a worker's clock 125 s ahead
    held = Lease(pg_engine, "crm", "host:2:b", "b").acquire()
    assert held is not None and held.holder == "host:1:a"
    assert first.renew()


def test_rotation_state_persists_only_when_flushed_in_the_transaction(engine: sa.Engine) -> None:
    day = date(2026, 11, 25)
    with engine.begin() as conn:
        rot = DbRotationState(conn)
        assert rot.cursor("uk_retail") == Cursor()
        rot.advance("uk_retail", Cursor(last="alice"), "alice", day)
        assert rot.take_slot("uk_retail") == 1
        rot.flush()
    with engine.connect() as conn:
        trans = conn.begin()
        rot = DbRotationState(conn)
        assert rot.cursor("uk_retail").last == "alice"
        assert rot.assigned_count("alice", day) == 1
        rot.advance("uk_retail", Cursor(last="bob"), "bob", day)
        rot.take_slot("uk_retail")
        rot.flush()
        trans.rollback()  # a crash before commit: no rotation step happened
    with engine.connect() as conn:
        rot = DbRotationState(conn, read_only=True)
        assert rot.cursor("uk_retail").last == "alice"
        assert rot.assigned_count("bob", day) == 0
        assert rot.take_slot("uk_retail") == 2
        rot.advance("uk_retail", Cursor(last="carol"), "carol", day)
        rot.flush()  # read-only (dry run): writes nothing
    with engine.connect() as conn:
        assert DbRotationState(conn).cursor("uk_retail").last == "alice"


_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False) | st.datetimes(timezones=st.just(UTC)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json_like)
def test_state_json_reads_back_as_json_dumps_with_sorted_keys_wrote_it(value: object) -> None:
    text = dumps(value)
    assert loads(text) == json.loads(json.dumps(value, sort_keys=True, default=str))
    # Sorted keys at every level: re-sorting what was read changes nothing.
    assert json.dumps(loads(text), sort_keys=True) == json.dumps(loads(text))


def test_json_columns_read_back_as_json_dumps_with_default_str_would() -> None:
    # orjson where it can, the C encoder where it refuses (keys that are not strings, a lone
    # surrogate, an integer beyond 64 bits): the text always reads back to the same values.
    at = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    for value in ({"b": [1, 2.5, None, True], "a": "Zoë", "t": at, "d": Decimal("1.10")},
                  {1: "a"}, {"s": "\ud800x"}, {"big": 2**70}, [("tuple", 1)], "text"):
        expected = json.loads(json.dumps(value, sort_keys=True, separators=(",", ":"),
                                         default=str))
        assert loads(dumps(value)) == expected, value
    assert dumps({"z": 1, "a": {"y": 2, "b": 3}}) == '{"a":{"b":3,"y":2},"z":1}'
    # JSON has no NaN: null, which every reader takes (json.dumps wrote a bare NaN).
    assert dumps({"x": float("nan"), "y": float("-inf")}) == '{"x":null,"y":null}'


def test_a_holder_stalled_inside_a_transaction_does_not_block_the_takeover(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run suspended while its heartbeat's UPDATE is uncommitted keeps the lease row locked:
    the run taking over used to wait for as long as the stall lasted (a SIGSTOPped process:
    for ever). The server now ends a leadgate transaction left idle, and the take waits past
    that, then reports a holder still locking the row after it as holding the lease."""
    import sync.lease as lease_module

    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_SECONDS", 1)  # 30 s in production
    monkeypatch.setattr(lease_module, "LOCK_WAIT_SECONDS", 6)
    db.upgrade(pg_url)
    stalled_engine, engine = db.make_engine(pg_url), db.make_engine(pg_url)
    try:
        stalled = Lease(stalled_engine, "crm", "host:1:a", "a", ttl=0.5)
        assert stalled.acquire() is None
        conn = stalled_engine.connect()
        conn.begin()
        assert stalled._renew(conn)  # the heartbeat's UPDATE, and then the process stops
        time.sleep(0.6)  # the lease expires; the row stays locked
        started = time.monotonic()
        assert Lease(engine, "crm", "host:2:b", "b", ttl=60).acquire() is None
        assert time.monotonic() - started < 5  # taken once the server ended the stalled one
        with pytest.raises(sa.exc.DBAPIError):  # the stalled session was ended
            conn.execute(sa.text("SELECT 1"))
        conn.invalidate()

        # A holder at work (its transaction busy, not idle) is waited for, then reported as
        # holding the lease: the take gives up after its wait (1 s here), not after the work.
        with engine.begin() as conn2:  # b's lease has run out, but b is still committing
            conn2.execute(sa.text("UPDATE sync_leases SET expires_at = 0 WHERE name = 'crm'"))
        busy = engine.connect()
        busy.begin()
        busy.execute(sa.text("SELECT 1 FROM sync_leases WHERE name = 'crm' FOR UPDATE"))
        worker = subprocess.Popen([sys.executable, "-c", (
            "import time; import sync.lease as L; from audit import db; "
            "L.LOCK_WAIT_SECONDS = 1; t = time.monotonic(); "
            f"h = L.Lease(db.make_engine({pg_url!r}), 'crm', 'host:3:c', 'c').acquire(); "
            "print(h.holder if h else 'taken', round(time.monotonic() - t, 1))")],
            stdout=subprocess.PIPE, text=True)
        for _ in range(40):  # busy, never idle: keep the transaction at work for 4 s
            busy.execute(sa.text("SELECT pg_sleep(0.1)"))
        out, _ = worker.communicate(timeout=60)
        busy.rollback()
        busy.close()
        holder, waited = out.split()
        assert holder == "host:2:b" and 0.9 <= float(waited) < 3.5, out
    finally:
        stalled_engine.dispose()
        engine.dispose()
