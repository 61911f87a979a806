"""The condition language: every operator, combinator and path rule (policy-spec.md)."""

from __future__ import annotations

from typing import Any

import pytest

from routing_core.jurisdictions import BUILTIN_GROUPS
from routing_core.lead import parse_lead
from routing_core.policy.conditions import (
    ConditionError,
    Facts,
    PathCatalog,
    compile_condition,
)

PRODUCTS = {
    "easy_saver": {"category": "deposit", "complexity": "non_complex", "risk": 1},
    "structured_note": {"category": "investment", "complexity": "complex", "risk": 5},
}
CATALOG = PathCatalog(PRODUCTS)
GROUPS = {**BUILTIN_GROUPS, "TRISTATE": ["US-NY", "US-NJ", "US-CT"]}

LEAD = parse_lead({
    "id": "L1", "source": "salesforce", "jurisdiction": "US-NY", "customer_type": "retail",
    "product": "structured_note", "investable_assets": {"amount": "250000", "currency": "USD"},
    "assessments": {"appropriateness": "Passed"}, "consent": {"phone": True, "email": False},
    "attributes": {"introducer": "PB-0042", "score": 7, "label": "seven"},
    "first_contact_at": "2026-11-01T09:00:00Z", "email": "a@example.com",
})


def run(cond: dict[str, Any], lead: Any = LEAD, screening: dict[str, bool] | None = None
        ) -> tuple[bool, list[Any]]:
    compiled = compile_condition(cond, CATALOG, GROUPS)
    trace: list[Any] = []
    product = PRODUCTS.get(lead.product) if lead.product else None
    return compiled(Facts(lead, product, screening), trace), trace


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"field": "customer_type", "eq": "retail"}, True),
        ({"field": "customer_type", "eq": "professional"}, False),
        ({"field": "customer_type", "ne": "professional"}, True),
        ({"field": "customer_type", "ne": "retail"}, False),
        ({"field": "product", "in": ["easy_saver", "structured_note"]}, True),
        ({"field": "product", "in": ["easy_saver"]}, False),
        ({"field": "product", "not_in": ["easy_saver"]}, True),
        ({"field": "product", "not_in": ["structured_note"]}, False),
        ({"field": "investable_assets.amount", "gt": 249999.99}, True),
        ({"field": "investable_assets.amount", "gt": 250000}, False),
        ({"field": "investable_assets.amount", "gte": 250000}, True),
        ({"field": "investable_assets.amount", "gte": 250000.01}, False),
        ({"field": "investable_assets.amount", "lt": 250001}, True),
        ({"field": "investable_assets.amount", "lt": 250000}, False),
        ({"field": "investable_assets.amount", "lte": 250000}, True),
        ({"field": "investable_assets.amount", "lte": 1}, False),
        ({"field": "product.risk", "gte": 5}, True),
        ({"field": "product.complexity", "eq": "complex"}, True),
        ({"field": "consent.phone", "eq": True}, True),
        ({"field": "consent.email", "eq": True}, False),
        ({"field": "consent.sms", "exists": False}, True),
        ({"field": "consent.phone", "exists": True}, True),
        ({"field": "consent.phone", "exists": False}, False),
        ({"field": "jurisdiction", "within": ["US"]}, True),
        ({"field": "jurisdiction", "within": ["US-NY"]}, True),
        ({"field": "jurisdiction", "within": ["US-NJ"]}, False),
        ({"field": "jurisdiction", "within": ["@TRISTATE"]}, True),
        ({"field": "jurisdiction", "within": ["@EU"]}, False),
        ({"field": "jurisdiction", "eq": "US-NY"}, True),
        ({"field": "jurisdiction.country", "eq": "US"}, True),
        ({"field": "jurisdiction.country", "within": ["US"]}, True),
        ({"field": "attributes.introducer", "matches": "PB-\\d{4}"}, True),
        ({"field": "attributes.introducer", "matches": "PB"}, False),   # anchored
        ({"field": "email", "matches": ".*@example\\.com"}, True),
        ({"field": "assessments.appropriateness", "eq": "passed"}, True),
        ({"field": "attributes.score", "gt": 5}, True),
        # in quotes, as JSON has to write it: the same instant; without a zone: load error
        ({"field": "first_contact_at", "lt": "2026-11-02T00:00:00Z"}, True),
        ({"field": "first_contact_at", "gt": "2026-11-01T10:00:00+02:00"}, True),
        ({"field": "first_contact_at", "lt": "2026-11-02T00:00:00"}, None),
        ({"field": "first_contact_at", "lt": "yesterday"}, None),
        ({"field": "source", "eq": "salesforce"}, True),
        ({"field": "kind", "eq": "person"}, True),
        ({"field": "investable_assets", "exists": True}, True),
    ],
)
def test_operators(cond: dict[str, Any], expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(ConditionError):
            run(cond)
        return
    result, trace = run(cond)
    assert result is expected
    assert len(trace) == 1
    assert (trace[0]["path"], trace[0]["result"]) == (cond["field"], expected)
    assert trace[0]["op"] in cond


def test_datetime_comparison() -> None:
    from datetime import UTC, datetime

    assert run({"field": "first_contact_at", "lt": datetime(2026, 11, 2, tzinfo=UTC)})[0]
    assert not run({"field": "first_contact_at", "gt": datetime(2026, 11, 2, tzinfo=UTC)})[0]


BARE = parse_lead({"id": "L2", "jurisdiction": "US"})


@pytest.mark.parametrize("op,value", [
    ("eq", "retail"), ("ne", "retail"), ("in", ["retail"]), ("not_in", ["retail"]),
])
def test_missing_path_makes_every_leaf_false(op: str, value: Any) -> None:
    result, trace = run({"field": "customer_type", op: value}, BARE)
    assert result is False
    assert trace[0]["actual"] is None and trace[0]["missing"] is True


@pytest.mark.parametrize("cond", [
    {"field": "investable_assets.amount", "gte": 0},
    {"field": "investable_assets.amount", "lt": 10**12},
    {"field": "product.risk", "ne": 3},
    {"field": "consent.phone", "ne": True},
    {"field": "jurisdiction.subdivision", "not_in": ["US-NY"]},
    {"field": "jurisdiction", "within": ["US-NY"]},
    {"field": "attributes.anything", "matches": ".*"},
])
def test_missing_paths_more(cond: dict[str, Any]) -> None:
    assert run(cond, BARE)[0] is False


def test_exists_false_on_missing_is_true() -> None:
    assert run({"field": "product", "exists": False}, BARE)[0] is True
    assert run({"field": "product", "exists": True}, BARE)[0] is False


def test_not_known_to_have_consented() -> None:
    cond = {"not": {"field": "consent.phone", "eq": True}}
    assert run(cond, BARE)[0] is True
    assert run(cond)[0] is False


def test_country_level_lead_is_not_inside_a_subdivision() -> None:
    assert run({"field": "jurisdiction", "within": ["US"]}, BARE)[0] is True
    assert run({"field": "jurisdiction", "within": ["US-NY", "US-NJ"]}, BARE)[0] is False


def test_subdivision_hierarchy_containment() -> None:
    london = parse_lead({"id": "L3", "jurisdiction": "GB-LND"})
    assert run({"field": "jurisdiction", "within": ["GB-ENG"]}, london)[0] is True
    assert run({"field": "jurisdiction", "within": ["GB-SCT"]}, london)[0] is False
    assert run({"field": "jurisdiction", "within": ["GB"]}, london)[0] is True


@pytest.mark.parametrize(("cond", "expected", "leaves"), [
    ({"all": []}, True, 0),
    ({"any": []}, False, 0),
    ({"all": [{"field": "customer_type", "eq": "retail"},
              {"field": "product", "eq": "structured_note"}]}, True, 2),
    ({"all": [{"field": "customer_type", "eq": "professional"},
              {"field": "product", "eq": "structured_note"}]}, False, 1),  # short-circuit
    ({"any": [{"field": "customer_type", "eq": "professional"},
              {"field": "product", "eq": "structured_note"}]}, True, 2),
    ({"any": [{"field": "customer_type", "eq": "retail"},
              {"field": "product", "eq": "x_never_reached"}]}, None, 0),
    ({"not": {"field": "customer_type", "eq": "retail"}}, False, 1),
    ({"not": {"not": {"field": "customer_type", "eq": "retail"}}}, True, 1),
    ({"all": [{"any": [{"field": "jurisdiction", "within": ["GB"]},
                       {"field": "jurisdiction", "within": ["US"]}]},
              {"not": {"field": "consent.phone", "eq": False}}]}, True, 3),
])
def test_combinators(cond: dict[str, Any], expected: bool | None, leaves: int) -> None:
    if expected is None:  # unknown product value: caught at load
        with pytest.raises(ConditionError):
            run(cond)
        return
    result, trace = run(cond)
    assert result is expected
    assert len(trace) == leaves


def test_screening_paths() -> None:
    assert run({"field": "screening.pep", "eq": False}, screening={"pep": False})[0] is True
    assert run({"field": "screening.pep", "eq": False})[0] is False  # not screened: missing


def test_runtime_type_mismatch_is_false_with_a_note() -> None:
    result, trace = run({"field": "attributes.label", "gt": 5})
    assert result is False
    assert "type mismatch" in trace[0]["note"]


@pytest.mark.parametrize(("cond", "path", "fragment"), [
    ({"field": "prodcut", "eq": "x"}, "field", "not a lead path"),
    ({"field": "product.complexty", "eq": "x"}, "field", "no attribute 'complexty'"),
    ({"field": "screening.fraud", "eq": True}, "field", "no check"),
    ({"field": "customer_type", "eq": "retial"}, "eq", "not a possible value"),
    ({"field": "product", "in": ["easy_saver", "nope"]}, "in[1]", "not a possible value"),
    ({"field": "investable_assets.amount", "gte": "1000000"}, "gte", "not a number"),
    ({"field": "customer_type", "gte": 1000000}, "gte", "compares numbers"),
    ({"field": "consent.phone", "eq": "yes"}, "eq", "true or false"),
    ({"field": "jurisdiction", "within": ["XX"]}, "within[0]", "ISO 3166"),
    ({"field": "jurisdiction", "within": ["@NOPE"]}, "within[0]", "unknown jurisdiction group"),
    ({"field": "jurisdiction", "within": "GB"}, "within", "list"),
    ({"field": "product", "within": ["GB"]}, "within", "jurisdiction paths"),
    ({"field": "email", "matches": "("}, "matches", "regular expression"),
    ({"field": "email", "exists": "yes"}, "exists", "true or false"),
    ({"field": "email", "eq": "a", "ne": "b"}, "", "exactly one operator"),
    ({"field": "email"}, "", "exactly one operator"),
    ({"field": "email", "equals": "a"}, "equals", "unknown key"),
    ({"all": [{"field": "email", "eq": 1}]}, "all[0].eq", "not text"),
    ({"any": [{"all": [{"field": "x", "eq": 1}]}]}, "any[0].all[0].field", "not a lead path"),
    ({"not": {"field": "customer_type", "in": "retail"}}, "not.in", "list"),
    ({"all": {"field": "email", "eq": "a"}}, "all", "list of conditions"),
    ({"all": [], "any": []}, "any", "nest them"),
    (["field"], "", "a condition is a mapping"),
    ({"field": "investable_assets.currency", "eq": "pounds"}, "eq", "ISO 4217"),
    # shapes that once escaped as a KeyError or TypeError traceback
    ({"eq": "retail"}, "", "needs `field:`"),
    ({"field": "attributes.tier", "in": [["gold", "silver"]]}, "in[0]", "single value, not a list"),
    ({"field": "attributes.tier", "in": [{"gold": 1}]}, "in[0]", "not a mapping"),
    ({"field": "attributes.tier", "not_in": ["gold", ["x"]]}, "not_in[1]", "not a list"),
])
def test_load_errors_name_the_path(cond: Any, path: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(cond, CATALOG, GROUPS)
    assert info.value.path == path
    assert fragment in info.value.message


@pytest.mark.parametrize(("cond", "attributes", "result", "note"), [
    # attributes.* holds what the CRM sent: 1 is not true, "10" is not 10, true is not 1
    ({"field": "attributes.vip", "eq": True}, {"vip": 1}, False, "number against true/false"),
    ({"field": "attributes.vip", "eq": True}, {"vip": True}, True, None),
    ({"field": "attributes.score", "ne": "10"}, {"score": 10}, False, "number against text"),
    ({"field": "attributes.score", "ne": 10}, {"score": 11}, True, None),
    ({"field": "attributes.score", "eq": 10}, {"score": 10.0}, True, None),
    ({"field": "attributes.tier", "in": [True, 2]}, {"tier": 1}, False, None),
    ({"field": "attributes.tier", "in": [True, 2]}, {"tier": True}, True, None),
    ({"field": "attributes.tier", "in": ["gold", 2]}, {"tier": False}, False,
     "true/false against number or text"),
    ({"field": "attributes.tier", "not_in": ["gold"]}, {"tier": 3}, False, "number against text"),
    ({"field": "attributes.tier", "not_in": ["gold"]}, {"tier": "silver"}, True, None),
    ({"field": "attributes.tier", "in": ["gold"]}, {"tier": ["gold"]}, False, "list against text"),
])
def test_attribute_values_of_another_type_make_a_false_leaf_with_a_note(
        cond: dict[str, Any], attributes: dict[str, Any], result: bool, note: str | None
) -> None:
    lead = parse_lead({"id": "L3", "jurisdiction": "GB", "attributes": attributes})
    trace: list[Any] = []
    assert compile_condition(cond, CATALOG, GROUPS)(Facts(lead, None), trace) is result
    assert trace[0]["result"] is result
    if note is None:
        assert "note" not in trace[0]
    else:
        assert trace[0]["note"] == f"type mismatch: {note}"


@pytest.mark.parametrize(("cond", "result"), [
    # A lead's 0.1 is a binary float just above 0.1; the policy's 0.1 is Decimal("0.1").
    # Compared as they were, 0.1 > 0.1 held, and 0.1 was neither equal to 0.1 nor in [0.1].
    ({"field": "attributes.score", "gt": 0.1}, False),
    ({"field": "attributes.score", "gte": 0.1}, True),
    ({"field": "attributes.score", "lt": 0.1}, False),
    ({"field": "attributes.score", "eq": 0.1}, True),
    ({"field": "attributes.score", "ne": 0.1}, False),
    ({"field": "attributes.score", "in": [0.1, "x"]}, True),
    ({"field": "attributes.score", "not_in": [0.1]}, False),
])
def test_a_decimal_fraction_from_lead_json_compares_as_written(cond: dict[str, Any],
                                                              result: bool) -> None:
    lead = parse_lead({"id": "L4", "jurisdiction": "GB", "attributes": {"score": 0.1}})
    trace: list[Any] = []
    assert compile_condition(cond, CATALOG, GROUPS)(Facts(lead, None), trace) is result
    assert trace[0]["result"] is result and trace[0]["actual"] == 0.1


@pytest.mark.parametrize("cond", [
    {"not": {"field": "assessments.appropriateness", "eq": "Failed"}},
    {"field": "assessments.appropriateness", "in": ["passed", "PASSED"]},
])
def test_an_assessment_outcome_not_in_lower_case_is_a_load_error(cond: dict[str, Any]) -> None:
    # Leads' outcomes are lower-cased: `not eq Failed` held for every failed assessment.
    with pytest.raises(ConditionError, match="compared in lower case"):
        compile_condition(cond, CATALOG, GROUPS)
    failed = parse_lead({"id": "L5", "jurisdiction": "GB",
                         "assessments": {"appropriateness": "Failed"}})
    lower = compile_condition({"not": {"field": "assessments.appropriateness", "eq": "failed"}},
                              CATALOG, GROUPS)
    assert lower(Facts(failed, None), []) is False
    # a pattern is matched without regard to case: "^Failed$" let every failure through too
    pattern = compile_condition({"not": {"field": "assessments.appropriateness",
                                         "matches": "^Failed$"}}, CATALOG, GROUPS)
    assert pattern(Facts(failed, None), []) is False


@pytest.mark.parametrize(("cond", "expected"), [
    ({"field": "email", "matches": r".*@example\.com"}, True),
    ({"field": "email", "eq": "a@example.com"}, True),
    ({"field": "email", "in": ["b@example.com"]}, False),
    ({"field": "email", "exists": True}, True),
    ({"not": {"field": "email", "ne": "a@example.com"}}, True),
])
def test_a_leaf_on_personal_data_records_whether_it_held_not_the_value(
        cond: dict[str, Any], expected: bool) -> None:
    """The decision goes to the ledger in clear and is kept for good: a person's email must
    not outlive their erasure there."""
    from routing_core.explain import leaf_text

    result, trace = run(cond)
    assert result is expected
    [recorded] = trace
    assert recorded["path"] == "email" and recorded["actual"] is None
    assert recorded["withheld"] is True and "missing" not in recorded
    assert "example.com" not in leaf_text(recorded).split(": lead has")[1]
    assert "(personal data, withheld)" in leaf_text(recorded)


def test_a_missing_personal_value_is_recorded_as_missing() -> None:
    no_email = parse_lead({"id": "L2", "jurisdiction": "GB"})
    result, [recorded] = run({"field": "email", "matches": ".*"}, no_email)
    assert result is False
    assert recorded["missing"] is True and "withheld" not in recorded
    _, [other] = run({"field": "customer_type", "eq": "retail"})
    assert other["actual"] == "retail" and "withheld" not in other  # not personal: kept
