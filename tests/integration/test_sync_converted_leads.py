"""A Salesforce lead converted (into an account and contact) is past routing and read-only: an
update fails with CANNOT_UPDATE_CONVERTED_LEAD. Converted before a run, it is not intake (a
queue's lead converts with its owner left as the queue and no leadgate stamp, so without the
filter every run would decide it again and fail to write it, exit 1 for ever). Converted
between its decision and its write-back, it is gone: recorded, final, not retried."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state import sync_decisions
from tests.integration.synctools import (
    check_invariants,
    ledger_entries,
    start_env,
    summary,
    sync_run,
)


def test_a_lead_converted_before_the_run_is_not_pulled(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=300)
    try:
        store = env.sb.store
        converted = set(sorted(env.intake["salesforce"])[:4])
        for i in converted:
            store.person_converts(i)

        run = sync_run(env, "salesforce")
        s = summary(run)
        assert run.returncode == 0, s
        assert (s["pulled"], s["write_errors"], s["gone"]) == (
            len(env.intake["salesforce"]) - len(converted), 0, 0), s

        engine = env.engine()
        with engine.connect() as conn:
            decided = set(conn.execute(sa.select(sync_decisions.c.record_id)).scalars())
        engine.dispose()
        ids = {store.leads.id_of(i) for i in converted}
        assert not ids & decided
        for i in converted:  # left exactly as the rep left it
            assert store.leads.get(i, "OwnerId") == store.intake_queue_id
            assert store.leads.get(i, "LeadGate_Status__c") is None
        check_invariants(env, "salesforce", indices=env.intake["salesforce"] - converted)
    finally:
        env.sb.stop()


@pytest.mark.parametrize("conflict_check", [True, False])
def test_a_lead_converted_before_its_write_back_is_gone_not_retried(
        tmp_path: Path, conflict_check: bool) -> None:
    env = start_env(tmp_path, leads=300)
    try:
        if not conflict_check:  # Salesforce's own answer to the write, not leadgate's re-read
            text = env.config.read_text()
            marker = "    kind: salesforce\n"
            assert marker in text
            env.config.write_text(text.replace(marker, marker + "    conflict_check: false\n"))
        killed = sync_run(env, "salesforce", crash_at="committed:1")  # decided, none written
        assert killed.returncode == -9, killed.stderr[-2000:]
        engine = env.engine()
        with engine.connect() as conn:
            pending = sorted(conn.execute(sa.select(sync_decisions.c.record_id).where(
                sync_decisions.c.writeback_status == "pending")).scalars())
        engine.dispose()
        store = env.sb.store
        converted_ids = pending[:3]
        converted = {store.leads.index_of(r) for r in converted_ids}
        for i in converted:
            assert i is not None
            store.person_converts(i)

        done = sync_run(env, "salesforce")
        s = summary(done)
        assert done.returncode == 0, s
        assert (s["gone"], s["write_errors"]) == (3, 0), s
        again = summary(sync_run(env, "salesforce"))
        assert (again["retried"], again["gone"], again["write_errors"]) == (0, 0, 0), again

        engine = env.engine()
        gone = sorted(e["payload"]["record_id"] for e in ledger_entries(engine)
                      if e["kind"] == "writeback" and e["payload"]["status"] == "gone")
        engine.dispose()
        assert gone == converted_ids
        for i in converted:
            assert store.leads.get(i, "IsConverted") is True
            assert store.leads.get(i, "LeadGate_Status__c") is None  # never written
        check_invariants(env, "salesforce", indices=env.intake["salesforce"] - converted)
    finally:
        env.sb.stop()
