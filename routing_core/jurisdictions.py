"""ISO 3166 jurisdictions: resolving what people write, groups, and containment.

A jurisdiction is an ISO 3166-1 alpha-2 country ("GB") or an ISO 3166-2 subdivision ("US-NY").
A subdivision lies inside its country and inside its parent subdivisions ("GB-LND" is inside
"GB-ENG" and "GB"), so a licence for a wider area covers a narrower one, never the reverse.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import pycountry

_pc: Any = pycountry  # pycountry ships without type hints

# Names people and CRMs commonly use that ISO does not list.
COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "britain": "GB",
    "united kingdom": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "united states": "US",
    "united states of america": "US",
    "uae": "AE",
    "emirates": "AE",
    "holland": "NL",
    "the netherlands": "NL",
    "south korea": "KR",
    "korea": "KR",
    "russia": "RU",
    "czech republic": "CZ",
    "turkey": "TR",
}

_EU = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)

# Built-in groups (membership as of 2026). `@NAME` refers to them in any jurisdiction list.
BUILTIN_GROUPS: dict[str, tuple[str, ...]] = {
    "EU": tuple(_EU),
    "EEA": tuple(_EU + ["IS", "LI", "NO"]),
    "GCC": ("AE", "BH", "KW", "OM", "QA", "SA"),
    "US_STATES": tuple(
        sorted(
            s.code
            for s in _pc.subdivisions.get(country_code="US") or []
            if s.type in ("State", "District")
        )
    ),
}


class UnknownJurisdiction(ValueError):
    """What was written names no ISO 3166 country or subdivision."""


@functools.lru_cache(maxsize=4096)
def resolve_country(text: str) -> str:
    """Return the alpha-2 code for a code, alias or name ("UK", "gbr", "United States")."""
    key = text.strip()
    if not key:
        raise UnknownJurisdiction("empty country")
    alias = COUNTRY_ALIASES.get(key.lower())
    if alias:
        return alias
    if len(key) == 2:
        found = _pc.countries.get(alpha_2=key.upper())
    elif len(key) == 3:
        found = _pc.countries.get(alpha_3=key.upper())
    else:
        found = None
    if found is None:
        try:
            found = _pc.countries.lookup(key)
        except LookupError:
            found = None
    if found is None:
        raise UnknownJurisdiction(f"{text!r} is not an ISO 3166 country code or name")
    return str(found.alpha_2)


@functools.lru_cache(maxsize=256)
def _subdivision_index(country: str) -> dict[str, str]:
    """Lower-cased code suffix, full code and name -> ISO 3166-2 code, for one country."""
    index: dict[str, str] = {}
    for sub in _pc.subdivisions.get(country_code=country) or []:
        code = str(sub.code)
        index[code.lower()] = code
        index[code.split("-", 1)[1].lower()] = code
        index.setdefault(str(sub.name).lower(), code)
    return index


@functools.lru_cache(maxsize=8192)
def resolve_subdivision(country: str, text: str) -> str:
    """Return the ISO 3166-2 code of a subdivision of `country` ("NY", "US-NY", "New York")."""
    code = _subdivision_index(country).get(text.strip().lower())
    if code is None:
        raise UnknownJurisdiction(f"{text!r} is not a subdivision of {country} (ISO 3166-2)")
    return code


@functools.lru_cache(maxsize=8192)
def resolve(text: str) -> tuple[str, str | None]:
    """Resolve "GB", "US-NY", "UK" or "United States" to (country, subdivision or None)."""
    key = text.strip()
    if "-" in key and len(key) <= 6 and key[:2].isalpha():
        country = key[:2].upper()
        if _pc.countries.get(alpha_2=country) is not None:
            return country, resolve_subdivision(country, key)
    return resolve_country(key), None


def is_valid_code(code: str) -> bool:
    """True for an exact ISO alpha-2 country or ISO 3166-2 subdivision code (as policies write)."""
    if len(code) == 2:
        return code.isupper() and _pc.countries.get(alpha_2=code) is not None
    return code[:2].isupper() and code in _subdivision_index(code[:2]).values()


@functools.lru_cache(maxsize=8192)
def ancestors(code: str) -> frozenset[str]:
    """The code itself, its parent subdivisions and its country."""
    out = {code, code[:2]}
    current: str | None = code
    while current and len(current) > 2:
        sub = _pc.subdivisions.get(code=current)
        parent = getattr(sub, "parent_code", None) if sub is not None else None
        current = str(parent) if parent else None
        if current:
            out.add(current)
    return frozenset(out)


class JurisdictionSet:
    """A compiled jurisdiction list: does it contain a lead's jurisdiction?"""

    __slots__ = ("codes",)

    def __init__(self, codes: Iterable[str]) -> None:
        self.codes = frozenset(codes)

    def contains(self, code: str | None) -> bool:
        if code is None:
            return False
        if code in self.codes:
            return True
        if len(code) == 2:
            return False
        return not self.codes.isdisjoint(ancestors(code))

    def __repr__(self) -> str:
        return f"JurisdictionSet({sorted(self.codes)})"
