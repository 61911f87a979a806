"""Seeded, lazy generator of realistic leads.

Record i of a stream is a pure function of (seed, stream, i): nothing is generated up front,
so 500,000 leads cost nothing until read, and a run is reproducible from its seed.
All names are fictional; the watch-list names below are invented for screening tests.
"""

from __future__ import annotations

import random
import threading
from array import array
from bisect import bisect
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from .schema import CURRENCIES, CUSTOMER_TYPES, LEAD_SOURCES, PRODUCTS

# culture -> (given names, family names, family-name-first?, latin-script?)
_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool, bool]] = {
    "en": (("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Noah",
            "Grace", "James", "Emily", "William", "Sophie", "Thomas", "Chloe"),
           ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "O'Brien", "Hughes"),
           False, True),
    "es": (("José", "María", "Álvaro", "Lucía", "Iñigo", "Nuria"),
           ("García", "Fernández", "López", "Martínez", "Muñoz", "Pérez"), False, True),
    "de": (("Jürgen", "Anke", "Björn", "Käthe", "Lukas", "Sören"),
           ("Müller", "Schäfer", "Groß", "Weiß", "Köhler", "Becker"), False, True),
    "fr": (("Élodie", "François", "Zoë", "Gaëlle", "Hélène", "Benoît"),
           ("Lefèvre", "Girard", "Dubois", "Moreau", "Rousseau", "Lemaître"), False, True),
    "pl": (("Łukasz", "Zofia", "Michał", "Agnieszka", "Paweł"),
           ("Wójcik", "Kowalczyk", "Nowak", "Szymański", "Dąbrowska"), False, True),
    "zh": (("伟", "芳", "娜", "秀英", "敏", "静"), ("王", "李", "张", "刘", "陈", "杨"), True, False),
    "zh-latn": (("Wei", "Fang", "Xiuying", "Min", "Jing"), ("Wang", "Li", "Zhang", "Liu", "Chen"),
                True, True),
    "ja": (("太郎", "花子", "健", "陽菜", "蓮"), ("山田", "佐藤", "鈴木", "高橋", "田中"), True, False),
    "ko": (("민준", "서연", "지호", "하은"), ("김", "이", "박", "최"), True, False),
    "ar": (("محمد", "فاطمة", "أحمد", "ليلى", "يوسف"), ("الحسن", "الأحمد", "النجار", "الخطيب"),
           False, False),
    "ru": (("Иван", "Ольга", "Дмитрий", "Анна", "Сергей"), ("Петров", "Смирнова", "Кузнецов",
                                                          "Попова", "Соколов"), False, False),
    "el": (("Γιώργος", "Μαρία", "Νίκος", "Ελένη"), ("Παπαδόπουλος", "Νικολάου", "Γεωργίου",
                                                  "Οικονόμου"), False, False),
    "hi": (("अमित", "प्रिया", "राहुल", "अंजलि"), ("शर्मा", "वर्मा", "गुप्ता", "सिंह"), False, False),
}

# Fictional watch-list names (screening tests match these; near misses test fuzzy matching).
SANCTIONED_NAMES: tuple[tuple[str, str], ...] = (
    ("Viktor", "Zorin"), ("Karl", "Stromberg"), ("Hugo", "Drax"), ("Elektra", "Kingsley"),
    ("Ernst", "Blofeldt"),
)
SANCTIONED_NEAR_MISSES: tuple[tuple[str, str], ...] = (
    ("Victor", "Zorin"), ("Hugo", "Draxx"), ("Karl", "Strömberg"),
)
PEP_NAMES: tuple[tuple[str, str], ...] = (
    ("Helena", "Marchbank"), ("Bernard", "Quistwell"), ("Amara", "Okonjo-Vance"),
    ("Rafael", "Montcalm"),
)

# country code -> (weight, spellings seen in CRM data, currency, culture weights)
_COUNTRIES: dict[str, tuple[int, tuple[str, ...], str, tuple[str, ...]]] = {
    "GB": (26, ("United Kingdom", "UK", "GB", "England", "Great Britain"), "GBP",
           ("en", "en", "en", "pl", "hi", "zh-latn", "ar")),
    "US": (16, ("United States", "USA", "US", "United States of America"), "USD",
           ("en", "en", "es", "zh", "ko", "hi")),
    "DE": (6, ("Germany", "Deutschland", "DE"), "EUR", ("de", "de", "pl", "ru")),
    "FR": (5, ("France", "FR"), "EUR", ("fr", "fr", "ar")),
    "IE": (4, ("Ireland", "IE"), "EUR", ("en",)),
    "NL": (3, ("Netherlands", "The Netherlands", "NL"), "EUR", ("en", "de")),
    "LU": (2, ("Luxembourg", "LU"), "EUR", ("fr", "de")),
    "ES": (3, ("Spain", "España", "ES"), "EUR", ("es",)),
    "IT": (3, ("Italy", "Italia", "IT"), "EUR", ("en", "es")),
    "PL": (2, ("Poland", "Polska", "PL"), "EUR", ("pl",)),
    "GR": (1, ("Greece", "GR"), "EUR", ("el",)),
    "AE": (5, ("United Arab Emirates", "UAE", "AE"), "AED", ("ar", "ar", "hi", "en")),
    "CH": (3, ("Switzerland", "Schweiz", "CH"), "CHF", ("de", "fr")),
    "SG": (2, ("Singapore", "SG"), "USD", ("zh", "zh-latn", "en")),
    "HK": (2, ("Hong Kong", "HK"), "USD", ("zh", "zh-latn")),
    "JP": (2, ("Japan", "JP"), "USD", ("ja",)),
    "KR": (1, ("South Korea", "Korea, Republic of", "KR"), "USD", ("ko",)),
    "IN": (3, ("India", "IN"), "USD", ("hi", "en")),
    "CN": (2, ("China", "CN"), "USD", ("zh",)),
    "BR": (1, ("Brazil", "Brasil", "BR"), "USD", ("es",)),
    "CA": (2, ("Canada", "CA"), "USD", ("en", "fr")),
    "AU": (2, ("Australia", "AU"), "USD", ("en",)),
    "ZA": (1, ("South Africa", "ZA"), "USD", ("en",)),
    "RU": (1, ("Russia", "Russian Federation", "RU"), "USD", ("ru",)),
    "IR": (1, ("Iran", "Iran, Islamic Republic of", "IR"), "USD", ("ar",)),
}
_COUNTRY_CODES = tuple(_COUNTRIES)
_COUNTRY_WEIGHTS = tuple(v[0] for v in _COUNTRIES.values())
_US_STATES = (("NY", "New York"), ("NJ", "New Jersey"), ("CA", "California"), ("TX", "Texas"),
              ("FL", "Florida"), ("IL", "Illinois"), ("MA", "Massachusetts"), ("WA", "Washington"),
              ("CT", "Connecticut"), ("PA", "Pennsylvania"))
_US_STATE_WEIGHTS = (30, 15, 10, 8, 8, 6, 6, 5, 6, 6)
_CITIES = {"GB": ("London", "Manchester", "Edinburgh", "Leeds"), "US": ("New York", "Hoboken",
           "Los Angeles", "Austin", "Miami"), "DE": ("Berlin", "München", "Frankfurt am Main"),
           "FR": ("Paris", "Lyon"), "AE": ("Dubai", "Abu Dhabi"), "CH": ("Zürich", "Genève")}
_COMPANIES = ("Acme Holdings", "Blue Harbour Capital", "Northgate Partners", "Fenwick & Sons",
              "Greenfield Family Office", "Orion Logistics", "Kestrel Pension Trustees",
              "Lindqvist AB", "Self-employed", "[not provided]")
_ASSET_RANGES = {  # customer type -> (low, high) investable assets
    "Retail Customer": (500, 90_000), "High Net Worth": (250_000, 8_000_000),
    "Professional Client": (100_000, 5_000_000), "Eligible Counterparty": (5_000_000, 90_000_000),
    "Institutional": (10_000_000, 500_000_000),
}
_PRODUCTS_BY_TYPE = {
    "Retail Customer": ("Easy Saver", "Easy Saver", "Term Life", "EU Mortgage", "Pension Transfer"),
    "High Net Worth": ("Private Mandate", "Structured Note", "Pension Transfer", "Easy Saver"),
    "Professional Client": ("Structured Note", "Private Mandate"),
    "Eligible Counterparty": ("Structured Note",), "Institutional": ("Private Mandate",
                                                                    "Structured Note"),
}
MALFORMED_KINDS = ("bad_email", "unknown_country", "negative_assets", "unknown_product",
                   "missing_currency", "garbage_phone", "name_in_one_field")


@dataclass(slots=True)
class Person:
    """One generated lead, CRM-neutral. `tags` say what a test can expect of it."""

    first: str | None
    last: str
    email: str | None
    phone: str | None
    company: str
    street: str | None
    city: str | None
    state: str | None
    postcode: str | None
    country: str | None
    country_code: str | None
    source: str
    customer_type: str | None
    product: str | None
    assets: float | None
    currency: str | None
    appropriateness: str | None
    phone_consent: bool
    email_consent: bool
    first_contact_offset_s: int  # seconds before the record's creation
    tags: frozenset[str]


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    table = str.maketrans("áàâäãåéèêëíìîïóòôöõúùûüñçßøłśźżąęćńŁŚŹŻ’'",
                          "aaaaaaeeeeiiiiooooouuuuncsolszzaecnLSZZ__")
    out = "".join(c for c in text.translate(table).lower() if c.isalnum() or c in "._")
    return out


class Generator:
    """Generates record i of a stream. Cheap enough to call per page (about 20 µs a record)."""

    def __init__(self, seed: int, stream: str) -> None:
        self.seed = seed
        self._salt = sum((n + 1) * ord(c) for n, c in enumerate(stream)) * 1_000_003
        self._local = threading.local()  # one reseeded Random per thread: cheaper than new ones

    def rng(self, i: int) -> random.Random:
        r = getattr(self._local, "rng", None)
        if r is None:
            r = self._local.rng = random.Random()
        r.seed((self.seed * 0x9E3779B1) ^ self._salt ^ (i * 0x85EBCA77))
        return r

    def person(self, i: int) -> Person:  # noqa: C901 - one readable recipe
        u = self.rng(i).random  # plain floats: several times faster than choice()/randint()

        def pick(seq: tuple[Any, ...] | str) -> Any:
            return seq[int(u() * len(seq))]

        def weighted(seq: tuple[Any, ...], cum: tuple[float, ...]) -> Any:
            return seq[bisect(cum, u() * cum[-1])]

        def randint(a: int, b: int) -> int:
            return a + int(u() * (b - a + 1))

        tags: set[str] = set()
        code = weighted(_COUNTRY_CODES, _COUNTRY_CUM)
        _, spellings, currency, cultures = _COUNTRIES[code]
        culture = pick(cultures)
        givens, families, family_first, latin = _NAMES[culture]
        first: str | None = pick(givens)
        last = pick(families)
        tags.add(f"culture:{culture}")
        roll = u()
        if roll < 0.01:
            first, last = pick(SANCTIONED_NAMES)
            tags.add("sanctioned")
        elif roll < 0.015:
            first, last = pick(SANCTIONED_NEAR_MISSES)
            tags.add("sanctioned_near_miss")
        elif roll < 0.025:
            first, last = pick(PEP_NAMES)
            tags.add("pep")
        state = None
        if code == "US":
            abbr, full = weighted(_US_STATES, _US_STATE_CUM)
            state = abbr if u() < 0.7 else full
        country: str | None = pick(spellings)
        city = pick(_CITIES.get(code, ("",))) or None
        if code == "GB":
            postcode = (f"{pick(('SW1A', 'EC2V', 'M1', 'EH1'))} {randint(1, 9)}"
                        f"{pick('ABDEFGHJ')}{pick('LNPQRSTU')}")
        elif code == "US":
            postcode = f"{randint(10000, 99999)}"
        else:
            postcode = f"{randint(1000, 99999)}"
        local = _ascii(f"{first}.{last}") if latin and first else f"client{i}"
        email: str | None = f"{local}{randint(1, 99)}@{pick(_DOMAINS)}"
        if code == "GB":
            phone: str | None = f"+44 20 7946 {randint(0, 999):04d}"
        elif code == "US":
            phone = f"+1 212 555 {randint(100, 199):04d}"
        else:
            phone = f"+{randint(30, 99)} {randint(100, 999)} {randint(100000, 999999)}"
        ctype = weighted(CUSTOMER_TYPES, _CTYPE_CUM)
        customer_type: str | None = ctype if u() > 0.03 else None
        product: str | None = pick(_PRODUCTS_BY_TYPE[ctype])
        lo, hi = _ASSET_RANGES[ctype]
        assets: float | None = float(round(lo * (hi / lo) ** u(), -2))
        if u() < 0.05:
            assets = None
        appropriateness = weighted(_APPROPRIATENESS, _APPROPRIATENESS_CUM)
        if product not in ("Structured Note", "Private Mandate", "Pension Transfer"):
            appropriateness = None if u() < 0.8 else appropriateness
        street = f"{randint(1, 220)} {pick(_STREETS)}"
        company = pick(_COMPANIES)
        if u() < 0.02:
            kind = pick(MALFORMED_KINDS)
            tags.add("malformed")
            tags.add(f"malformed:{kind}")
            if kind == "bad_email":
                email = pick(("john.smith@", "not-an-email", "a@b", "x@@example.com"))
            elif kind == "unknown_country":
                country, code, state = pick(("Atlantis", "N/A", "Europe", "")) or None, None, None
            elif kind == "negative_assets":
                assets = -abs(assets or 1000.0)
            elif kind == "unknown_product":
                product = pick(("Gold Account", "Crypto Fund", "TBD"))
            elif kind == "missing_currency":
                currency = ""
            elif kind == "garbage_phone":
                phone = pick(("n/a", "call me", "000"))
            elif kind == "name_in_one_field":
                last, first = f"{(first or '').upper()} {last}", None
        if family_first and culture == "zh-latn" and u() < 0.3:
            tags.add("family_name_first_in_first_field")
            first, last = last, first or last
        return Person(
            first=first, last=last, email=email, phone=phone, company=company,
            street=street, city=city, state=state, postcode=postcode, country=country,
            country_code=code, source=pick(LEAD_SOURCES), customer_type=customer_type,
            product=product, assets=assets, currency=currency or None,
            appropriateness=appropriateness, phone_consent=u() < 0.6,
            email_consent=u() < 0.7, first_contact_offset_s=randint(0, 3 * 86400),
            tags=frozenset(tags),
        )


def _cum(weights: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(accumulate(weights))


_COUNTRY_CUM = _cum(_COUNTRY_WEIGHTS)
_US_STATE_CUM = _cum(_US_STATE_WEIGHTS)
_CTYPE_CUM = _cum((55, 25, 12, 3, 5))
_APPROPRIATENESS = ("Passed", "Failed", None)
_APPROPRIATENESS_CUM = _cum((60, 10, 30))
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_STREETS = ("High Street", "Park Lane", "Main St", "Rue de Rivoli", "Hauptstraße")


def default_currency(code: str | None) -> str:
    return _COUNTRIES[code][2] if code in _COUNTRIES else CURRENCIES[0]


def mix(seed: int, i: int, salt: int) -> int:
    """A cheap 32-bit hash of (seed, i, salt) for per-record choices made without a Random."""
    h = (i * 0x9E3779B1 + seed * 0x85EBCA77 + salt * 0xC2B2AE3D) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    return h


def mixes(seed: int, n: int, salt: int) -> array[int]:
    """n reproducible 32-bit values for (seed, salt), made in C (column builds of 500,000)."""
    out = array("I")
    out.frombytes(random.Random(seed * 1_000_003 + salt).randbytes(4 * n))
    return out


__all__ = ["Generator", "Person", "PRODUCTS", "SANCTIONED_NAMES", "SANCTIONED_NEAR_MISSES",
           "PEP_NAMES", "MALFORMED_KINDS", "mix", "default_currency"]
