"""Authority: may this team (and this rep) serve this lead, and under which licence?

A team holds authority when one of its licences, valid on the decision day (in the policy's time
zone and in the lead's: of the two days, the later start and the earlier end count), covers the
lead's
jurisdiction, product and customer type, and the firm is authorised by that licence's regulator
in the lead's jurisdiction. An individual licence (for teams with
`requires_individual_license`) must be valid and cover the lead; it is the person's own
licence, so the firm-authorisation test applies to the team licence, not to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from routing_core.lead import Lead
from routing_core.policy.model import License, Member, Policy, Team


def _what(lead: Lead) -> str:
    return (f"{lead.jurisdiction.code} / {lead.product or 'no product'} / "
            f"{lead.customer_type or 'unknown customer type'}")


def _gap(lic: License, lead: Lead) -> str | None:
    """Why `lic` does not cover the lead, or None when it does."""
    missing = []
    if not lic.jurisdictions.contains(lead.jurisdiction.code):
        missing.append(f"jurisdiction {lead.jurisdiction.code}")
    if lead.product not in lic.products:
        missing.append(f"product {lead.product or '(none)'}")
    if lead.customer_type not in lic.customer_types:
        missing.append(f"customer type {lead.customer_type or '(unknown)'}")
    return f"licence {lic.id} does not cover {', '.join(missing)}" if missing else None


# The earliest and the latest calendar day it is at the decision instant, in the policy's time
# zone and the lead's: a licence dated by day must hold on both (a licence valid from 1 February
# does not yet cover a Florida lead at 20:00 on 31 January there, though London is past midnight).
Days = tuple[date, date]


def licence_days(at: datetime, here: date, lead: Lead) -> Days:
    """`here` is the policy's day at `at` (the caller has it already, for caps)."""
    if not lead.timezone:  # the lead's zone is unknown: the policy's day alone
        return here, here
    there = at.astimezone(ZoneInfo(lead.timezone)).date()
    return min(here, there), max(here, there)


def _validity(lic: License, days: Days) -> str | None:
    earliest, latest = days
    if earliest < lic.valid_from:
        return f"licence {lic.id} is not valid before {lic.valid_from.isoformat()}"
    if lic.valid_until is not None and latest > lic.valid_until:
        return f"licence {lic.id} expired {lic.valid_until.isoformat()}"
    return None


def _until(lic: License) -> str:
    return f"valid until {lic.valid_until.isoformat()}" if lic.valid_until else "open-ended"


_MEMO_LIMIT = 200_000


def _memo_key(kind: str, owner: object, lead: Lead, days: Days) -> tuple[object, ...]:
    return (kind, owner, lead.jurisdiction.subdivision or lead.jurisdiction.country,
            lead.product, lead.customer_type, days)


def team_authority(team: Team, lead: Lead, days: Days, policy: Policy
                   ) -> tuple[License | None, str]:
    """(the licence giving authority, why) or (None, why not, naming each licence).

    The answer depends only on the team, the lead's jurisdiction, product and customer type
    and the day, so it is remembered per policy (leads come in many of the same shape)."""
    key = _memo_key("team", team.id, lead, days)
    found = policy.memo.get(key)
    if found is None:
        if len(policy.memo) > _MEMO_LIMIT:
            policy.memo.clear()
        found = policy.memo[key] = _team_authority(team, lead, days, policy)
    return found


def _team_authority(team: Team, lead: Lead, days: Days, policy: Policy
                    ) -> tuple[License | None, str]:
    if not team.licenses:
        return None, "team holds no licences"
    reasons = []
    for lic in team.licenses:
        why_not = _gap(lic, lead) or _validity(lic, days)
        if why_not is None:
            authorised = policy.regulator_jurisdictions.get(lic.regulator)
            if authorised is None or not authorised.contains(lead.jurisdiction.code):
                why_not = (f"licence {lic.id}: the firm holds no {lic.regulator} "
                           f"authorisation for {lead.jurisdiction.code}")
        if why_not is None:
            return lic, f"{lic.regulator} licence {lic.id} covers {_what(lead)}, {_until(lic)}"
        reasons.append(why_not)
    return None, "; ".join(reasons)


def individual_licence(licenses: Iterable[License], lead: Lead, days: Days
                       ) -> License | None:
    for lic in licenses:
        if _gap(lic, lead) is None and _validity(lic, days) is None:
            return lic
    return None


def rep_licence(member: Member, lead: Lead, days: Days, policy: Policy) -> License | None:
    """The rep's own valid licence covering the lead, if any (remembered like team authority)."""
    # Keyed by the member itself, not its id: ids are unique within a team only, and the same
    # id in another team may hold no licence (the policy keeps its members, so id() is stable).
    key = _memo_key("rep", id(member), lead, days)
    if key in policy.memo:
        return policy.memo[key]  # type: ignore[no-any-return]
    if len(policy.memo) > _MEMO_LIMIT:
        policy.memo.clear()
    found = policy.memo[key] = individual_licence(member.licenses, lead, days)
    return found


def licence_notices(policy: Policy, today: date, *, soon_days: int = 30) -> list[str]:
    """Licences that do not count today, or stop counting within `soon_days`: a policy that
    loads may still route nothing a lapsed licence covered (those leads are refused
    `no_licensed_team`), which a person should hear of before the sync does it."""
    notices = []
    for team in policy.teams.values():
        held = [(f"team {team.id}", lic) for lic in team.licenses]
        held += [(f"rep {m.id} of team {team.id}", lic) for m in team.members
                 for lic in m.licenses]
        for whose, lic in held:
            what = f"{whose}: licence {lic.id} ({lic.regulator})"
            if lic.valid_until is not None and lic.valid_until < today:
                notices.append(f"{what} expired on {lic.valid_until}: nothing is routed under it")
            elif lic.valid_from > today:
                notices.append(f"{what} is valid only from {lic.valid_from}")
            elif lic.valid_until is not None and (lic.valid_until - today).days <= soon_days:
                notices.append(f"{what} expires on {lic.valid_until}, in "
                               f"{(lic.valid_until - today).days} day(s)")
    return notices
