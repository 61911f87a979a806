"""The loaded, validated, compiled policy the engine runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from routing_core.jurisdictions import JurisdictionSet
from routing_core.policy.conditions import Condition


@dataclass(frozen=True, slots=True)
class License:
    id: str
    regulator: str
    jurisdictions: JurisdictionSet
    products: frozenset[str]
    customer_types: frozenset[str]
    valid_from: date
    valid_until: date | None

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def covers(self, jurisdiction: str, product: str | None, customer_type: str | None) -> bool:
        return (product in self.products and customer_type in self.customer_types
                and self.jurisdictions.contains(jurisdiction))


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str
    crm: Mapping[str, str]
    weight: int
    max_per_day: int | None
    available: bool
    licenses: tuple[License, ...]


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    crm: Mapping[str, Any]
    licenses: tuple[License, ...]
    assignment: str
    requires_individual_license: bool
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Authorisation:
    entity: str
    regulator: str
    jurisdictions: JurisdictionSet


@dataclass(frozen=True, slots=True)
class Gate:
    id: str
    applies_to: Condition
    require: Condition
    reason: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Condition
    route_to: tuple[str, ...]
    team_choice: str


@dataclass(frozen=True, slots=True)
class Window:
    start: time
    end: time          # 24:00 is written as time.max
    timezone: str      # "lead_local" or an IANA zone


@dataclass(frozen=True, slots=True)
class ConductRule:
    id: str
    when: Condition
    prohibit_channels: frozenset[str]
    window: Window | None
    disclosures: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class CoolingOff:
    id: str
    when: Condition
    hours: float
    anchor: str        # first_contact | assignment
    blocks_stage: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Review:
    queue: Mapping[str, Any]
    officers: tuple[Mapping[str, Any], ...]
    four_eyes_for_overrides: bool
    notify: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Policy:
    id: str
    version: str
    digest: str
    effective_from: datetime | None
    timezone: str
    tz: ZoneInfo
    firm_name: str
    authorisations: tuple[Authorisation, ...]
    firm_jurisdictions: JurisdictionSet
    regulator_jurisdictions: Mapping[str, JurisdictionSet]   # regulator -> where authorised
    products: Mapping[str, Mapping[str, Any]]
    teams: Mapping[str, Team]
    channels: tuple[str, ...]
    screening: Mapping[str, Any] | None
    gates: tuple[Gate, ...]
    rules: tuple[Rule, ...]
    conduct: tuple[ConductRule, ...]
    cooling_off: tuple[CoolingOff, ...]
    review: Review
    tests: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    # Memo of answers that depend only on the policy and a few lead facts (licence coverage);
    # filled by the engine, never part of the policy's meaning or digest.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def reference(self) -> dict[str, str]:
        """The policy block of a decision."""
        return {"id": self.id, "version": self.version, "digest": self.digest}

    @property
    def rep_ids(self) -> set[str]:
        """Every member id of every team (an id is unique within its team only)."""
        return {m.id for t in self.teams.values() for m in t.members}
