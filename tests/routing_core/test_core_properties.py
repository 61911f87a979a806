"""Property-based tests (hypothesis) of the routing guarantees."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from routing_core.engine import decide
from routing_core.jurisdictions import BUILTIN_GROUPS
from routing_core.lead import CUSTOMER_TYPES, InvalidLead, parse_lead
from routing_core.policy import Policy, PolicyError, load_policy
from routing_core.policy.source import read_file
from routing_core.rotation import Cursor, InMemoryRotationState
from routing_core.screening import NullScreener

HERE = Path(__file__).parent
BASIC = HERE / "policies" / "basic.yaml"
EXAMPLE = HERE.parent.parent / "examples" / "policy"
POLICIES = [BASIC] + ([EXAMPLE] if EXAMPLE.exists() else [])
LOADED = {str(p): load_policy(p) for p in POLICIES}

JURISDICTIONS = ["GB", "GB-LND", "DE", "FR", "NL", "LU", "BE", "IE", "IT", "AT", "NO", "CH",
                 "AE", "AE-DU", "SA", "US", "US-NY", "US-NJ", "US-CT", "US-PA", "US-FL",
                 "US-TX", "CA-ON", "JP"]


def _products(policy: Policy) -> list[str | None]:
    return [*policy.products, None]


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Policy, list[dict[str, Any]], datetime, dict[str, int]]:
    policy = LOADED[draw(st.sampled_from(sorted(LOADED)))]
    leads = []
    licences = [lic for team in policy.raw["teams"].values() for lic in team["licenses"]]
    for i in range(draw(st.integers(1, 6))):
        raw: dict[str, Any] = {"id": f"P{i}", "jurisdiction": draw(st.sampled_from(JURISDICTIONS))}
        product = draw(st.sampled_from(_products(policy)))
        ctype = draw(st.sampled_from([*CUSTOMER_TYPES, None]))
        if draw(st.integers(0, 9)) < 7:  # mostly leads some licence is meant for
            lic = draw(st.sampled_from(licences))
            codes = sorted(_codes(lic["jurisdictions"], policy.raw))
            raw["jurisdiction"] = draw(st.sampled_from(codes))
            product = draw(st.sampled_from(lic["products"]))
            ctype = draw(st.sampled_from(lic["customer_types"]))
        if product:
            raw["product"] = product
        if ctype:
            raw["customer_type"] = ctype
        if draw(st.integers(0, 9)) < 7:
            raw["assessments"] = {"appropriateness": draw(st.sampled_from(["passed", "failed"]))}
        if draw(st.booleans()):
            raw["investable_assets"] = {"amount": str(draw(st.integers(0, 9_000_000))),
                                        "currency": draw(st.sampled_from(
                                            ["GBP", "EUR", "USD", "AED"]))}
        if draw(st.booleans()):
            raw["consent"] = {"phone": draw(st.booleans()), "email": draw(st.booleans())}
        if draw(st.booleans()):
            raw["channel"] = draw(st.sampled_from(["web", "phone", "branch", "referral"]))
        if draw(st.booleans()):
            raw["stage"] = draw(st.sampled_from(["new", "proposal", "application"]))
        if draw(st.booleans()):
            raw["first_contact_at"] = "2026-11-20T10:00:00Z"
        leads.append(raw)
    at = datetime(2023, 6, 1, tzinfo=UTC) + timedelta(
        hours=draw(st.integers(0, 5 * 365 * 24)))
    reps = sorted({m.id for t in policy.teams.values() for m in t.members})
    counts = {rep: draw(st.integers(0, 50)) for rep in draw(
        st.lists(st.sampled_from(reps), max_size=6, unique=True))}
    return policy, leads, at, counts


def _codes(items: list[str], raw: dict[str, Any]) -> set[str]:
    groups = {**BUILTIN_GROUPS, **raw.get("jurisdiction_groups", {})}
    out: set[str] = set()
    for item in items:
        out |= _codes(list(groups[item[1:]]), raw) if item.startswith("@") else {item}
    return out


def _covers(codes: set[str], code: str) -> bool:
    # independent of the engine: a wider code covers any narrower code it prefixes
    return code in codes or code[:2] in codes or any(
        len(c) > 2 and code.startswith(c) for c in codes) or (
        code == "GB-LND" and "GB-ENG" in codes)


def _licence_ok(lic: dict[str, Any], raw: dict[str, Any], lead: Any, day: date) -> bool:
    return (_covers(_codes(lic["jurisdictions"], raw), lead.jurisdiction.code)
            and lead.product in lic["products"] and lead.customer_type in lic["customer_types"]
            and date.fromisoformat(lic["valid_from"]) <= day
            and (lic["valid_until"] is None or day <= date.fromisoformat(lic["valid_until"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_assignments_always_have_authority_and_refusals_carry_nobody(
        case: tuple[Policy, list[dict[str, Any]], datetime, dict[str, int]]) -> None:
    policy, leads, at, counts = case
    raw = dict(policy.raw)
    state = InMemoryRotationState()
    day = at.astimezone(policy.tz).date()
    for rep, count in counts.items():
        state.set_count(rep, day, count)
    for item in leads:
        try:
            lead = parse_lead(item, source="salesforce")
        except InvalidLead:
            continue
        before = {rep: state.assigned_count(rep, day) for rep in counts}
        decision = decide(lead, policy, at=at, rotation=state, screener=NullScreener())
        out = decision.to_json()
        if out["outcome"] == "refused":
            # (b) a refusal never carries a team or a rep
            assert out["team"] is None and out["rep"] is None
            assert out["queue"] == "compliance_review" and out["reason"]
            continue
        # (a) the team holds a valid licence covering the lead, under a firm authorisation
        team = raw["teams"][out["team"]["id"]]
        licences = [lic for lic in team["licenses"] if _licence_ok(lic, raw, lead, day)]
        authorised = [lic for lic in licences if any(
            a["regulator"] == lic["regulator"]
            and _covers(_codes(a["jurisdictions"], raw), lead.jurisdiction.code)
            for a in raw["firm"]["authorisations"])]
        assert authorised, out["teams_considered"]
        member = next(m for m in team["members"] if m["id"] == out["rep"]["id"])
        assert member["available"]
        if member["max_per_day"] is not None:
            assert before.get(member["id"], 0) < member["max_per_day"] or (
                member["id"] not in before)
        if team["requires_individual_license"]:
            assert any(_licence_ok(lic, raw, lead, day) for lic in member["licenses"])


# --- (c) the digest -------------------------------------------------------------------------

def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _dump_with_comments(data: Any, rng: random.Random) -> str:
    flow = rng.random() < 0.3
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=flow,
                          width=rng.choice([60, 120, 400]))
    if flow:  # one flow mapping: a comment only above it
        return "# comment\n" + text
    lines = text.splitlines()
    out = []
    for line in lines:
        if rng.random() < 0.2:
            out.append("# a comment that does not change the meaning")
        out.append(line + ("  # trailing" if rng.random() < 0.1 and not line.endswith(
            ("|", ">", ":")) and "'" not in line and '"' not in line else ""))
    return "\n".join(out) + "\n"


def _basic_data() -> dict[str, Any]:
    data, _ = read_file(BASIC)
    return data


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32))
def test_digest_ignores_key_order_and_comments(tmp_path_factory: pytest.TempPathFactory,
                                               seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("digest") / "p.yaml"
    path.write_text(_dump_with_comments(_shuffled(_basic_data(), rng), rng))
    assert load_policy(path).digest == LOADED[str(BASIC)].digest


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(days=1)
    if isinstance(value, date):
        return value - timedelta(days=1)
    if value is None:
        return 1
    return str(value) + "x"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.data())
def test_digest_changes_with_any_value(tmp_path_factory: pytest.TempPathFactory,
                                       data: st.DataObject) -> None:
    original = _basic_data()
    leaf = data.draw(st.sampled_from(_leaves(original)))
    target = original
    for key in leaf[:-1]:
        target = target[key]
    target[leaf[-1]] = _mutate(target[leaf[-1]])
    path = tmp_path_factory.mktemp("digest") / "p.yaml"
    path.write_text(yaml.safe_dump(original, sort_keys=False))
    try:
        changed = load_policy(path)
    except PolicyError:
        assume(False)  # the change made the policy invalid: nothing to compare
        return
    assert changed.digest != LOADED[str(BASIC)].digest, leaf


# --- (d) round robin fairness ---------------------------------------------------------------

ROUND_ROBIN = """\
policy: {{ id: rr, version: "1" }}
firm: {{ name: F, authorisations: [{{ entity: E, regulator: FCA, jurisdictions: [GB] }}] }}
products: {{ saver: {{ risk: 1 }} }}
teams:
  t:
    name: T
    licenses: [{{ id: L, regulator: FCA, jurisdictions: [GB], products: [saver],
                 customer_types: [retail], valid_from: 2020-01-01 }}]
    members: [{members}]
rules: [{{ id: r, when: {{ field: product, eq: saver }}, route_to: [t] }}]
"""
_RR_CACHE: dict[int, Policy] = {}


def _rr_policy(n: int, tmp: Path) -> Policy:
    if n not in _RR_CACHE:
        members = ", ".join(f"{{ id: m{i}, name: M{i} }}" for i in range(n))
        path = tmp / f"rr{n}.yaml"
        path.write_text(ROUND_ROBIN.format(members=members))
        _RR_CACHE[n] = load_policy(path)
    return _RR_CACHE[n]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(0, 60), start=st.integers(-1, 8))
def test_round_robin_gives_each_rep_floor_or_ceil(tmp_path_factory: pytest.TempPathFactory,
                                                  n: int, k: int, start: int) -> None:
    policy = _rr_policy(n, tmp_path_factory.mktemp("rr"))
    state = InMemoryRotationState()
    if 0 <= start < n:
        state.cursors["t"] = Cursor(last=f"m{start}")
    lead = parse_lead({"id": "x", "jurisdiction": "GB", "customer_type": "retail",
                       "product": "saver"})
    at = datetime(2026, 11, 24, 10, tzinfo=UTC)
    got: dict[str, int] = {f"m{i}": 0 for i in range(n)}
    for _ in range(k):
        rep = decide(lead, policy, at=at, rotation=state).rep_id
        assert rep is not None
        got[rep] += 1
    assert set(got.values()) <= {k // n, -(-k // n)}
    assert sum(got.values()) == k
