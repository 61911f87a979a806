"""A screener over the list files a policy's `screening:` section names.

Like `load_policy`, `load_screener` reads files once, up front; screening a lead is then pure
computation (no I/O per lead). Formats:

* ``ofac_sdn_csv``: OFAC's sdn.csv (no header; name in column 2 as "LAST, First"; a.k.a. names
  and e-mail addresses in the remarks column);
* ``opensanctions_simple``: OpenSanctions' targets.simple.csv (id, schema, name, aliases
  separated by ";", emails, phones, ...);
* ``csv``: an internal blocklist with columns name, email, domain, phone.

Names are compared after Unicode folding (accents removed, case folded, punctuation dropped)
with rapidfuzz token scores, so word order ("KARVOSSEN, Taras") and a missing middle name do
not hide a match; a score at or above `match_threshold` is a hit. Each result records the list
id, the list file's SHA-256 digest, the best score and the matched entry. A list that cannot be
read makes a screener that refuses every lead (`screening_unavailable`): never route unscreened.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from routing_core.lead import Lead
from routing_core.policy.model import Policy
from routing_core.screening import Check, ScreeningResult, ScreeningUnavailable

_AKA = re.compile(r"a\.k\.a\.\s*'([^']+)'", re.IGNORECASE)
_EMAIL = re.compile(r"Email Address\s+(\S+?@\S+?)(?:;|$|\s)", re.IGNORECASE)


def fold(name: str) -> str:
    """Lower-case, accent-free, punctuation-free words in a stable form for comparison."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = re.sub(r"[^\w]+", " ", plain.casefold()).split()
    return " ".join(words)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


@dataclass
class Entry:
    record: dict[str, Any]
    names: list[str] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)


@dataclass
class ScreeningList:
    id: str
    check: Check
    digest: str
    entries: list[Entry]
    choices: list[str] = field(default_factory=list)     # folded names
    owners: list[int] = field(default_factory=list)       # choice -> entry index

    def __post_init__(self) -> None:
        for i, entry in enumerate(self.entries):
            for name in entry.names:
                for variant in _variants(fold(name)):
                    self.choices.append(variant)
                    self.owners.append(i)


def _variants(folded: str) -> list[str]:
    """The name, and for names of three or four words every two-word pair of them, so that a
    lead giving first and last name only is compared with exactly those two words (and a typo
    in them still scores high)."""
    if not folded:
        return []
    words = folded.split()
    out = [folded]
    if 3 <= len(words) <= 4:
        out += [f"{a} {b}" for a, b in itertools.combinations(words, 2)]
    return out


def _ofac(text: str) -> list[Entry]:
    entries = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            continue
        remarks = row[11] if len(row) > 11 else ""
        entry = Entry(record={"id": row[0].strip(), "name": row[1].strip(),
                              "program": row[3].strip() if len(row) > 3 else None})
        entry.names = [row[1]] + _AKA.findall(remarks)
        entry.emails = {e.casefold().rstrip(".") for e in _EMAIL.findall(remarks)}
        entries.append(entry)
    return entries


def _opensanctions(text: str) -> list[Entry]:
    entries = []
    for row in csv.DictReader(io.StringIO(text)):
        name = (row.get("name") or "").strip()
        if not name:
            continue
        entry = Entry(record={"id": row.get("id"), "name": name, "schema": row.get("schema"),
                              "sanctions": row.get("sanctions") or None})
        entry.names = [name] + [a for a in (row.get("aliases") or "").split(";") if a.strip()]
        entry.emails = {e.strip().casefold() for e in (row.get("emails") or "").split(";")
                        if e.strip()}
        entry.phones = {_digits(p) for p in (row.get("phones") or "").split(";") if _digits(p)}
        entries.append(entry)
    return entries


def _blocklist(text: str) -> list[Entry]:
    entries = []
    for row in csv.DictReader(io.StringIO(text)):
        entry = Entry(record={k: v for k, v in row.items() if v})
        if (row.get("name") or "").strip():
            entry.names = [row["name"]]
        if (row.get("email") or "").strip():
            entry.emails = {row["email"].strip().casefold()}
        if (row.get("domain") or "").strip():
            entry.domains = {row["domain"].strip().casefold().lstrip("@")}
        if _digits(row.get("phone") or ""):
            entry.phones = {_digits(row["phone"])}
        if entry.record:
            entries.append(entry)
    return entries


PARSERS = {"ofac_sdn_csv": _ofac, "opensanctions_simple": _opensanctions, "csv": _blocklist}


def best_name_match(query: str, choices: Sequence[str]) -> tuple[float, int] | None:
    """(score 0..1, index) of the closest name. Word order and extra middle names do not
    matter (token scores); a single-word query is compared whole, so "Taras" alone never
    matches "Taras Karvossen". Both scorers run in rapidfuzz's C code over the whole list."""
    if not choices:
        return None
    best = process.extractOne(query, choices, scorer=fuzz.token_sort_ratio)
    if " " in query:
        subset = process.extractOne(query, choices, scorer=fuzz.token_set_ratio)
        if subset is not None and (best is None or subset[1] > best[1]):
            best = subset
    return None if best is None else (float(best[1]) / 100, int(best[2]))


class ListScreener:
    """Screens leads against lists read up front (see the module docstring)."""

    def __init__(self, lists: Sequence[ScreeningList], threshold: float) -> None:
        self.lists = list(lists)
        self.threshold = threshold

    def _names(self, lead: Lead) -> list[str]:
        names = []
        person = " ".join(p for p in (lead.first_name, lead.last_name) if p)
        if person:
            names.append(fold(person))
        if lead.company:
            names.append(fold(lead.company))
        return [n for n in names if n]

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        names = self._names(lead)
        email = (lead.email or "").casefold()
        domain = email.rsplit("@", 1)[1] if "@" in email else ""
        phone = _digits(lead.phone or "")
        results = []
        for screening_list in self.lists:
            best, matched = 0.0, None
            for name in names:
                found = best_name_match(name, screening_list.choices)
                if found is not None and found[0] > best:
                    best = found[0]
                    entry = screening_list.entries[screening_list.owners[found[1]]]
                    matched = {**entry.record, "matched_name": screening_list.choices[found[1]],
                               "on": "name"}
            for entry in screening_list.entries:
                how = ("email" if email and email in entry.emails else
                       "domain" if domain and domain in entry.domains else
                       "phone" if phone and phone in entry.phones else None)
                if how:
                    best, matched = 1.0, {**entry.record, "on": how}
                    break
            hit = best >= self.threshold
            results.append(ScreeningResult(screening_list.check, screening_list.id,
                                           screening_list.digest, hit, round(best, 4),
                                           matched if hit else None))
        return results


class UnavailableScreener:
    """Refuses every lead: the lists could not be read (fail closed)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        raise ScreeningUnavailable(self.reason)


def _base(policy: Policy) -> Path:
    if not policy.files:
        return Path.cwd()
    first = Path(policy.files[0])
    return first.parent


def load_screener(policy: Policy, base: Path | None = None
                  ) -> ListScreener | UnavailableScreener | None:
    """The screener for `policy` (None when it declares no screening)."""
    config = policy.screening
    if config is None:
        return None
    folder = base or _base(policy)
    wanted: list[tuple[str, Check, dict[str, Any]]] = [
        (item["id"], "sanctions", item) for item in config.get("lists") or []]
    if config.get("pep"):
        wanted.append(("pep", "pep", config["pep"]))
    if config.get("blocklist"):
        wanted.append(("blocklist", "blocklist", config["blocklist"]))
    lists = []
    for list_id, check, item in wanted:
        parser = PARSERS.get(item["format"])
        if parser is None:
            return UnavailableScreener(f"list {list_id}: unknown format {item['format']!r} "
                                       f"(formats: {', '.join(PARSERS)})")
        path = folder / item["path"]
        try:
            data = path.read_bytes()
            entries = parser(data.decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            return UnavailableScreener(f"list {list_id} ({path}) cannot be read: {exc}")
        lists.append(ScreeningList(list_id, check, "sha256:" + hashlib.sha256(data).hexdigest(),
                                   entries))
    return ListScreener(lists, float(config.get("match_threshold", 0.9)))
