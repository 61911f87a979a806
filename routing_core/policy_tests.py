"""Running a policy's own `tests:` (what `leadgate policy test` prints).

Each test routes its lead with fresh rotation state at the test's `at` (or the time given).
A test lead may simulate screening with `screening: {sanctions: true}` (or pep, blocklist) or
`screening: unavailable`; otherwise screening is skipped, since tests are about the rules.
A test cannot pass for a reason other than the one it is about: a lead that does not parse
fails it (unless it expects `invalid_lead`), an expected list is not met by no outreach at all,
and `key: null` asserts the decision has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing_core.decision import Decision
from routing_core.engine import decide, refuse_invalid
from routing_core.lead import InvalidLead, parse_lead
from routing_core.policy.conditions import SCREENING_CHECKS
from routing_core.policy.model import Policy
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener, Screener, ScreeningResult, StaticScreener


@dataclass
class TestResult:
    name: str
    passed: bool
    diffs: list[tuple[str, Any, Any]] = field(default_factory=list)  # key, expected, actual
    decision: Decision | None = None


def _screener(spec: Any) -> Screener:
    if spec is None:
        return NullScreener()
    if spec == "unavailable":
        return StaticScreener(unavailable=True)
    if not isinstance(spec, Mapping) or any(check not in SCREENING_CHECKS
                                            or not isinstance(hit, bool)
                                            for check, hit in spec.items()):
        # a misspelt check or "false" in quotes would simulate something else than written
        raise BadTestSetup(f"screening: expected {{{'|'.join(SCREENING_CHECKS)}: true|false}} "
                           "or 'unavailable'")
    results = [ScreeningResult(check, "policy-test", None, hit, 1.0 if hit else 0.0)
               for check, hit in spec.items()]
    return StaticScreener(results)


class BadTestSetup(ValueError):
    """A test's own lead or simulation is wrong: the test fails, whatever it expects."""


def actual_of(decision: Decision, key: str) -> Any:
    """The decision's value for one `expect` key."""
    if key == "outcome":
        return decision.outcome
    if key == "reason":
        return decision.reason
    if key == "team":
        return decision.team_id
    if key == "rep":
        return decision.rep_id
    if key == "rule":
        return decision.rule_id
    if key == "gate":
        return decision.failed_gate
    if key in ("allowed_channels", "disclosures"):
        return (decision.outreach or {}).get(key)
    if key == "cooling_off":
        return decision.cooling_off["id"] if decision.cooling_off else None
    raise KeyError(key)


def run_test(policy: Policy, test: Mapping[str, Any], index: int, at: datetime) -> TestResult:
    raw = dict(test["lead"])
    screening_spec = raw.pop("screening", None)
    raw.setdefault("id", f"test-{index + 1}")
    when = test.get("at") or at
    expect = test["expect"]
    diffs: list[tuple[str, Any, Any]] = []
    try:
        screener = _screener(screening_spec)
    except BadTestSetup as exc:
        return TestResult(test["name"], False, [("lead.screening", "a valid simulation",
                                                 str(exc))])
    try:
        lead = parse_lead(raw, source=str(raw.get("source") or "policy-test"))
        decision = decide(lead, policy, at=when, rotation=InMemoryRotationState(),
                          screener=screener)
    except InvalidLead as exc:
        decision = refuse_invalid("policy-test", str(raw["id"]), exc.problems, policy, at=when,
                                  product=raw.get("product"))
        if expect.get("reason") != "invalid_lead":
            # refused before any rule ran: a typo in the test's lead must not pass as a refusal
            diffs.append(("lead", "a lead that parses", "; ".join(exc.problems)))
    for key, expected in expect.items():
        actual = actual_of(decision, key)
        same = (actual is not None and sorted(expected) == sorted(actual)) if isinstance(
            expected, list) else expected == actual
        if not same:
            diffs.append((key, expected, actual))
    return TestResult(test["name"], not diffs, diffs, decision)


def run_tests(policy: Policy, at: datetime) -> list[TestResult]:
    return [run_test(policy, test, i, at) for i, test in enumerate(policy.tests)]
