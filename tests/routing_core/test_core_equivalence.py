"""The decision JSON and `parse_lead` give the same bytes as recorded: a golden-output harness.

The decision JSON is a contract (policy-spec.md): its bytes must not change when the engine is
made faster. This test decides a fixed set of leads (the 38 example leads, leads shaped like the
example policy's licences, leads as the Salesforce sync maps them from the sandbox CRM, with
realistic names in 13 cultures and names taken from the screening lists) and compares a digest
of `json.dumps(decision.to_json())` (key order included) for each one with the digests in
`equivalence_golden.json`. It does the same for `parse_lead` on those records and on a few
hundred malformed ones: the Lead's repr, or the list of problems, in order.

The example policy is extended with conduct rules whose conditions reach every kind of value a
condition leaf can record (Decimal amounts, datetimes, dates, a whole Money, missing paths,
run-time type mismatches, attribute lists, dicts and sets).

The golden file was recorded with the code before the change it guards, by running this file
as a script from that checkout (so that its packages are the ones imported):

    PYTHONPATH=<checkout> python <checkout>/tests/routing_core/test_core_equivalence.py \\
        --record tests/routing_core/equivalence_golden.json

Re-record only when a change of the decision JSON is intended (policy-spec.md: fields may be
added, never renamed or dropped), or when the example policy, lists or leads change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import BaseModel

from connectors.mapping import crm_fields, default_mapping, map_record
from connectors.sandbox.generator import Generator
from connectors.sandbox.reps import from_policy
from connectors.sandbox.store import Store
from routing_core.engine import decide, refuse_invalid
from routing_core.jurisdictions import BUILTIN_GROUPS
from routing_core.lead import CUSTOMER_TYPES, InvalidLead, Lead, parse_lead
from routing_core.policy import Policy, load_policy
from routing_core.rotation import InMemoryRotationState
from sync.screening_lists import load_screener

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).with_name("equivalence_golden.json")
AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BEFORE_EFFECTIVE = datetime(2026, 10, 15, 9, 0, tzinfo=UTC)  # adds a decision note
N_POLICY_SHAPED = 2500
N_SYNC_SHAPED = 1500
N_MALFORMED = 800

# Conduct rules (every one is evaluated for an assigned lead) with every kind of leaf value.
EXOTIC_CONDUCT = """
  # --- added by tests/routing_core/test_core_equivalence.py ---
  - { id: x-assets, when: { field: investable_assets, exists: true } }
  - { id: x-amount-gte, when: { field: investable_assets.amount, gte: 100000 } }
  - { id: x-amount-float, when: { field: investable_assets.amount, eq: 2500.5 } }
  - { id: x-amount-ne, when: { field: investable_assets.amount, ne: 0 } }
  - { id: x-currency, when: { field: investable_assets.currency, in: [GBP, EUR] } }
  - { id: x-first-contact, when: { field: first_contact_at, lt: 2026-11-21T00:00:00Z } }
  - { id: x-no-first-contact, when: { field: first_contact_at, exists: false } }
  - { id: x-score, when: { field: attributes.score, gt: 5 } }
  - { id: x-score-ne, when: { field: attributes.score, ne: 3 } }
  - { id: x-tags, when: { field: attributes.tags, in: [vip, 2, true] } }
  - { id: x-tags-out, when: { field: attributes.tags, not_in: [vip] } }
  - { id: x-introducer, when: { field: attributes.introducer_code, matches: "PB-[A-Z]{2}\\\\d+" } }
  - { id: x-since, when: { field: attributes.since, eq: 2026-01-01 } }
  - { id: x-blob, when: { field: attributes.blob, exists: true } }
  - { id: x-sms, when: { field: consent.sms, exists: false } }
  - { id: x-not-retail, when: { not: { field: customer_type, ne: retail } } }
  - { id: x-product, when: { field: product, not_in: [easy_saver] } }
  - { id: x-subdivision, when: { field: jurisdiction.subdivision, within: [US-NY, "@EU"] } }
  - { id: x-country, when: { field: jurisdiction.country, eq: GB } }
  - { id: x-guessed, when: { field: timezone_guessed, eq: true } }
  - { id: x-stage, when: { field: stage, exists: true } }
  - { id: x-email, when: { field: email, matches: ".*@example\\\\.(com|org)" } }
  - { id: x-kind, when: { any: [ { field: kind, eq: organisation }, { field: channel, in: [phone] } ] } }
"""


def exotic_policy(folder: Path) -> Path:
    """A copy of the example policy with EXOTIC_CONDUCT appended to its conduct section."""
    shutil.copytree(EXAMPLES / "policy", folder)
    conduct = folder / "60-conduct.yaml"
    conduct.write_text(conduct.read_text(encoding="utf-8") + EXOTIC_CONDUCT, encoding="utf-8")
    return folder


# --- the leads --------------------------------------------------------------------------------

def list_names(policy: Policy) -> list[str]:
    """Every spelling on the example screening lists, plus near variants of each."""
    screener: Any = load_screener(policy)
    out: list[str] = []
    for loaded in screener.lists:
        for entry in loaded.entries:
            for spelling in (entry.name, *entry.aliases):
                words = spelling.replace(",", " ").split()
                if not words:
                    continue
                out += [" ".join(words), " ".join(reversed(words)), spelling.upper(),
                        " ".join(words[:2]), words[0] + " " + words[-1], spelling[:-1],
                        spelling + " Jones", words[0] + " Smith"]
    return out


def _expand(items: list[str], groups: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for item in items:
        out += _expand(list(groups[item[1:]]), groups) if item.startswith("@") else [item]
    return out


def _attributes(rng: random.Random) -> dict[str, Any]:
    choices: dict[str, list[Any]] = {
        "score": [7, 3, "seven", 2.5, [1, 2], None],
        "tags": ["vip", 2, True, ["vip"], "basic"],
        "introducer_code": ["PB-AB1234", "XX-1", 42],
        "since": [date(2026, 1, 1), "2026-01-01", datetime(2026, 1, 1, tzinfo=UTC)],
        "blob": [{"b": 1, 2: "int key"}, ("a", Decimal("1.50")), {"z", "a"}, {"when": date(2025, 5, 1)}],
    }
    return {key: rng.choice(values) for key, values in choices.items() if rng.random() < 0.35}


def policy_shaped(policy: Policy, n: int, names: list[str], seed: int = 11
                  ) -> list[dict[str, Any]]:
    """Leads aimed at the example policy's licences (and some not), with generated people."""
    rng = random.Random(seed)
    people = Generator(seed, "equivalence")
    groups = {**BUILTIN_GROUPS, **policy.raw.get("jurisdiction_groups", {})}
    licences = [lic for team in policy.raw["teams"].values() for lic in team["licenses"]]
    products = sorted(policy.products)
    others = ["GB", "US", "US-TX", "US-NY", "CH", "JP", "SA", "CA-ON", "AU-NSW", "FR", "DE", "LU"]
    leads = []
    for i in range(n):
        person = people.person(i)
        raw: dict[str, Any] = {"source": rng.choice(["salesforce", "hubspot"]), "id": f"P{i}",
                               "first_name": person.first, "last_name": person.last,
                               "company": person.company, "email": person.email,
                               "phone": person.phone}
        if rng.random() < 0.05:
            raw["first_name"], raw["last_name"] = None, rng.choice(names)
        if rng.random() < 0.75:
            lic = rng.choice(licences)
            raw["jurisdiction"] = rng.choice(_expand(lic["jurisdictions"], groups))
            raw["product"] = rng.choice(lic["products"])
            raw["customer_type"] = rng.choice(lic["customer_types"])
        else:
            raw["jurisdiction"] = rng.choice(others)
            raw["product"] = rng.choice(products + ["no_such_product"])
            raw["customer_type"] = rng.choice(CUSTOMER_TYPES)
        if raw["jurisdiction"] == "US" and rng.random() < 0.5:
            raw["postcode"] = rng.choice(["10001", "94105", "60601", "33101"])
        if rng.random() < 0.6:
            raw["assessments"] = {"appropriateness": rng.choice(["passed", "Passed", "failed"])}
        if rng.random() < 0.5:
            raw["investable_assets"] = {
                "amount": rng.choice([str(rng.randrange(0, 8_000_000)), "2500.5", "0", 1500000]),
                "currency": rng.choice(["GBP", "EUR", "USD", "AED", "gbp"])}
        raw["consent"] = {"phone": rng.random() < 0.5, "email": rng.random() < 0.8}
        if rng.random() < 0.2:
            raw["consent"]["sms"] = rng.choice([True, False, "yes"])
        raw["channel"] = rng.choice(["web", "phone", "referral", "branch"])
        attributes = _attributes(rng)
        if attributes:
            raw["attributes"] = attributes
        if rng.random() < 0.3:
            raw["first_contact_at"] = rng.choice(["2026-11-20T10:00:00Z", "2026-11-24T08:30:00Z",
                                                  "2026-11-01T12:00:00+01:00"])
        if rng.random() < 0.1:
            raw["stage"] = rng.choice(["proposal", "closed_won", "new"])
        if rng.random() < 0.05:
            raw["kind"] = "organisation"
        leads.append(raw)
    return leads


def sync_shaped(n: int, seed: int = 5) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """(record id, parse_lead's raw dict, mapping problems) as the Salesforce sync maps the
    sandbox CRM's generated leads (country names, states, float amounts, malformed records)."""
    store = Store(seed=seed, leads=n, contacts=0, reps=from_policy(EXAMPLES / "policy"))
    mapping = default_mapping("salesforce")
    fields = ["Id", *crm_fields(mapping)]
    for i in range(n):
        record = store.leads.record(i, fields)
        raw, problems = map_record(record, mapping, source="salesforce")
        yield str(record["Id"]), raw, problems


MALFORMED: list[tuple[str, list[Any]]] = [
    ("jurisdiction", ["Atlantis", "", None, 12, {"country": "CA", "subdivision": "Ontario"},
                      {"country": "US"}, "US-XX", "us-ny", " GB ", "United States", "UK"]),
    ("country", ["FR", "Germany", "N/A", "", "gbr"]),
    ("state", ["NJ", "Nwe York", "US-CA", "New York"]),
    ("subdivision", ["NY", "XX"]),
    ("postcode", ["94105", "94105-1420", "abc", 10001]),
    ("timezone", ["Europe/Paris", "Mars/Base", "", "  ", "../etc"]),
    ("kind", ["Company", "organization", "robot", "individual", None, 5]),
    ("email", ["nope", "a@b", " x@y.org ", "", "x@@y.com", 7]),
    ("phone", ["+44 20 7946 0000", "", 447700900999]),
    ("consent", [{"phone": "perhaps"}, {"phone": "Yes", "email": 0, "sms": ""}, "yes", [],
                 {"phone": None}, {"phone": 2}, {7: True}]),
    ("assessments", [{"appropriateness": "PASSED"}, "passed", {"appropriateness": None},
                     {"x": 5}]),
    ("attributes", [{"score": 7}, "x", [], {1: "int key"}, {"blob": {2: "a", "b": [1]}}]),
    ("first_contact_at", ["2026-01-01T10:00:00", "2026-01-01T10:00:00Z", "garbage",
                          datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 2), 12345, "  "]),
    ("customer_type", ["retial", "HNW", "High Net Worth", "professional client",
                       "Eligible-Counterparty", 7, "", None]),
    ("investable_assets", [{"amount": "lots", "currency": "XXY"},
                           {"amount": "1,000.50", "currency": "gbp"},
                           {"amount": -5, "currency": "GBP"}, {"amount": True, "currency": "GBP"},
                           {"amount": "NaN", "currency": "EUR"},
                           {"amount": "Infinity", "currency": "EUR"},
                           {"amount": 0.1, "currency": "EUR"}, {"amount": None, "currency": ""},
                           {"currency": "USD"}, {"amount": 5, "currency": "USD", "extra": 1},
                           "1000", [], {"amount": " 12 ", "currency": " usd "},
                           {"amount": Decimal("7.10"), "currency": "CHF"}]),
    ("id", [None, "", 42, "  X  "]),
    ("product", ["", "  ", "unknown_thing", 5]),
    ("prodcut", ["x"]),
    ("nickname", ["y"]),
    ("source", [None, "", "crm"]),
    ("stage", ["proposal", 3, " "]),
    ("owner", ["005X", ""]),
    ("modstamp", [12, "2026-01-01"]),
    ("channel", ["web", None, ""]),
    ("first_name", ["  ", 5, None, "Zoë"]),
    ("last_name", ["O'Brien", "", None]),
    ("company", ["[not provided]", "", 3]),
]


def malformed(n: int, seed: int = 3) -> list[Any]:
    """Records with one to three fields replaced by something odd (and a few that are not
    records at all)."""
    rng = random.Random(seed)
    base = {"source": "salesforce", "id": "M0", "first_name": "Ann", "last_name": "Lee",
            "jurisdiction": "GB", "customer_type": "retail", "product": "easy_saver"}
    out: list[Any] = [["not", "a", "mapping"], "text", None, MappingProxyType(dict(base)), {}]
    for i in range(n):
        raw: dict[str, Any] = {**base, "id": f"M{i}"}
        for _ in range(rng.randint(1, 3)):
            key, values = rng.choice(MALFORMED)
            raw[key] = rng.choice(values)
        out.append(raw)
    return out


# --- what is compared ---------------------------------------------------------------------

def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stable_repr(value: Any) -> str:
    """repr, with models field by field and sets sorted (a set's order varies between runs)."""
    if isinstance(value, BaseModel):
        fields = ", ".join(f"{k}={stable_repr(v)}" for k, v in value.__dict__.items())
        return f"{type(value).__name__}({fields})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({sorted(stable_repr(v) for v in value)})"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({[stable_repr(v) for v in value]})"
    return repr(value)


def parse_outcome(raw: Any, source: str | None = None) -> tuple[Lead | None, str]:
    """The Lead (or None) and a text saying exactly what parse_lead made of `raw`."""
    try:
        lead = parse_lead(raw, source=source)
    except InvalidLead as exc:
        return None, "invalid " + json.dumps(exc.problems)
    except Exception as exc:  # noqa: BLE001 - recorded as it was (pydantic errors, say)
        return None, f"error {type(exc).__name__}"
    return lead, "ok " + stable_repr(lead)


def pure_json(value: Any) -> bool:
    """Only dict (str keys), list, str, int, float, bool and None, all the way down."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and pure_json(v) for k, v in value.items())
    if kind is list:
        return all(pure_json(v) for v in value)
    return kind in (str, int, float, bool, type(None))


def outputs(policy_folder: Path) -> dict[str, Any]:
    """Every text this harness compares, in a fixed order."""
    policy = load_policy(policy_folder)
    screener = load_screener(policy)
    rotation = InMemoryRotationState()
    parsed: list[str] = []
    decided: list[str] = []
    impure: list[int] = []  # decisions whose to_json() holds anything but JSON types

    def route(source: str, record_id: str, raw: Any, problems: list[str], k: int,
              parse_source: str | None) -> None:
        decision_id = f"D{len(decided):05d}"
        at = BEFORE_EFFECTIVE if k % 50 == 49 else AT
        if problems:
            decision = refuse_invalid(source, record_id, problems, policy, at=at,
                                      decision_id=decision_id)
        else:
            lead, text = parse_outcome(raw, parse_source)
            parsed.append(text)
            if lead is None:
                found = text.startswith("invalid ") and json.loads(text[len("invalid "):])
                decision = refuse_invalid(source, record_id, list(found or ["unparsed"]),
                                          policy, at=at, decision_id=decision_id)
            else:
                decision = decide(lead, policy, at=at, rotation=rotation,
                                  screener=None if k % 40 == 39 else screener,
                                  decision_id=decision_id)
        payload = decision.to_json()
        if not pure_json(payload):
            impure.append(len(decided))
        decided.append(json.dumps(payload, sort_keys=False))

    examples = (EXAMPLES / "leads" / "sample-leads.jsonl").read_text(encoding="utf-8")
    for k, line in enumerate(examples.splitlines()):
        raw = json.loads(line)
        route(raw.get("source", "file"), str(raw["id"]), raw, [], k, None)
    for k, raw in enumerate(policy_shaped(policy, N_POLICY_SHAPED, list_names(policy))):
        route(raw["source"], raw["id"], raw, [], k, None)
    for k, (record_id, raw, problems) in enumerate(sync_shaped(N_SYNC_SHAPED)):
        route("salesforce", record_id, {**raw, "id": record_id}, problems, k, "salesforce")
    for raw in malformed(N_MALFORMED):
        parsed.append(parse_outcome(raw)[1])
        parsed.append(parse_outcome(raw, "hubspot")[1])
    return {"policy_digest": policy.digest, "decisions": decided, "parsed": parsed,
            "impure": impure}


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return outputs(exotic_policy(tmp_path_factory.mktemp("equivalence") / "policy"))


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _first_difference(name: str, new: list[str], old: list[str]) -> str:
    if len(new) != len(old):
        return f"{name}: {len(new)} outputs now, {len(old)} recorded"
    for i, (text, recorded) in enumerate(zip(new, old, strict=True)):
        if _digest(text) != recorded:
            different = sum(_digest(t) != r for t, r in zip(new, old, strict=True))
            return (f"{name}: {different} of {len(old)} differ from the recording; the first "
                    f"is #{i}, now:\n{text[:3000]}")
    return ""


def test_inputs_are_the_recorded_ones(current: dict[str, Any], golden: dict[str, Any]) -> None:
    # A changed example policy or list changes decisions legitimately: re-record (see top).
    assert current["policy_digest"] == golden["policy_digest"], (
        "the example policy changed since the golden outputs were recorded")


def test_decision_json_bytes_are_unchanged(current: dict[str, Any],
                                           golden: dict[str, Any]) -> None:
    assert not _first_difference("decisions", current["decisions"], golden["decisions"])


def test_decision_json_holds_json_types_only(current: dict[str, Any]) -> None:
    # Equal bytes are not enough: a tuple or a str subclass would dump the same but is not
    # the same Python value that callers of to_json() get.
    assert current["impure"] == []


def test_parse_lead_is_unchanged(current: dict[str, Any], golden: dict[str, Any]) -> None:
    assert not _first_difference("parse_lead", current["parsed"], golden["parsed"])


def test_the_inputs_reach_every_outcome_and_leaf_kind(current: dict[str, Any]) -> None:
    """The harness is only as good as what it reaches: every outcome, hits on every kind of
    list, and leaves with each kind of recorded value."""
    decisions = [json.loads(text) for text in current["decisions"]]
    reasons = {d["reason"] for d in decisions}
    assert reasons >= {None, "unlicensed_jurisdiction", "sanctions_hit", "pep", "blocklisted",
                       "screening_unavailable", "invalid_lead", "suitability_gate",
                       "no_rule_matched", "no_licensed_team", "no_available_rep",
                       "cooling_off_violation"}, reasons
    leaves = [leaf for d in decisions
              for rule in [*d["gates"], *d["rules_tried"], *d["conduct_rules"],
                           *d["cooling_off_rules"], *([d["rule"]] if d["rule"] else [])]
              for leaf in rule["conditions"]]
    assert any(leaf.get("missing") for leaf in leaves)
    assert any("type mismatch" in leaf.get("note", "") for leaf in leaves)
    assert any(leaf["path"] == "investable_assets" and leaf["actual"] for leaf in leaves)
    assert any(leaf["path"] == "first_contact_at" and leaf["actual"] for leaf in leaves)
    assert any(isinstance(leaf["actual"], dict) for leaf in leaves)
    assert any(d.get("notes") for d in decisions) and any(d.get("problems") for d in decisions)
    assert any(d["cooling_off"] and d["cooling_off"]["not_before"] for d in decisions)
    assert any(s["hit"] and s["matched"]["matched_on"] == "name" and s["best_score"] < 1
               for d in decisions for s in d["screening"])
    outcomes = [text.split(" ", 1)[0] for text in current["parsed"]]
    # Every malformed record is an InvalidLead: "error" (any other exception; it was a pydantic
    # ValidationError for attributes {1: "int key"}) must not be reached.
    assert set(outcomes) == {"ok", "invalid"}


def record(path: Path, dump: Path | None) -> None:
    """Write the golden digests of the code that is imported (run from the old checkout)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = outputs(exotic_policy(Path(tmp) / "policy"))
    golden_doc = {"policy_digest": out["policy_digest"],
                  "decisions": [_digest(t) for t in out["decisions"]],
                  "parsed": [_digest(t) for t in out["parsed"]]}
    path.write_text(json.dumps(golden_doc, indent=0) + "\n", encoding="utf-8")
    if dump is not None:
        dump.write_text("\n".join(out["decisions"] + out["parsed"]) + "\n", encoding="utf-8")
    print(f"{len(out['decisions'])} decisions, {len(out['parsed'])} parse outcomes -> {path}",
          file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="record the golden outputs")
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--dump", type=Path, help="also write every text compared, for diffing")
    args = parser.parse_args()
    record(args.record, args.dump)
