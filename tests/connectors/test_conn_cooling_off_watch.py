"""`cooling_off_watch` on both connectors against the sandbox CRM, with the real SDKs.

Leads are routed through the connector's own write-back (which stamps leadgate's not_before
field), then a "rep" moves some of them to another stage in the CRM. The watch must return
exactly the records still inside their window (not_before after now) at one of the asked
stages, with the stage as the source's mapping reads it.

Wire behaviour relied on: Salesforce SOQL `IN` and dateTime comparisons, query batches followed
with nextRecordsUrl (REST API Developer Guide, "Execute a SOQL Query"; SOQL and SOSL Reference,
"Comparison Operators"); HubSpot CRM search filters `IN` (values lower-case for text
properties), `GT`/`GTE`/`EQ` on datetime properties in epoch milliseconds, one sort, offset
paging capped at 10,000 results (https://developers.hubspot.com/docs/api/crm/search).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conn_sources import hs_source, sf_source

from connectors import open_connector
from connectors.base import Outcome
from connectors.config import FieldMap
from connectors.mapping import default_mapping
from connectors.salesforce import soql
from routing_core.errors import LeadgateError

NOW = datetime.now(UTC).replace(microsecond=0)


def _route(crm: Any, records: list[Any], owner: str, not_before: list[datetime | None]) -> None:
    outcomes = [Outcome(r.record_id, f"01JDWATCH{n:017d}", "assigned", owner, None, "2026.11.2",
                        None, nb, r.owner_at_read)
                for n, (r, nb) in enumerate(zip(records, not_before, strict=True))]
    assert {w.status for w in crm.write_back(outcomes)} == {"ok"}


def _set(sb: Any, kind: str, record_id: str, values: dict[str, Any]) -> None:
    table = sb.store.leads if kind == "salesforce" else sb.store.contacts
    with sb.store.lock:
        table.set(table.index_of(record_id), values)


def _setup(sb: Any, kind: str, **overrides: Any) -> tuple[Any, list[Any]]:
    source = sf_source(sb, **overrides) if kind == "salesforce" else hs_source(sb, **overrides)
    crm = open_connector(source, source=kind)
    crm.begin_run()
    records = [r for page in crm.pull(None) for r in page.records][:8]
    owner = str(sb.reps[0].salesforce_id if kind == "salesforce" else sb.reps[0].hubspot_id)
    # 0-3 inside their window, 4-5 past it, 6-7 never had one
    _route(crm, records, owner, [NOW + timedelta(days=3)] * 4
           + [NOW - timedelta(hours=1)] * 2 + [None] * 2)
    return crm, records


STAGE = {"salesforce": "Status", "hubspot": "lifecyclestage"}
OTHER = {"salesforce": "Working - Contacted", "hubspot": "opportunity"}


@pytest.mark.parametrize("kind", ["salesforce", "hubspot"])
def test_watch_returns_only_records_inside_their_window_at_a_watched_stage(
        sandbox: Any, kind: str) -> None:
    sb = sandbox(leads=60, contacts=60)
    crm, records = _setup(sb, kind)
    ids = [r.record_id for r in records]
    field = STAGE[kind]
    for i in (0, 1, 4, 6):  # at the blocked stage: two inside the window, one past, one never
        _set(sb, kind, ids[i], {field: "proposal"})
    _set(sb, kind, ids[2], {field: OTHER[kind]})  # inside the window, another stage
    before = sb.calls("salesforce" if kind == "salesforce" else "hubspot")
    found = crm.cooling_off_watch(NOW, ["proposal"])
    assert sorted(w.record_id for w in found) == sorted([ids[0], ids[1]])
    for w in found:
        assert w.stage == "proposal"
        assert w.decision_id is not None and w.decision_id.startswith("01JDWATCH")
        assert w.not_before == NOW + timedelta(days=3)
    # one query (Salesforce) or one search (HubSpot) for a handful of records
    assert sb.calls("salesforce" if kind == "salesforce" else "hubspot") - before == 1
    # nothing asked, nothing called
    assert crm.cooling_off_watch(NOW, []) == []
    assert sb.calls("salesforce" if kind == "salesforce" else "hubspot") - before == 1
    # later than every window: nothing
    assert crm.cooling_off_watch(NOW + timedelta(days=4), ["proposal"]) == []


@pytest.mark.parametrize("kind", ["salesforce", "hubspot"])
def test_watch_reads_the_stage_through_the_mapping_value_map(sandbox: Any, kind: str) -> None:
    sb = sandbox(leads=60, contacts=60)
    mapping = {k: v.model_dump() for k, v in default_mapping(kind).items()}
    crm_value = "Proposal Sent" if kind == "salesforce" else "opportunity"
    mapping["stage"] = {"field": STAGE[kind], "values": {crm_value: "proposal"},
                        "passthrough": True}
    crm, records = _setup(sb, kind, mapping=mapping)
    ids = [r.record_id for r in records]
    _set(sb, kind, ids[0], {STAGE[kind]: crm_value})
    _set(sb, kind, ids[1], {STAGE[kind]: "proposal"})  # passes through as itself
    found = {w.record_id: w.stage for w in crm.cooling_off_watch(NOW, ["proposal"])}
    assert found == {ids[0]: "proposal", ids[1]: "proposal"}


def test_hubspot_watch_pages_past_an_instant_wider_than_a_page(sandbox: Any) -> None:
    """25 contacts share one not_before, with 10 results a page: the watch reads the instant by
    id (offset paging would be capped at 10,000 in a real portal) and returns each once."""
    sb = sandbox(leads=0, contacts=200)
    crm = open_connector(hs_source(sb, search_page_size=10), source="hubspot")
    crm.begin_run()
    records = [r for page in crm.pull(None) for r in page.records][:30]
    owner = str(sb.reps[0].hubspot_id)
    later = NOW + timedelta(days=2)
    _route(crm, records, owner, [NOW + timedelta(days=1)] * 25 + [later] * 5)
    for r in records:
        _set(sb, "hubspot", r.record_id, {"lifecyclestage": "proposal"})
    before = sb.calls("hubspot.search")
    found = crm.cooling_off_watch(NOW, ["proposal"])
    assert sorted(w.record_id for w in found) == sorted(r.record_id for r in records)
    assert len(found) == 30
    assert sb.calls("hubspot.search") - before <= 8


def test_salesforce_watch_follows_query_more(sandbox: Any) -> None:
    sb = sandbox(leads=2600, contacts=0)
    crm = open_connector(sf_source(sb), source="salesforce")
    crm.begin_run()
    records = [r for page in crm.pull(None) for r in page.records][:2100]
    owner = str(sb.reps[0].salesforce_id)
    _route(crm, records, owner, [NOW + timedelta(days=1)] * len(records))
    for r in records:
        _set(sb, "salesforce", r.record_id, {"Status": "proposal"})
    before = sb.counts().get("salesforce.query_more", {}).get("calls", 0)
    found = crm.cooling_off_watch(NOW, ["proposal"])
    assert sorted(w.record_id for w in found) == sorted(r.record_id for r in records)
    assert sb.counts()["salesforce.query_more"]["calls"] - before == 1


def test_watch_soql_escapes_every_value_from_the_policy_and_mapping() -> None:
    hostile = "proposal') OR Name != ('"
    text = soql.watch_query(sobject="Lead", stage_field="Status",
                            decision_field="LeadGate_Decision_Id__c",
                            not_before_field="LeadGate_Not_Before__c",
                            stages=[hostile, "a\\b"], now=datetime(2026, 12, 1, tzinfo=UTC))
    assert text == ("SELECT Id, Status, LeadGate_Decision_Id__c, LeadGate_Not_Before__c FROM "
                    "Lead WHERE LeadGate_Not_Before__c > 2026-12-01T00:00:00.000Z AND Status IN "
                    "('proposal\\') OR Name != (\\'', 'a\\\\b') ORDER BY Id ASC")
    with pytest.raises(soql.UnsafeName):
        soql.watch_query(sobject="Lead", stage_field="Status OR Id != null",
                         decision_field="LeadGate_Decision_Id__c",
                         not_before_field="LeadGate_Not_Before__c", stages=["x"],
                         now=datetime(2026, 12, 1, tzinfo=UTC))


def test_a_hostile_stage_value_reaches_salesforce_as_one_literal(sandbox: Any) -> None:
    sb = sandbox(leads=60, contacts=0)
    crm, records = _setup(sb, "salesforce")
    hostile = "proposal') OR (Status != 'x"
    _set(sb, "salesforce", records[0].record_id, {"Status": hostile})
    _set(sb, "salesforce", records[1].record_id, {"Status": "proposal"})
    found = crm.cooling_off_watch(NOW, [hostile])
    assert [(w.record_id, w.stage) for w in found] == [(records[0].record_id, hostile)]


@pytest.mark.parametrize("kind", ["salesforce", "hubspot"])
def test_without_a_stage_mapping_the_watch_says_what_to_map(sandbox: Any, kind: str) -> None:
    sb = sandbox(leads=5, contacts=5)
    mapping = {k: v.model_dump() for k, v in default_mapping(kind).items() if k != "stage"}
    source = sf_source(sb, mapping=mapping) if kind == "salesforce" else hs_source(
        sb, mapping=mapping)
    crm = open_connector(source, source=kind)
    with pytest.raises(LeadgateError) as err:
        crm.cooling_off_watch(NOW, ["proposal"])
    assert "stage" in str(err.value) and err.value.fix


def test_crm_values_for_inverts_the_value_map() -> None:
    from connectors.mapping import crm_values_for, lead_value

    spec = FieldMap(field="Status", values={"Proposal Sent": "proposal", "Won": "closed_won"})
    assert crm_values_for(spec, ["proposal"]) == ["Proposal Sent"]
    assert lead_value(spec, "Proposal Sent") == "proposal" and lead_value(spec, "x") is None
    passing = FieldMap(field="Status", values={"Proposal Sent": "proposal"}, passthrough=True)
    assert crm_values_for(passing, ["proposal", "closed_won"]) == [
        "Proposal Sent", "closed_won", "proposal"]
    assert crm_values_for(FieldMap(field="Status"), ["proposal"]) == ["proposal"]
