"""A refusal for invalid_lead names what to fix without keeping the record's values in clear:
a wrongly filled field (a name typed into Country) would otherwise sit in the ledger's chain
for good, out of reach of `audit erase`. The values as given are sealed with the lead's
personal data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from routing_core.lead import InvalidLead, parse_lead
from routing_core.withheld import withhold_values
from sync.state import sync_decisions
from sync.writeahead import withhold_given_values
from tests.integration.synctools import (
    intake_indices,
    leadgate,
    ledger_entries,
    record_id,
    start_env,
    sync_run,
)

NAME = "Quimbyox O'Hara"  # has a ' so its repr is in double quotes
OTHER = 'Zeldavar "Zee" Quist'  # has both quotes: single-quoted repr with \' escapes


def _problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(InvalidLead) as refused:
        parse_lead({"id": "L1", **raw})
    return refused.value.problems


@pytest.mark.parametrize("value", [NAME, OTHER, "Ada", "a\\b\nc"])
def test_every_value_a_problem_quotes_is_withheld(value: str) -> None:
    problems = _problems({
        "country": value, "timezone": value, "kind": value, "customer_type": value,
        "investable_assets": {"amount": value, "currency": value},
        "consent": {"phone": value}, "first_contact_at": value})
    assert len(problems) == 8, problems
    # the text as given quotes it (the currency upper-cased)
    assert all(repr(value) in p or repr(value.upper()) in p for p in problems), problems
    shown = [withhold_values(p) for p in problems]
    for text in shown:
        assert value.split()[0].lower() not in text.lower(), text
        assert f"[a value of {len(value)} characters, withheld]" in text, text
    # what to fix still reads: the field, and what was expected
    assert shown[0].startswith("jurisdiction: [a value of")
    assert shown[0].endswith("is not an ISO 3166 country code or name")


def test_a_payload_keeps_its_problems_as_given_only_for_sealing() -> None:
    payload = {"reason": "invalid_lead", "detail": f"unknown product code {NAME!r}",
               "problems": [f"product: {NAME!r} is not a product of policy p",
                            "id: missing"]}
    given = withhold_given_values(payload)
    assert given == [f"product: {NAME!r} is not a product of policy p", "id: missing"]
    assert payload["problems"] == [
        "product: [a value of 15 characters, withheld] is not a product of policy p",
        "id: missing"]
    assert payload["detail"] == "unknown product code [a value of 15 characters, withheld]"
    plain = {"reason": "invalid_lead", "problems": ["id: missing"]}
    assert withhold_given_values(plain) is None and plain["problems"] == ["id: missing"]


def test_a_name_in_a_lead_field_is_sealed_not_stored(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=60)
    try:
        wrong = sorted(intake_indices(env.sb, "salesforce"))[:2]
        with env.sb.store.lock:
            env.sb.store.leads.set(wrong[0], {"Country": NAME})
            env.sb.store.leads.set(wrong[1], {"Customer_Type__c": OTHER})
        run = sync_run(env, "salesforce")
        assert run.returncode == 0, run.stderr
        engine = env.engine()
        entries = ledger_entries(engine)
        with engine.connect() as conn:
            stored = {r.record_id: json.loads(r.decision) for r in conn.execute(
                sa.select(sync_decisions.c.record_id, sync_decisions.c.decision))}
        engine.dispose()
        ids = [record_id(env.sb, "salesforce", i) for i in wrong]
        for rid in ids:
            assert stored[rid]["reason"] == "invalid_lead", stored[rid]
            assert any("withheld]" in p for p in stored[rid]["problems"]), stored[rid]
        for token in ("Quimbyox", "Zeldavar"):
            assert not any(token in json.dumps(e) for e in entries)
            assert not any(token in json.dumps(d) for d in stored.values())
            db_files = [f for f in env.folder.iterdir() if f.name.startswith("leadgate.db")]
            assert db_files and not any(token.encode() in f.read_bytes() for f in db_files)
        cfg = ("--config", str(env.config))
        listed = leadgate("review", "list", *cfg)
        assert listed.returncode == 0, listed.stderr
        assert ids[0] in listed.stdout and "invalid_lead" in listed.stdout
        assert "Quimbyox" not in listed.stdout and "Zeldavar" not in listed.stdout
        subject = f"salesforce:{ids[0]}"
        plain = leadgate("audit", "explain", subject, *cfg)
        assert plain.returncode == 0, plain.stderr
        assert "Quimbyox" not in plain.stdout and "jurisdiction: [a value of 15" in plain.stdout
        token = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.strip().splitlines()[-1]
        shown = leadgate("audit", "explain", subject, "--show-personal", "--reason",
                         "ticket 4411 mapping check", "--officer", "cco-marta", "--token", token,
                         *cfg)
        assert shown.returncode == 0, shown.stderr
        assert "Quimbyox O'Hara" in shown.stdout and "problems=" in shown.stdout, shown.stdout
    finally:
        env.sb.stop()


def test_a_rule_on_personal_fields_keeps_their_values_out_of_the_ledger(tmp_path: Path) -> None:
    """A policy may route on an email domain or a surname; the decision records that the
    condition held, and the values stay sealed (erasable), not in the ledger's clear chain."""
    import re

    env = start_env(tmp_path, leads=60)
    try:
        rules = tmp_path / "policy" / "50-rules.yaml"
        rules.write_text(rules.read_text().replace("rules:\n", (
            "rules:\n"
            "  - id: staff-referral\n"
            "    when: { all: [ { field: email, matches: '.*@northwind\\.example' },\n"
            "                   { field: last_name, in: [Nobody] },\n"
            "                   { field: postcode, exists: true } ] }\n"
            "    route_to: [uk_retail]\n"), 1))
        assert leadgate("policy", "validate", str(tmp_path / "policy")).returncode == 0
        run = sync_run(env, "salesforce")
        assert run.returncode == 0, run.stderr
        engine = env.engine()
        entries = ledger_entries(engine)
        engine.dispose()
        decisions = [e["payload"] for e in entries if e["kind"] == "decision"]
        tried = [leaf for d in decisions for r in d.get("rules_tried") or []
                 if r["id"] == "staff-referral" for leaf in r["conditions"]]
        assert tried and all(leaf["actual"] is None for leaf in tried)
        assert any(leaf.get("withheld") for leaf in tried)  # the emails were there, and held back
        emails = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z.]+")
        db_files = [f for f in env.folder.iterdir() if f.name.startswith("leadgate.db")]
        assert db_files and not any(emails.search(f.read_bytes()) for f in db_files)
    finally:
        env.sb.stop()
