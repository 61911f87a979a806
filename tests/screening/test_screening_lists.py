"""Reading the example policy's real list files, and failing closed when a list is unusable."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from routing_core.engine import decide
from routing_core.lead import parse_lead
from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from sync.screening_lists import ListScreener, UnavailableScreener, load_screener, read_list

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy"
AT = datetime(2026, 11, 25, 10, tzinfo=UTC)


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(EXAMPLE, target)
    return target


def _decide(policy_path: Path, **fields: str):  # type: ignore[no-untyped-def]
    policy = load_policy(policy_path)
    lead = parse_lead({"source": "salesforce", "id": "00Q1", "jurisdiction": "GB",
                       "customer_type": "retail", "product": "easy_saver", **fields})
    return decide(lead, policy, at=AT, rotation=InMemoryRotationState(),
                  screener=load_screener(policy))


def test_every_declared_list_is_read_with_its_digest() -> None:
    screener = load_screener(load_policy(EXAMPLE))
    assert isinstance(screener, ListScreener)
    assert [(x.check, x.list_id) for x in screener.lists] == [
        ("sanctions", "ofac_sdn"), ("sanctions", "uk_ofsi"), ("pep", "pep"),
        ("blocklist", "blocklist")]
    assert all(x.digest.startswith("sha256:") and len(x.entries) > 0 for x in screener.lists)


def test_ofac_remarks_aliases_are_read(tmp_path: Path) -> None:
    sdn = tmp_path / "sdn.csv"
    sdn.write_text('7,"DOE, Jan","individual","X","-0- ","-0- ","-0- ","-0- ","-0- ","-0- ",'
                   '"-0- ","a.k.a. \'DOEVSKI, Jan\'; a.k.a. \'J. DOE\'."\n')
    loaded = read_list("sanctions", "sdn", "ofac_sdn_csv", sdn)
    assert loaded.entries[0].aliases == ("DOEVSKI, Jan", "J. DOE")


def test_sanctioned_lead_is_refused_with_the_entry_and_list_digest(policy_copy: Path) -> None:
    decision = _decide(policy_copy, first_name="Taras", last_name="Karvossen").to_json()
    assert decision["outcome"] == "refused" and decision["reason"] == "sanctions_hit"
    assert decision["team"] is None and decision["rep"] is None
    hits = [s for s in decision["screening"] if s["hit"]]
    assert {h["list"] for h in hits} == {"ofac_sdn", "uk_ofsi"}
    assert all(h["list_digest"].startswith("sha256:") for h in hits)


def test_pep_and_blocklist_refusals(policy_copy: Path) -> None:
    pep = _decide(policy_copy, first_name="Evander", last_name="Quillfeather").to_json()
    blocked = _decide(policy_copy, first_name="Ann", last_name="Lee",
                      email="someone@disposable-leads.example.net").to_json()
    assert (pep["reason"], blocked["reason"]) == ("pep", "blocklisted")


def test_clean_lead_is_assigned_after_screening(policy_copy: Path) -> None:
    decision = _decide(policy_copy, first_name="Amelia", last_name="Thornbury").to_json()
    assert decision["outcome"] == "assigned"
    assert len(decision["screening"]) == 4 and not any(s["hit"] for s in decision["screening"])


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_unusable_list_refuses_every_lead(policy_copy: Path, damage: str) -> None:
    target = policy_copy / "lists" / "peps.csv"
    if damage == "delete":
        target.unlink()
    else:
        target.write_bytes(b"\xff\xfe not utf-8 \xff")
    screener = load_screener(load_policy(policy_copy))
    assert isinstance(screener, UnavailableScreener) and "pep" in screener.reason
    decision = _decide(policy_copy, first_name="Amelia", last_name="Thornbury").to_json()
    assert decision["outcome"] == "refused" and decision["reason"] == "screening_unavailable"


def test_sanctions_hit_is_recorded_even_from_an_unlicensed_jurisdiction(policy_copy: Path) -> None:
    # Screening comes before the jurisdiction check: the hit must not be hidden behind
    # `unlicensed_jurisdiction`.
    decision = _decide(policy_copy, jurisdiction="US-TX", product="term_life",
                       first_name="Taras", last_name="Karvossen").to_json()
    assert decision["reason"] == "sanctions_hit"
    clean = _decide(policy_copy, jurisdiction="US-TX", product="term_life",
                    first_name="Amelia", last_name="Thornbury").to_json()
    assert clean["reason"] == "unlicensed_jurisdiction"
    assert len(clean["screening"]) == 4


def test_every_format_a_policy_may_name_has_a_reader() -> None:
    from typing import get_args

    from routing_core.policy.schema import ListFormat
    from sync import screening_lists

    assert set(get_args(ListFormat)) == set(screening_lists._READERS)
