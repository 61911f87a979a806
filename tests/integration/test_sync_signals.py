"""Stopping `leadgate sync run` with a signal, as schedulers do (a Kubernetes pod stopped, an
Airflow task past its timeout: SIGTERM; a person at the terminal: Ctrl-C, SIGINT).

The first signal stops the run at the next page boundary: the pages already written ahead are
written back and recorded, the cursor moves past them and no further, the lease is released,
the run is recorded as interrupted and exits 1; the next run finishes the backlog. A second
signal stops the process at once, which is as safe as any crash.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state import PENDING, sync_decisions, sync_leases, sync_runs
from tests.integration.synctools import (
    REPO_ROOT,
    check_invariants,
    hubspot_down,
    run_past_its_first_page,
    start_env,
    summary,
    sync_run,
)

LEADS = 1_500  # ~1,270 intake leads: 7 pages of 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_at_a_page_boundary_with_nothing_left_in_flight(
        tmp_path: Path, signum: signal.Signals, any_url: str) -> None:
    env = start_env(tmp_path, leads=LEADS, latency_ms=150, db_url=any_url)
    try:
        engine = env.engine()
        intake = len(env.intake["salesforce"])
        proc = run_past_its_first_page(env)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err[-2000:]
        assert f"{signum.name}: finishing the pages in flight" in err
        first = json.loads(out)
        assert first["status"] == "interrupted" and signum.name in first["error"]
        assert 0 < first["decided"] < intake  # it stopped early...
        assert first["written"] == first["decided"]  # ...with every decision it made sent
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)
                                .where(sync_decisions.c.writeback_status == PENDING)
                                ).scalar_one() == 0  # and recorded
            assert conn.execute(sa.select(sync_leases)).first() is None  # lease released
            assert conn.execute(sa.select(sync_runs.c.status)).scalar_one() == "interrupted"
        # The next run goes on from the cursor and finishes the backlog, no lead twice.
        second = summary(sync_run(env, "salesforce"))
        assert second["status"] == "done" and second["retried"] == 0
        assert first["decided"] + second["decided"] == intake
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_a_second_signal_stops_at_once_and_the_next_run_finishes(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=LEADS, latency_ms=150)
    try:
        proc = run_past_its_first_page(env)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGTERM
        assert summary(sync_run(env, "salesforce"))["status"] == "done"
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_a_signal_ends_the_wait_for_a_crm_retry(tmp_path: Path) -> None:
    """A CRM that does not answer is retried with waits of up to max_wait (here 60 s between
    six attempts). A scheduler's SIGTERM must not wait them out (Kubernetes sends SIGKILL 60 s
    on): the run stops within moments, is recorded as interrupted, releases its lease, and the
    next run retries what failed."""
    env = start_env(tmp_path, leads=20)
    try:
        with hubspot_down(env, "{ attempts: 6, initial_wait: 20, max_wait: 60 }"):
            proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "run",
                                     "--config", str(env.config), "--source", "hubspot",
                                     "--json"],
                                    env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2.0)  # the first attempt failed at once; the wait for the second goes on
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=120)
            stopped_after = time.monotonic() - signalled
        assert proc.returncode == 1, err[-2000:]
        assert stopped_after < 5, stopped_after
        stopped = json.loads(out)
        assert stopped["status"] == "interrupted" and stopped["exit_code"] == 1, stopped
        assert "not retried: the run is stopping" in stopped["error"], stopped["error"]
        engine = env.engine()
        with engine.connect() as conn:
            assert conn.execute(sa.select(sync_leases)).first() is None  # lease released
            assert conn.execute(sa.select(sync_runs.c.status)).scalar_one() == "interrupted"
        engine.dispose()
        assert summary(sync_run(env, "hubspot"))["status"] == "done"
        check_invariants(env, "hubspot")
    finally:
        env.sb.stop()
