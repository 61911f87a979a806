"""Raw CRM record -> parse_lead's raw dict, driven only by the source's field mapping.

Every problem of a record is collected (not just the first), so that a refusal for invalid_lead
tells RevOps everything to fix at once. Empty CRM values are left out: parse_lead decides which
lead fields are required.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.config import FieldMap
from routing_core.errors import LeadgateError

_SF_CUSTOMER_TYPES = {
    "Retail Customer": "retail",
    "High Net Worth": "high_net_worth",
    "Professional Client": "professional",
    "Eligible Counterparty": "eligible_counterparty",
    "Institutional": "institutional",
}
_PRODUCTS = {
    "Easy Saver": "easy_saver",
    "Structured Note": "structured_note",
    "Pension Transfer": "pension_transfer",
    "Term Life": "term_life",
    "Private Mandate": "private_mandate",
    "EU Mortgage": "eu_mortgage",
}
# spellings the org uses that are not ISO names (ISO names and codes pass through to parse_lead)
_COUNTRIES = {"UK": "GB", "England": "GB", "Deutschland": "DE", "España": "ES", "Italia": "IT",
              "Polska": "PL", "Schweiz": "CH", "Brasil": "BR"}
_APPROPRIATENESS = {"Passed": "passed", "Failed": "failed"}


def default_mapping(kind: str) -> dict[str, FieldMap]:
    """The mapping for the sandbox CRM's seeded fields (what `leadgate init` writes out)."""
    if kind == "salesforce":
        raw: dict[str, Any] = {
            "id": "Id", "first_name": "FirstName", "last_name": "LastName", "email": "Email",
            "phone": "Phone", "company": "Company",
            "country": {"field": "Country", "values": _COUNTRIES, "passthrough": True},
            "state": "State", "postcode": "PostalCode",
            "customer_type": {"field": "Customer_Type__c", "values": _SF_CUSTOMER_TYPES},
            "product": {"field": "Product_Interest__c", "values": _PRODUCTS},
            "investable_assets.amount": {"field": "Investable_Assets__c", "type": "number"},
            "investable_assets.currency": "CurrencyIsoCode",
            "assessments.appropriateness": {"field": "Appropriateness__c",
                                            "values": _APPROPRIATENESS},
            "consent.phone": {"field": "Phone_Consent__c", "type": "boolean"},
            "consent.email": {"field": "Email_Consent__c", "type": "boolean"},
            "first_contact_at": {"field": "First_Contact__c", "type": "datetime"},
            "stage": "Status",
            "attributes.lead_source": "LeadSource",
        }
    elif kind == "hubspot":
        raw = {
            "id": "hs_object_id", "first_name": "firstname", "last_name": "lastname",
            "email": "email", "phone": "phone", "company": "company",
            "country": {"field": "country", "values": _COUNTRIES, "passthrough": True},
            "state": "state", "postcode": "zip",
            "customer_type": {"field": "customer_type", "values": _SF_CUSTOMER_TYPES},
            "product": {"field": "product_interest", "values": _PRODUCTS},
            "investable_assets.amount": {"field": "investable_assets", "type": "number"},
            "investable_assets.currency": "assets_currency",
            "assessments.appropriateness": {"field": "appropriateness",
                                            "values": _APPROPRIATENESS},
            "consent.phone": {"field": "phone_consent", "type": "boolean"},
            "consent.email": {"field": "email_consent", "type": "boolean"},
            "first_contact_at": {"field": "first_contact_date", "type": "datetime"},
            "stage": "lifecyclestage",
        }
    else:
        raise ValueError(f"unknown CRM kind {kind!r}")
    return {path: FieldMap.model_validate(spec) for path, spec in raw.items()}


def crm_fields(mapping: Mapping[str, FieldMap]) -> list[str]:
    """The CRM fields the mapping reads, in a stable order without duplicates."""
    return list(dict.fromkeys(spec.field for spec in mapping.values()))


def crm_values_for(spec: FieldMap, lead_values: Iterable[str]) -> list[str]:
    """The CRM values of a mapped field that read as one of `lead_values` (the value map
    inverted; a value the map does not name passes as itself when the field has no value map or
    is `passthrough`), for a query that filters on the field."""
    wanted = set(lead_values)
    values = spec.values or {}
    found = [str(crm) for crm, lead in values.items() if lead in wanted]
    if spec.values is None or spec.passthrough:
        found += [v for v in sorted(wanted) if v not in values]
    return list(dict.fromkeys(found))


def stage_mapping(mapping: Mapping[str, FieldMap], mapping_key: str,
                  stages: Iterable[str] = ()) -> FieldMap:
    """The mapping of the lead's stage (which the cooling-off watch reads), or LeadgateError
    (naming the policy's blocked `stages` where given)."""
    spec = mapping.get("stage")
    if spec is None:
        named = ", ".join(sorted(stages))
        blocked = f" (the policy's cooling-off rules block: {named})" if named else ""
        raise LeadgateError("the mapping has no stage field, so stage changes inside a "
                            f"cooling-off window cannot be watched{blocked}", where=mapping_key,
                            fix="map the CRM's stage field as `stage:` (Salesforce Status, "
                                "HubSpot lifecyclestage)")
    return spec


def lead_value(spec: FieldMap, value: Any) -> Any:
    """One CRM value as the mapping reads it for a text field (the value map, else the value
    itself when it may pass), or None when it is empty or not mapped."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    key = str(value).strip()
    if spec.values is not None:
        if key in spec.values:
            return spec.values[key]
        if not spec.passthrough:
            return None
    return key


_SF_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def value_map_problems(key: str, spec: FieldMap, offered: set[str], *,
                       value_word: str, list_word: str) -> list[str]:
    """Mismatches between a mapping's value map and the values the CRM offers for the field.

    `value_word` and `list_word` name the CRM's own terms ("picklist value" / "the picklist",
    "option" / "an option of"), so that the fix reads as the CRM's admin screen does.
    """
    problems = []
    if not spec.passthrough:
        for value in sorted(offered - set(spec.values or {})):
            problems.append(f"{key}: {value_word} {value!r} of {spec.field} is not mapped "
                            f"(fix: add it under {key}.values)")
    for value in sorted(set(spec.values or {}) - offered):
        problems.append(f"{key}: {value!r} is not {list_word} {spec.field} "
                        "(fix: correct its spelling or remove it)")
    return problems


def parse_crm_time(value: Any) -> datetime:
    """A CRM timestamp (ISO 8601 with Z, +0000 or +00:00, or epoch milliseconds) -> aware UTC."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        when = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    else:
        text = str(value).strip()
        try:  # Python 3.11 reads "Z" and "+0000" itself: the common case, once per record
            when = datetime.fromisoformat(text)
        except ValueError:
            when = datetime.fromisoformat(_SF_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00")))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso_z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# One converter per mapping type: CRM value -> lead value, or ValueError with a short reason.
def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _as_number(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return str(number)


def _as_datetime(value: Any) -> str:
    try:
        return iso_z(parse_crm_time(value))
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a date and time") from None


MAX_EXACT_INTEGER = 2**53 - 1  # the ledger's canonical JSON holds no larger integer exactly


def _as_string(value: Any) -> Any:
    """The value as the CRM typed it (text, yes/no, whole number, decimal), else its text. What
    the ledger could not record is refused here, naming the field, never passed on to fail a
    whole page's write-ahead on every later run. Values are not echoed: they may be personal."""
    if type(value) is str:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("text that is not valid Unicode (a lone surrogate)") from None
        return value
    if type(value) is int and abs(value) > MAX_EXACT_INTEGER:
        raise ValueError("a whole number beyond +-2**53-1, which JSON does not carry exactly "
                         "(map it as type: number)")
    return value if isinstance(value, str | bool | int | Decimal) else str(value)


_CONVERT = {"boolean": _as_boolean, "number": _as_number, "datetime": _as_datetime,
            "string": _as_string}


class RecordMapper:
    """A source's field mapping, ready to apply to every record of a run: the per-field choices
    (the path to fill, the value map, the type's converter) are made once here, not per record.

    Every problem of a record is collected, and a record that fails mapping also gets what
    parse_lead says about the rest of it, so that the refusal lists everything to fix at once.
    `mapping_key` is the config key shown in fixes, e.g. "sources.crm.mapping".
    """

    def __init__(self, mapping: Mapping[str, FieldMap], *, source: str,
                 mapping_key: str = "mapping") -> None:
        self.source = source
        self.mapping_key = mapping_key
        self._fields = [(path, tuple(path.split(".")), spec.field, spec.values,
                         spec.passthrough, _CONVERT[spec.type])
                        for path, spec in mapping.items()]

    def __call__(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """parse_lead's raw dict for one raw CRM record (a flat dict of field -> value), and
        the list of problems (empty when the record mapped cleanly)."""
        raw: dict[str, Any] = {"source": self.source}
        problems: list[str] = []
        for path, parts, crm_field, values, passthrough, convert in self._fields:
            value = record.get(crm_field)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if values is not None:
                key = str(value).strip() if not isinstance(value, bool) else str(value).lower()
                if key in values:
                    value = values[key]
                elif not passthrough:
                    problems.append(
                        f"{crm_field}: value {str(value)!r} is not mapped for {path} "
                        f"(fix: add it under {self.mapping_key}.{path}.values)"
                    )
                    continue
            try:
                value = convert(value)
            except ValueError as exc:
                problems.append(f"{crm_field}: {exc} for {path} (fix: correct the record, or "
                                f"the type of {self.mapping_key}.{path})")
                continue
            target = raw
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        if problems:
            problems.extend(_lead_problems(raw, problems))
        return raw, problems


def map_record(record: Mapping[str, Any], mapping: Mapping[str, FieldMap], *,
               source: str, mapping_key: str = "mapping") -> tuple[dict[str, Any], list[str]]:
    """Apply the mapping to one raw CRM record (see RecordMapper, which a connector keeps for
    the records of a whole run)."""
    return RecordMapper(mapping, source=source, mapping_key=mapping_key)(record)


def _lead_problems(raw: dict[str, Any], known: list[str]) -> list[str]:
    """What parse_lead says about the rest of a record that already failed mapping, so that the
    refusal lists every problem at once."""
    from routing_core.lead import InvalidLead, parse_lead

    try:
        parse_lead(raw)
    except InvalidLead as exc:
        return [p for p in exc.problems if p not in known]
    return []
