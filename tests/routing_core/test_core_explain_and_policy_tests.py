"""The readable account of a decision, and the policy test runner."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from routing_core.engine import decide, refuse_invalid
from routing_core.explain import explain
from routing_core.lead import parse_lead
from routing_core.policy import Policy, load_policy
from routing_core.policy_tests import run_test
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener, ScreeningResult, StaticScreener

BASIC = Path(__file__).parent / "policies" / "basic.yaml"
AT = datetime(2026, 11, 24, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(BASIC)


def account(policy: Policy, screener: object = None, **fields: object) -> str:
    raw = {"id": "L1", "jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}
    raw.update(fields)  # type: ignore[arg-type]
    decision = decide(parse_lead(raw), policy, at=AT, rotation=InMemoryRotationState(),
                      screener=screener or NullScreener())  # type: ignore[arg-type]
    return explain(decision.to_json())


def test_refusals_are_explained(policy: Policy) -> None:
    text = account(policy, jurisdiction="US-TX")
    assert "REFUSED (unlicensed_jurisdiction)" in text and "no rule was run" in text
    text = account(policy, product="structured_note")
    assert "Gate complex-needs-appropriateness: applies, FAILED" in text
    assert "assessments.appropriateness eq passed: lead has (missing) -> no" in text
    hit = StaticScreener([ScreeningResult("sanctions", "ofac_sdn", None, True, 0.93)])
    text = account(policy, screener=hit)
    assert "Screening sanctions list ofac_sdn: HIT (best score 0.93)" in text
    text = explain(refuse_invalid("file", "x", ["jurisdiction: missing"], policy,
                                  at=AT).to_json())
    assert "Problem: jurisdiction: missing" in text


def test_outreach_and_cooling_off_are_explained(policy: Policy) -> None:
    text = account(policy, jurisdiction="US-NY", product="term_life")
    assert "contact only 09:00-20:00 America/New_York" in text
    assert "individual licence NY-123" in text
    text = account(policy, jurisdiction="DE", product="eu_mortgage",
                   first_contact_at="2026-11-20T10:00:00Z")
    assert "Cooling-off eu-mortgage-reflection: 168 hours from first contact, not before " \
           "2026-11-27T10:00:00Z; stage proposal blocked" in text


def test_policy_test_runner_simulates_screening_and_reports_diffs(policy: Policy) -> None:
    test = {"name": "t", "lead": {"jurisdiction": "GB", "customer_type": "retail",
                                  "product": "easy_saver", "screening": "unavailable"},
            "expect": {"outcome": "refused", "reason": "screening_unavailable"}}
    assert run_test(policy, test, 0, AT).passed
    test["expect"] = {"outcome": "assigned", "team": "uk_retail", "reason": None}
    result = run_test(policy, test, 0, AT)
    assert not result.passed
    assert ("outcome", "assigned", "refused") in result.diffs
    assert ("team", "uk_retail", None) in result.diffs
    bad = {"name": "b", "lead": {"jurisdiction": "Narnia"},
           "expect": {"outcome": "refused", "reason": "invalid_lead"}}
    assert run_test(policy, bad, 0, AT).passed
    channels = {"name": "c", "lead": {"jurisdiction": "GB", "customer_type": "retail",
                                      "product": "pension_transfer",
                                      "assessments": {"appropriateness": "passed"}},
                "expect": {"outcome": "assigned", "allowed_channels": ["post", "email"]}}
    assert run_test(policy, channels, 0, AT).passed


def test_a_policy_test_cannot_pass_for_the_wrong_reason(policy: Policy) -> None:
    texas = {"jurisdiction": "US-TX", "customer_type": "retail", "product": "easy_saver"}
    refused = {"outcome": "refused", "reason": "unlicensed_jurisdiction"}
    assert run_test(policy, {"name": "t", "lead": texas, "expect": refused}, 0, AT).passed
    # a typo in the lead made it invalid, refused before the rule the test is about
    typo = {"jurisdiction": "US-TX", "custmer_type": "retail", "product": "easy_saver"}
    result = run_test(policy, {"name": "t", "lead": typo, "expect": {"outcome": "refused"}},
                      0, AT)
    assert not result.passed and result.diffs[0][0] == "lead"
    assert "custmer_type" in result.diffs[0][2]
    # a refused lead has no outreach: [] is not what it has
    empty = {**refused, "allowed_channels": [], "disclosures": []}
    result = run_test(policy, {"name": "t", "lead": texas, "expect": empty}, 0, AT)
    assert not result.passed and ("allowed_channels", [], None) in result.diffs
    # a screening simulation that does not say what it seems to is the test's own error
    for spec in ({"sanctions": "false"}, {"sanction": True}):
        result = run_test(policy, {"name": "t", "lead": {**texas, "screening": spec},
                                   "expect": refused}, 0, AT)
        assert not result.passed and result.diffs[0][0] == "lead.screening"


def test_an_expected_null_is_checked_and_an_absent_key_is_not(tmp_path: Path) -> None:
    text = BASIC.read_text() + (
        "\n  - name: no team for Texas\n"
        "    lead: { jurisdiction: US-TX, customer_type: retail, product: easy_saver }\n"
        "    expect: { outcome: refused, reason: unlicensed_jurisdiction, team: null, "
        "cooling_off: null }\n"
        "  - name: a team is not null\n"
        "    lead: { jurisdiction: GB, customer_type: retail, product: easy_saver }\n"
        "    expect: { outcome: assigned, rule: null }\n")
    assert text.count("\ntests:") == 1
    path = tmp_path / "p.yaml"
    path.write_text(text)
    loaded = load_policy(path)
    *_, null_team, null_rule = loaded.tests
    assert null_team["expect"] == {"outcome": "refused", "reason": "unlicensed_jurisdiction",
                                   "team": None, "cooling_off": None}
    assert run_test(loaded, null_team, 0, AT).passed
    result = run_test(loaded, null_rule, 0, AT)
    assert not result.passed and result.diffs[0][:2] == ("rule", None)


def test_decision_before_effective_from_is_noted(policy: Policy) -> None:
    decision = decide(parse_lead({"id": "x", "jurisdiction": "GB", "customer_type": "retail",
                                  "product": "easy_saver"}), policy,
                      at=datetime(2025, 6, 1, tzinfo=UTC), rotation=InMemoryRotationState(),
                      screener=NullScreener())
    assert any("effective_from" in note for note in decision.to_json()["notes"])
