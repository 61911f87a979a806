"""sync/writeback.record: each lead's write-back result lands on its own decision row (status,
message, attempts, time) with a `writeback` ledger entry, on SQLite (one UPDATE per kind of
outcome and `IN` list) and on PostgreSQL (a page's outcomes are one UPDATE from arrays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit.ledger import Ledger
from connectors.base import WriteResult
from sync import writeback
from sync.state import CONFLICT, ERROR, OK, PENDING, sync_decisions
from sync.writeahead import ToWrite

DECIDED = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _row(record_id: str, attempts: int, status: str = PENDING) -> dict[str, object]:
    return {"source": "salesforce", "record_id": record_id, "episode": "e1", "cause": "intake",
            "decision_id": f"D-{record_id}", "run_id": "r0", "decided_at": DECIDED,
            "outcome": "assigned", "reason": None, "team_id": "t", "rep_id": "r",
            "rotation_slot": None, "decision": "{}", "writeback": "{}",
            "writeback_status": status, "writeback_attempts": attempts}


def _to_write(record_id: str, retry: bool = False) -> ToWrite:
    return ToWrite(record_id, f"D-{record_id}", "assigned", None, "t", {}, retry=retry)


def test_each_result_lands_on_its_own_decision(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(sync_decisions), [
            _row("A", 0), _row("B", 0), _row("C", 2, ERROR), _row("D", 0), _row("U", 0)])
    items = [_to_write("A"), _to_write("B"), _to_write("C", retry=True), _to_write("D")]
    results = [WriteResult("A", "ok"), WriteResult("B", "conflict", "owner changed by a person"),
               WriteResult("C", "error", "x" * 600, retryable=True), WriteResult("D", "ok")]
    before = datetime.now(UTC) - timedelta(seconds=1)
    ledger = Ledger(engine)
    out = writeback.record(engine, ledger, "salesforce", "salesforce", "r1", items, results)
    assert (out.ok, out.conflicts, out.errors, out.retried) == (2, 1, 1, 1)

    with engine.connect() as conn:
        rows = {r.record_id: r for r in conn.execute(sa.select(sync_decisions))}
    got = {k: (r.writeback_status, r.writeback_message, r.writeback_attempts)
           for k, r in rows.items()}
    assert got == {"A": (OK, None, 1), "B": (CONFLICT, "owner changed by a person", 1),
                   "C": (ERROR, "x" * 500, 3), "D": (OK, None, 1), "U": (PENDING, None, 0)}
    for key in "ABCD":
        at = rows[key].writeback_at
        assert (at if at.tzinfo else at.replace(tzinfo=UTC)) >= before
    assert rows["U"].writeback_at is None

    report = ledger.verify()
    assert report.entries == 4
    with engine.connect() as conn:
        subjects = sorted(s for (s,) in conn.execute(sa.text(
            "SELECT subject FROM ledger_entries WHERE kind = 'writeback'")))
    assert subjects == [f"salesforce:{k}" for k in "ABCD"]


def test_a_page_of_outcomes_beyond_one_in_list(engine: Engine) -> None:
    """More alike outcomes than one `IN` list holds (SQLite groups them 500 to a statement):
    every row gets its own result, none is left pending or given another's."""
    ids = [f"L{n:04d}" for n in range(1_203)]
    with engine.begin() as conn:
        conn.execute(sa.insert(sync_decisions), [_row(i, 0) for i in ids])
    results = [WriteResult(i, "ok") if n % 7 else WriteResult(i, "error", f"refused {n % 3}")
               for n, i in enumerate(ids)]
    writeback.record(engine, Ledger(engine), "salesforce", "salesforce", "r1",
                     [_to_write(i) for i in ids], results)
    with engine.connect() as conn:
        got = {r.record_id: (r.writeback_status, r.writeback_message, r.writeback_attempts)
               for r in conn.execute(sa.select(sync_decisions))}
    assert got == {i: (OK, None, 1) if n % 7 else (ERROR, f"refused {n % 3}", 1)
                   for n, i in enumerate(ids)}
