"""The sync job's screener (sync.screening_lists) on the example policy's lists: every sample lead gets its expected outcome,
and an unreadable list refuses every lead (fail closed)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from routing_core.engine import decide, refuse_invalid
from routing_core.lead import InvalidLead, parse_lead
from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from sync.context import screener_for
from sync.state import sync_decisions
from tests.integration.synctools import check_invariants, crm_state, record_id, start_env, sync_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _route(policy_dir: Path) -> dict[str, tuple[str, str | None]]:
    policy = load_policy(policy_dir)
    screener = screener_for(policy)
    rotation = InMemoryRotationState()
    out = {}
    for line in (EXAMPLES / "leads" / "sample-leads.jsonl").read_text().splitlines():
        raw = json.loads(line)
        try:
            d = decide(parse_lead(raw), policy, at=AT, rotation=rotation, screener=screener)
        except InvalidLead as exc:
            d = refuse_invalid(raw["source"], raw["id"], exc.problems, policy, at=AT)
        out[raw["id"]] = (d.outcome, d.reason)
    return out


def test_sample_leads_get_their_expected_outcomes_with_real_lists() -> None:
    expected = {e["id"]: (e["outcome"], e["reason"])
                for e in json.loads((EXAMPLES / "leads" / "expected-outcomes.json").read_text())}
    got = _route(EXAMPLES / "policy")
    assert got == expected
    assert ("refused", "sanctions_hit") in got.values() and ("refused", "pep") in got.values()


def test_an_unreadable_list_refuses_every_lead(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "policy", policy_dir)
    (policy_dir / "lists" / "peps.csv").unlink()
    got = _route(policy_dir)
    parsed = [v for v in got.values() if v[1] != "invalid_lead"
              and v[1] != "unlicensed_jurisdiction"]
    assert parsed and all(v == ("refused", "screening_unavailable") for v in parsed)


# A routable GB retail lead in each CRM's own field names (the default mapping).
_CLEAN = {
    "salesforce": {"Country": "GB", "State": None, "PostalCode": None,
                   "Customer_Type__c": "Retail Customer", "Product_Interest__c": "Easy Saver",
                   "Investable_Assets__c": 20000, "CurrencyIsoCode": "GBP",
                   "Email": "ann.lee@example.com", "Phone": "+44 20 7946 0001"},
    "hubspot": {"country": "GB", "state": None, "zip": None,
                "customer_type": "Retail Customer", "product_interest": "Easy Saver",
                "investable_assets": 20000, "assets_currency": "GBP",
                "email": "ann.lee@example.com", "phone": "+44 20 7946 0001"},
}
_NAMES = {"salesforce": ("FirstName", "LastName", "Phone"),
          "hubspot": ("firstname", "lastname", "phone")}


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_listed_name_or_phone_in_disguise_is_refused_through_the_crm(
        tmp_path: Path, crm: str) -> None:
    """Through the real connector: a sanctioned name with invisible characters in it or with
    Cyrillic look-alike letters (in some of its words, or all of them), and a blocklisted phone
    written nationally, are refused to compliance with the hit they are; the same record with a
    clean name is assigned."""
    env = start_env(tmp_path, leads=20, contacts=20)
    try:
        first, last, phone = _NAMES[crm]
        cases = {  # name / phone -> the refusal expected
            ("Ann", "Lee", "+44 20 7946 0001"): ("assigned", None),
            ("Ta\u200bras Ilvenovich", "Kar\u200bvossen", "+44 20 7946 0002"):
                ("refused", "sanctions_hit"),
            ("T\u0430r\u0430s Ilvenovich", "K\u0430rv\u043essen", "+44 20 7946 0003"):
                ("refused", "sanctions_hit"),
            ("\u0422\u0430\u0433\u0430\u0455 Ilvenovich",  # every letter a look-alike
             "\u041a\u0430\u0433\u03bd\u043e\u0455\u0455\u0435\u043f", "+44 20 7946 0004"):
                ("refused", "sanctions_hit"),
            ("Ann", "Lee", "07700 900999"): ("refused", "blocklisted"),
        }
        table = env.sb.store.leads if crm == "salesforce" else env.sb.store.contacts
        chosen = sorted(env.intake[crm])[:len(cases)]
        with env.sb.store.lock:
            for i, (f, la, ph) in zip(chosen, cases, strict=True):
                table.set(i, {**_CLEAN[crm], first: f, last: la, phone: ph})
        assert sync_run(env, crm).returncode == 0
        engine = env.engine()
        try:
            with engine.connect() as conn:
                d = sync_decisions.c
                got = {r.record_id: (r.outcome, r.reason) for r in conn.execute(
                    sa.select(d.record_id, d.outcome, d.reason))}
        finally:
            engine.dispose()
        for i, want in zip(chosen, cases.values(), strict=True):
            outcome, reason = got[record_id(env.sb, crm, i)]
            assert (outcome, reason) == want, (i, want)
            assert crm_state(env.sb, crm, i)[1] == want[0]
        check_invariants(env, crm)
    finally:
        env.sb.stop()
