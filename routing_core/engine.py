"""`decide`: one lead through pre-screen, screening, gates, rules, licences, rotation, conduct
and cooling-off, to a `Decision` that records every check that ran.

Fail closed: every path that cannot establish that a licensed, available rep may take the lead
ends in a refusal to the compliance review queue, never in an assignment. The engine reads no
clock and does no I/O: the decision time comes in as `at`; rotation state is read through the
`RotationState` interface and advanced only when the lead is assigned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from routing_core.assignment import availability, choose
from routing_core.decision import Decision
from routing_core.ids import new_ulid
from routing_core.lead import Lead
from routing_core.licensing import licence_days, team_authority
from routing_core.outreach import merge_conduct, same_stage, select_cooling_off
from routing_core.policy.conditions import Facts
from routing_core.policy.model import Policy
from routing_core.rotation import Cursor, RotationState
from routing_core.screening import HIT_REASONS, Screener, ScreeningResult

# Which screening hit decides the refusal reason when several lists hit.
_HIT_ORDER = {"sanctions": 0, "pep": 1, "blocklist": 2}


def new_decision_id(at: datetime) -> str:
    """A ULID whose time part is the decision time (the engine reads no clock)."""
    return new_ulid(int(at.timestamp() * 1000))


def _lead_summary(lead: Lead) -> dict[str, Any]:
    # Identifiers and routing facts only: no names, emails or phones (personal data stays out
    # of the decision; the ledger stores it encrypted separately).
    return {"source": lead.source, "id": lead.id, "jurisdiction": lead.jurisdiction.code,
            "customer_type": lead.customer_type, "product": lead.product,
            "timezone": lead.timezone, "timezone_guessed": lead.timezone_guessed}


def _refuse(decision: Decision, reason: str, detail: str) -> Decision:
    decision.outcome = "refused"
    decision.reason = reason
    decision.detail = detail
    decision.team = None
    decision.rep = None
    return decision


def _unknown_product(product: str, policy: Policy) -> str:
    return f"product: {product!r} is not a product of policy {policy.id}"


def _check_time(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("decision time `at` must be time-zone aware")


def refuse_invalid(source: str, record_id: str, problems: list[str], policy: Policy, *,
                   at: datetime, decision_id: str | None = None, product: Any = None
                   ) -> Decision:
    """The decision for a record that could not be normalised into a Lead. `product` is the
    record's product code, if it has one: an unknown one is listed with the other problems."""
    _check_time(at)
    problems = list(problems)
    if isinstance(product, str) and product and product not in policy.products:
        problems.append(_unknown_product(product, policy))
    decision = Decision(decision_id=decision_id or new_decision_id(at), decided_at=at,
                        lead={"source": source, "id": record_id}, policy=policy.reference(),
                        outcome="refused", problems=problems)
    return _refuse(decision, "invalid_lead",
                   f"the record could not be normalised ({len(problems)} problem(s))")


def _screen(decision: Decision, lead: Lead, policy: Policy, screener: Screener | None
            ) -> tuple[str, str] | dict[str, bool]:
    """Run screening; return (reason, detail) for a refusal, else the per-check hit map."""
    if screener is None:
        if policy.screening is not None:
            return ("screening_unavailable",
                    "the policy declares screening lists but no screener was supplied")
        return {}
    try:
        results = list(screener.screen(lead))
    except Exception as exc:  # noqa: BLE001 - any screener failure must refuse, never route
        return "screening_unavailable", f"screening failed: {type(exc).__name__}: {exc}"
    if not results:
        return {}
    decision.screening = results
    hits: list[ScreeningResult] = sorted((r for r in results if r.hit),
                                         key=lambda r: _HIT_ORDER.get(r.check, 9))
    if hits:
        hit = hits[0]
        score = f" (score {hit.best_score:.2f})" if hit.best_score is not None else ""
        return (HIT_REASONS.get(hit.check, "sanctions_hit"),
                f"{hit.check} hit on list {hit.list}{score}")
    checks: dict[str, bool] = {}
    for result in results:
        checks[result.check] = checks.get(result.check, False) or result.hit
    return checks


def decide(lead: Lead, policy: Policy, *, at: datetime, rotation: RotationState,
           screener: Screener | None = None, decision_id: str | None = None) -> Decision:
    """Decide one lead. `screener=None` means no screening, allowed only for a policy without
    a `screening` section (otherwise the lead is refused `screening_unavailable`)."""
    _check_time(at)
    decision = Decision(decision_id=decision_id or new_decision_id(at), decided_at=at,
                        lead=_lead_summary(lead), policy=policy.reference(),
                        outcome="assigned")
    if policy.effective_from is not None and at < policy.effective_from:
        decision.notes.append(f"decided before the policy's effective_from "
                              f"{policy.effective_from.isoformat()}")

    # Pre-screen: an unknown product code or a jurisdiction where the firm may not do business.
    product = None
    if lead.product is not None:
        product = policy.products.get(lead.product)
        if product is None:
            decision.problems.append(_unknown_product(lead.product, policy))
            return _refuse(decision, "invalid_lead", f"unknown product code {lead.product!r}")
    # Screening runs before the jurisdiction check: a sanctioned or politically exposed party
    # is recorded as such wherever it writes from, because the firm's screening duty does not
    # depend on whether it could have done business there.
    screened = _screen(decision, lead, policy, screener)
    if isinstance(screened, tuple):
        return _refuse(decision, *screened)
    code = lead.jurisdiction.code
    if not policy.firm_jurisdictions.contains(code):
        return _refuse(decision, "unlicensed_jurisdiction",
                       f"no firm authorisation covers {code}")
    facts = Facts(lead, product, screened)

    for gate in policy.gates:
        trace: list[Any] = []
        if not gate.applies_to(facts, trace):
            decision.gates.append((gate.id, False, None, trace, gate.reason))
            continue
        passed = gate.require(facts, trace)
        decision.gates.append((gate.id, True, passed, trace, gate.reason))
        if not passed:
            return _refuse(decision, "suitability_gate", f"gate {gate.id}: {gate.reason}")

    rule = None
    for candidate in policy.rules:
        trace = []
        if candidate.when(facts, trace):
            rule = candidate
            decision.rule = (candidate.id, True, trace)
            break
        decision.rules_tried.append((candidate.id, False, trace))
    if rule is None:
        return _refuse(decision, "no_rule_matched", "no rule's conditions hold for this lead")

    day = at.astimezone(policy.tz).date()  # caps count in the policy's day
    days = licence_days(at, day, lead)
    open_teams = []   # (team, availability, licence) with authority and a rep who can take it
    authorised = 0
    for team_id in rule.route_to:
        team = policy.teams[team_id]
        licence, why = team_authority(team, lead, days, policy)
        entry: dict[str, Any] = {"team": team_id, "eligible": licence is not None,
                                 "license": licence.id if licence else None, "why": why}
        decision.teams_considered.append(entry)
        if licence is None:
            continue
        authorised += 1
        avail = availability(team, lead, day, rotation, policy, days)
        entry["available_reps"] = [m.id for m in avail.eligible]
        if avail.skipped:
            entry["skipped_reps"] = dict(avail.skipped)
        if avail.eligible:
            open_teams.append((team, avail, licence))
        else:
            entry["why"] = f"{why}; but no rep can take the lead"
    if not authorised:
        return _refuse(decision, "no_licensed_team",
                       f"no team of rule {rule.id} holds authority for this lead")
    if not open_teams:
        return _refuse(decision, "no_available_rep",
                       f"teams of rule {rule.id} hold authority but none has a rep who can "
                       "take the lead")

    rule_key = f"rule:{rule.id}"
    if rule.team_choice == "round_robin" and len(open_teams) > 1:
        last = rotation.cursor(rule_key).last
        order = list(rule.route_to)
        start = order.index(last) + 1 if last in order else 0
        rank = {t: (i - start) % len(order) for i, t in enumerate(order)}
        team, avail, licence = min(open_teams, key=lambda t: rank[t[0].id])
        team_why = f"round robin across eligible teams of rule {rule.id}" + (
            f": next after {last}" if last in order else "")
    else:
        team, avail, licence = open_teams[0]
        team_why = (f"first eligible team of rule {rule.id}" if rule.team_choice == "priority"
                    else f"only eligible team of rule {rule.id}")

    counts = ({m.id: rotation.assigned_count(m.id, day) for m in avail.eligible}
              if team.assignment == "least_loaded" else {})
    cursor = rotation.cursor(team.id)
    member, new_cursor, rep_why = choose(team, avail, cursor, counts)

    outreach, conduct_trace = merge_conduct(policy, lead, facts, at)
    decision.conduct_rules = conduct_trace
    cooling, cooling_trace = select_cooling_off(policy, lead, facts, at)
    decision.cooling_off_rules = cooling_trace
    decision.cooling_off = cooling
    if cooling is not None and same_stage(lead.stage, cooling["blocks_stage"]):
        not_before = cooling["not_before"]
        if not_before is None or at < not_before:
            return _refuse(decision, "cooling_off_violation",
                           f"the lead is already at stage {lead.stage!r} inside the "
                           f"{cooling['id']} cooling-off window")

    decision.team = {"id": team.id, "name": team.name, "why": team_why, "license": licence.id}
    rep: dict[str, Any] = {"id": member.id, "name": member.name,
                           "crm_id": member.crm.get(lead.source), "crm": dict(member.crm),
                           "why": rep_why}
    if member.id in avail.licences:
        rep["license"] = avail.licences[member.id].id
    decision.rep = rep
    decision.outreach = outreach
    rotation.advance(team.id, new_cursor, member.id, day)
    if rule.team_choice == "round_robin":
        rotation.advance(rule_key, Cursor(last=team.id), None, day)
    return decision
