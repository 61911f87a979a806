"""A page's look-ups by id take as few statements as the database allows (audit.db.in_lists):
each is a round trip on the job's hot path, and SQLite builds before 3.32 take 999 parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit.db import make_engine, upgrade
from sync.state import sync_decisions
from sync.writeahead import _existing


@pytest.mark.parametrize("db, statements", [("sqlite", 4), ("postgres", 1)])
def test_a_page_of_2000_ids_is_looked_up_in_as_few_statements_as_allowed(
        tmp_path: Path, request: pytest.FixtureRequest, db: str, statements: int) -> None:
    url = f"sqlite:///{tmp_path / 'lg.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    engine = make_engine(url)
    ids = [f"00Q{i:015d}" for i in range(2000)]
    with engine.begin() as conn:  # one earlier decision at each end of the page
        conn.execute(sa.insert(sync_decisions), [{
            "source": "salesforce", "record_id": record_id, "episode": "", "cause": "intake",
            "decision_id": f"D{n}", "run_id": "r", "decided_at": datetime.now(UTC),
            "outcome": "refused", "decision": "{}", "writeback": "{}",
            "writeback_status": "ok"} for n, record_id in enumerate((ids[0], ids[-1]))])
    seen: list[Any] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, params, context, many: seen.append(params)
                    if statement.lstrip().upper().startswith("SELECT") else None)
    try:
        with engine.connect() as conn:
            found = _existing(conn, "salesforce", [(i, "") for i in ids])
    finally:
        engine.dispose()
    assert set(found) == {(ids[0], ""), (ids[-1], "")}
    assert len(seen) == statements
    if db == "sqlite":
        assert all(len(params) <= 999 for params in seen)
