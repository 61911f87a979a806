"""Screening a lead against loaded sanctions, PEP and blocklist entries.

Pure matching: the entries are handed in (see `sync.screening_lists` for reading the files), so
this module does no I/O. Names are compared after folding case, accents and punctuation, with
word order ignored ("KARVOSSEN, Taras" matches "Taras Karvossen"); invisible characters are
dropped and Cyrillic or Greek look-alikes inside a Latin word read as Latin, and a word written
wholly in look-alikes is screened both as written and as Latin, so none of them can hide a listed
name. A list name whose words are all in the lead's name (or the other way round) also
matches when they share at least two words, which catches a middle name left out without
letting one common word decide. Emails, domains and phones are exact; a lead's phone written
nationally is also read in the lead's country (a listed number is best written "+44 ...").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from routing_core.screening import Check, ScreeningResult

if TYPE_CHECKING:
    from routing_core.lead import Lead

_WORD = re.compile(r"[^\W_]+", re.UNICODE)   # a run of letters and digits


# Cyrillic and Greek letters drawn like Latin ones (as casefolded). No real name mixes the
# scripts within a word, so a word that does is a disguise ("Kаrvоssen" with Cyrillic а and о)
# and is read as the Latin word it imitates.
LOOKALIKES: dict[str, str] = {
    "а": "a", "в": "b", "г": "r", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "п": "n",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ү": "y",
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ζ": "z", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
}
_AS_LATIN = str.maketrans(LOOKALIKES)
# Variation selectors: invisible, and not Cf (they are marks of combining class 0).
_VARIATION = frozenset(map(chr, (*range(0x180B, 0x1810), *range(0xFE00, 0xFE10),
                                 *range(0xE0100, 0xE01F0))))


def fold_name(name: str) -> str:
    """Case-, accent- and punctuation-folded words of a name, sorted.

    Accents (combining marks) and invisible characters (zero-width spaces and joiners, soft
    hyphens, direction marks, variation selectors) are dropped, never read as a break between
    words: "Karvossen" with a zero-width space inside is "karvossen". The vowel signs of Indic
    scripts are not accents and stay (as breaks, as they always were: two names differing in
    them stay apart). A word mixing Latin letters with LOOKALIKES is read as Latin.
    """
    if name.isascii():   # nothing to decompose, no mark, no invisible one, no look-alike
        return " ".join(sorted(_WORD.findall(name.casefold())))
    decomposed = unicodedata.normalize("NFKD", name).casefold()
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch)
                   and unicodedata.category(ch) != "Cf" and ch not in _VARIATION)
    return " ".join(sorted(map(_as_latin, _WORD.findall(kept))))


def _as_latin(word: str) -> str:
    if word.isascii() or not any("a" <= ch <= "z" for ch in word):
        return word
    return word.translate(_AS_LATIN)


def latin_reading(folded: str) -> str | None:
    """A folded name with each word written wholly in LOOKALIKES read as Latin ("кагνоѕѕеп"
    is "karvossen"), or None when it has no such word. The name is screened under both
    readings: such a word may be a real Cyrillic or Greek name, or a Latin one in disguise."""
    if folded.isascii():
        return None
    words = folded.split()
    read = [w.translate(_AS_LATIN) if not w.isascii() and all(ch in LOOKALIKES for ch in w)
            else w for w in words]
    return " ".join(sorted(read)) if read != words else None


def name_words(folded: str) -> tuple[str, ...]:
    """The distinct words of a folded name, sorted (what the shared-words rule compares)."""
    return tuple(sorted(set(folded.split())))


def phone_digits(phone: str) -> str:
    """Digits of a phone number without an international prefix ("00" or "+")."""
    digits = "".join(filter(str.isdigit, phone))
    return digits[2:] if digits.startswith("00") else digits


def phone_keys(phone: str, country: str | None = None) -> tuple[str, ...]:
    """The digits a phone number is looked up by: as written (`phone_digits`) and, unless it is
    written plainly in international form, also read as a number of `country`: "07700 900999"
    in GB is 447700900999, and "+44 (0)7700 900999" drops its trunk 0 the same way."""
    digits = phone_digits(phone)
    if phone.lstrip().startswith("+") and "(" not in phone:
        return (digits,) if digits else ()
    international = _international_digits(phone, country)
    return tuple(dict.fromkeys(k for k in (digits, international) if k))


def _international_digits(phone: str, country: str | None) -> str | None:
    import phonenumbers  # its metadata loads on first use: only for numbers that need it

    try:
        number = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


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
    _words: frozenset[str] = field(init=False, repr=False)
    _pair_index: dict[tuple[str, str], list[int]] = field(init=False, repr=False)
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
            for phone in entry.phones:  # no country here: a national number as written
                for key in phone_keys(phone):
                    phones.setdefault(key, index)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_owners", owners)
        # Every pair of distinct words of a spelling -> the spellings (in list order) that
        # hold both: the spellings sharing two words with a name are found by looking up
        # the name's own pairs, however common each word is on a large list.
        pair_index: dict[tuple[str, str], list[int]] = {}
        for position, folded in enumerate(names):
            for pair in combinations(name_words(folded), 2):
                pair_index.setdefault(pair, []).append(position)
        object.__setattr__(self, "_words", frozenset(w for n in names for w in n.split()))
        object.__setattr__(self, "_pair_index", pair_index)
        object.__setattr__(self, "_emails", emails)
        object.__setattr__(self, "_domains", domains)
        object.__setattr__(self, "_phones", phones)

    def best_name_match(self, folded: str, words: tuple[str, ...] | None = None
                        ) -> tuple[float, int | None, str | None]:
        """(score 0..1, entry index, the list spelling) of the closest name, or (0, None, None).

        Word order never matters: both sides are folded with their words sorted, so plain
        edit-distance similarity on them is token-sort similarity, computed in rapidfuzz's C++
        without re-sorting 30,000 list names for every lead. A list name whose words are all in
        the lead's name, or the other way round, scores full marks only when the two share two
        or more words (a middle name left out still matches; one common word never decides);
        the pair index finds those few candidates without scanning the list again. Ties go to
        the earlier spelling of the list; a shared-words score replaces the best plain score
        only when it is higher. `words` is `name_words(folded)`, when the caller has it.
        """
        if not folded or not self._names:
            return 0.0, None, None
        found = process.extractOne(folded, self._names, scorer=fuzz.ratio, processor=None)
        if found is None:
            return 0.0, None, None
        spelling, score, position = found
        if words is None:
            words = name_words(folded)
        # Shared words can only raise a score below full marks, and need two words known here.
        if score < 100 and len(words) > 1 and not self._words.isdisjoint(words):
            for candidate in self._sharing_two_words(words):
                shared = fuzz.token_set_ratio(folded, self._names[candidate], processor=None)
                if shared > score:
                    spelling, score, position = self._names[candidate], shared, candidate
        return round(score / 100.0, 4), self._owners[position], spelling

    def _sharing_two_words(self, words: tuple[str, ...]) -> list[int]:
        """Positions, in list order, of list names sharing at least two of `words` (distinct,
        sorted)."""
        known = [word for word in words if word in self._words]
        if len(known) < 2:
            return []
        if len(known) == 2:
            return self._pair_index.get((known[0], known[1]), [])
        found: set[int] = set()
        for pair in combinations(known, 2):
            found.update(self._pair_index.get(pair, ()))
        return sorted(found)

    def exact_contact_match(self, lead: Lead) -> tuple[int, str] | None:
        """(entry index, which field) for an email, domain or phone on the list."""
        if lead.email:
            email = lead.email.strip().casefold()
            if email in self._emails:
                return self._emails[email], "email"
            domain = email.rpartition("@")[2]
            if domain in self._domains:
                return self._domains[domain], "domain"
        if lead.phone and self._phones:
            for key in phone_keys(lead.phone, lead.jurisdiction.country):
                if key in self._phones:
                    return self._phones[key], "phone"
        return None


def lead_names(lead: Lead) -> list[str]:
    """The names a lead is screened under: the person's full name and the company's."""
    names = []
    person = " ".join(filter(None, (lead.first_name, lead.last_name)))
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
        # Each name is folded, and its words listed, once for all the lists.
        names = []
        for folded in map(fold_name, lead_names(lead)):
            names.append((folded, name_words(folded)))
            latin = latin_reading(folded)
            if latin is not None:
                names.append((latin, name_words(latin)))
        return [self._screen_one(loaded, lead, names) for loaded in self.lists]

    def _screen_one(self, loaded: LoadedList, lead: Lead,
                    names: list[tuple[str, tuple[str, ...]]]) -> ScreeningResult:
        if loaded.check == "blocklist":   # a listed contact decides before any name
            contact = loaded.exact_contact_match(lead)
            if contact is not None:
                entry = loaded.entries[contact[0]]
                return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, True, 1.0,
                                       {"entry": entry.entry_id, "matched_on": contact[1]})
        best: tuple[float, int | None, str | None] = (0.0, None, None)
        for folded, words in names:
            found = loaded.best_name_match(folded, words)
            if found[0] > best[0]:
                best = found
        score, index, spelling = best
        if index is not None and score >= self.threshold:
            entry = loaded.entries[index]
            return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, True, score,
                                   {"entry": entry.entry_id, "name": entry.name,
                                    "matched_on": "name", "spelling": spelling})
        return ScreeningResult(loaded.check, loaded.list_id, loaded.digest, False, score)
