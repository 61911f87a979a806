"""The list screener the sync job uses: the policy's sanctions, PEP and blocklist files.

routing_core defines the `Screener` protocol and does no I/O; this reads the files the policy
names (paths relative to the policy folder), once, and matches names with rapidfuzz. A file that
cannot be read or parsed makes every `screen()` raise `ScreeningUnavailable`, so each lead is
refused `screening_unavailable` (and re-evaluated on later runs), never routed unscreened.

Formats: `ofac_sdn_csv` (OFAC's sdn.csv: no header, "LAST, First" names, a.k.a. in remarks),
`opensanctions_simple` (OpenSanctions targets.simple.csv: name, ";"-separated aliases, phones,
emails), `csv` (blocklist: name, email, domain, phone).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from routing_core.lead import Lead
from routing_core.screening import ScreeningResult, ScreeningUnavailable

_AKA = re.compile(r"a\.k\.a\. '([^']+)'")


def normalise_name(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@dataclass
class _List:
    id: str
    check: str  # sanctions | pep | blocklist
    digest: str
    names: list[str] = field(default_factory=list)  # normalised, one per name or alias
    entries: list[dict[str, Any]] = field(default_factory=list)  # entry of each name
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    phones: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_name(self, name: str, entry: dict[str, Any]) -> None:
        norm = normalise_name(name)
        if norm:
            self.names.append(norm)
            self.entries.append(entry)


def _sdn_name(raw: str) -> str:
    last, _, first = raw.partition(",")
    return f"{first.strip()} {last.strip()}".strip()


def _read(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return data.decode("utf-8-sig"), "sha256:" + hashlib.sha256(data).hexdigest()


def _load(list_id: str, check: str, fmt: str, path: Path) -> _List:
    text, digest = _read(path)
    out = _List(list_id, check, digest)
    if fmt == "ofac_sdn_csv":
        for row in csv.reader(io.StringIO(text)):
            if len(row) < 2:
                continue
            entry = {"id": row[0].strip(), "name": row[1].strip()}
            out.add_name(_sdn_name(row[1]), entry)
            out.add_name(row[1], entry)
            for alias in _AKA.findall(row[-1] if len(row) > 2 else ""):
                out.add_name(_sdn_name(alias), entry)
    elif fmt == "opensanctions_simple":
        for row in csv.DictReader(io.StringIO(text)):
            entry = {"id": row.get("id", ""), "name": row.get("name", "")}
            out.add_name(row.get("name") or "", entry)
            for alias in (row.get("aliases") or "").split(";"):
                out.add_name(alias, entry)
            for email in (row.get("emails") or "").split(";"):
                if email.strip():
                    out.emails[email.strip().casefold()] = entry
            for phone in (row.get("phones") or "").split(";"):
                if _digits(phone):
                    out.phones[_digits(phone)] = entry
    elif fmt == "csv":
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            entry = {"line": n}
            if (row.get("name") or "").strip():
                out.add_name(row["name"], {**entry, "name": row["name"].strip()})
            if (row.get("email") or "").strip():
                out.emails[row["email"].strip().casefold()] = {**entry, "email": True}
            if (row.get("domain") or "").strip():
                out.domains[row["domain"].strip().casefold()] = {**entry, "domain":
                                                                 row["domain"].strip()}
            if _digits(row.get("phone") or ""):
                out.phones[_digits(row["phone"])] = {**entry, "phone": True}
    else:
        raise ValueError(f"unknown list format {fmt!r}")
    return out


class ListScreener:
    def __init__(self, specs: Sequence[tuple[str, str, str, Path]], threshold: float) -> None:
        self.threshold = threshold
        self.lists: list[_List] = []
        self.problem: str | None = None
        try:
            self.lists = [_load(list_id, check, fmt, path) for list_id, check, fmt, path in specs]
        except (OSError, ValueError, csv.Error, UnicodeDecodeError) as exc:
            # Fail closed, but keep the reason: every lead is refused screening_unavailable.
            self.problem = f"{type(exc).__name__}: {exc}"

    @classmethod
    def from_policy(cls, policy: Any) -> ListScreener:
        section = dict(policy.screening or {})
        base = Path(policy.files[0]).parent if getattr(policy, "files", ()) else Path(".")
        specs: list[tuple[str, str, str, Path]] = []
        for item in section.get("lists") or []:
            specs.append((item["id"], "sanctions", item["format"], base / item["path"]))
        if section.get("pep"):
            pep = section["pep"]
            specs.append((pep.get("id", "pep"), "pep", pep["format"], base / pep["path"]))
        if section.get("blocklist"):
            bl = section["blocklist"]
            specs.append((bl.get("id", "blocklist"), "blocklist", bl.get("format", "csv"),
                          base / bl["path"]))
        return cls(specs, float(section.get("match_threshold", 0.9)))

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        if self.problem is not None:
            raise ScreeningUnavailable(self.problem)
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.company or ""
        query = normalise_name(name)
        email = (lead.email or "").strip().casefold()
        domain = email.rpartition("@")[2]
        phone = _digits(lead.phone or "")
        results = []
        for lst in self.lists:
            hit: dict[str, Any] | None = None
            best = 0.0
            if query and lst.names:
                found = process.extractOne(query, lst.names, scorer=fuzz.token_sort_ratio)
                if len(query.split()) >= 2:
                    # A listed name with a middle name or patronymic the lead left out
                    # ("Taras Karvossen" / "Taras Ilvenovich Karvossen") is still the person.
                    subset = process.extractOne(query, lst.names, scorer=fuzz.token_set_ratio)
                    if subset is not None and (found is None or subset[1] > found[1]):
                        found = subset
                if found is not None:
                    best = round(found[1] / 100.0, 4)
                    if best >= self.threshold:
                        hit = {**lst.entries[found[2]], "matched_on": "name"}
            for value, table, what in ((email, lst.emails, "email"),
                                       (domain, lst.domains, "domain"),
                                       (phone, lst.phones, "phone")):
                if hit is None and value and value in table:
                    hit = {**table[value], "matched_on": what}
            results.append(ScreeningResult(lst.check, lst.id, lst.digest, hit is not None,  # type: ignore[arg-type]
                                           best, hit))
        return results
