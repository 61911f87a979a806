"""Routing throughput: leadgate's full decision vs `rule-engine`'s bare first-match.

Routes N generated leads (default 100,000) through the example policy and prints decisions/s,
the median of R runs (default 5). In the same run, the same rules' `when` conditions are
translated into `rule-engine` expressions and evaluated first-match only (no screening, gates,
licences, rotation, conduct or trace) over the same leads. Both sides get the leads already
normalised (leadgate: `Lead` objects; rule-engine: flat dicts), so the figures compare decision
work only; normalisation (`parse_lead`) is measured on its own line.

    python benchmarks/routing.py [--leads 100000] [--runs 5] [--policy examples/policy]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rule_engine  # noqa: E402

from routing_core.engine import decide  # noqa: E402
from routing_core.jurisdictions import BUILTIN_GROUPS  # noqa: E402
from routing_core.lead import CUSTOMER_TYPES, InvalidLead, Lead, parse_lead  # noqa: E402
from routing_core.policy import Policy, load_policy  # noqa: E402
from routing_core.rotation import InMemoryRotationState  # noqa: E402
from routing_core.screening import NullScreener  # noqa: E402

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
OTHER_JURISDICTIONS = ["GB", "US", "US-TX", "CH", "JP", "SA", "CA-ON", "AU-NSW", "FR", "DE"]


# --- generated leads -------------------------------------------------------------------------

def _expand(items: list[str], groups: Mapping[str, list[str]]) -> list[str]:
    out: list[str] = []
    for item in items:
        out += _expand(list(groups[item[1:]]), groups) if item.startswith("@") else [item]
    return out


def generate(policy: Policy, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Leads shaped like real intake: mostly ones some licence is meant for, some not."""
    rng = random.Random(seed)
    raw = policy.raw
    groups = {**BUILTIN_GROUPS, **raw.get("jurisdiction_groups", {})}
    licences = [lic for team in raw["teams"].values() for lic in team["licenses"]]
    products = list(policy.products)
    leads = []
    for i in range(n):
        lead: dict[str, Any] = {"source": rng.choice(["salesforce", "hubspot"]), "id": f"G{i}"}
        if rng.random() < 0.75:
            lic = rng.choice(licences)
            lead["jurisdiction"] = rng.choice(_expand(lic["jurisdictions"], groups))
            lead["product"] = rng.choice(lic["products"])
            lead["customer_type"] = rng.choice(lic["customer_types"])
        else:
            lead["jurisdiction"] = rng.choice(OTHER_JURISDICTIONS)
            lead["product"] = rng.choice(products)
            lead["customer_type"] = rng.choice(CUSTOMER_TYPES)
        if rng.random() < 0.6:
            lead["assessments"] = {"appropriateness": rng.choice(["passed", "passed", "failed"])}
        if rng.random() < 0.5:
            lead["investable_assets"] = {"amount": str(rng.randrange(0, 8_000_000)),
                                         "currency": rng.choice(["GBP", "EUR", "USD", "AED"])}
        lead["consent"] = {"phone": rng.random() < 0.5, "email": rng.random() < 0.8}
        lead["channel"] = rng.choice(["web", "phone", "referral", "branch"])
        if rng.random() < 0.2:
            lead["attributes"] = {"introducer_code": rng.choice(["PB-AB1234", "XX-1"])}
        if rng.random() < 0.3:
            lead["first_contact_at"] = "2026-11-20T10:00:00Z"
        leads.append(lead)
    return leads


# --- the same rules for rule-engine --------------------------------------------------------

def _name(path: str) -> str:
    return path.replace(".", "__")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def to_rule_engine(cond: Any, groups: Mapping[str, list[str]]) -> str:
    """Translate one policy condition into a rule-engine expression with the same meaning
    (missing paths are null and make every leaf false, as in the policy language)."""
    if "all" in cond:
        parts = [to_rule_engine(c, groups) for c in cond["all"]]
        return "(" + " and ".join(parts) + ")" if parts else "true"
    if "any" in cond:
        parts = [to_rule_engine(c, groups) for c in cond["any"]]
        return "(" + " or ".join(parts) + ")" if parts else "false"
    if "not" in cond:
        return f"(not {to_rule_engine(cond['not'], groups)})"
    field = _name(cond["field"])
    op = next(k for k in cond if k != "field")
    value = cond[op]
    present = f"{field} != null"
    if op == "eq":
        return f"({field} == {_literal(value)})"
    if op == "ne":
        return f"({present} and {field} != {_literal(value)})"
    if op in ("in", "not_in"):
        items = "[" + ", ".join(_literal(v) for v in value) + "]"
        return (f"({field} in {items})" if op == "in"
                else f"({present} and {field} not in {items})")
    if op in ("gt", "gte", "lt", "lte"):
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({present} and {field} {sign} {_literal(value)})"
    if op == "exists":
        return f"({field} {'!=' if value else '=='} null)"
    if op == "matches":
        return f"({present} and {field} =~ {_literal('(?:' + value + ')$')})"
    if op == "within":
        codes = _expand(value, groups)
        countries = [c for c in codes if len(c) == 2]
        subs = [c for c in codes if len(c) > 2]
        parts = []
        if countries:
            parts.append(f"jurisdiction__country in {json.dumps(countries)}")
        if subs:
            parts.append(f"jurisdiction in {json.dumps(subs)}")
        return "(" + " or ".join(parts) + ")"
    raise ValueError(f"no translation for operator {op}")


def flat(lead: Lead, policy: Policy) -> dict[str, Any]:
    """The lead as the flat dict rule-engine reads (paths with __ for dots)."""
    out: dict[str, Any] = {
        "jurisdiction": lead.jurisdiction.code, "jurisdiction__country": lead.jurisdiction.country,
        "customer_type": lead.customer_type, "product": lead.product, "source": lead.source,
        "channel": lead.channel, "kind": lead.kind,
        "investable_assets__amount": lead.investable_assets.amount
        if lead.investable_assets else None,
        "investable_assets__currency": lead.investable_assets.currency
        if lead.investable_assets else None,
    }
    for name in ("assessments", "consent", "attributes"):
        for key, value in getattr(lead, name).items():
            out[f"{name}__{key}"] = value
    for key, value in (policy.products.get(lead.product or "") or {}).items():
        out[f"product__{key}"] = value
    return out


# --- timing ----------------------------------------------------------------------------------

def timed(run: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall-clock and median CPU seconds of `runs` runs, and the last result.

    Both are printed: on a shared machine the wall clock also counts time spent waiting for
    the CPU, while process CPU time counts only this process's own work on its one core."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policy", default=str(Path(__file__).resolve().parent.parent /
                                               "examples" / "policy"))
    args = parser.parse_args()
    n = args.leads

    policy = load_policy(args.policy)
    raws = generate(policy, n)
    parse_time, parse_cpu, parsed = timed(lambda: [_parse(r) for r in raws], 1)
    leads = [lead for lead in parsed if lead is not None]
    flats = [flat(lead, policy) for lead in leads]

    def route_all() -> Counter[str]:
        state = InMemoryRotationState()
        screener = NullScreener()
        outcomes: Counter[str] = Counter()
        for lead in leads:
            decision = decide(lead, policy, at=AT, rotation=state, screener=screener,
                              decision_id="bench")
            outcomes[decision.reason or "assigned"] += 1
        return outcomes

    def route_all_json() -> int:
        state = InMemoryRotationState()
        screener = NullScreener()
        size = 0
        for lead in leads:
            size += len(json.dumps(decide(lead, policy, at=AT, rotation=state, screener=screener,
                                          decision_id="bench").to_json()))
        return size

    groups = {**BUILTIN_GROUPS, **policy.raw.get("jurisdiction_groups", {})}
    context = rule_engine.Context(default_value=None)
    compiled = [(rule["id"], rule_engine.Rule(to_rule_engine(rule["when"], groups),
                                              context=context))
                for rule in policy.raw["rules"]]

    def first_match_all() -> list[str | None]:
        matched: list[str | None] = []
        for item in flats:
            for rule_id, rule in compiled:
                if rule.matches(item):
                    matched.append(rule_id)
                    break
            else:
                matched.append(None)
        return matched

    lg_time, lg_cpu, outcomes = timed(route_all, args.runs)
    json_time, json_cpu, _ = timed(route_all_json, max(1, min(args.runs, 3)))
    re_time, re_cpu, re_matched = timed(first_match_all, args.runs)

    # The two must agree on which rule matches, wherever leadgate ran the rules.
    state = InMemoryRotationState()
    agree = compared = 0
    for lead, expected in zip(leads, re_matched, strict=True):
        decision = decide(lead, policy, at=AT, rotation=state, screener=NullScreener(),
                          decision_id="check")
        if decision.rule is None and decision.reason != "no_rule_matched":
            continue  # refused before the rules (pre-screen or gate)
        compared += 1
        agree += decision.rule_id == expected

    count = len(leads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"policy {policy.id} {policy.version}: {len(policy.rules)} rules, {len(policy.gates)} "
          f"gates, {len(policy.teams)} teams; {count} leads ({n - count} invalid skipped); "
          f"median of {args.runs} runs; Python {platform.python_version()} on "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"  {'':46}{'wall clock':>14}{'CPU time':>14}")
    rows = [("leadgate decide (full decision + trace)", lg_time, lg_cpu, "decisions/s"),
            ("leadgate decide + to_json + json.dumps", json_time, json_cpu, "decisions/s"),
            ("rule-engine bare first-match (rules only)", re_time, re_cpu, "leads/s"),
            ("parse_lead (normalisation, one run)", parse_time * count / len(raws),
             parse_cpu * count / len(raws), "leads/s")]
    for label, wall, cpu, unit in rows:
        print(f"  {label:46}{count / wall:>14,.0f}{count / cpu:>14,.0f}  {unit}")
    print(f"  {'ratio leadgate full / rule-engine bare':46}{re_time / lg_time:>13.2f}x"
          f"{re_cpu / lg_cpu:>13.2f}x")
    print(f"  rule agreement where leadgate ran the rules: {agree}/{compared}")
    print(f"  outcomes: {dict(outcomes.most_common())}")


def _parse(raw: dict[str, Any]) -> Lead | None:
    try:
        return parse_lead(raw)
    except InvalidLead:
        return None


if __name__ == "__main__":
    main()
