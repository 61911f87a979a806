"""A record the sync cannot normalise is refused `invalid_lead` with every problem listed:
an unknown product code too, not only once the other problems are fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener
from sync.writeahead import Candidate, Decider

BASIC = Path(__file__).parents[1] / "routing_core" / "policies" / "basic.yaml"
AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_every_problem_of_a_pulled_record_is_listed() -> None:
    policy = load_policy(BASIC)
    decider = Decider(source="salesforce", crm="salesforce", policy=policy,
                      screener=NullScreener())
    cand = Candidate(record_id="L9", episode="e1", cause="intake", lead_input={
        "jurisdiction": "GB", "customer_type": "retail", "product": "crypto_wallet",
        "investable_assets": {"amount": "10", "currency": "EUX"}})
    decision = decider.decide(cand, InMemoryRotationState(), AT)  # type: ignore[arg-type]
    assert decision.reason == "invalid_lead"
    assert [p.split(":")[0] for p in decision.problems] == ["investable_assets.currency",
                                                            "product"]
    assert decision.detail == "the record could not be normalised (2 problem(s))"
