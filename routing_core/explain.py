"""A decision told in plain words, for a compliance officer (works on the decision JSON, so the
ledger's stored decisions can be explained years later the same way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if value is None:
        return "(missing)"
    return str(value)


def leaf_text(leaf: Mapping[str, Any]) -> str:
    """One evaluated condition leaf in words (a personal value is never in it: `withheld`)."""
    actual = "(personal data, withheld)" if leaf.get("withheld") else _value(leaf['actual'])
    text = (f"{leaf['path']} {leaf['op']} {_value(leaf['expected'])}: lead has "
            f"{actual} -> {'yes' if leaf['result'] else 'no'}")
    if leaf.get("note"):
        text += f" ({leaf['note']})"
    return text


def _leaves(leaves: Sequence[Mapping[str, Any]], indent: str) -> list[str]:
    return [f"{indent}- {leaf_text(leaf)}" for leaf in leaves]


def explain(decision: Mapping[str, Any]) -> str:
    """A readable, line-by-line account of one decision JSON."""
    lead = decision["lead"]
    pol = decision["policy"]
    lines: list[str] = []
    what = ", ".join(str(lead.get(k)) for k in ("jurisdiction", "customer_type", "product")
                     if lead.get(k))
    zone = ""
    if lead.get("timezone"):
        zone = f"; local time zone {lead['timezone']}" + (
            " (guessed: the jurisdiction spans time zones)" if lead.get("timezone_guessed") else "")
    lines.append(f"Lead {lead.get('source')}:{lead.get('id')} ({what or 'no routing facts'}"
                 f"{zone})")
    lines.append(f"Decision {decision['decision_id']} at {decision['decided_at']}, policy "
                 f"{pol['id']} version {pol['version']} ({pol['digest']})")
    if decision["outcome"] == "assigned":
        rep, team = decision["rep"], decision["team"]
        lines.append(f"Outcome: ASSIGNED to {rep['id']} ({rep.get('name')}) in team "
                     f"{team['id']}")
    else:
        lines.append(f"Outcome: REFUSED ({decision['reason']}) and sent to the compliance "
                     "review queue; nobody in sales was assigned")
        if decision.get("detail"):
            lines.append(f"  Why: {decision['detail']}")
        for problem in decision.get("problems") or []:
            lines.append(f"  Problem: {problem}")
    if decision["reason"] == "invalid_lead" and not decision.get("gates"):
        return "\n".join(lines)  # nothing was checked: the record never became a lead
    lines.append("What was checked, in order:")
    if decision["reason"] == "unlicensed_jurisdiction":
        lines.append(f"  Firm authorisation: the firm is not authorised in "
                     f"{lead.get('jurisdiction')}; no rule was run")
        return "\n".join(lines)
    lines.append(f"  Firm authorisation: the firm is authorised in {lead.get('jurisdiction')}")
    screening = decision.get("screening") or []
    if not screening:
        lines.append("  Screening: no lists were checked"
                     + (" (screening unavailable)" if decision["reason"] ==
                        "screening_unavailable" else ""))
    for item in screening:
        score = item.get("best_score")
        named = "" if item["list"] == item["check"] else f" {item['list']}"
        lines.append(f"  Screening {item['check']} list{named}: "
                     f"{'HIT' if item['hit'] else 'no hit'}"
                     + (f" (best score {score:.2f})" if isinstance(score, (int, float)) else ""))
    for gate in decision.get("gates") or []:
        if not gate["applied"]:
            lines.append(f"  Gate {gate['id']}: does not apply")
        else:
            verdict = "passed" if gate.get("passed") else f"FAILED: {gate.get('reason')}"
            lines.append(f"  Gate {gate['id']}: applies, {verdict}")
        lines.extend(_leaves(gate.get("conditions") or [], "      "))
    for rule in decision.get("rules_tried") or []:
        lines.append(f"  Rule {rule['id']}: does not hold")
        lines.extend(_leaves(rule.get("conditions") or [], "      "))
    if decision.get("rule"):
        rule = decision["rule"]
        lines.append(f"  Rule {rule['id']}: HOLDS (first rule that holds decides)")
        lines.extend(_leaves(rule.get("conditions") or [], "      "))
    for team in decision.get("teams_considered") or []:
        state = "has authority" if team["eligible"] else "no authority"
        lines.append(f"  Team {team['team']}: {state}: {team['why']}")
        if team.get("available_reps") is not None:
            lines.append(f"      reps who can take it: {', '.join(team['available_reps']) or 'none'}")
        for rep_id, why in (team.get("skipped_reps") or {}).items():
            lines.append(f"      {rep_id}: {why}")
    if decision.get("team"):
        lines.append(f"  Team chosen: {decision['team']['id']} ({decision['team']['why']})")
    if decision.get("rep"):
        rep = decision["rep"]
        licence = f"; individual licence {rep['license']}" if rep.get("license") else ""
        lines.append(f"  Rep chosen: {rep['id']} ({rep['why']}{licence})")
    outreach = decision.get("outreach")
    if outreach:
        channels = ", ".join(outreach["allowed_channels"]) or "NONE"
        lines.append(f"  Outreach: allowed channels {channels}")
        window = outreach.get("contact_window")
        if window:
            lines.append(f"      contact only {window['start']}-{window['end']} "
                         f"{window['timezone']} (rules {', '.join(window['rules'])})")
        if outreach.get("disclosures"):
            lines.append(f"      required disclosures: {', '.join(outreach['disclosures'])}")
        for rule_id in outreach.get("applied") or []:
            reason = (outreach.get("reasons") or {}).get(rule_id)
            lines.append(f"      conduct rule {rule_id} applies" + (f": {reason}" if reason
                                                                     else ""))
    cooling = decision.get("cooling_off")
    if cooling:
        when = (f"not before {cooling['not_before']}" if cooling.get("not_before")
                else "start time not yet known (set when the anchor is known)")
        stage = f"; stage {cooling['blocks_stage']} blocked" if cooling.get("blocks_stage") else ""
        lines.append(f"  Cooling-off {cooling['id']}: {cooling['hours']} hours from "
                     f"{cooling['from'].replace('_', ' ')}, {when}{stage}")
    for note in decision.get("notes") or []:
        lines.append(f"  Note: {note}")
    return "\n".join(lines)
