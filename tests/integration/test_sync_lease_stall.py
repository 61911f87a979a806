"""A run that stalls past its lease (a suspended process, a paused VM) and then resumes finds
the lease taken by the run that went on meanwhile: it decides nothing more, leaves the cursor
where the new holder put it, and ends `failed` (exit 1). Real processes, real SIGSTOP and
SIGCONT, the sandbox over HTTP."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from sync.state import sync_cursors, sync_decisions, sync_runs
from tests.integration.synctools import (
    check_invariants,
    run_past_its_first_page,
    start_env,
    summary,
    sync_run,
)

TTL = 2.0


def test_a_stalled_run_whose_lease_was_taken_stops_without_moving_the_cursor(
        tmp_path: Path, any_url: str) -> None:
    env = start_env(tmp_path, leads=1_500, latency_ms=150, db_url=any_url)
    try:
        # stopped right after its first page's write-ahead committed (by its own SIGSTOP)
        stalled = run_past_its_first_page(env, 0, "--lease-ttl", str(TTL),
                                          stop_at="committed:1")
        try:
            time.sleep(TTL + 1.5)  # its lease expires while it cannot heartbeat
            went_on = sync_run(env, "salesforce")
            s = summary(went_on)
            assert went_on.returncode == 0 and s["status"] == "done", s
            engine = env.engine()
            with engine.connect() as conn:
                cursor_after = conn.execute(sa.select(sync_cursors.c.cursor,
                                                      sync_cursors.c.run_id)).one()
                decided = conn.execute(sa.select(sa.func.count())
                                       .select_from(sync_decisions)).scalar_one()
        finally:
            stalled.send_signal(signal.SIGCONT)
        out, err = stalled.communicate(timeout=120)
        assert stalled.returncode == 1, err[-2000:]
        ended = json.loads(out)
        assert ended["status"] == "failed" and "another run took it" in ended["error"], ended
        with engine.connect() as conn:
            # the cursor is the new holder's, and nothing was decided after the stall
            assert conn.execute(sa.select(sync_cursors.c.cursor,
                                          sync_cursors.c.run_id)).one() == cursor_after
            assert conn.execute(sa.select(sa.func.count())
                                .select_from(sync_decisions)).scalar_one() == decided
            statuses = dict(conn.execute(sa.select(sync_runs.c.run_id,
                                                   sync_runs.c.status)).all())
        engine.dispose()
        assert statuses[ended["run_id"]] == "failed" and statuses[s["run_id"]] == "done"
        again = summary(sync_run(env, "salesforce"))
        assert (again["decided"], again["retried"]) == (0, 0), again
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()
