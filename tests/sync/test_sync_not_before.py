"""The cooling-off `not_before`: from the Decision to the CRM field, on the first write-back as
on a retry, and from write-back rows stored in the older str() form."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connectors.writeback import fields
from routing_core.engine import decide
from routing_core.lead import parse_lead
from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener
from sync.state import dumps, loads
from sync.writeahead import Candidate, Decider
from sync.writeback import to_outcome

BASIC = Path(__file__).parents[1] / "routing_core" / "policies" / "basic.yaml"
AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_not_before_reaches_the_crm_on_the_first_write_and_on_a_retry() -> None:
    policy = load_policy(BASIC)
    lead = parse_lead({"id": "L1", "jurisdiction": "DE", "customer_type": "retail",
                       "product": "eu_mortgage", "first_contact_at": "2026-11-20T10:00:00+01:00"},
                      source="salesforce")
    decision = decide(lead, policy, at=AT, rotation=InMemoryRotationState(),
                      screener=NullScreener())
    assert decision.not_before == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert decision.to_json()["cooling_off"]["not_before"] == "2026-11-27T09:00:00Z"

    decider = Decider(source="salesforce", crm="salesforce", policy=policy,
                      screener=NullScreener())
    cand = Candidate(record_id="L1", episode="e1", cause="intake", lead_input={})
    writeback = decider.outcome_for(decision, cand, decision.to_json())
    # Stored as the decision JSON writes it: RFC 3339 UTC.
    assert '"not_before":"2026-11-27T09:00:00Z"' in dumps(writeback)

    first = fields(to_outcome(writeback))  # the run sends the dict it has just stored
    retry = fields(to_outcome(loads(dumps(writeback))))  # a later run reads it back
    assert first["not_before"] == retry["not_before"] == "2026-11-27T09:00:00.000Z"


def test_no_cooling_off_writes_no_not_before() -> None:
    writeback = {"record_id": "L1", "decision_id": "d1", "outcome": "assigned",
                 "not_before": None}
    assert fields(to_outcome(writeback))["not_before"] is None
    assert fields(to_outcome(loads(dumps(writeback))))["not_before"] is None


def test_a_row_stored_in_the_older_form_is_read_the_same() -> None:
    # Rows written ahead before not_before was stored as RFC 3339 hold str() of a datetime in
    # the anchor's offset; a retry of one must still send the same instant.
    writeback = {"record_id": "L1", "decision_id": "d1", "outcome": "assigned",
                 "not_before": "2026-11-27 10:00:00+01:00"}
    assert fields(to_outcome(writeback))["not_before"] == "2026-11-27T09:00:00.000Z"
