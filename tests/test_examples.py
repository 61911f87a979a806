"""Structural checks of the example policy in examples/policy and the sample leads.

These read the YAML with PyYAML only (no routing core), so they say what the example must
contain: the counts issue 3 asks for, references that resolve, CRM id shapes, and a policy test
for every refusal reason that a lead file can reach. Once the routing core is present, the policy
is also loaded and its tests run with the real engine (see the end of this file).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
POLICY_DIR = EXAMPLES / "policy"
LEADS_DIR = EXAMPLES / "leads"

SECTIONS = {
    "policy", "firm", "jurisdiction_groups", "products", "teams", "screening", "gates", "rules",
    "conduct", "cooling_off", "review", "tests",
}
REQUIRED_SECTIONS = {"policy", "firm", "products", "teams", "rules"}
CUSTOMER_TYPES = {"retail", "high_net_worth", "professional", "eligible_counterparty", "institutional"}
BUILTIN_GROUPS = {"EU", "EEA", "GCC", "US_STATES"}
# Refusal reasons that `tests:` must expect: every reason of policy-spec.md except invalid_lead
# (a lead that does not parse is not a policy test; the sample leads cover it). The screening
# reasons use the test lead's simulated `screening:` result.
TESTED_REASONS = {
    "unlicensed_jurisdiction", "suitability_gate", "no_rule_matched", "no_licensed_team",
    "no_available_rep", "sanctions_hit", "pep", "blocklisted", "screening_unavailable",
    "cooling_off_violation",
}
ALL_REASONS = TESTED_REASONS | {"invalid_lead"}
SF_USER_ID = re.compile(r"005[A-Za-z0-9]{15}")
HUBSPOT_OWNER_ID = re.compile(r"7[0-9]{4}")
REP_ID = re.compile(r"[a-z][a-z0-9_-]{1,15}")
AT = "2026-11-25T10:00:00Z"


def sf_checksum(id15: str) -> str:
    """The 3-character suffix that makes a 15-character Salesforce id case-insensitive."""
    out = ""
    for i in range(3):
        chunk = id15[i * 5:(i + 1) * 5]
        flags = sum(1 << j for j, c in enumerate(chunk) if "A" <= c <= "Z")
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[flags]
    return out


def merge_policy_dir(path: Path) -> dict[str, Any]:
    """Merge the folder's YAML files in name order: a section split over files must be a mapping
    with disjoint keys (teams across 20..23-teams-*.yaml); any other repetition is an error."""
    merged: dict[str, Any] = {}
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    assert files, f"no YAML files in {path}"
    for f in files:
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert isinstance(doc, dict), f"{f.name}: top level must be a mapping"
        for key, value in doc.items():
            assert key in SECTIONS, f"{f.name}: unknown top-level section {key!r}"
            if key in merged:
                assert isinstance(merged[key], dict) and isinstance(value, dict), (
                    f"{f.name}: section {key!r} repeated and is not a mapping")
                dup = set(merged[key]) & set(value)
                assert not dup, f"{f.name}: {key} ids defined twice: {sorted(dup)}"
                merged[key].update(value)
            else:
                merged[key] = value
    return merged


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return merge_policy_dir(POLICY_DIR)


def all_reps(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(tid, m) for tid, t in policy["teams"].items() for m in t["members"]]


def all_licences(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for tid, t in policy["teams"].items():
        out += [(f"teams.{tid}", lic) for lic in t.get("licenses", [])]
        for m in t["members"]:
            out += [(f"teams.{tid}.{m['id']}", lic) for lic in m.get("licenses", [])]
    return out


def conditions(cond: Any) -> list[dict[str, Any]]:
    """Every leaf of a condition tree."""
    if not isinstance(cond, dict):
        raise AssertionError(f"condition must be a mapping, got {cond!r}")
    if "all" in cond:
        return [leaf for c in cond["all"] for leaf in conditions(c)]
    if "any" in cond:
        return [leaf for c in cond["any"] for leaf in conditions(c)]
    if "not" in cond:
        return conditions(cond["not"])
    assert "field" in cond, f"leaf without field: {cond!r}"
    ops = set(cond) - {"field"}
    assert len(ops) == 1, f"leaf must have exactly one operator: {cond!r}"
    assert ops <= {"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "within",
                   "matches"}, cond
    return [cond]


def policy_conditions(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for r in policy["rules"]:
        out += [(f"rules.{r['id']}", c) for c in conditions(r["when"])]
    for g in policy.get("gates", []):
        out += [(f"gates.{g['id']}", c) for c in conditions(g["applies_to"])]
        out += [(f"gates.{g['id']}", c) for c in conditions(g["require"])]
    for k in ("conduct", "cooling_off"):
        for r in policy.get(k, []):
            out += [(f"{k}.{r['id']}", c) for c in conditions(r["when"])]
    return out


# ----------------------------------------------------------------------------- the counts


def test_required_sections_present(policy: dict[str, Any]) -> None:
    assert REQUIRED_SECTIONS <= set(policy)
    assert {"screening", "gates", "conduct", "cooling_off", "review", "tests"} <= set(policy)


def test_counts(policy: dict[str, Any]) -> None:
    assert len(policy["teams"]) >= 12
    assert len(all_reps(policy)) >= 60
    assert len(policy["products"]) >= 8
    assert len(policy["tests"]) >= 25
    assert len(policy["gates"]) >= 3
    assert len(policy["review"]["officers"]) >= 2


def test_firm_has_the_four_entities(policy: dict[str, Any]) -> None:
    regulators = {a["regulator"] for a in policy["firm"]["authorisations"]}
    assert {"FCA", "CSSF", "DFSA", "NYDFS"} <= regulators


# --------------------------------------------------------------------- references resolve


def test_rule_teams_exist(policy: dict[str, Any]) -> None:
    ids = [r["id"] for r in policy["rules"]]
    assert len(ids) == len(set(ids)), "duplicate rule id"
    for r in policy["rules"]:
        assert r["route_to"], f"rule {r['id']} routes nowhere"
        for team in r["route_to"]:
            assert team in policy["teams"], f"rule {r['id']} routes to unknown team {team}"
        assert r.get("team_choice", "priority") in {"priority", "round_robin"}


def test_every_team_is_reachable(policy: dict[str, Any]) -> None:
    routed = {t for r in policy["rules"] for t in r["route_to"]}
    assert set(policy["teams"]) == routed


def test_licence_products_customer_types_and_jurisdictions(policy: dict[str, Any]) -> None:
    groups = set(policy.get("jurisdiction_groups", {})) | BUILTIN_GROUPS
    regulators = {a["regulator"] for a in policy["firm"]["authorisations"]}
    for where, lic in all_licences(policy):
        assert set(lic) <= {"id", "regulator", "jurisdictions", "products", "customer_types",
                            "valid_from", "valid_until"}, (where, lic)
        for p in lic["products"]:
            assert p in policy["products"], f"{where}: licence {lic['id']} unknown product {p}"
        assert set(lic["customer_types"]) <= CUSTOMER_TYPES, (where, lic["customer_types"])
        assert lic["regulator"] in regulators, f"{where}: no firm authorisation by {lic['regulator']}"
        for j in lic["jurisdictions"]:
            if j.startswith("@"):
                assert j[1:] in groups, f"{where}: unknown group {j}"
            else:
                assert re.fullmatch(r"[A-Z]{2}(-[A-Z0-9]{1,3})?", j), (where, j)
        if lic.get("valid_until") is not None:
            assert lic["valid_until"] >= lic["valid_from"], where


def test_condition_values_reference_known_things(policy: dict[str, Any]) -> None:
    groups = set(policy.get("jurisdiction_groups", {})) | BUILTIN_GROUPS
    for where, leaf in policy_conditions(policy):
        path = leaf["field"]
        value = next(v for k, v in leaf.items() if k != "field")
        if path == "product" and not isinstance(value, bool):
            for p in value if isinstance(value, list) else [value]:
                assert p in policy["products"], f"{where}: unknown product {p}"
        if path == "customer_type":
            for c in value if isinstance(value, list) else [value]:
                assert c in CUSTOMER_TYPES, f"{where}: unknown customer type {c}"
        if "within" in leaf:
            for j in leaf["within"]:
                assert not j.startswith("@") or j[1:] in groups, f"{where}: unknown group {j}"
        if "matches" in leaf:
            re.compile(leaf["matches"])


def test_ids_unique_across_the_policy(policy: dict[str, Any]) -> None:
    reps = [m["id"] for _, m in all_reps(policy)]
    assert len(reps) == len(set(reps)), "a rep id appears twice"
    licences = [lic["id"] for _, lic in all_licences(policy)]
    assert len(licences) == len(set(licences)), "a licence id appears twice"
    for k in ("gates", "conduct", "cooling_off"):
        ids = [x["id"] for x in policy[k]]
        assert len(ids) == len(set(ids)), f"duplicate id in {k}"


# --------------------------------------------------------------------------- reps and CRMs


def test_rep_shapes(policy: dict[str, Any]) -> None:
    sf_ids, hs_ids = set(), set()
    for tid, m in all_reps(policy):
        assert REP_ID.fullmatch(m["id"]), f"{tid}: rep id {m['id']!r} not short lowercase"
        assert m.get("name"), f"{tid}.{m['id']}: no name"
        sf, hs = m["crm"]["salesforce"], m["crm"]["hubspot"]
        assert isinstance(sf, str) and SF_USER_ID.fullmatch(sf), f"{m['id']}: salesforce {sf!r}"
        assert len(sf) == 18
        assert sf[15:] == sf_checksum(sf[:15]), f"{m['id']}: bad 18-char checksum in {sf}"
        assert isinstance(hs, str) and HUBSPOT_OWNER_ID.fullmatch(hs), f"{m['id']}: hubspot {hs!r}"
        sf_ids.add(sf)
        hs_ids.add(hs)
        assert m.get("weight", 1) >= 1
        assert m.get("max_per_day", 1) >= 1
    assert len(sf_ids) == len(all_reps(policy)) == len(hs_ids), "CRM ids must be unique"


def test_rep_variety(policy: dict[str, Any]) -> None:
    reps = [m for _, m in all_reps(policy)]
    assert any(m.get("available") is False for m in reps)
    assert any("weight" in m for m in reps)
    assert any("max_per_day" in m for m in reps)
    assert any(m.get("licenses") for m in reps)
    assert {t.get("assignment", "round_robin") for t in policy["teams"].values()} == {
        "round_robin", "weighted", "least_loaded"}


def test_individually_licensed_teams(policy: dict[str, Any]) -> None:
    teams = [t for t in policy["teams"].values() if t.get("requires_individual_license")]
    assert teams, "the US producer teams must require individual licences"
    for t in teams:
        assert any(m.get("licenses") for m in t["members"]), t["name"]


def test_licence_validity_windows(policy: dict[str, Any]) -> None:
    """Some licence has expired by 2026-11-25 and some only becomes valid later."""
    import datetime as dt

    day = dt.date(2026, 11, 25)
    lic = [lic for _, lic in all_licences(policy)]
    assert any(x.get("valid_until") and x["valid_until"] < day for x in lic)
    assert any(x["valid_from"] > day for x in lic)


# ----------------------------------------------------------------------------- tests section


def test_policy_tests_cover_every_reachable_outcome(policy: dict[str, Any]) -> None:
    reasons = set()
    teams = set()
    names = [t["name"] for t in policy["tests"]]
    assert len(names) == len(set(names)), "duplicate test name"
    for t in policy["tests"]:
        assert {"name", "lead", "expect"} <= set(t) <= {"name", "lead", "expect", "at"}, t["name"]
        exp = t["expect"]
        assert exp["outcome"] in {"assigned", "refused"}, t["name"]
        if exp["outcome"] == "refused":
            assert exp["reason"] in ALL_REASONS, t["name"]
            assert "team" not in exp, t["name"]
            reasons.add(exp["reason"])
        else:
            assert exp["team"] in policy["teams"], t["name"]
            teams.add(exp["team"])
    missing = TESTED_REASONS - reasons
    assert not missing, f"no policy test expects: {sorted(missing)}"
    regulators_assigned = set()
    for tid in teams:
        regulators_assigned |= {lic["regulator"] for lic in policy["teams"][tid]["licenses"]}
    assert {"FCA", "CSSF", "DFSA", "NYDFS"} <= regulators_assigned, "assign once per entity"


def test_review_section(policy: dict[str, Any]) -> None:
    r = policy["review"]
    assert r["queue"]["salesforce"] and r["queue"]["hubspot"]["owner_id"]
    assert r["four_eyes_for_overrides"] is True
    assert len({o["id"] for o in r["officers"]}) >= 2
    assert r["notify"]


def test_screening_lists_exist(policy: dict[str, Any]) -> None:
    s = policy["screening"]
    paths = [x["path"] for x in s["lists"]] + [s["pep"]["path"], s["blocklist"]["path"]]
    for p in paths:
        f = POLICY_DIR / p
        assert f.is_file(), f"screening list {p} missing (relative to the policy folder)"
        rows = list(csv.reader(f.open(encoding="utf-8")))
        assert len(rows) >= 2, p
    for x in s["lists"]:
        rows = list(csv.reader((POLICY_DIR / x["path"]).open(encoding="utf-8")))
        if x["format"] == "ofac_sdn_csv":
            assert all(len(r) == 12 for r in rows), "OFAC sdn.csv rows have 12 columns, no header"
        elif x["format"] == "opensanctions_simple":
            assert rows[0][:3] == ["id", "schema", "name"]
            assert all(len(r) == len(rows[0]) for r in rows)


def test_conduct_and_cooling_off_shapes(policy: dict[str, Any]) -> None:
    for c in policy["conduct"]:
        assert set(c) <= {"id", "when", "prohibit_channels", "contact_window",
                          "require_disclosures", "reason"}, c["id"]
        assert set(c) & {"prohibit_channels", "contact_window", "require_disclosures"}, c["id"]
        if "contact_window" in c:
            w = c["contact_window"]
            assert re.fullmatch(r"\d\d:\d\d", w["start"]) and re.fullmatch(r"\d\d:\d\d", w["end"])
    assert any(c.get("contact_window") for c in policy["conduct"])
    for c in policy["cooling_off"]:
        assert set(c) <= {"id", "when", "hours", "from", "blocks_stage", "reason"}, c["id"]
        assert c["hours"] > 0 and c["from"] in {"first_contact", "assignment"}
    assert any(c["hours"] == 168 for c in policy["cooling_off"])


# ----------------------------------------------------------------------------- sample leads

EMAIL_DOMAIN = re.compile(r"[^@\s]+@([a-z0-9-]+\.)*example\.(com|org|net)")
# Ofcom's drama range (07700 900000-900999) and the NANP fictional 555-0100..0199 lines.
FICTIONAL_PHONE = re.compile(r"\+44 7700 900\d{3}|\+1 \d{3} 555 01\d{2}")
LEAD_KEYS = {
    "source", "id", "first_name", "last_name", "email", "phone", "company", "kind",
    "jurisdiction", "country", "state", "subdivision", "postcode", "customer_type", "product",
    "investable_assets", "assessments", "consent", "first_contact_at", "channel", "attributes",
    "stage",
}


def jsonl_leads() -> list[dict[str, Any]]:
    lines = (LEADS_DIR / "sample-leads.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def unflatten(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value == "":
            continue
        parsed: Any = {"true": True, "false": False}.get(value, value)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parsed
    return out


def expected_outcomes() -> list[dict[str, Any]]:
    return json.loads((LEADS_DIR / "expected-outcomes.json").read_text(encoding="utf-8"))


def test_sample_leads_shape() -> None:
    leads = jsonl_leads()
    ids = [(x["source"], x["id"]) for x in leads]
    assert len(ids) == len(set(ids)), "duplicate (source, id)"
    for lead in leads:
        assert set(lead) <= LEAD_KEYS, set(lead) - LEAD_KEYS
        assert EMAIL_DOMAIN.fullmatch(lead["email"]), lead["email"]
        if "phone" in lead:
            assert FICTIONAL_PHONE.fullmatch(lead["phone"]), lead["phone"]
        if lead["source"] == "salesforce":
            assert re.fullmatch(r"00Q[A-Za-z0-9]{15}", lead["id"])
            assert lead["id"][15:] == sf_checksum(lead["id"][:15])
        else:
            assert lead["id"].isdigit()


def test_csv_is_the_same_leads_as_jsonl() -> None:
    with (LEADS_DIR / "sample-leads.csv").open(encoding="utf-8", newline="") as fh:
        rows = [unflatten(r) for r in csv.DictReader(fh)]
    assert rows == jsonl_leads()


def test_one_lead_is_the_first_sample() -> None:
    one = json.loads((LEADS_DIR / "one-lead.json").read_text(encoding="utf-8"))
    assert one == jsonl_leads()[0]


def test_expected_outcomes_cover_every_outcome(policy: dict[str, Any]) -> None:
    exp = expected_outcomes()
    leads = jsonl_leads()
    assert [(e["source"], e["id"]) for e in exp] == [(x["source"], x["id"]) for x in leads]
    reasons = {e["reason"] for e in exp if e["outcome"] == "refused"}
    assert ALL_REASONS - {"screening_unavailable"} <= reasons
    for e in exp:
        assert (e["outcome"] == "assigned") == (e["team"] is not None)
        if e["team"]:
            assert e["team"] in policy["teams"]
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for e in exp:
        assert e["id"] in readme, f"README table lacks lead {e['id']}"


# ------------------------------------- a reading of the spec, to check the tests' expectations
# A deliberately small, independent interpreter of policy-spec.md (conditions, pre-screen,
# gates, first-match rules, licence filter, rep availability) used ONLY to check that every
# `expect:` in 90-tests.yaml is what the spec says. The real engine is routing_core's; when it
# is importable, test_policy_tests_pass_with_the_routing_core below runs the same tests on it.

EU = set("AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
GROUPS_BUILTIN = {"EU": EU, "EEA": EU | {"IS", "LI", "NO"}, "GCC": set("AE BH KW OM QA SA".split())}


def _expand(policy: dict[str, Any], items: list[str]) -> set[str]:
    out: set[str] = set()
    for j in items:
        if j.startswith("@"):
            g = j[1:]
            if g == "US_STATES":
                out.add("US")
            else:
                out |= _expand(policy, list(policy.get("jurisdiction_groups", {}).get(g, [])))
                out |= GROUPS_BUILTIN.get(g, set())
        else:
            out.add(j)
    return out


def _within(policy: dict[str, Any], jur: str, items: list[str]) -> bool:
    allowed = _expand(policy, items)
    return jur in allowed or jur.split("-")[0] in allowed


def _get(policy: dict[str, Any], lead: dict[str, Any], path: str) -> Any:
    if path.startswith("product."):
        prod = policy["products"].get(lead.get("product"))
        return (prod or {}).get(path.split(".", 1)[1], KeyError)
    node: Any = lead
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def _holds(policy: dict[str, Any], lead: dict[str, Any], cond: dict[str, Any]) -> bool:
    if "all" in cond:
        return all(_holds(policy, lead, c) for c in cond["all"])
    if "any" in cond:
        return any(_holds(policy, lead, c) for c in cond["any"])
    if "not" in cond:
        return not _holds(policy, lead, cond["not"])
    (op, want), = ((k, v) for k, v in cond.items() if k != "field")
    got = _get(policy, lead, cond["field"])
    if op == "exists":
        return (got is not KeyError) == want
    if got is KeyError:
        return False
    if op in ("gt", "gte", "lt", "lte"):
        from decimal import Decimal

        a, b = Decimal(str(got)), Decimal(str(want))
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    return {
        "eq": lambda: got == want, "ne": lambda: got != want, "in": lambda: got in want,
        "not_in": lambda: got not in want,
        "within": lambda: _within(policy, got, want),
        "matches": lambda: re.fullmatch(want, str(got)) is not None,
    }[op]()


def _covers(policy: dict[str, Any], lic: dict[str, Any], lead: dict[str, Any], day: Any) -> bool:
    if lic["valid_from"] > day or (lic.get("valid_until") and lic["valid_until"] < day):
        return False
    if not _within(policy, lead["jurisdiction"], lic["jurisdictions"]):
        return False
    if lead["product"] not in lic["products"] or lead["customer_type"] not in lic["customer_types"]:
        return False
    return any(a["regulator"] == lic["regulator"]
               and _within(policy, lead["jurisdiction"], a["jurisdictions"])
               for a in policy["firm"]["authorisations"])


def _cooling_off_violated(policy: dict[str, Any], lead: dict[str, Any], at: Any) -> bool:
    import datetime as dt

    matching = [c for c in policy.get("cooling_off", []) if _holds(policy, lead, c["when"])]
    if not matching:
        return False
    best = max(matching, key=lambda c: c["hours"])
    if lead.get("stage") != best.get("blocks_stage"):
        return False
    anchor = at
    if best.get("from", "first_contact") == "first_contact":
        if "first_contact_at" not in lead:
            return True  # the window's end is unknown: the stage is entered too early
        anchor = dt.datetime.fromisoformat(lead["first_contact_at"].replace("Z", "+00:00"))
    return bool(at < anchor + dt.timedelta(hours=best["hours"]))


def reference_decide(policy: dict[str, Any], raw: dict[str, Any], at: Any) -> tuple[str, str | None]:
    day = at.date()
    lead = dict(raw)
    screening = lead.pop("screening", None)
    if "jurisdiction" not in lead:
        lead["jurisdiction"] = lead["country"] + (f"-{lead['state']}" if lead.get("state") else "")
    if not any(_within(policy, lead["jurisdiction"], a["jurisdictions"])
               for a in policy["firm"]["authorisations"]):
        return "refused", "unlicensed_jurisdiction"
    if screening == "unavailable":
        return "refused", "screening_unavailable"
    for check, reason in (("sanctions", "sanctions_hit"), ("pep", "pep"), ("blocklist", "blocklisted")):
        if (screening or {}).get(check):
            return "refused", reason
    for g in policy.get("gates", []):
        if _holds(policy, lead, g["applies_to"]) and not _holds(policy, lead, g["require"]):
            return "refused", "suitability_gate"
    for r in policy["rules"]:
        if not _holds(policy, lead, r["when"]):
            continue
        licensed = [t for t in r["route_to"]
                    if any(_covers(policy, x, lead, day) for x in policy["teams"][t]["licenses"])]
        if not licensed:
            return "refused", "no_licensed_team"
        for t in licensed:
            team = policy["teams"][t]
            for m in team["members"]:
                if m.get("available") is False:
                    continue
                if team.get("requires_individual_license") and not any(
                        _covers(policy, x, lead, day) for x in m.get("licenses", [])):
                    continue
                if _cooling_off_violated(policy, lead, at):
                    return "refused", "cooling_off_violation"
                return "assigned", t
        return "refused", "no_available_rep"
    return "refused", "no_rule_matched"


def test_policy_test_expectations_follow_the_spec(policy: dict[str, Any]) -> None:
    import datetime as dt

    wrong = []
    for t in policy["tests"]:
        for at in ([t["at"]] if "at" in t else [dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC),
                                               dt.datetime(2031, 1, 1, 10, tzinfo=dt.UTC)]):
            got = reference_decide(policy, t["lead"], at)
            exp = t["expect"]
            want = (exp["outcome"], exp.get("team") if exp["outcome"] == "assigned" else exp["reason"])
            if got != want:
                wrong.append(f"{t['name']} at {at}: expected {want}, the spec gives {got}")
    assert not wrong, "\n".join(wrong)


def test_sample_lead_expectations_follow_the_spec(policy: dict[str, Any]) -> None:
    import datetime as dt

    wrong = []
    for e, lead in zip(expected_outcomes(), jsonl_leads(), strict=True):
        if e["reason"] in {"invalid_lead", "sanctions_hit", "pep", "blocklisted"}:
            continue
        if "jurisdiction" not in lead and len(lead.get("country", "")) != 2:
            continue  # an alias ("United States"); the reference reader does not resolve them
        if lead.get("country") == "UK":
            lead = {**lead, "country": "GB"}
        got = reference_decide(policy, lead, dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC))
        want = (e["outcome"], e["team"] if e["outcome"] == "assigned" else e["reason"])
        if got != want:
            wrong.append(f"line {e['line']}: expected {want}, the spec gives {got}")
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------ with the real routing core

AT_DT = "2026-11-25T10:00:00+00:00"


def _at() -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(AT_DT)


def test_policy_loads_with_the_routing_core() -> None:
    from routing_core.policy import load_policy

    p = load_policy(POLICY_DIR)
    assert p.id == "northwind-routing" and p.version == "2026.11.2"
    assert p.digest.startswith("sha256:")
    assert len(p.teams) >= 12
    assert p.review is not None


@pytest.mark.parametrize("when", ["2026-11-25T10:00:00+00:00", "2031-06-01T10:00:00+00:00"])
def test_policy_tests_pass_with_the_routing_core(when: str) -> None:
    """Every test in 90-tests.yaml passes with the real engine, today and in five years (the
    date-dependent tests pin their own `at`)."""
    import datetime as dt

    from routing_core.policy import load_policy
    from routing_core.policy_tests import run_tests

    results = run_tests(load_policy(POLICY_DIR), dt.datetime.fromisoformat(when))
    failed = [f"{r.name}: {r.diffs}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    assert len(results) >= 25


def test_leadgate_policy_test_command(leadgate: Any) -> None:
    done = leadgate("policy", "test", str(POLICY_DIR), cwd=str(ROOT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout


def _route_file(leadgate: Any, name: str) -> list[dict[str, Any]]:
    done = leadgate("route", "--policy", str(POLICY_DIR), "--lead", str(LEADS_DIR / name),
                    "--at", AT_DT, "--json", "--no-screening", cwd=str(ROOT))
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["sample-leads.jsonl", "sample-leads.csv"])
def test_sample_leads_route_as_documented(leadgate: Any, name: str) -> None:
    """`leadgate route` gives each sample lead the outcome of examples/README.md's table
    (screening hits are routed as if their names were clean: this run checks no lists)."""
    decisions = _route_file(leadgate, name)
    expected = expected_outcomes()
    assert len(decisions) == len(expected)
    crm_ids = {(m["crm"]["salesforce"], m["crm"]["hubspot"]): m["id"]
               for _, m in all_reps(merge_policy_dir(POLICY_DIR))}
    wrong = []
    for e, d in zip(expected, decisions, strict=True):
        want = (e["outcome"], e["team"], e["reason"])
        if "team_if_not_screened" in e:
            want = ("assigned", e["team_if_not_screened"], None)
        team = (d.get("team") or {}).get("id")
        got = (d["outcome"], team, d["reason"])
        if got != want:
            wrong.append(f"line {e['line']} ({e['id']}): documented {want}, routed {got}")
        if d["outcome"] == "assigned":
            rep = d["rep"]
            sf_hs = [k for k in crm_ids if rep["crm_id"] in k]
            assert sf_hs and crm_ids[sf_hs[0]] == rep["id"], (e["line"], rep)
        else:
            assert d.get("team") is None and d.get("rep") is None
    assert not wrong, "\n".join(wrong)


def test_readme_counts_match_the_policy(policy: dict[str, Any]) -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    m = re.search(r"(\d+) teams, (\d+) reps, (\d+) products, (\d+) gates, (\d+) rules, "
                  r"(\d+) conduct rules, (\d+) cooling-off windows,\s+(\d+) policy tests", readme)
    assert m, "README lost its counts line"
    actual = (len(policy["teams"]), len(all_reps(policy)), len(policy["products"]),
              len(policy["gates"]), len(policy["rules"]), len(policy["conduct"]),
              len(policy["cooling_off"]), len(policy["tests"]))
    assert tuple(int(x) for x in m.groups()) == actual
    assert f"runs the {len(policy['tests'])} tests" in readme


# ------------------------------------------------- the checks above can fail (mutations)


def _mutations() -> list[tuple[str, Any, Any]]:
    def drop_team(p: dict[str, Any]) -> None:
        del p["teams"]["uk_wealth"]

    def unknown_product_in_rule(p: dict[str, Any]) -> None:
        p["rules"][0]["when"]["all"][1]["eq"] = "crypto_wallet"

    def short_sf_id(p: dict[str, Any]) -> None:
        m = p["teams"]["uk_retail"]["members"][0]
        m["crm"]["salesforce"] = m["crm"]["salesforce"][:17]

    def bad_checksum(p: dict[str, Any]) -> None:
        m = p["teams"]["uk_retail"]["members"][0]
        m["crm"]["salesforce"] = m["crm"]["salesforce"][:15] + "ZZZ"

    def hubspot_as_int(p: dict[str, Any]) -> None:
        p["teams"]["uk_retail"]["members"][0]["crm"]["hubspot"] = 71001

    def no_refusal_test(p: dict[str, Any]) -> None:
        p["tests"] = [t for t in p["tests"] if t["expect"].get("reason") != "no_available_rep"]

    def few_tests(p: dict[str, Any]) -> None:
        p["tests"] = p["tests"][:24]

    def licence_unknown_product(p: dict[str, Any]) -> None:
        p["teams"]["uk_retail"]["licenses"][0]["products"].append("crypto_wallet")

    def wrong_expectation(p: dict[str, Any]) -> None:
        p["tests"][0]["expect"]["team"] = "uk_wealth"

    def expired_licence(p: dict[str, Any]) -> None:
        p["teams"]["uk_retail"]["licenses"][0]["valid_until"] = __import__("datetime").date(2026, 1, 1)

    return [
        ("an expectation the spec contradicts", wrong_expectation, test_policy_test_expectations_follow_the_spec),
        ("UK Retail's licence expires", expired_licence, test_policy_test_expectations_follow_the_spec),
        ("team referenced by a rule is missing", drop_team, test_rule_teams_exist),
        ("rule names an unknown product", unknown_product_in_rule, test_condition_values_reference_known_things),
        ("17-character Salesforce id", short_sf_id, test_rep_shapes),
        ("wrong Salesforce checksum", bad_checksum, test_rep_shapes),
        ("HubSpot id not a string", hubspot_as_int, test_rep_shapes),
        ("a refusal reason without a test", no_refusal_test, test_policy_tests_cover_every_reachable_outcome),
        ("fewer than 25 tests", few_tests, test_counts),
        ("licence names an unknown product", licence_unknown_product, test_licence_products_customer_types_and_jurisdictions),
    ]


@pytest.mark.parametrize("name,mutate,check", _mutations(), ids=[m[0] for m in _mutations()])
def test_structural_checks_catch_mutations(policy: dict[str, Any], name: str, mutate: Any,
                                           check: Any) -> None:
    import copy

    broken = copy.deepcopy(policy)
    check(broken)  # the real policy passes ...
    mutate(broken)
    with pytest.raises(AssertionError):
        check(broken)  # ... and the mutated one does not


def test_sample_leads_with_the_real_list_screener() -> None:
    """With the lists of examples/policy/lists read by the list screener, every sample lead,
    the screening hits included, gets exactly the outcome of the README table."""
    screening_lists = pytest.importorskip("sync.screening_lists")
    from routing_core.engine import decide, refuse_invalid
    from routing_core.lead import InvalidLead, parse_lead
    from routing_core.policy import load_policy
    from routing_core.rotation import InMemoryRotationState

    loaded = load_policy(POLICY_DIR)
    screener = screening_lists.load_screener(loaded)
    rotation = InMemoryRotationState()
    wrong = []
    for e, raw in zip(expected_outcomes(), jsonl_leads(), strict=True):
        try:
            d = decide(parse_lead(raw), loaded, at=_at(), rotation=rotation, screener=screener)
        except InvalidLead as exc:
            d = refuse_invalid(raw["source"], raw["id"], exc.problems, loaded, at=_at())
        got = (d.outcome, d.team_id, d.reason)
        want = (e["outcome"], e["team"], e["reason"])
        if got != want:
            wrong.append(f"line {e['line']} ({e['id']}): documented {want}, decided {got}")
    assert not wrong, "\n".join(wrong)
