"""PostgreSQL planner statistics for the job's look-up tables, kept up to date during a big run.

A run looks up each page's earlier decisions by `source = ? AND record_id IN (...)`, and the
open review items of records back at intake in a new episode the same way. Until a table has statistics, PostgreSQL
assumes `source = ?` picks few rows and scans every row of the source for each look-up instead
of probing the (source, record_id, ...) index: measured at 85,000 decisions, 8 ms against 1 ms
for 500 ids, and growing with the table, so a first backfill into a new database slows down
as it goes. Autovacuum would analyze the tables, but only within a minute or so of noticing
the change, and a backfill is done long before it looks.

So, as PostgreSQL's documentation advises after a bulk load, the run analyzes those tables
itself whenever it has added as many rows as their statistics describe (at least MIN_ROWS):
a few times in a run that starts from an empty database (after 1,000, 2,000, 4,000... rows),
rarely or never in the runs after it. Statistics only steer the planner: a failure here (a role
that does not own the tables gets only a warning from PostgreSQL) is ignored, never the run's.
SQLite needs none of this: it probes the index without statistics.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

# The columns the run's look-ups filter on. The wide ones (decision and write-back JSON, sealed
# lead input, keys) are left out, and the sample is small (TARGET): in a 100,000-lead backfill
# the six ANALYZEs took 135 ms each with every column and the default sample, 17 ms so.
COLUMNS = {
    "sync_decisions": ("source", "record_id", "episode", "decision_id", "run_id", "outcome",
                       "writeback_status", "team_id"),
    "sync_review_queue": ("source", "record_id", "episode", "decision_id", "status",
                          "transient"),
    "ledger_subject_keys": ("subject",),
}
TABLES = tuple(COLUMNS)
MIN_ROWS = 1_000
TARGET = 10  # statistics target for these runs (PostgreSQL's default: 100)

log = logging.getLogger(__name__)


class PlannerStatistics:
    """Counts the decisions a run adds and analyzes TABLES when they double (see module)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql"
        self._described: float | None = None  # rows the statistics describe, read when needed
        self._added = 0  # rows added since those statistics were taken
        self.analyzed = 0  # times this run analyzed the tables

    def added(self, rows: int) -> None:
        """`rows` decisions were committed (each adds a row to the tables or fewer)."""
        if not self.enabled or rows <= 0:
            return
        try:
            if self._described is None:
                self._described = self._rows_described()
            self._added += rows
            if self._added < max(MIN_ROWS, self._described):
                return
            with self.engine.begin() as conn:
                # A sample of 3,000 rows instead of 30,000: enough to tell one source from
                # many and ids from duplicates; autovacuum's own ANALYZE refines it later.
                conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {TARGET}")
                conn.exec_driver_sql("ANALYZE " + ", ".join(
                    f"{table} ({', '.join(columns)})" for table, columns in COLUMNS.items()))
            self.analyzed += 1
            self._described += self._added
            self._added = 0
        except sa.exc.SQLAlchemyError as exc:
            log.info("planner statistics not refreshed (%s); the run goes on",
                     type(exc.__cause__ or exc).__name__)
            self.enabled = False

    def _rows_described(self) -> float:
        """The row count of sync_decisions' statistics (0 when it has none yet)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass('sync_decisions')"
            )).scalar()
        return max(0.0, float(rows or 0))
