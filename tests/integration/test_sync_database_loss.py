"""The database going away in the middle of `leadgate sync run`: the server shut down, the
network cut. The run stops part-way with one line saying what failed and how to fix it (no
traceback), exit code 1, and nothing half-processed: a page either is written ahead in full or
not at all, and a page sent to the CRM without its outcomes recorded is sent again, with the
same decisions, by the next run, which takes the dead run's lease over and finishes the backlog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from sync.state import sync_leases, sync_runs
from tests.disks import SmallDisk
from tests.integration.forwarder import Forwarder
from tests.integration.synctools import (
    check_invariants,
    leadgate,
    run_past_its_first_page,
    start_env,
    summary,
    sync_run,
)


def test_a_run_that_loses_its_database_stops_in_one_line_and_the_next_run_finishes(
        tmp_path: Path, pg_url: str) -> None:
    url = sa.make_url(pg_url)
    forwarder = Forwarder(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(port=forwarder.port).render_as_string(hide_password=False)
    env = start_env(tmp_path, leads=1_500, latency_ms=150, db_url=through)
    try:
        intake = len(env.intake["salesforce"])
        proc = run_past_its_first_page(env)
        forwarder.cut()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        first = json.loads(out)
        assert first["status"] == "failed"
        # Cut mid-statement or refused on the next connection, by timing: either way it
        # names the database without its password.
        where = f"postgresql+psycopg://postgres@127.0.0.1:{forwarder.port}/{url.database}: "
        assert re.match(re.escape(where) + r"(the database failed|cannot connect to the "
                        r"database) \(", first["error"]), first["error"]
        assert "(fix: check that the database server runs" in first["error"]
        assert 0 < first["decided"] < intake  # it stopped part-way

        # A run started while it is still down does not start: one line, exit 2.
        down = sync_run(env, "salesforce")
        assert down.returncode == 2, down.stderr[-3000:]
        assert down.stderr.startswith(f"error: {where}") and down.stderr.count("\n") == 1
        assert "(fix: check that the database server runs" in down.stderr
        line = summary(down)  # --json: the log of runs has its line, saying the same
        assert (line["status"], line["exit_code"]) == ("not_started", 2), line
        assert line["error"] == down.stderr.removeprefix("error: ").rstrip("\n")

        forwarder.restore()
        second = summary(sync_run(env, "salesforce"))
        assert second["status"] == "done", second
        check_invariants(env, "salesforce")  # every lead once, every write in the ledger
        engine = sa.create_engine(pg_url)
        try:
            with engine.connect() as conn:
                runs = dict(conn.execute(sa.select(sync_runs.c.run_id, sync_runs.c.status)).all())
                assert conn.execute(sa.select(sync_leases)).first() is None
        finally:
            engine.dispose()
        # The dead run could not record its end; the next one took its lease over at once
        # (same host, its process gone) and marked it.
        assert runs == {first["run_id"]: "died", second["run_id"]: "done"}
        assert summary(sync_run(env, "salesforce"))["decided"] == 0  # nothing left over
    finally:
        env.sb.stop()
        forwarder.cut()


def test_a_full_disk_stops_the_run_in_one_line_and_the_next_run_finishes_once_there_is_room(
        tmp_path: Path, small_disk: Callable[[str], SmallDisk]) -> None:
    disk = small_disk("3M")
    env = start_env(tmp_path, leads=1_500, latency_ms=150,
                    db_url=f"sqlite:///{disk.path / 'leadgate.db'}")
    try:
        intake = len(env.intake["salesforce"])
        proc = run_past_its_first_page(env)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        first = json.loads(out)
        assert first["status"] == "failed"
        assert first["error"].startswith(f"sqlite:///{disk.path / 'leadgate.db'}: the database "
                                         "failed (database or disk is full)"), first["error"]
        assert 0 < first["decided"] < intake

        disk.grow()
        second = summary(sync_run(env, "salesforce"))
        assert second["status"] == "done", second
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_a_file_that_is_not_a_database_is_one_line_for_every_command_and_left_as_it_is(
        tmp_path: Path) -> None:
    # database_url pointing at the wrong file (a backup archive, the policy): SQLite says
    # "file is not a database" on the first statement.
    wrong = tmp_path / "leadgate.db"
    wrong.write_bytes(bytes(range(256)) * 64)
    before = wrong.read_bytes()
    env = start_env(tmp_path, leads=50, db_url=f"sqlite:///{wrong}")
    try:
        for command in (["sync", "run", "--source", "salesforce"], ["sync", "status"],
                        ["review", "list"], ["audit", "verify"], ["db", "upgrade"]):
            proc = leadgate(*command, "--config", str(env.config))
            assert proc.returncode == 2, (command, proc.stderr[-2000:])
            assert proc.stderr.startswith(f"error: sqlite:///{wrong}: "), (command, proc.stderr)
            assert proc.stderr.count("\n") == 1, (command, proc.stderr)
            assert "file is not a database" in proc.stderr
        assert wrong.read_bytes() == before
        assert env.sb.store.leads.get(0, "LeadGate_Status__c") is None  # nothing written
    finally:
        env.sb.stop()
