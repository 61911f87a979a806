"""Screening a lead against loaded sanctions, PEP and blocklist entries.

Pure matching: the entries are handed in (see `sync.screening_lists` for reading the files), so
this module does no I/O. Names are compared after folding case, accents and punctuation, with
word order ignored ("KARVOSSEN, Taras" matches "Taras Karvossen"); a list name whose words are
all in the lead's name (or the other way round) also matches when they share at least two words,
which catches a middle name left out without letting one common word decide.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from routing_core.screening import Check, ScreeningResult

if TYPE_CHECKING:
    from routing_core.lead import Lead

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def fold_name(name: str) -> str:
    """Case-, accent- and punctuation-folded words of a name, sorted."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _NOT_WORD.sub(" ", stripped.casefold()).split()
    return " ".join(sorted(words))


def phone_digits(phone: str) -> str:
    """Digits of a phone number without an international prefix ("00" or "+")."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[2:] if digits.startswith("00") else digits


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One entry of a list: its id, its primary name and every spelling it is known by."""

    entry_id: str
    name: str
    aliases: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedList:
    """A list read from its file: which check it serves, its id, its file digest, its entries."""

    check: Check
    list_id: str
    digest: str
    entries: Sequence[ListEntry]
    # Derived indexes, built once per list.
    _names: list[str] = field(init=False, repr=False)
    _owners: list[int] = field(init=False, repr=False)
    _word_index: dict[str, list[int]] = field(init=False, repr=False)
    _emails: dict[str, int] = field(init=False, repr=False)
    _domains: dict[str, int] = field(init=False, repr=False)
    _phones: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        owners: list[int] = []
        emails: dict[str, int] = {}
        domains: dict[str, int] = {}
        phones: dict[str, int] = {}
        for index, entry in enumerate(self.entries):
            for spelling in (entry.name, *entry.aliases):
                folded = fold_name(spelling)
                if folded:
                    names.append(folded)
                    owners.append(index)
            for email in entry.emails:
                emails.setdefault(email.strip().casefold(), index)
            for domain in entry.domains:
                domains.setdefault(domain.strip().casefold().lstrip("@"), index)
            for phone in entry.phones:
                if phone_digits(phone):
                    phones.setdefault(phone_digits(phone), index)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_owners", owners)
        word_index: dict[str, list[int]] = {}
        for position, folded in enumerate(names):
            for word in set(folded.split()):
                word_index.setdefault(word, []).append(position)
        object.__setattr__(self, "_word_index", word_index)
        object.__setattr__(self, "_emails", emails)
        object.__setattr__(self, "_domains", domains)
        object.__setattr__(self, "_phones", phones)

    def best_name_match(self, folded: str) -> tuple[float, int | None, str | None]:
        """(score 0..1, entry index, the list spelling) of the closest name, or (0, None, None).

        Word order never matters: both sides are folded with their words sorted, so plain
        edit-distance similarity on them is token-sort similarity, computed in rapidfuzz's C++
        without re-sorting 30,000 list names for every lead. A list name whose words are all in
        the lead's name, or the other way round, scores full marks only when the two share two
        or more words (a middle name left out still matches; one common word never decides);
        the word index finds those few candidates without scanning the list again.
        """
        if not folded or not self._names:
            return 0.0, None, None
        found = process.extractOne(folded, self._names, scorer=fuzz.ratio, processor=None)
        best: tuple[float, int | None, str | None] = (0.0, None, None)
        if found is not None:
            best = (found[1], found[2], found[0])
        for position in self._sharing_two_words(folded):
            spelling = self._names[position]
            score = fuzz.token_set_ratio(folded, spelling, processor=None)
            if score > best[0]:
                best = (score, position, spelling)
        score, position, spelling = best
        if position is None:
            return 0.0, None, None
        return round(score / 100.0, 4), self._owners[position], spelling

    def _sharing_two_words(self, folded: str) -> list[int]:
        """Positions of list names that share at least two distinct words with `folded`."""
        seen: dict[int, int] = {}
        for word in set(folded.split()):
            for position in self._word_index.get(word, ()):
                seen[position] = seen.get(position, 0) + 1
        return [position for position, count in seen.items() if count >= 2]

    def exact_contact_match(self, lead: Lead) -> tuple[int, str] | None:
        """(entry index, which field) for an email, domain or phone on the list."""
        if lead.email:
            email = lead.email.strip().casefold()
            if email in self._emails:
                return self._emails[email], "email"
            domain = email.rpartition("@")[2]
            if domain in self._domains:
                return self._domains[domain], "domain"
        if lead.phone and phone_digits(lead.phone) in self._phones:
            return self._phones[phone_digits(lead.phone)], "phone"
        return None


def lead_names(lead: Lead) -> list[str]:
    """The names a lead is screened under: the person's full name and the company's."""
    names = []
    person = " ".join(part for part in (lead.first_name, lead.last_name) if part)
    if person:
        names.append(person)
    if lead.company:
        names.append(lead.company)
    return names


class ListScreener:
    """Screens every lead against every loaded list; one result per list."""

    def __init__(self, lists: Sequence[LoadedList], *, threshold: float) -> None:
        self.lists = tuple(lists)
        self.threshold = threshold

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        folded = [fold_name(name) for name in lead_names(lead)]
        return [self._screen_one(loaded, lead, folded) for loaded in self.lists]

    def _screen_one(self, loaded: LoadedList, lead: Lead, folded: list[str]
                    ) -> ScreeningResult:
        best: tuple[float, int | None, str | None] = (0.0, None, None)
        for name in folded:
            found = loaded.best_name_match(name)
            if found[0] > best[0]:
                best = found
        score, index, spelling = best
        if loaded.check == "blocklist":
            contact = loaded.exact_contact_match(lead)
            if contact is not None:
                entry = loaded.entries[contact[0]]
                return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, True, 1.0,
                                       {"entry": entry.entry_id, "matched_on": contact[1]})
        if index is not None and score >= self.threshold:
            entry = loaded.entries[index]
            return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, True, score,
                                   {"entry": entry.entry_id, "name": entry.name,
                                    "matched_on": "name", "spelling": spelling})
        return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, False, score)
