"""Conduct of business and cooling-off: what the assignment may set in motion, and when.

Every matching conduct rule applies (not first-match): prohibited channels are removed, the
narrowest contact window wins (expressed in the lead's local time zone, and holding on every
day of the coming year, whatever the clocks do), disclosures add up.
Of the matching cooling-off rules, the longest window applies.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from routing_core import timezones
from routing_core.decision import RuleTrace
from routing_core.lead import Lead
from routing_core.policy.conditions import Facts
from routing_core.policy.model import Policy, Window


def _hhmm(moment: time) -> str:
    return "24:00" if moment == time.max else f"{moment.hour:02d}:{moment.minute:02d}"


def _possible_zones(lead: Lead) -> tuple[str, ...]:
    """Every zone the lead may be in: its own where that is known, all candidates where the
    zone had to be guessed (a country-only US lead, a state that spans two zones)."""
    area = lead.timezone_area
    if not lead.timezone_guessed or area is None:
        return (lead.timezone,) if lead.timezone else ()
    country, _, rest = area.partition("-")
    return timezones.possible_zones(country, area if rest else None)


def _moment(day: date, moment: time, zone: ZoneInfo) -> datetime:
    if moment == time.max:   # "24:00": the end of the day
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, moment, zone)


def _local_window(window: Window, lead: Lead, at: datetime) -> tuple[time, time] | None:
    """The window's start and end on the lead's clock (None if the lead's zone is unknown).

    A `lead_local` window must hold wherever the lead may be: with a guessed zone it is
    narrowed to the hours that are inside the window in every candidate zone, so a call at
    08:00 New York time never reaches a Californian lead at 05:00.
    """
    if lead.timezone is None:
        return None
    if window.timezone == "lead_local":
        zones = _possible_zones(lead)
        if len(zones) <= 1:
            return window.start, window.end
    else:
        zones = (window.timezone,)
    day = at.astimezone(ZoneInfo(lead.timezone)).date()
    return _all_year(window.start, window.end, tuple(zones), lead.timezone, day)


@functools.lru_cache(maxsize=4096)
def _all_year(start: time, end: time, zones: tuple[str, ...], target: str, first: date
              ) -> tuple[time, time]:
    """The hours on the `target` clock inside the window on each of the 366 days from `first`.

    Zones change their clocks on different dates (London and New York are four hours apart
    for a few weeks a year and five otherwise; Phoenix never changes), and the window recorded
    with an assignment is what the rep goes by whenever contact is made: it must hold on every
    day, not only on the day of the decision. Pure, so it is computed once a day per window.
    """
    clock = ZoneInfo(target)
    lo, hi = time(0), time.max
    for k in range(366):
        day = first + timedelta(days=k)
        day_start = datetime.combine(day, time(0), clock)
        day_end = _moment(day, time.max, clock)
        begin = max([day_start, *(_moment(day, start, ZoneInfo(z)) for z in zones)])
        finish = min([day_end, *(_moment(day, end, ZoneInfo(z)) for z in zones)])
        if finish <= begin:
            return time(0), time(0)   # no common hour: the caller allows no channel
        lo = max(lo, begin.astimezone(clock).time().replace(tzinfo=None))
        hi = min(hi, time.max if finish >= day_end else
                 finish.astimezone(clock).time().replace(tzinfo=None))
        if hi <= lo:
            return time(0), time(0)
    return lo, hi


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
            local = _local_window(rule.window, lead, at)
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


def same_stage(stage: str | None, blocked: str | None) -> bool:
    """Whether a CRM stage is the stage a cooling-off window blocks. Case and surrounding
    spaces do not count: CRMs show "Proposal" for what a policy writes `proposal`, and a
    mismatch of spelling must not let a lead past its window (fail closed)."""
    if not stage or not blocked:
        return False
    return stage.strip().casefold() == blocked.strip().casefold()


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
