"""Choosing the rep: who can take the lead, then the team's rotation.

All three rotations are deterministic functions of the policy, the stored `Cursor` and the
day's counts, so every choice can be replayed and explained:

* round_robin: the next eligible member after the last one chosen, in policy order. A member
  who was away is simply reached again at their place: no catch-up burst.
* weighted: smooth weighted round robin. Each eligible member's current weight grows by its
  weight; the largest is chosen and loses the eligible total. Over any run of leads a member
  with weight w of total W gets w/W of them, interleaved rather than in blocks. Members who
  are not eligible keep their current weight frozen, so they too rejoin without a burst.
* least_loaded: the eligible member with the fewest leads today (policy time zone); ties go
  round robin. By its nature a member who returns mid-day with fewer leads is preferred until
  level with the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from routing_core.lead import Lead
from routing_core.licensing import Days, rep_licence
from routing_core.policy.model import License, Member, Policy, Team
from routing_core.rotation import Cursor, RotationState


@dataclass(slots=True)
class Availability:
    eligible: list[Member]
    skipped: dict[str, str]                 # member id -> why not
    licences: dict[str, License]            # member id -> individual licence used


def availability(team: Team, lead: Lead, day: date, rotation: RotationState, policy: Policy,
                 days: Days) -> Availability:
    """The team's members who may take the lead: available, under their cap on `day` (the
    policy's), and holding their own licence on `days` (licensing.licence_days) where the team
    requires one."""
    result = Availability([], {}, {})
    for member in team.members:
        if not member.available:
            result.skipped[member.id] = "unavailable"
            continue
        if member.max_per_day is not None:
            taken = rotation.assigned_count(member.id, day)
            if taken >= member.max_per_day:
                result.skipped[member.id] = f"at daily cap ({taken}/{member.max_per_day})"
                continue
        if team.requires_individual_license:
            lic = rep_licence(member, lead, days, policy)
            if lic is None:
                result.skipped[member.id] = (
                    f"no valid individual licence for {lead.jurisdiction.code} / "
                    f"{lead.product} / {lead.customer_type}")
                continue
            result.licences[member.id] = lic
        result.eligible.append(member)
    return result


def _after(order: Sequence[str], last: str | None) -> list[str]:
    """`order` rotated to start just after `last` (from the start if `last` is unknown)."""
    if last is None or last not in order:
        return list(order)
    i = order.index(last) + 1
    return list(order[i:]) + list(order[:i])


def _skipped_text(ids: Sequence[str], skipped: dict[str, str]) -> str:
    return "; ".join(f"{m} skipped ({skipped[m]})" for m in ids if m in skipped)


def choose(team: Team, avail: Availability, cursor: Cursor, counts: dict[str, int]
           ) -> tuple[Member, Cursor, str]:
    """(member, new cursor, why). `avail.eligible` must not be empty; `counts` are today's."""
    order = [m.id for m in team.members]
    eligible = {m.id: m for m in avail.eligible}
    if team.assignment == "weighted":
        current = {m: v for m, v in cursor.current.items() if m in order}
        total = sum(m.weight for m in avail.eligible)
        before = {m.id: current.get(m.id, 0) + m.weight for m in avail.eligible}
        best = max(avail.eligible, key=lambda m: (before[m.id], -order.index(m.id)))
        current.update(before)
        current[best.id] -= total
        shown = ", ".join(f"{m} {v}" for m, v in before.items())
        why = (f"weighted (smooth weighted round robin): {best.id} has weight {best.weight} of "
               f"{total}; current weights {shown}")
        skipped = _skipped_text(order, avail.skipped)
        return best, Cursor(last=best.id, current=current), why + (
            f"; {skipped}" if skipped else "")
    rotated = _after(order, cursor.last)
    if team.assignment == "least_loaded":
        low = min(counts.get(m, 0) for m in eligible)
        chosen_id = next(m for m in rotated if m in eligible and counts.get(m, 0) == low)
        shown = ", ".join(f"{m} {counts.get(m, 0)}" for m in order if m in eligible)
        why = f"least loaded today: {chosen_id} had {low} (today: {shown})"
        skipped = _skipped_text(order, avail.skipped)
    else:
        chosen_id = next(m for m in rotated if m in eligible)
        passed = rotated[: rotated.index(chosen_id)]
        why = (f"round robin: next after {cursor.last}" if cursor.last in order
               else "round robin: first in order")
        skipped = _skipped_text(passed, avail.skipped)
    return (eligible[chosen_id], Cursor(last=chosen_id, current=dict(cursor.current)),
            why + (f"; {skipped}" if skipped else ""))
