"""Lead normalisation: jurisdictions, aliases, money, time zones, every problem at once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing_core.lead import KNOWN_FIELDS, InvalidLead, Lead, parse_lead


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


def test_a_currency_without_an_amount_is_unknown_assets_not_an_invalid_lead() -> None:
    # A multi-currency Salesforce org sets CurrencyIsoCode on every record, assets or not.
    for amount in (None, "", "  "):
        assert lead(investable_assets={"amount": amount, "currency": "GBP"}
                    ).investable_assets is None
    assert lead(investable_assets={"currency": "GBP"}).investable_assets is None
    for bad in ("NOTACODE", 12):  # a currency that is no code is still named
        with pytest.raises(InvalidLead, match="is not an ISO 4217 code"):
            lead(investable_assets={"amount": None, "currency": bad})
    with pytest.raises(InvalidLead) as info:  # still named: an amount that is no number
        lead(investable_assets={"amount": True, "currency": "GBP"})
    assert info.value.problems == ["investable_assets.amount: True is not a number"]
    with pytest.raises(InvalidLead) as info:  # and an amount with no currency
        lead(investable_assets={"amount": 5})
    assert info.value.problems == [
        "investable_assets.currency: missing (ISO 4217 code such as GBP)"]


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


def test_a_list_an_object_or_a_yes_no_in_a_text_field_is_a_problem() -> None:
    # str() of them used to pass as text: email ["a@b.c"] even matched the email check.
    with pytest.raises(InvalidLead) as info:
        lead(email=["ann@example.com"], first_name={"given": "Ann"}, phone=True,
             product=("easy_saver",))
    problems = info.value.problems
    assert problems == ["first_name: expected text, not an object",
                        "email: expected text, not a list",
                        "phone: expected text, not true/false",
                        "product: expected text, not a list"]
    assert not any("ann" in p.lower() for p in problems)  # personal data stays out
    # Numbers still stand for text (numeric CRM ids, postcodes).
    parsed = lead(id=51000101, postcode=10115, jurisdiction="DE")
    assert (parsed.id, parsed.postcode) == ("51000101", "10115")


def test_unknown_fields_that_are_not_strings_are_named() -> None:
    with pytest.raises(InvalidLead) as info:
        parse_lead({"id": "L1", "jurisdiction": "GB", 1: "x", "prodcut": "y", None: 3})
    [problem] = info.value.problems
    assert problem.startswith("unknown field(s) 1, None, prodcut "), problem


def test_unknown_money_keys_of_mixed_types_are_named() -> None:
    with pytest.raises(InvalidLead) as info:
        lead(investable_assets={"amount": 1, "currency": "GBP", 1: "x", "extra": 2})
    assert info.value.problems == ["investable_assets: unknown keys [1, 'extra']"]


@pytest.mark.parametrize("zone", ["America", "Etc", "x" * 300])
def test_timezone_that_is_no_zone_file_is_a_problem(zone: str) -> None:
    # tzdata folders and over-long names made ZoneInfo raise OSError (IsADirectoryError, ...)
    with pytest.raises(InvalidLead) as info:
        lead(timezone=zone)
    assert info.value.problems == [f"timezone: {zone!r} is not an IANA time zone"]


# JSON values (YAML and Python callers also give non-string keys), with text that looks like a
# lead field's value: these reach the branches that random text does not.
_ODD_TEXT = st.sampled_from(["", " ", "GB", "US", "US-NY", "Etc", "America", "Europe/", "../x",
                             "x" * 300, "\x00", "\ud800", "nan", "-1", "1e999999999999999999",
                             "1,000", "Passed", "yes", "2026-01-01T10:00:00Z", "GBP", "a@b.co"])
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
            | _ODD_TEXT)
_KEYS = (st.text(max_size=8) | _ODD_TEXT | st.integers() | st.booleans() | st.none()
         | st.floats(allow_nan=False))
_JUNK = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6)
# Where a lead is: coherent combinations of the location fields.
_PLACES = st.sampled_from([
    {"jurisdiction": "GB"}, {"jurisdiction": "US-NY"}, {"jurisdiction": "United States"},
    {"jurisdiction": "US", "postcode": "94105-1420"}, {"country": "US", "state": "New York"},
    {"country": "Germany"}, {"jurisdiction": {"country": "CA", "subdivision": "Ontario"}},
    {"jurisdiction": "GB", "postcode": "SW1A 1AA"}])
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "source": st.just("salesforce"),
    "timezone": st.sampled_from(["Europe/London", "America/New_York"]),
    "customer_type": st.sampled_from(["retail", "High Net Worth", "ecp"]),
    "kind": st.sampled_from(["person", "company", "organization"]),
    "email": st.just("jo@example.com"),
    "investable_assets": st.fixed_dictionaries(
        {"amount": st.sampled_from(["1000000", 5, 0.1]), "currency": st.sampled_from(["GBP",
                                                                                     "eur"])}),
    "first_contact_at": st.sampled_from(["2026-11-20T10:00:00+01:00", "2026-11-20T10:00:00Z"]),
    # mappings: valid names and values mixed with junk ones
    "assessments": st.dictionaries(st.sampled_from(["appropriateness"]) | _KEYS,
                                   st.sampled_from(["passed", "Failed"]) | _JUNK, max_size=3),
    "consent": st.dictionaries(st.sampled_from(["phone", "email"]) | _KEYS,
                               st.sampled_from([True, False, "yes", 0]) | _JUNK, max_size=3),
    "attributes": st.dictionaries(st.sampled_from(["lead_source", "tier"]) | _KEYS, _JUNK,
                                  max_size=3),
}
_LOCATION = {"jurisdiction", "country", "subdivision", "state", "postcode"}


@st.composite
def _raw_leads(draw: st.DrawFn) -> dict[Any, Any]:
    """A valid lead (a place, an id, some other fields), then junk of any JSON type in a few
    fields, sometimes in keys that are no lead field; so that both outcomes are common."""
    raw: dict[Any, Any] = {"id": "L1", **draw(_PLACES)}
    for name in sorted(KNOWN_FIELDS - _LOCATION - {"id"}):
        if draw(st.booleans()):
            raw[name] = draw(_VALID.get(name, st.text(max_size=12)))
    for name in draw(st.lists(st.sampled_from(sorted(KNOWN_FIELDS)), max_size=3)):
        raw[name] = draw(_JUNK)
    if draw(st.integers(0, 4)) == 0:
        raw.update(draw(st.dictionaries(_KEYS, _JUNK, max_size=2)))
    return raw


@settings(max_examples=300, deadline=None)
@given(_raw_leads())
def test_parse_lead_returns_a_lead_or_raises_invalid_lead(raw: dict[Any, Any]) -> None:
    try:
        parsed = parse_lead(raw)
    except InvalidLead as exc:
        assert exc.problems and all(type(p) is str and p for p in exc.problems)
    else:
        assert isinstance(parsed, Lead)


def test_consent_and_assessment_keys_that_are_not_strings_are_named_problems() -> None:
    # str() of them used to make a consent "1" or an assessment "None" out of a YAML slip.
    with pytest.raises(InvalidLead) as info:
        lead(consent={1: True, "email": True}, assessments={None: "passed"})
    assert info.value.problems == [
        "consent: key 1 is not a string (channels are text)",
        "assessments: key None is not a string (assessment names are text)"]


def test_a_jurisdiction_object_with_a_key_it_does_not_know_is_a_problem() -> None:
    # A misspelt subdivision must not quietly widen a US state lead to the whole country.
    with pytest.raises(InvalidLead) as info:
        lead(jurisdiction={"country": "US", "subdivison": "CA"})
    assert info.value.problems == [
        "jurisdiction: unknown key(s) subdivison (give country and subdivision)"]
    assert lead(jurisdiction={"country": "US", "subdivision": "CA"}).jurisdiction.code == "US-CA"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"),
                                   Decimal("-Infinity"), Decimal("sNaN")])
def test_an_attribute_that_is_not_a_finite_number_is_a_problem(value: Any) -> None:
    # NaN compares false with everything and has no JSON: the decision could not be recorded.
    with pytest.raises(InvalidLead) as info:
        lead(attributes={"score": value, "tier": "gold"})
    assert info.value.problems == ["attributes.score: not a finite number"]
    assert lead(attributes={"score": 1.5, "rank": Decimal("2")}).attributes["score"] == 1.5
