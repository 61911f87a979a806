"""A sync into a new PostgreSQL database gives the planner statistics as it goes
(sync/planner_stats.py), so that each page's look-up of earlier decisions probes the index."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from audit.db import make_engine, upgrade
from sync.planner_stats import MIN_ROWS, TABLES, PlannerStatistics
from tests.integration.synctools import check_invariants, start_env, summary, sync_run

LOOKUP = ("SELECT record_id FROM sync_decisions WHERE source = 'salesforce' "
          "AND record_id IN ('{}')")


def _manual_analyzes(engine: sa.Engine, expected: int) -> dict[str, int]:
    """ANALYZE runs per table, not counting autovacuum's (its own counter); waits up to 10 s
    for `expected` on every table, since backends report their statistics a little later."""
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            counts = {row.relname: row.analyze_count for row in conn.execute(sa.text(
                "SELECT relname, analyze_count FROM pg_stat_user_tables "
                "WHERE relname = ANY(:t)"), {"t": list(TABLES)})}
        if counts == {t: expected for t in TABLES} or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_a_first_backfill_analyzes_its_tables_and_the_lookup_probes_the_index(
        tmp_path: Path, pg_url: str) -> None:
    env = start_env(tmp_path, leads=1_600, contacts=0, db_url=pg_url)
    try:
        proc = sync_run(env, "salesforce")
        assert proc.returncode == 0, proc.stderr
        assert summary(proc)["decided"] > MIN_ROWS
        check_invariants(env, "salesforce")
        engine = env.engine()
        try:
            assert _manual_analyzes(engine, 1) == {t: 1 for t in TABLES}
            with engine.connect() as conn:
                some = [r[0] for r in conn.execute(sa.text(
                    "SELECT record_id FROM sync_decisions LIMIT 20"))]
                plan = "\n".join(r[0] for r in conn.execute(sa.text(
                    "EXPLAIN " + LOOKUP.format("','".join(some)))))
            # Probing the unique (source, record_id, episode) index with the ids, not reading
            # every row of the source and filtering them.
            assert "Index Cond" in plan and "record_id" in plan.split("Index Cond")[1], plan
        finally:
            engine.dispose()
    finally:
        env.sb.stop()


def test_statistics_are_taken_when_the_rows_added_double_those_described(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        stats = PlannerStatistics(engine)
        stats.added(MIN_ROWS - 1)  # a new database: nothing described yet, wait for MIN_ROWS
        assert stats.analyzed == 0
        stats.added(1)
        assert stats.analyzed == 1
        stats.added(MIN_ROWS - 1)  # the statistics now describe MIN_ROWS rows
        assert stats.analyzed == 1
        stats.added(1)
        assert stats.analyzed == 2
        stats.added(2 * MIN_ROWS - 1)
        assert stats.analyzed == 2
        assert _manual_analyzes(engine, 2) == {t: 2 for t in TABLES}
    finally:
        engine.dispose()


def test_a_failure_to_analyze_is_not_the_runs(pg_url: str) -> None:
    engine = make_engine(pg_url)  # no schema: ANALYZE names tables that do not exist
    try:
        stats = PlannerStatistics(engine)
        stats.added(MIN_ROWS)
        assert stats.analyzed == 0 and not stats.enabled
        stats.added(MIN_ROWS)  # given up for the run: no further attempts
        assert stats.analyzed == 0
    finally:
        engine.dispose()


def test_sqlite_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'leadgate.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        stats = PlannerStatistics(engine)
        stats.added(10 * MIN_ROWS)
        assert not stats.enabled and stats.analyzed == 0
        with engine.connect() as conn:  # SQLite's own statistics table was never made
            assert conn.execute(sa.text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar() == 0
    finally:
        engine.dispose()
