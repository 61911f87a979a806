"""The HubSpot adapter end to end against the sandbox portal, over HTTP(S), with
hubspot-api-client.

Wire behaviour covered (HubSpot CRM API v3 guides and OpenAPI spec): search with filterGroups,
one sort, limit up to 200 and a 10,000-result cap ("Search the CRM: limitations"); batch read and
batch update of up to 100 inputs answering 200, or 207 with `errors` naming ids; owners paging;
properties and property groups; 429 bodies with policyName and the X-HubSpot-RateLimit-* headers
("API usage guidelines and limits").
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from conn_sources import hs_source

from connectors import open_connector
from connectors.base import Cursor, Outcome
from connectors.calls import CallFailed
from connectors.mapping import parse_crm_time
from routing_core.errors import LeadgateError


def pull_all(crm: Any, cursor: Cursor | None = None) -> list[Any]:
    return [r for page in crm.pull(cursor) for r in page.records]


def owner(sb: Any) -> str:
    return str(sb.reps[0].hubspot_id)


def outcomes_for(records: list[Any], owner_id: str | None) -> list[Outcome]:
    """Decisions on these pulled records as the sync job writes them (with the modstamp
    decided on, which dates the enquiry each answers)."""
    return [Outcome(r.record_id, f"01JDTEST{n:018d}", "assigned" if owner_id else "refused",
                    owner_id, None if owner_id else "no_rule_matched", "2026.11.2",
                    {"allowed_channels": ["email"]}, None, r.owner_at_read,
                    modified_at_read=r.modstamp)
            for n, r in enumerate(records)]


def test_backlog_over_the_search_cap_is_pulled_without_loss(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=12_500)
    crm = open_connector(hs_source(sb), source="hs")
    records = pull_all(crm)
    ids = [r.record_id for r in records]
    assert len(ids) > 10_000 and len(set(ids)) == len(ids)
    # everything the portal holds as intake, read through search at offset 0 each time
    table = sb.store.contacts
    intake = {table.id_of(i) for i in range(table.n)
              if table.get(i, "lifecyclestage") == "lead"
              and not table.get(i, "leadgate_status")}
    assert set(ids) == intake
    searches = sb.counts()["hubspot.search"]
    assert searches.get("status.400", 0) == 0 and "fault.429" not in searches
    assert searches["calls"] <= math.ceil(len(ids) / 199) + 1


def test_writes_during_paging_do_not_make_it_skip(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=900)
    crm = open_connector(hs_source(sb, conflict_check=False), source="hs")
    seen: list[str] = []
    for page in crm.pull(None):
        seen += [r.record_id for r in page.records]
        assert {r.status for r in crm.write_back(outcomes_for(page.records, owner(sb)))} == \
            {"ok"}
    assert len(seen) == len(set(seen)) and seen
    assert pull_all(open_connector(hs_source(sb), source="hs")) == []
    writes = sb.counts()["hubspot.batch_update"]["calls"]
    assert writes == sum(math.ceil(n / 100) for n in [200] * (len(seen) // 200) +
                         ([len(seen) % 200] if len(seen) % 200 else []))


def test_ties_and_cursor_resume(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=800)
    table = sb.store.contacts
    stamp = table.get(100, "lastmodifieddate")
    for i in range(100, 600):  # ~400 intake contacts modified in the same millisecond,
        table.set(i, {"lastmodifieddate": stamp})  # more than a search page holds
    intake = {table.id_of(i) for i in range(table.n)
              if table.get(i, "lifecyclestage") == "lead"}
    everything = pull_all(open_connector(hs_source(sb), source="hs"))
    ids = [r.record_id for r in everything]
    assert len(ids) == len(set(ids)) and set(ids) == intake
    crm = open_connector(hs_source(sb, overlap_seconds=0), source="hs")
    pages = crm.pull(None)
    first = [next(pages), next(pages)]
    head = {r.record_id for p in first for r in p.records}
    stored = Cursor.loads(first[-1].cursor.dumps())  # as the sync job stores it
    assert stored.modstamp == first[-1].records[-1].modstamp
    rest = pull_all(open_connector(hs_source(sb, overlap_seconds=0), source="hs"), stored)
    # resuming re-reads the cursor's instant rather than risk losing part of a tie
    assert head | {r.record_id for r in rest} == intake
    assert all(r.modstamp >= stored.modstamp for r in rest)


def test_mixed_batch_results_conflicts_and_review_owner(sandbox: Any) -> None:
    # a person assigns some contacts right after leadgate's search read them
    sb = sandbox(leads=0, contacts=300, faults="hubspot.search:owner_change@0.05")
    crm = open_connector(hs_source(sb), source="hs")
    # a contact changed during the pull comes back as a change; the sync job keeps the first
    # read (same intake episode), so do we
    first: dict[str, Any] = {}
    for r in pull_all(crm):
        first.setdefault(r.record_id, r)
    records = list(first.values())
    table = sb.store.contacts
    changed = {rid for _crm, rid, _old, _new in sb.store.owner_changes}
    assert changed
    sb.faults = "hubspot.batch_update:record_error@0.1"
    mine = outcomes_for(records[:100], owner(sb)) + outcomes_for(records[100:], None)
    results = crm.write_back(mine)
    conflicts = {r.record_id for r in results if r.status == "conflict"}
    assert conflicts == changed
    errors = [r for r in results if r.status == "error"]
    assert errors and all(r.retryable and "CONFLICT" in r.message for r in errors)
    ok = [r for r in results if r.status == "ok"]
    assert len(ok) == len(records) - len(changed) - len(errors)
    refused = next(r for r in ok if r.record_id in {x.record_id for x in records[100:]})
    i = table.index_of(refused.record_id)
    assert str(table.get(i, "hubspot_owner_id")) == sb.hubspot_review_owner_id
    assert table.get(i, "leadgate_status") == "refused"
    assert sb.counts()["hubspot.batch_read"]["calls"] == math.ceil(len(records) / 100)


@pytest.mark.parametrize("fault", [
    "hubspot.search:429@call=1", "hubspot.search:502@call=1", "hubspot.search:drop@call=1",
    "hubspot.search:slow=1.5@call=1", "hubspot.batch_update:503@first=2",
    "hubspot.batch_update:rate_limit@call=1", "hubspot.batch_read:drop@call=1",
    "hubspot.batch_update:expire_session@call=1",
])
def test_each_injected_fault_is_survived(sandbox: Any, fault: str) -> None:
    sb = sandbox(leads=0, contacts=120, faults=fault)
    source = hs_source(sb, retry={"attempts": 4, "initial_wait": 0.01, "max_wait": 0.05,
                                  "retry_after_cap": 0.05, "timeout_seconds": 1.0})
    crm = open_connector(source, source="hs")
    records = pull_all(crm)
    assert records
    results = crm.write_back(outcomes_for(records, owner(sb)))
    assert {r.status for r in results} == {"ok"}, results[0]
    fired = {k for c in sb.counts().values() for k in c if k.startswith("fault.")}
    assert fired, "the fault never fired: the test would prove nothing"


def test_wrong_token_fails_at_once_with_the_fix(sandbox: Any, monkeypatch: Any) -> None:
    sb = sandbox(leads=0, contacts=10)
    monkeypatch.setenv("LG_T_HS_TOKEN", "pat-na1-wrong")
    crm = open_connector(hs_source(sb), source="hs")
    with pytest.raises(CallFailed) as err:
        crm.begin_run()
    assert "INVALID_AUTHENTICATION" in str(err.value) and "connection.token" in str(err.value)
    assert "pat-na1" not in str(err.value) and crm.api_calls == 1


def test_search_is_paced_below_its_own_rate_limit(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=1200, enforce_rate_limits=True)  # search: 5 calls/s
    crm = open_connector(hs_source(sb, search_per_second=4), source="hs")
    assert len(pull_all(crm)) > 900
    assert sb.counts()["hubspot.search"].get("status.429", 0) == 0


def test_install_is_idempotent_and_connect_reports_mismatches(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=10, install_leadgate_fields=False)
    crm = open_connector(hs_source(sb), source="hs")
    assert any("leadgate install hubspot" in p for p in crm.check().problems)
    assert len(crm.install(dry_run=True).created) == 8
    first = crm.install()
    assert len(first.created) == 8 and first.created[0] == "property group leadgate"
    second = open_connector(hs_source(sb), source="hs").install()
    assert second.created == [] and len(second.existing) == 8
    assert open_connector(hs_source(sb), source="hs").check().ok
    bad = hs_source(sb, mapping={"id": "hs_object_id", "email": "e_mail",
                                 "product": {"field": "product_interest",
                                             "values": {"Easy Saver": "easy_saver"}}})
    problems = open_connector(bad, source="hs").check().problems
    assert any("e_mail does not exist" in p for p in problems)
    assert any("option 'Term Life' of product_interest is not mapped" in p for p in problems)


def test_private_ca_over_https(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=20, hubspot_tls=True)
    assert sb.hubspot_base_url.startswith("https://")
    crm = open_connector(hs_source(sb, connection={"ca_file": str(sb.ca_file)}), source="hs")
    assert pull_all(crm)
    no_ca = open_connector(hs_source(sb), source="hs")
    with pytest.raises(CallFailed, match="ca_file"):
        no_ca.begin_run()


def test_read_maps_contacts_as_pull_does_whatever_their_status(sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=250)
    crm = open_connector(hs_source(sb), source="hs")
    pulled = pull_all(crm)
    crm.write_back(outcomes_for(pulled[:3], owner(sb)))  # no longer intake
    ids = [r.record_id for r in pulled[:150]]
    read = crm.read([*ids, "999999999"])  # one unknown id: absent, not an error
    assert sorted(r.record_id for r in read) == sorted(ids)  # two batch reads
    by_id = {r.record_id: r for r in read}
    assert all(by_id[r.record_id].lead_input == r.lead_input for r in pulled[3:150])
    assert by_id[pulled[0].record_id].owner_at_read == owner(sb)


def test_a_re_enquiry_edited_afterwards_is_pulled_from_a_cursor_past_its_submission(
        sandbox: Any) -> None:
    # A client submits a form again, ten new leads arrive, then a rep edits the client's
    # contact: by then its submission is older than where an interrupted run left the cursor.
    sb = sandbox(leads=0, contacts=40)
    t, st = sb.store.contacts, sb.store
    crm = open_connector(hs_source(sb, overlap_seconds=0), source="hs")
    first = pull_all(crm)
    assert {r.status for r in crm.write_back(outcomes_for(first, owner(sb)))} == {"ok"}
    i = next(i for i in range(t.n) if t.get(i, "leadgate_status") == "assigned")
    rid, created = sb.enquire(email=t.get(i, "email"), product_interest="Easy Saver")
    assert not created
    enquired = t.get(i, "recent_conversion_date")
    news = [st.new_contact({"email": f"new.lead{n}@example.org", "firstname": "New"})
            for n in range(10)]
    with st.lock:  # a millisecond apart each, the rep's edit last
        for n, j in enumerate(news):
            t.set(j, {"lastmodifieddate": enquired + 1 + n})
        t.set(i, {"phone": "+44 20 7946 0000", "lastmodifieddate": enquired + 100})
    # where a run that stopped after the new leads left the cursor: past the submission
    last = news[-1]
    stored = Cursor(parse_crm_time(t.get(last, "lastmodifieddate")), t.id_of(last))
    assert stored.modstamp.timestamp() * 1000 > enquired
    rest = pull_all(open_connector(hs_source(sb, overlap_seconds=0), source="hs"), stored)
    assert rid in {r.record_id for r in rest}


def test_a_portal_without_leadgate_s_properties_stops_the_run_before_any_write(
        sandbox: Any) -> None:
    sb = sandbox(leads=0, contacts=20)
    del sb.store.hs_properties["leadgate_read_at"]  # installed by an earlier release
    crm = open_connector(hs_source(sb), source="hs")
    with pytest.raises(LeadgateError) as err:
        crm.begin_run()
    assert "leadgate_read_at" in str(err.value) and "leadgate install hubspot" in str(err.value)
    assert "hubspot.batch_update" not in sb.counts() and "hubspot.search" not in sb.counts()
    assert open_connector(hs_source(sb), source="hs").install().created == [
        "contact property leadgate_read_at"]
    open_connector(hs_source(sb), source="hs").begin_run()
