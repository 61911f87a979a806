"""List screening: formats, fuzzy names, e-mail/domain/phone, digests, fail closed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from routing_core.engine import decide
from routing_core.lead import parse_lead
from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from routing_core.screening_lists import ListScreener, UnavailableScreener, fold, load_screener

BASIC = Path(__file__).parent / "policies" / "basic.yaml"
SDN = ('9001,"KARVOSSEN, Taras Ilvenovich","individual","RUSSIA","-0- ","-0- ","-0- ","-0- ",'
       '"-0- ","-0- ","-0- ","DOB 1971; a.k.a. \'КАРВОССЕН, Тарас\'; Email Address '
       'tk@example.net; TEST."\n')
PEPS = ("id,schema,name,aliases,birth_date,countries,addresses,identifiers,sanctions,phones,"
        "emails,dataset,first_seen,last_seen,last_change\n"
        "p1,Person,Evander Quillfeather,Quillfeather Evander,,gb,,,,+44 7700 900555,,x,,,\n")
BLOCK = "name,email,domain,phone\n,,spam.example.net,\nRufus Vane,,,\n"
AT = datetime(2026, 11, 24, 10, tzinfo=UTC)


def policy_with_lists(tmp_path: Path, sdn: str | None = SDN):  # type: ignore[no-untyped-def]
    lists = tmp_path / "lists"
    lists.mkdir()
    if sdn is not None:
        (lists / "sdn.csv").write_text(sdn)
    (lists / "peps.csv").write_text(PEPS)
    (lists / "block.csv").write_text(BLOCK)
    text = BASIC.read_text().replace(
        "    - { id: ofac_sdn, format: ofac_sdn_csv, path: lists/sdn.csv }\n",
        "    - { id: ofac_sdn, format: ofac_sdn_csv, path: lists/sdn.csv }\n"
        "  pep: { format: opensanctions_simple, path: lists/peps.csv }\n"
        "  blocklist: { format: csv, path: lists/block.csv }\n")
    (tmp_path / "p.yaml").write_text(text)
    return load_policy(tmp_path / "p.yaml")


def screen(screener, **fields):  # type: ignore[no-untyped-def]
    raw = {"id": "x", "jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}
    raw.update(fields)
    return {r.check: r for r in screener.screen(parse_lead(raw))}


def test_fold() -> None:
    assert fold("KARVOSSEN, Taras-Ilvénovich") == "karvossen taras ilvenovich"


def test_names_match_across_order_middle_names_and_scripts(tmp_path: Path) -> None:
    screener = load_screener(policy_with_lists(tmp_path))
    assert isinstance(screener, ListScreener)
    hit = screen(screener, first_name="Taras", last_name="Karvossen")["sanctions"]
    assert hit.hit and hit.best_score == 1.0 and hit.matched["id"] == "9001"  # type: ignore[index]
    digest = "sha256:" + hashlib.sha256(SDN.encode()).hexdigest()
    assert hit.list == "ofac_sdn" and hit.list_digest == digest
    assert screen(screener, first_name="Тарас", last_name="Карвоссен")["sanctions"].hit
    assert screen(screener, first_name="Taras", last_name="Karvosen")["sanctions"].hit  # typo
    assert not screen(screener, first_name="Taras")["sanctions"].hit  # one word never alone
    miss = screen(screener, first_name="Amelia", last_name="Thornbury")
    assert not any(r.hit for r in miss.values())
    assert miss["sanctions"].matched is None and miss["sanctions"].best_score < 0.9


def test_pep_and_blocklist_by_email_domain_phone_and_name(tmp_path: Path) -> None:
    screener = load_screener(policy_with_lists(tmp_path))
    assert screen(screener, first_name="Evander", last_name="Quillfeather")["pep"].hit
    assert screen(screener, phone="+447700900555")["pep"].hit
    assert screen(screener, email="a@spam.example.net")["blocklist"].matched["on"] == "domain"  # type: ignore[index]
    assert screen(screener, email="tk@example.net")["sanctions"].hit
    assert screen(screener, first_name="Rufus", last_name="Vane")["blocklist"].hit


def test_engine_refuses_on_a_list_hit(tmp_path: Path) -> None:
    policy = policy_with_lists(tmp_path)
    lead = parse_lead({"id": "x", "jurisdiction": "GB", "customer_type": "retail",
                       "product": "easy_saver", "first_name": "Evander",
                       "last_name": "Quillfeather"})
    decision = decide(lead, policy, at=AT, rotation=InMemoryRotationState(),
                      screener=load_screener(policy))
    out = decision.to_json()
    assert out["reason"] == "pep" and out["team"] is None
    assert [s["check"] for s in out["screening"]] == ["sanctions", "pep", "blocklist"]


def test_unreadable_list_refuses_every_lead(tmp_path: Path) -> None:
    policy = policy_with_lists(tmp_path, sdn=None)
    screener = load_screener(policy)
    assert isinstance(screener, UnavailableScreener) and "sdn.csv" in screener.reason
    lead = parse_lead({"id": "x", "jurisdiction": "GB", "customer_type": "retail",
                       "product": "easy_saver"})
    decision = decide(lead, policy, at=AT, rotation=InMemoryRotationState(), screener=screener)
    assert decision.reason == "screening_unavailable" and decision.team is None
