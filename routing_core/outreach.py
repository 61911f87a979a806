"""Conduct of business and cooling-off: what the assignment may set in motion, and when.

Every matching conduct rule applies (not first-match): prohibited channels are removed, the
narrowest contact window wins (expressed in the lead's local time zone), disclosures add up.
Of the matching cooling-off rules, the longest window applies.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from routing_core.decision import RuleTrace
from routing_core.lead import Lead
from routing_core.policy.conditions import Facts
from routing_core.policy.model import Policy, Window


def _hhmm(moment: time) -> str:
    return "24:00" if moment == time.max else f"{moment.hour:02d}:{moment.minute:02d}"


def _local_window(window: Window, lead_zone: str | None, at: datetime
                  ) -> tuple[time, time] | None:
    """The window's start and end in the lead's zone (None if the lead's zone is unknown)."""
    if window.timezone == "lead_local":
        return (window.start, window.end) if lead_zone else None
    if lead_zone is None:
        return None
    source, target = ZoneInfo(window.timezone), ZoneInfo(lead_zone)
    day = at.astimezone(source).date()

    def convert(moment: time) -> time:
        if moment == time.max:
            stamp = datetime.combine(day + timedelta(days=1), time(0), source)
        else:
            stamp = datetime.combine(day, moment, source)
        return stamp.astimezone(target).time().replace(tzinfo=None)
    return convert(window.start), convert(window.end)


def merge_conduct(policy: Policy, lead: Lead, facts: Facts, at: datetime
                  ) -> tuple[dict[str, Any], list[RuleTrace]]:
    prohibited: set[str] = set()
    disclosures: list[str] = []
    applied: list[str] = []
    reasons: dict[str, str] = {}
    window: tuple[time, time] | None = None
    window_rules: list[str] = []
    notes: list[str] = []
    tried: list[RuleTrace] = []
    for rule in policy.conduct:
        trace: list[Any] = []
        matched = rule.when(facts, trace)
        tried.append((rule.id, matched, trace))
        if not matched:
            continue
        applied.append(rule.id)
        if rule.reason:
            reasons[rule.id] = rule.reason
        prohibited |= rule.prohibit_channels
        for item in rule.disclosures:
            if item not in disclosures:
                disclosures.append(item)
        if rule.window is not None:
            local = _local_window(rule.window, lead.timezone, at)
            if local is None:
                notes.append(f"{rule.id}: the lead's time zone is unknown, so no contact time "
                             "can be shown to be inside the window")
                local = (time(0), time(0))
            window_rules.append(rule.id)
            window = local if window is None else (max(window[0], local[0]),
                                                   min(window[1], local[1]))
    allowed = [c for c in policy.channels if c not in prohibited]
    contact_window: dict[str, Any] | None = None
    if window is not None:
        contact_window = {"start": _hhmm(window[0]), "end": _hhmm(window[1]),
                          "timezone": lead.timezone, "timezone_guessed": lead.timezone_guessed,
                          "rules": window_rules}
        if window[1] <= window[0]:
            notes.append("the contact windows leave no time to make contact; no channel allowed")
            allowed = []
    outreach: dict[str, Any] = {"allowed_channels": allowed, "contact_window": contact_window,
                                "disclosures": disclosures, "applied": applied,
                                "reasons": reasons}
    if notes:
        outreach["notes"] = notes
    return outreach, tried


def select_cooling_off(policy: Policy, lead: Lead, facts: Facts, at: datetime
                       ) -> tuple[dict[str, Any] | None, list[RuleTrace]]:
    best = None
    matched: list[str] = []
    tried: list[RuleTrace] = []
    for rule in policy.cooling_off:
        trace: list[Any] = []
        hit = rule.when(facts, trace)
        tried.append((rule.id, hit, trace))
        if hit:
            matched.append(rule.id)
            if best is None or rule.hours > best.hours:
                best = rule
    if best is None:
        return None, tried
    anchor = lead.first_contact_at if best.anchor == "first_contact" else at
    not_before = anchor + timedelta(hours=best.hours) if anchor is not None else None
    return {"id": best.id, "hours": best.hours, "from": best.anchor,
            "blocks_stage": best.blocks_stage, "reason": best.reason, "anchor_at": anchor,
            "not_before": not_before, "matched": matched}, tried
