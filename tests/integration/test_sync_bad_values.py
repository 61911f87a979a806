"""A value a CRM can send that the ledger cannot record as it is (an integer beyond what JSON
numbers carry exactly): the record is refused as `invalid_lead` naming the field, and every other
lead of the same page is routed as usual. One such record must never stop a source's sync (its
page would fail again on every later run). Text with a lone surrogate, the other such value,
cannot come from the sandbox's UTF-8 wire: tests/connectors/test_conn_config.py covers it."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from sync.state import sync_decisions
from tests.integration.synctools import (
    check_invariants,
    record_id,
    start_env,
    summary,
    sync_run,
)


def test_unrecordable_values_refuse_their_record_and_the_rest_is_routed(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=60)
    try:
        huge = sorted(env.intake["salesforce"])[0]
        st = env.sb.store
        with st.lock:
            st.leads.set(huge, {"LeadSource": 2**60})  # mapped as text: attributes.lead_source
        run = sync_run(env, "salesforce")
        assert run.returncode == 0, run.stderr
        s = summary(run)
        assert s["pulled"] == len(env.intake["salesforce"]) and s["decided"] == s["pulled"]
        assert s["write_errors"] == 0
        check_invariants(env, "salesforce")
        engine = env.engine()
        with engine.connect() as conn:
            rows = {r.record_id: r for r in conn.execute(sa.select(sync_decisions))}
        engine.dispose()
        refused = json.loads(rows[record_id(env.sb, "salesforce", huge)].decision)
        assert refused["reason"] == "invalid_lead"
        assert any(p.startswith("LeadSource:") and "2**53" in p
                   for p in refused["problems"]), refused["problems"]
    finally:
        env.sb.stop()
