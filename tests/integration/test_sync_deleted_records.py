"""A record deleted (or merged into a duplicate) in the CRM between its decision and its
write-back is gone: recorded as such in the ledger, final, and not retried by every later run
as a failed write that nobody can fix (exit 1 and a monitor's alarm for ever)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state import sync_decisions
from tests.integration.synctools import (
    check_invariants,
    leadgate,
    ledger_entries,
    start_env,
    summary,
    sync_run,
)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@pytest.mark.parametrize("conflict_check", [True, False])
def test_a_record_deleted_before_its_write_back_is_gone_not_retried(
        tmp_path: Path, any_url: str, crm: str, conflict_check: bool) -> None:
    env = start_env(tmp_path, leads=300, db_url=any_url)
    try:
        if not conflict_check:  # the CRM's own answer to the write, not leadgate's re-read
            text = env.config.read_text()
            marker = f"    kind: {crm}\n"
            assert marker in text
            env.config.write_text(text.replace(marker, marker + "    conflict_check: false\n"))
        killed = sync_run(env, crm, crash_at="committed:1")  # decided, nothing written yet
        assert killed.returncode == -9, killed.stderr[-2000:]
        engine = env.engine()
        with engine.connect() as conn:
            pending = dict(conn.execute(sa.select(sync_decisions.c.record_id,
                                                  sync_decisions.c.outcome).where(
                sync_decisions.c.source == crm,
                sync_decisions.c.writeback_status == "pending")).all())
        engine.dispose()
        store = env.sb.store
        table = store.leads if crm == "salesforce" else store.contacts
        # three assigned and two refused (their review items have nothing left to review)
        deleted = sorted([r for r, o in sorted(pending.items()) if o == "assigned"][:3]
                         + [r for r, o in sorted(pending.items()) if o == "refused"][:2])
        assert len(deleted) == 5
        indices = {table.index_of(r) for r in deleted}
        for i in indices:
            assert i is not None
            store.person_deletes(crm, i)

        done = sync_run(env, crm)
        s = summary(done)
        assert done.returncode == 0, s  # nothing failed that a later run could fix
        assert (s["gone"], s["write_errors"]) == (5, 0), s
        again = summary(sync_run(env, crm))
        assert (again["retried"], again["gone"], again["write_errors"]) == (0, 0, 0), again

        engine = env.engine()
        with engine.connect() as conn:
            statuses = dict(conn.execute(sa.select(sync_decisions.c.record_id,
                                                   sync_decisions.c.writeback_status)
                                         .where(sync_decisions.c.source == crm)).all())
        gone = [e["payload"] for e in ledger_entries(engine) if e["kind"] == "writeback"
                and e["payload"]["status"] == "gone"]
        engine.dispose()
        assert {r: statuses[r] for r in deleted} == dict.fromkeys(deleted, "gone")
        assert sorted(g["record_id"] for g in gone) == deleted
        assert all(not g["retryable"] for g in gone)
        items = json.loads(leadgate("review", "list", "--all", "--json", "--config",
                                    str(env.config)).stdout)
        closed = {i["record_id"]: (i["status"], i["resolved_by"]) for i in items
                  if i["record_id"] in deleted}
        assert len(closed) == 2 and set(closed.values()) == {
            ("gone", "gone from the CRM (deleted, merged or converted)")}
        status = leadgate("sync", "status", "--config", str(env.config))
        assert "write-backs to retry: 0" in status.stdout, status.stdout
        check_invariants(env, crm, indices=env.intake[crm] - indices)
    finally:
        env.sb.stop()
