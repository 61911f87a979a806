"""Lead normalisation: jurisdictions, aliases, money, time zones, every problem at once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing_core.lead import InvalidLead, parse_lead


def lead(**fields):  # type: ignore[no-untyped-def]
    raw = {"id": "L1", "jurisdiction": "GB"}
    raw.update(fields)
    return parse_lead(raw, source="test")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({"jurisdiction": "GB"}, "GB"),
        ({"jurisdiction": "UK"}, "GB"),
        ({"jurisdiction": "gb"}, "GB"),
        ({"jurisdiction": "United Kingdom"}, "GB"),
        ({"jurisdiction": "United States"}, "US"),
        ({"jurisdiction": "USA"}, "US"),
        ({"jurisdiction": "US-NY"}, "US-NY"),
        ({"jurisdiction": "Germany"}, "DE"),
        ({"jurisdiction": "AE-DU"}, "AE-DU"),
        ({"jurisdiction": None, "country": "United States", "state": "New York"}, "US-NY"),
        ({"jurisdiction": None, "country": "US", "subdivision": "NJ"}, "US-NJ"),
        ({"jurisdiction": "US", "state": "US-CA"}, "US-CA"),
        ({"jurisdiction": {"country": "CA", "subdivision": "Ontario"}}, "CA-ON"),
    ],
)
def test_jurisdiction_aliases(raw, code):  # type: ignore[no-untyped-def]
    assert lead(**raw).jurisdiction.code == code


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"jurisdiction": "Atlantis"}, "not an ISO 3166 country"),
        ({"jurisdiction": "US", "state": "Nwe York"}, "not a subdivision of US"),
        ({"jurisdiction": "US-XX"}, "not a subdivision of US"),
        ({"jurisdiction": "US-NY", "state": "NJ"}, "contradicts"),
        ({"jurisdiction": "GB", "country": "FR"}, "contradicts"),
        ({"jurisdiction": None}, "jurisdiction: missing"),
    ],
)
def test_bad_jurisdictions(raw, fragment):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidLead) as info:
        lead(**raw)
    assert any(fragment in p for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidLead) as info:
        parse_lead({"jurisdiction": "Atlantis", "customer_type": "retial",
                    "investable_assets": {"amount": "lots", "currency": "XXY"},
                    "consent": {"phone": "perhaps"}, "email": "nope",
                    "first_contact_at": "2026-01-01T10:00:00", "prodcut": "x"})
    problems = info.value.problems
    for fragment in ("jurisdiction", "customer_type", "investable_assets.amount",
                     "investable_assets.currency", "consent.phone", "email",
                     "first_contact_at", "prodcut", "id: missing"):
        assert any(fragment in p for p in problems), (fragment, problems)
    assert len(problems) == 9


def test_money_is_decimal_with_iso_currency() -> None:
    parsed = lead(investable_assets={"amount": "1000000.10", "currency": "gbp"})
    assert parsed.investable_assets is not None
    assert parsed.investable_assets.amount == Decimal("1000000.10")
    assert parsed.investable_assets.currency == "GBP"
    # a float is taken through its decimal text, not its binary value
    assert lead(investable_assets={"amount": 0.1, "currency": "EUR"}
                ).investable_assets.amount == Decimal("0.1")  # type: ignore[union-attr]


def test_negative_amount_is_a_problem() -> None:
    with pytest.raises(InvalidLead, match="non-negative"):
        lead(investable_assets={"amount": -5, "currency": "GBP"})


@pytest.mark.parametrize(
    ("raw", "zone", "guessed"),
    [
        ({"jurisdiction": "GB"}, "Europe/London", False),
        ({"jurisdiction": "DE"}, "Europe/Berlin", False),
        ({"jurisdiction": "AE"}, "Asia/Dubai", False),
        ({"jurisdiction": "US-NY"}, "America/New_York", False),
        ({"jurisdiction": "US-CA"}, "America/Los_Angeles", False),
        ({"jurisdiction": "US-TX"}, "America/Chicago", True),
        ({"jurisdiction": "US"}, "America/New_York", True),
        ({"jurisdiction": "CA-BC"}, "America/Vancouver", True),
        ({"jurisdiction": "CA-AB"}, "America/Edmonton", False),
        ({"jurisdiction": "AU-WA"}, "Australia/Perth", False),
        ({"jurisdiction": "AU"}, "Australia/Sydney", True),
        ({"jurisdiction": "GB", "timezone": "Europe/Paris"}, "Europe/Paris", False),
    ],
)
def test_timezone_derivation(raw, zone, guessed):  # type: ignore[no-untyped-def]
    parsed = lead(**raw)
    assert (parsed.timezone, parsed.timezone_guessed) == (zone, guessed)


def test_customer_type_aliases_and_booleans() -> None:
    parsed = lead(customer_type="High Net Worth", consent={"phone": "yes", "email": 0,
                                                           "sms": ""},
                  assessments={"appropriateness": "Passed"})
    assert parsed.customer_type == "high_net_worth"
    assert parsed.consent == {"phone": True, "email": False}
    assert parsed.assessments == {"appropriateness": "passed"}


def test_lead_is_frozen() -> None:
    parsed = lead()
    with pytest.raises(ValueError):
        parsed.product = "x"  # type: ignore[misc]


def test_currency_check_is_pycountrys_case_insensitive_lookup() -> None:
    # parse_lead checks codes against a set made from pycountry: every three-letter code, and
    # a few Unicode oddities (the Kelvin sign lower-cases to "k"), must get pycountry's answer.
    import itertools
    import string

    import pycountry

    codes = ["".join(c) for c in itertools.product(string.ascii_uppercase, repeat=3)]
    codes += ["\u212aES", "G\u0130P", "EU\u0280", "ÉUR", "GBP ", "gbp"]
    for code in codes:
        known = pycountry.currencies.get(alpha_3=code.strip().upper()) is not None
        try:
            lead(investable_assets={"amount": "1", "currency": code})
        except InvalidLead as exc:
            assert not known, (code, exc.problems)
        else:
            assert known, code


# --- malformed shapes: InvalidLead listing every problem, never another exception -------------

def test_attribute_keys_that_are_not_strings_are_named_problems() -> None:
    # A pydantic ValidationError here escaped the sync job (it catches InvalidLead only).
    with pytest.raises(InvalidLead) as info:
        lead(attributes={1: "x"})
    assert info.value.problems == [
        "attributes: key 1 is not a string (custom field names are text)"]
    # ... and it is listed with the lead's other problems
    with pytest.raises(InvalidLead) as info:
        parse_lead({"jurisdiction": "GB", "attributes": {1: "x", "tier": "gold", None: 2}})
    problems = info.value.problems
    assert any(p.startswith("attributes: key 1 ") for p in problems), problems
    assert any(p.startswith("attributes: key None ") for p in problems), problems
    assert not any("tier" in p for p in problems), problems
    assert "id: missing" in problems  # every problem, not only the first
