"""A lead's clock: ZIP codes for US leads without a state, and contact windows that must hold
in every zone a lead may be in when its zone had to be guessed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from routing_core.engine import decide
from routing_core.lead import parse_lead
from routing_core.policy import Policy, load_policy
from routing_core.postcodes import us_subdivision_for_zip
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener

BASIC = Path(__file__).parent / "policies" / "basic.yaml"
AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("zip_code", "expected"), [
    ("94105", "US-CA"), ("10001-1234", "US-NY"), ("00501", "US-NY"), ("99501", "US-AK"),
    ("75201", "US-TX"), ("88510", "US-TX"), ("20500", "US-DC"), ("09001", None),
    ("9410", None), ("SW1A 1AA", None), ("", None), (None, None),
])
def test_zip_code_to_state(zip_code: str | None, expected: str | None) -> None:
    assert us_subdivision_for_zip(zip_code) == expected


def _lead(**fields: Any):  # type: ignore[no-untyped-def]
    return parse_lead({"id": "L1", "customer_type": "retail", "product": "term_life", **fields},
                      source="salesforce")


def test_zip_code_sets_the_clock_but_not_the_jurisdiction() -> None:
    lead = _lead(jurisdiction="US", postcode="94105")
    assert (lead.timezone, lead.timezone_guessed) == ("America/Los_Angeles", False)
    assert lead.jurisdiction.code == "US"      # a licence for US-CA would still not cover it
    no_zip = _lead(jurisdiction="US")
    assert (no_zip.timezone, no_zip.timezone_guessed) == ("America/New_York", True)
    stated = _lead(jurisdiction="US-NY", postcode="94105")   # a stated state wins over a ZIP
    assert stated.timezone == "America/New_York"


@pytest.fixture(scope="module")
def nationwide(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    # The firm and the life team licensed in every state, so that any US lead is assigned.
    text = BASIC.read_text()
    text = text.replace("jurisdictions: [US-NY, US-NJ] }", "jurisdictions: [US] }")
    text = text.replace('jurisdictions: ["@TRISTATE"]', "jurisdictions: [US]")
    text = text.replace("{ id: NY-123, regulator: NYDFS, jurisdictions: [US-NY]",
                        "{ id: NY-123, regulator: NYDFS, jurisdictions: [US]")
    path = tmp_path_factory.mktemp("policy") / "nationwide.yaml"
    path.write_text(text)
    return load_policy(path)


def _window(policy: Policy, **fields: Any) -> dict[str, Any]:
    decision = decide(_lead(**fields), policy, at=AT, rotation=InMemoryRotationState(),
                      screener=NullScreener()).to_json()
    assert decision["outcome"] == "assigned", decision.get("detail")
    window: dict[str, Any] = decision["outreach"]["contact_window"]
    return window


def test_known_zone_keeps_the_window_as_written(nationwide: Policy) -> None:
    window = _window(nationwide, jurisdiction="US", postcode="94105")
    assert (window["start"], window["end"], window["timezone"], window["timezone_guessed"]) == (
        "08:00", "21:00", "America/Los_Angeles", False)


def test_split_state_window_holds_in_both_of_its_zones(nationwide: Policy) -> None:
    # Texas is Central but El Paso is Mountain: 08:00 Mountain is 09:00 Central.
    window = _window(nationwide, jurisdiction="US-TX")
    assert (window["start"], window["end"], window["timezone"], window["timezone_guessed"]) == (
        "09:00", "21:00", "America/Chicago", True)


def test_country_only_window_holds_from_new_york_to_hawaii(nationwide: Policy) -> None:
    # 08:00 in Honolulu (and Adak) is 13:00 in New York in November and 14:00 from March,
    # when New York moves its clocks and Honolulu does not: the window holds all year.
    window = _window(nationwide, jurisdiction="US")
    assert (window["start"], window["end"], window["timezone"]) == (
        "14:00", "21:00", "America/New_York")


@pytest.mark.parametrize("at", [datetime(2026, 3, 7, 20, 0, tzinfo=UTC),   # a Saturday
                                datetime(2026, 3, 9, 20, 0, tzinfo=UTC),   # after US DST began
                                datetime(2026, 7, 1, 20, 0, tzinfo=UTC)])
def test_a_guessed_window_is_the_same_whichever_day_it_is_decided(nationwide: Policy,
                                                                  at: datetime) -> None:
    # Arizona is Phoenix (no DST) or the Navajo Nation (Denver, with DST): 21:00 in Denver is
    # 20:00 in Phoenix for most of the year, so a decision made in winter must not allow
    # 20:00-21:00 calls that are forbidden from March on.
    decision = decide(_lead(jurisdiction="US-AZ"), nationwide, at=at,
                      rotation=InMemoryRotationState(), screener=NullScreener()).to_json()
    window = decision["outreach"]["contact_window"]
    assert (window["start"], window["end"], window["timezone"]) == (
        "08:00", "20:00", "America/Phoenix")
