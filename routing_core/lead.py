"""The normalised lead, and `parse_lead`, which reports every problem of a raw record at once.

Raw records use the condition-path names of policy-spec.md (``jurisdiction``, ``customer_type``,
``investable_assets: {amount, currency}``, ``consent: {phone: true}``, ...). Normalising a CRM
record into that shape is the connector's mapping; this module validates and canonicalises it:
ISO 3166 jurisdictions (with common aliases), ISO 4217 currencies, Decimal money, booleans,
time-zone-aware datetimes, and the lead's IANA time zone.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import BaseModel, ConfigDict

from routing_core import jurisdictions, timezones
from routing_core.errors import LeadgateError
from routing_core.postcodes import us_subdivision_for_zip

_pc: Any = pycountry  # pycountry ships without type hints

CUSTOMER_TYPES = ("retail", "high_net_worth", "professional", "eligible_counterparty",
                  "institutional")
# What CRMs call the customer types (Salesforce picklist labels and the like).
CUSTOMER_TYPE_ALIASES = {
    "retail customer": "retail",
    "retail client": "retail",
    "hnw": "high_net_worth",
    "high net worth": "high_net_worth",
    "professional client": "professional",
    "elective professional": "professional",
    "ecp": "eligible_counterparty",
    "eligible counterparty": "eligible_counterparty",
    "institution": "institutional",
}

KNOWN_FIELDS = frozenset({
    "source", "id", "first_name", "last_name", "email", "phone", "company", "kind",
    "jurisdiction", "country", "subdivision", "state", "postcode", "timezone", "customer_type",
    "product", "investable_assets", "assessments", "consent", "first_contact_at", "stage",
    "owner", "attributes", "modstamp", "channel",
})

_MONEY_KEYS = frozenset({"amount", "currency"})
_STR_ONLY = frozenset({str})
_JURISDICTION_KEYS = frozenset({"country", "subdivision"})
# Fields read as text: a number may stand for text (a numeric id or postcode), a list, an
# object or a yes/no may not (str() of them would pass as text: email ["a@b.c"]).
_JSON_KIND = {list: "a list", tuple: "a list", dict: "an object", bool: "true/false"}
_TEXT_FIELDS = ("source", "id", "first_name", "last_name", "email", "phone", "company", "kind",
                "country", "subdivision", "state", "postcode", "timezone", "product", "stage",
                "owner", "modstamp", "channel")
_KINDS = {"organization": "organisation", "company": "organisation", "individual": "person"}
_TRUE = {"true", "yes", "y", "1", "t", "on"}
_FALSE = {"false", "no", "n", "0", "f", "off", ""}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class InvalidLead(LeadgateError):
    """A record that cannot be normalised. `problems` lists every problem found, not the first."""

    def __init__(self, problems: list[str], *, where: str | None = None) -> None:
        super().__init__("invalid lead: " + "; ".join(problems), where=where,
                         fix="correct the listed fields in the source record")
        self.problems = problems


class Jurisdiction(BaseModel):
    """An ISO 3166-1 country and, when known, an ISO 3166-2 subdivision of it."""

    model_config = ConfigDict(frozen=True)
    country: str
    subdivision: str | None = None

    @property
    def code(self) -> str:
        """The most specific code: "US-NY" or "GB"."""
        return self.subdivision or self.country


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)
    amount: Decimal
    currency: str  # ISO 4217 alpha-3


class Lead(BaseModel):
    """A lead as the routing core sees it (DESIGN.md "Key types")."""

    model_config = ConfigDict(frozen=True)
    source: str
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    kind: Literal["person", "organisation"] = "person"
    jurisdiction: Jurisdiction
    postcode: str | None = None
    timezone: str | None = None
    timezone_guessed: bool = False
    # The jurisdiction the zone was derived from ("US-CA" also when read from a ZIP code).
    timezone_area: str | None = None
    customer_type: str | None = None
    product: str | None = None
    investable_assets: Money | None = None
    assessments: dict[str, str] = {}
    consent: dict[str, bool] = {}
    first_contact_at: datetime | None = None
    stage: str | None = None
    owner: str | None = None
    attributes: dict[str, Any] = {}
    modstamp: str | None = None
    channel: str | None = None


def _text(value: Any) -> str | None:
    if type(value) is str:   # the usual case, without the str() call
        return value.strip() or None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """isinstance(value, Mapping), without the ABC check for a dict, a str or None."""
    kind = type(value)
    if kind is dict:
        return True
    if kind is str or value is None:
        return False
    return isinstance(value, Mapping)


@functools.cache
def _currency_codes() -> frozenset[str]:
    """ISO 4217 alpha-3 codes, lower case: what pycountry's case-insensitive get() matches."""
    return frozenset(str(currency.alpha_3).lower() for currency in _pc.currencies)


@functools.lru_cache(maxsize=4096)   # bounded by ISO 3166: countries and subdivisions
def _jurisdiction_of(country: str, subdivision: str | None) -> Jurisdiction:
    """The (frozen) Jurisdiction model, validated once per code rather than once per lead."""
    return Jurisdiction(country=country, subdivision=subdivision)


def parse_bool(value: Any) -> bool:
    """true/false, yes/no, 1/0 (CSV and CRM checkbox spellings); ValueError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not true or false")


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 time with an offset ("Z" allowed); a time without a zone is ambiguous."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{str(value)!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone offset (add Z or +01:00)")
    return parsed


def _jurisdiction(raw: Mapping[str, Any], problems: list[str]) -> Jurisdiction | None:
    given = raw.get("jurisdiction")
    country_text = _text(raw.get("country"))
    sub_text = _text(raw.get("subdivision")) or _text(raw.get("state"))
    country: str | None = None
    subdivision: str | None = None
    try:
        if _is_mapping(given):
            unknown = sorted(map(str, set(given) - _JURISDICTION_KEYS))
            if unknown:  # a misspelt "subdivison" must not quietly widen it to the country
                problems.append(f"jurisdiction: unknown key(s) {', '.join(unknown)} (give "
                                "country and subdivision)")
                return None
            country_text = _text(given.get("country")) or country_text
            sub_text = _text(given.get("subdivision")) or sub_text
        elif _text(given):
            country, subdivision = jurisdictions.resolve(str(given))
        if country_text:
            named = jurisdictions.resolve_country(country_text)
            if country is not None and named != country:
                problems.append(f"jurisdiction: {given!r} contradicts country {country_text!r}")
                return None
            country = named
    except jurisdictions.UnknownJurisdiction as exc:
        problems.append(f"jurisdiction: {exc}")
        return None
    if country is None:
        problems.append("jurisdiction: missing (give jurisdiction, or country [+ subdivision])")
        return None
    if sub_text:
        try:
            named_sub = jurisdictions.resolve_subdivision(country, sub_text)
        except jurisdictions.UnknownJurisdiction as exc:
            problems.append(f"subdivision: {exc}")
            return None
        if subdivision is not None and named_sub != subdivision:
            problems.append(f"subdivision: {sub_text!r} contradicts jurisdiction {given!r}")
            return None
        subdivision = named_sub
    return _jurisdiction_of(country, subdivision)


def _money(value: Any, problems: list[str]) -> Money | None:
    if value is None:
        return None
    if not _is_mapping(value):
        problems.append("investable_assets: expected {amount, currency}")
        return None
    if not _MONEY_KEYS.issuperset(value):
        unknown = sorted(set(value) - _MONEY_KEYS, key=str)  # keys may be 1 or None (YAML)
        problems.append(f"investable_assets: unknown keys {unknown}")
    raw_amount = value.get("amount")
    # A currency alone says nothing of the lead's assets: a multi-currency Salesforce org sets
    # CurrencyIsoCode on every record. Without an amount the assets are unknown, and every
    # condition on them is false (policy-spec "Conditions"); a currency that is no code is
    # still a mapping error worth naming.
    no_amount = raw_amount is None or (isinstance(raw_amount, str) and not raw_amount.strip())
    amount = None if no_amount else _amount(raw_amount, problems)
    currency = (_text(value.get("currency")) or "").upper()
    if not currency:
        if not no_amount:
            problems.append("investable_assets.currency: missing (ISO 4217 code such as GBP)")
    elif currency.lower() not in _currency_codes():
        problems.append(f"investable_assets.currency: {currency!r} is not an ISO 4217 code")
        currency = ""
    if amount is None or not currency:
        return None
    return Money(amount=amount, currency=currency)


def _amount(raw: Any, problems: list[str]) -> Decimal | None:
    if isinstance(raw, bool) or _text(raw) is None:
        problems.append(f"investable_assets.amount: {raw!r} is not a number")
        return None
    try:
        amount = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        problems.append(f"investable_assets.amount: {raw!r} is not a number")
        return None
    if not amount.is_finite() or amount < 0:
        problems.append(f"investable_assets.amount: {raw!r} is not a non-negative number")
        return None
    return amount


def customer_type_code(text: str) -> str | None:
    """The customer type `text` names ("Retail Client", "high-net-worth"), or None."""
    key = text.strip().lower()
    key = CUSTOMER_TYPE_ALIASES.get(key, key.replace(" ", "_").replace("-", "_"))
    return key if key in CUSTOMER_TYPES else None


def _customer_type(value: Any, problems: list[str]) -> str | None:
    text = _text(value)
    if text is None:
        return None
    key = customer_type_code(text)
    if key is None:
        problems.append(f"customer_type: {text!r} is not one of {', '.join(CUSTOMER_TYPES)}")
    return key


def _finite(value: Any) -> bool:
    """False for NaN and infinities (float or Decimal); True for anything else."""
    if type(value) is float:
        return math.isfinite(value)
    return not isinstance(value, Decimal) or value.is_finite()


def _mapping(name: str, value: Any, problems: list[str], keys: str) -> Mapping[str, Any]:
    """A mapping of names to values; a key that is not text (YAML's 1: or null:, a Python
    caller's int) is a problem, since it cannot name what `keys` says."""
    if value is None:
        return {}
    if not _is_mapping(value):
        problems.append(f"{name}: expected a mapping of names to values")
        return {}
    if value and {*map(type, value)} != _STR_ONLY:  # the usual case: one set, no loop
        problems.extend(f"{name}: key {key!r} is not a string ({keys} are text)"
                        for key in value if not isinstance(key, str))
        return {k: v for k, v in value.items() if isinstance(k, str)}
    return value


def parse_lead(raw: Mapping[str, Any], *, source: str | None = None) -> Lead:
    """Validate and normalise one raw lead; raise InvalidLead listing every problem."""
    problems: list[str] = []
    if not _is_mapping(raw):
        raise InvalidLead(["lead: expected a JSON object of fields"])
    if not KNOWN_FIELDS.issuperset(raw):
        unknown = sorted(map(str, set(raw) - KNOWN_FIELDS))  # keys may be 1 or None (YAML)
        problems.append(f"unknown field(s) {', '.join(unknown)} (lead fields are the condition "
                        "paths of the policy language: jurisdiction, customer_type, product, ...)")

    for name in _TEXT_FIELDS:
        value = raw.get(name)
        if value is not None and type(value) is not str and (
                isinstance(value, bool) or not isinstance(value, (int, float, Decimal))):
            # The value stays out: names, emails and phones are personal data.
            problems.append(f"{name}: expected text, not {_JSON_KIND.get(type(value), 'a value of another kind')}")
    jurisdiction = _jurisdiction(raw, problems)

    zone: str | None = None
    zone_area: str | None = None
    guessed = False
    explicit_zone = _text(raw.get("timezone"))
    if explicit_zone:
        try:
            ZoneInfo(explicit_zone)
            zone = explicit_zone
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a tzdata folder ("America": IsADirectoryError), an over-long name
            problems.append(f"timezone: {explicit_zone!r} is not an IANA time zone")
    elif jurisdiction is not None:
        area = jurisdiction.subdivision
        if area is None and jurisdiction.country == "US":
            # A ZIP code places a US lead in a state for its clock (never for licensing).
            area = us_subdivision_for_zip(_text(raw.get("postcode")))
        zone, guessed = timezones.zone_for(jurisdiction.country, area)
        zone_area = area or jurisdiction.country

    kind = (_text(raw.get("kind")) or "person").lower()
    kind = _KINDS.get(kind, kind)
    if kind not in ("person", "organisation"):
        problems.append(f"kind: {raw.get('kind')!r} is not person or organisation")

    email = _text(raw.get("email"))
    if email is not None and not _EMAIL.fullmatch(email):
        problems.append("email: not an email address")

    consent: dict[str, bool] = {}
    for key, value in _mapping("consent", raw.get("consent"), problems, "channels").items():
        if type(value) is bool:   # the usual case: a checkbox
            consent[key] = value
            continue
        if value is None or _text(value) is None:
            continue  # unknown consent is absent consent, never a yes
        try:
            consent[key] = parse_bool(value)
        except ValueError as exc:
            problems.append(f"consent.{key}: {exc}")

    assessments: dict[str, str] = {}
    for key, value in _mapping("assessments", raw.get("assessments"), problems,
                               "assessment names").items():
        text = _text(value)
        if text is not None:
            # CRMs spell outcomes "Passed"/"PASSED"; policies compare lower case.
            assessments[key] = text.lower()

    attributes = dict(_mapping("attributes", raw.get("attributes"), problems,
                               "custom field names"))
    # NaN or infinity compares false with everything and has no JSON: not a value to decide on
    problems.extend(f"attributes.{key}: not a finite number" for key, value in attributes.items()
                    if not _finite(value))

    first_contact: datetime | None = None
    if _text(raw.get("first_contact_at")) is not None:
        try:
            first_contact = parse_datetime(raw["first_contact_at"])
        except ValueError as exc:
            problems.append(f"first_contact_at: {exc}")

    customer_type = _customer_type(raw.get("customer_type"), problems)
    money = _money(raw.get("investable_assets"), problems)
    product = _text(raw.get("product"))
    record_source = source or _text(raw.get("source")) or "file"
    record_id = _text(raw.get("id"))
    if record_id is None:
        problems.append("id: missing")

    if problems:
        raise InvalidLead(problems)
    assert jurisdiction is not None and record_id is not None
    # model_validate of a dict: the same validation as Lead(**fields), without the
    # keyword-argument round trip of BaseModel.__init__.
    return Lead.model_validate({
        "source": record_source,
        "id": record_id,
        "first_name": _text(raw.get("first_name")),
        "last_name": _text(raw.get("last_name")),
        "email": email,
        "phone": _text(raw.get("phone")),
        "company": _text(raw.get("company")),
        "kind": kind,
        "jurisdiction": jurisdiction,
        "postcode": _text(raw.get("postcode")),
        "timezone": zone,
        "timezone_guessed": guessed,
        "timezone_area": zone_area,
        "customer_type": customer_type,
        "product": product,
        "investable_assets": money,
        "assessments": assessments,
        "consent": consent,
        "first_contact_at": first_contact,
        "stage": _text(raw.get("stage")),
        "owner": _text(raw.get("owner")),
        "attributes": attributes,
        "modstamp": _text(raw.get("modstamp")),
        "channel": _text(raw.get("channel")),
    })
