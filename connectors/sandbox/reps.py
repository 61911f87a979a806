"""The people the sandbox creates as Salesforce users and HubSpot owners.

By default they are the reps of the example policy (examples/policy), so that the demo routes
to owners that exist; without it, a small generated sales team is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy"


@dataclass(frozen=True)
class Rep:
    salesforce_id: str
    hubspot_id: str
    name: str
    email: str
    active: bool = True
    hubspot_teams: tuple[tuple[str, str], ...] = ()  # (team id, team name) from the policy


def _email(name: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    local = ".".join(p for p in "".join(c if c.isalnum() else " " for c in folded).split())
    return f"{local}@northwind.example"


def coerce(reps: Iterable[Any]) -> list[Rep]:
    """Accept Rep, (sf id, hubspot id, name, email) tuples or dicts with those keys."""
    out: list[Rep] = []
    for rep in reps:
        if isinstance(rep, Rep):
            out.append(rep)
        elif isinstance(rep, Mapping):
            name = str(rep["name"])
            out.append(Rep(str(rep["salesforce_id"]), str(rep["hubspot_id"]), name,
                           str(rep.get("email") or _email(name)), bool(rep.get("active", True))))
        else:
            sf, hs, name, email = rep
            out.append(Rep(str(sf), str(hs), str(name), str(email or _email(str(name)))))
    return out


def from_policy(folder: Path = EXAMPLE_POLICY) -> list[Rep]:
    """Reps (team members with CRM ids) of a policy folder; [] if absent or unreadable."""
    if not folder.is_dir():
        return []
    return list(_read_cached(folder)[0])


def review_owner_from_policy(folder: Path = EXAMPLE_POLICY) -> str | None:
    """The HubSpot owner id of the policy's compliance review queue, if it names one."""
    return _read_cached(folder)[1] if folder.is_dir() else None


_CACHE: dict[tuple[tuple[str, int], ...], tuple[list[Rep], str | None]] = {}  # YAML is slow


def _read_cached(folder: Path) -> tuple[list[Rep], str | None]:
    files = sorted(folder.glob("*.y*ml"))
    key = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    if key not in _CACHE:
        _CACHE[key] = _read(files)
    return _CACHE[key]


def _read(files: list[Path]) -> tuple[list[Rep], str | None]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    reps: dict[str, Rep] = {}
    review_owner = None
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            if "teams:" not in text and "review:" not in text:
                continue  # only these sections name CRM users
            doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        queue = (doc.get("review") or {}).get("queue") if isinstance(doc.get("review"),
                                                                      dict) else None
        hs_queue = queue.get("hubspot") if isinstance(queue, dict) else None
        if isinstance(hs_queue, dict) and hs_queue.get("owner_id"):
            review_owner = str(hs_queue["owner_id"])
        teams = doc.get("teams")
        if not isinstance(teams, dict):
            continue
        for team_key, team in teams.items():
            team = team or {}
            team_crm = (team.get("crm") or {}).get("hubspot") or {}
            team_id = str(team_crm.get("team_id")) if isinstance(team_crm, dict) and \
                team_crm.get("team_id") else None
            for member in team.get("members") or []:
                crm = (member or {}).get("crm") or {}
                sf, hs = crm.get("salesforce"), crm.get("hubspot")
                if not sf or not hs:
                    continue
                name = str(member.get("name") or member.get("id"))
                known = reps.get(str(sf))
                teams_of = known.hubspot_teams if known else ()
                if team_id:
                    teams_of += ((team_id, str(team.get("name") or team_key)),)
                reps[str(sf)] = Rep(str(sf), str(hs), name,
                                    str(member.get("email") or _email(name)),
                                    hubspot_teams=teams_of)
    return list(reps.values()), review_owner


GENERATED = [
    Rep("005000000000001AAA", "71001", "Alice Okafor", "alice.okafor@northwind.example"),
    Rep("005000000000002AAA", "71002", "Bob Lindqvist", "bob.lindqvist@northwind.example"),
    Rep("005000000000003AAA", "71003", "Carol Mbeki", "carol.mbeki@northwind.example"),
    Rep("005000000000004AAA", "71004", "Dmitri Novak", "dmitri.novak@northwind.example"),
    Rep("005000000000005AAA", "71005", "Eleni Papadaki", "eleni.papadaki@northwind.example"),
    Rep("005000000000006AAA", "71006", "Farid Haddad", "farid.haddad@northwind.example"),
    Rep("005000000000007AAA", "71007", "Grace Whitfield", "grace.whitfield@northwind.example"),
    Rep("005000000000008AAA", "71008", "Hiro Tanaka", "hiro.tanaka@northwind.example"),
]


def default_reps() -> list[Rep]:
    return from_policy() or list(GENERATED)


def default_review_owner() -> str:
    return review_owner_from_policy() or "90001"
