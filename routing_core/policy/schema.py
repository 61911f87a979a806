"""The policy document's shape (policy-spec.md), with its defaults.

Every model forbids unknown keys. Conditions are kept as plain data here and compiled by
`conditions.py`, which knows the lead's paths. Cross-references (teams, products, groups) are
checked by `loader.py`, which has the whole document.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

Scalar = str | int | float | bool
DEFAULT_CHANNELS = ["email", "phone", "sms", "post"]


def _not_a_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(f"{value.isoformat()} is a date; write the instant, such as "
                         f"{value.isoformat()}T00:00:00Z")
    if isinstance(value, str):  # in quotes: the same instant
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a date-time such as 2026-01-01T00:00:00Z"
                             ) from None
    return value


def _a_day(value: Any) -> Any:
    """A calendar day, unquoted or in quotes; never a number or a date-time (strict)."""
    if isinstance(value, datetime):
        raise ValueError(f"{value.isoformat()} is a date-time; write the day, such as "
                         f"{value.date().isoformat()}")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a day such as 2026-01-31") from None
    if not isinstance(value, date):
        raise ValueError(f"{value!r} is not a day such as 2026-01-31")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone (add Z or an offset such as "
                         "+01:00)")
    return value


# A date-time that says which instant it is: a date alone, or a date-time without an offset,
# would be read in whatever zone the machine happens to be in.
Instant = Annotated[datetime, BeforeValidator(_not_a_date), AfterValidator(_aware)]
Day = Annotated[date, BeforeValidator(_a_day)]


class Strict(BaseModel):
    # strict: "no" is not false, "3" not 3, 0 not 1970-01-01 (policy-spec: every load is strict)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class Header(Strict):
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    effective_from: Instant | None = None
    timezone: str = "UTC"


class Authorisation(Strict):
    entity: str
    regulator: str
    jurisdictions: list[str] = Field(min_length=1)


class Firm(Strict):
    name: str
    authorisations: list[Authorisation] = Field(min_length=1)


class License(Strict):
    id: str
    regulator: str
    jurisdictions: list[str] = Field(min_length=1)
    products: list[str] = Field(min_length=1)
    customer_types: list[str] = Field(min_length=1)
    valid_from: Day
    valid_until: Day | None = None


class Member(Strict):
    id: str
    name: str
    email: str | None = None
    crm: dict[str, str] = {}
    weight: int = Field(default=1, ge=1)
    max_per_day: int | None = Field(default=None, ge=0)
    available: bool = True
    licenses: list[License] = []


class Team(Strict):
    name: str
    crm: dict[str, Any] = {}
    licenses: list[License] = []
    assignment: Literal["round_robin", "weighted", "least_loaded"] = "round_robin"
    requires_individual_license: bool = False
    members: list[Member] = Field(min_length=1)


# The list file formats leadgate reads (sync/screening_lists.py has a reader for each).
ListFormat = Literal["ofac_sdn_csv", "opensanctions_simple", "csv"]


class ListSource(Strict):
    id: str
    format: ListFormat
    path: str


class FileSource(Strict):
    format: ListFormat
    path: str


class Screening(Strict):
    lists: list[ListSource] = []
    pep: FileSource | None = None
    blocklist: FileSource | None = None
    match_threshold: float = Field(default=0.9, gt=0, le=1)
    on_error: Literal["refuse"] = "refuse"


class Gate(Strict):
    id: str
    applies_to: Any
    require: Any
    reason: str


class Rule(Strict):
    id: str
    when: Any
    route_to: list[str] = Field(min_length=1)
    team_choice: Literal["priority", "round_robin"] = "priority"


_HH_MM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _start_time(text: str) -> str:
    if not _HH_MM.fullmatch(text):
        raise ValueError(f'{text!r} is not a time of day written HH:MM, such as "08:00"')
    return text


def _end_time(text: str) -> str:
    if text != "24:00" and not _HH_MM.fullmatch(text):
        raise ValueError(f'{text!r} is not a time of day written HH:MM, such as "21:00" '
                         '("24:00" is the end of the day)')
    return text


class ContactWindow(Strict):
    start: Annotated[str, AfterValidator(_start_time)]
    end: Annotated[str, AfterValidator(_end_time)]
    timezone: str = "lead_local"


class Conduct(Strict):
    id: str
    when: Any
    prohibit_channels: list[str] = []
    contact_window: ContactWindow | None = None
    require_disclosures: list[str] = []
    reason: str | None = None


class CoolingOff(Strict):
    id: str
    when: Any
    hours: int | float = Field(gt=0)
    from_: Literal["first_contact", "assignment"] = Field(default="first_contact", alias="from")
    blocks_stage: str | None = None
    reason: str | None = None


class Officer(Strict):
    id: str
    name: str
    email: str | None = None


class EnvName(Strict):
    """`{env: NAME}`: a value read from the environment when it is used (a webhook URL that
    carries its own secret stays out of the policy and its history)."""
    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class Notify(Strict):
    kind: Literal["webhook", "email"]
    url: str | EnvName | None = None
    to: list[str] | None = None


class Review(Strict):
    queue: dict[str, Any] = {}
    officers: list[Officer] = []
    four_eyes_for_overrides: bool = False
    notify: list[Notify] = []


class Expect(Strict):
    outcome: Literal["assigned", "refused"]
    reason: str | None = None
    team: str | None = None
    rep: str | None = None
    rule: str | None = None
    gate: str | None = None
    allowed_channels: list[str] | None = None
    disclosures: list[str] | None = None
    cooling_off: str | None = None


class PolicyTest(Strict):
    name: str
    lead: dict[str, Any]
    expect: Expect
    at: Instant | None = None


class Document(Strict):
    policy: Header
    firm: Firm
    jurisdiction_groups: dict[str, list[str]] = {}
    products: dict[str, dict[str, Scalar]] = Field(min_length=1)
    teams: dict[str, Team] = Field(min_length=1)
    channels: list[str] = Field(default_factory=lambda: list(DEFAULT_CHANNELS), min_length=1)
    screening: Screening | None = None
    gates: list[Gate] = []
    rules: list[Rule] = Field(min_length=1)
    conduct: list[Conduct] = []
    cooling_off: list[CoolingOff] = []
    review: Review = Review()
    tests: list[PolicyTest] = []
