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
    files = sorted(folder.glob("*.y*ml"))
    key = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    if key not in _CACHE:
        _CACHE[key] = _read(files)
    return list(_CACHE[key])


_CACHE: dict[tuple[tuple[str, int], ...], list[Rep]] = {}  # parsing YAML is slow; once per process


def _read(files: list[Path]) -> list[Rep]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    reps: dict[str, Rep] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            if "teams:" not in text:
                continue  # only team files name reps
            doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError):
            continue
        teams = doc.get("teams") if isinstance(doc, dict) else None
        if not isinstance(teams, dict):
            continue
        for team in teams.values():
            for member in (team or {}).get("members") or []:
                crm = (member or {}).get("crm") or {}
                sf, hs = crm.get("salesforce"), crm.get("hubspot")
                if not sf or not hs:
                    continue
                name = str(member.get("name") or member.get("id"))
                reps[str(sf)] = Rep(str(sf), str(hs), name,
                                    str(member.get("email") or _email(name)))
    return list(reps.values())


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
