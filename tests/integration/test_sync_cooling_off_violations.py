"""Cooling-off violations end to end: the real `leadgate sync run` against the sandbox CRM over
HTTP(S) with the real SDKs, on SQLite and PostgreSQL.

Three Luxembourg retail mortgage leads (the example policy's `eu-mortgage-reflection`: 168 h
from first contact, blocks `proposal`) are routed: two first contacted yesterday (not_before in
six days), one eight days ago (not_before yesterday). Then reps move them in the CRM: one of the
two into the blocked stage, the other to another stage, the old one into the blocked stage
after its window ended. Only the first is a violation, reported once.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors.mapping import default_mapping, parse_crm_time
from sync.state import sync_decisions, sync_review_queue
from tests.integration.synctools import (
    Env,
    check_invariants,
    leadgate,
    ledger_entries,
    start_env,
    summary,
    sync_run,
)

STAGE_FIELD = {"salesforce": "Status", "hubspot": "lifecyclestage"}
# The CRM's value for "proposal" (mapped in the config) and for another stage
BLOCKED = {"salesforce": "Proposal", "hubspot": "opportunity"}
OTHER = {"salesforce": "Working - Contacted", "hubspot": "salesqualifiedlead"}
NOT_BEFORE = {"salesforce": "LeadGate_Not_Before__c", "hubspot": "leadgate_not_before"}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leadgate.db'}"
    return request.getfixturevalue("pg_url")


def _map_proposal_stage(env: Env, crm: str) -> None:
    """The CRM's own stage value maps to the policy's `proposal` (as a bank's mapping would)."""
    data = yaml.safe_load(env.config.read_text())
    mapping = {k: v.model_dump(exclude_defaults=True) for k, v in default_mapping(crm).items()}
    mapping["stage"] = {"field": STAGE_FIELD[crm], "values": {BLOCKED[crm]: "proposal"},
                        "passthrough": True}
    data["sources"][crm]["mapping"] = mapping
    env.config.write_text(yaml.safe_dump(data, sort_keys=False))


def _mortgage_lead(env: Env, crm: str, n: int, first_contact: datetime) -> int:
    ms = int(first_contact.timestamp() * 1000)
    st = env.sb.store
    if crm == "salesforce":
        rid = env.sb.add_lead(FirstName="Anouk", LastName=f"Weber{n}",
                              Email=f"anouk.weber{n}@example.lu", Country="Luxembourg",
                              Product_Interest__c="EU Mortgage",
                              Customer_Type__c="Retail Customer", CurrencyIsoCode="EUR",
                              Investable_Assets__c=250000,
                              Email_Consent__c=True, First_Contact__c=ms)
        return int(st.leads.index_of(rid))  # type: ignore[arg-type]
    rid, _ = env.sb.enquire(firstname="Anouk", lastname=f"Weber{n}",
                            email=f"anouk.weber{n}@example.lu", country="Luxembourg",
                            product_interest="EU Mortgage", customer_type="Retail Customer",
                            assets_currency="EUR", investable_assets=250000,
                            email_consent=True,
                            first_contact_date=ms)
    return int(st.contacts.index_of(rid))  # type: ignore[arg-type]


def _move_stage(env: Env, crm: str, i: int, value: str) -> None:
    """A rep changes the record's stage in the CRM (its modification time moves)."""
    st = env.sb.store
    with st.lock:
        if crm == "salesforce":
            t = st.stamp(seconds=True)
            st.leads.set(i, {"Status": value, "SystemModstamp": t, "LastModifiedDate": t})
        else:
            st.contacts.set(i, {"lifecyclestage": value,
                                "lastmodifieddate": st.stamp(seconds=False)})


def _get(env: Env, crm: str, i: int, field: str) -> Any:
    t = env.sb.store.leads if crm == "salesforce" else env.sb.store.contacts
    return t.get(i, field)


def _violation_entries(env: Env) -> list[dict[str, Any]]:
    engine = env.engine()
    try:
        return [e for e in ledger_entries(engine) if e["kind"] == "violation"]
    finally:
        engine.dispose()


def _review_items(env: Env) -> list[Any]:
    engine = env.engine()
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(sync_review_queue).where(
                sync_review_queue.c.reason == "cooling_off_violation")).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_stage_change_into_the_blocked_stage_inside_the_window_is_reported_once(
        tmp_path: Path, db_url: str, crm: str) -> None:
    env = start_env(tmp_path, leads=40, db_url=db_url,
                    notify=[{"kind": "email", "to": ["ops-admin@example.com"]}])
    try:
        _map_proposal_stage(env, crm)
        now = datetime.now(UTC)
        inside = _mortgage_lead(env, crm, 1, now - timedelta(days=1))
        other = _mortgage_lead(env, crm, 2, now - timedelta(days=1))
        ended = _mortgage_lead(env, crm, 3, now - timedelta(days=8))
        ours = {inside, other, ended}
        env.intake[crm] |= ours

        first = sync_run(env, crm)
        assert first.returncode == 0, first.stderr[-2000:]
        s1 = summary(first)
        assert s1["violations"] == 0 and s1["write_errors"] == 0
        check_invariants(env, crm)
        for i in ours:  # each assigned by the routing core, with its not_before in the CRM
            assert _get(env, crm, i, "leadgate_status" if crm == "hubspot"
                        else "LeadGate_Status__c") == "assigned"
        nb_inside = parse_crm_time(_get(env, crm, inside, NOT_BEFORE[crm]))
        assert nb_inside > now + timedelta(days=5)
        assert parse_crm_time(_get(env, crm, ended, NOT_BEFORE[crm])) < now

        _move_stage(env, crm, inside, BLOCKED[crm])  # inside the window: a violation
        _move_stage(env, crm, other, OTHER[crm])     # inside, another stage: not one
        _move_stage(env, crm, ended, BLOCKED[crm])   # after not_before: not one
        inside_id = str((env.sb.store.leads if crm == "salesforce"
                         else env.sb.store.contacts).id_of(inside))

        # A dry run says what it would flag and records nothing.
        dry = sync_run(env, crm, "--dry-run")
        assert dry.returncode == 0, dry.stderr[-2000:]
        flagged = summary(dry)["would_flag"]
        assert [f["record_id"] for f in flagged] == [inside_id]
        assert _violation_entries(env) == [] and _review_items(env) == []

        second = sync_run(env, crm)
        assert second.returncode == 0, second.stderr[-2000:]
        s2 = summary(second)
        assert s2["violations"] == 1 and s2["decided"] == 0, s2
        [entry] = _violation_entries(env)
        assert entry["subject"] == f"{crm}:{inside_id}"
        engine = env.engine()
        with engine.connect() as conn:
            decision_id = conn.execute(sa.select(sync_decisions.c.decision_id).where(
                sync_decisions.c.source == crm,
                sync_decisions.c.record_id == inside_id)).scalar_one()
        engine.dispose()
        p = entry["payload"]
        assert p["decision_id"] == decision_id and p["cooling_off"] == "eu-mortgage-reflection"
        assert p["blocks_stage"] == "proposal" and p["observed_stage"] == "proposal"
        # the decision's not_before (the CRM's copy may be cut to whole seconds)
        assert abs(parse_crm_time(p["not_before"]) - nb_inside) < timedelta(seconds=1)
        assert p["run_id"] == s2["run_id"] and parse_crm_time(p["observed_at"]) < nb_inside
        assert "Anouk" not in json.dumps(entry) and "example.lu" not in json.dumps(entry)
        [item] = _review_items(env)
        assert (item.record_id, item.decision_id, item.status, item.transient) == (
            inside_id, decision_id, "open", False)
        assert item.notified  # the digest went out

        # The ops admin's digest names it (ids, rule, stage and time only).
        [eml] = (tmp_path / "leadgate-outbox").glob(f"{crm}-{s2['run_id']}.eml")
        text = eml.read_text()
        assert "1 cooling-off violations" in text and inside_id in text and "Anouk" not in text

        verify = leadgate("audit", "verify", "--config", str(env.config))
        assert verify.returncode == 0, verify.stdout + verify.stderr

        listed = leadgate("review", "list", "--config", str(env.config))
        assert listed.returncode == 0, listed.stderr
        line = next(ln for ln in listed.stdout.splitlines() if inside_id in ln)
        assert "violation" in line and "cooling_off_violation" in line and decision_id in line
        status = leadgate("sync", "status", "--config", str(env.config))
        assert status.returncode == 0, status.stderr
        assert "violations 1" in status.stdout and "review queue: " in status.stdout

        # An officer cannot "approve" or "reject" it as if it were a refusal (that would
        # reassign the lead or take it from the rep); they resolve it with a note.
        add = leadgate("review", "add-officer", "cco-marta", "--config", str(env.config))
        assert add.returncode == 0, add.stderr
        token = add.stdout.strip().splitlines()[-1]
        officer = ("--officer", "cco-marta", "--token", token, "--config", str(env.config))
        bad = leadgate("review", "approve", str(item.id), "--team", "eu_mortgages", "--rep",
                       "daan", *officer)
        assert bad.returncode != 0 and "resolve" in bad.stderr, bad.stdout + bad.stderr
        bad = leadgate("review", "reject", str(item.id), *officer)
        assert bad.returncode != 0 and "resolve" in bad.stderr, bad.stdout + bad.stderr
        done = leadgate("review", "resolve", str(item.id), "--note",
                        "rep reminded; proposal withdrawn until the period ends", *officer)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [i.status for i in _review_items(env)] == ["resolved"]
        engine = env.engine()
        actions = [e for e in ledger_entries(engine) if e["kind"] == "review_action"]
        engine.dispose()
        assert [a["payload"]["action"] for a in actions] == ["resolve_violation"]
        assert actions[0]["payload"]["decision_id"] == decision_id

        # A later run does not report it again (human summary this time).
        third = leadgate("sync", "run", "--config", str(env.config), "--source", crm)
        assert third.returncode == 0, third.stderr[-2000:]
        assert "cooling-off violations" not in third.stdout
        assert len(_violation_entries(env)) == 1 and len(_review_items(env)) == 1
        verify = leadgate("audit", "verify", "--config", str(env.config))
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        env.sb.stop()


def test_the_watch_costs_one_query_a_run_and_nothing_without_blocked_stages(
        tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=40)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        before = env.sb.calls("salesforce.query")
        s = summary(sync_run(env, "salesforce"))
        assert s["violations"] == 0
        # the intake pull's query, the begin_run look-ups (queues, users) and one watch query
        watch_queries = env.sb.calls("salesforce.query") - before - 3
        assert watch_queries == 1, watch_queries

        # a policy without blocked stages makes no watch call
        for path in (env.folder / "policy").glob("70-cooling-off.yaml"):
            text = path.read_text().replace("blocks_stage: proposal", "blocks_stage: null")
            path.write_text(text.replace("blocks_stage: closed_won", "blocks_stage: null"))
        time.sleep(0.01)
        before = env.sb.calls("salesforce.query")
        assert sync_run(env, "salesforce").returncode == 0
        assert env.sb.calls("salesforce.query") - before == 3
    finally:
        env.sb.stop()


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_mapping_without_stage_is_refused_before_anything_is_pulled(tmp_path: Path,
                                                                      crm: str) -> None:
    """The example policy blocks stages in its cooling-off rules: a source that cannot read
    the stage could never watch them. The run says so before it pulls (exit 2, one line), and
    so does `leadgate connect`; nothing is decided, and no database is made for it."""
    env = start_env(tmp_path, leads=20)
    try:
        data = yaml.safe_load(env.config.read_text())
        mapping = {k: v.model_dump(exclude_defaults=True)
                   for k, v in default_mapping(crm).items() if k != "stage"}
        data["sources"][crm]["mapping"] = mapping
        env.config.write_text(yaml.safe_dump(data, sort_keys=False))
        before = env.sb.calls(crm)

        done = sync_run(env, crm)
        assert done.returncode == 2, done.stdout + done.stderr
        error = done.stderr.strip()
        assert len(error.splitlines()) == 1 and "Traceback" not in error
        assert f"sources.{crm}.mapping" in error and "no stage field" in error
        assert "closed_won, proposal" in error and "fix: map the CRM's stage field" in error
        assert env.sb.calls(crm) == before  # not one CRM call
        engine = env.engine()  # refused before the database was even made: nothing decided
        assert not sa.inspect(engine).has_table(sync_decisions.name)
        engine.dispose()

        check = leadgate("connect", crm, "--config", str(env.config))
        assert check.returncode == 1
        assert f"problem: {env.config}: sources.{crm}.mapping: the mapping has no stage " \
               "field" in check.stdout
    finally:
        env.sb.stop()
