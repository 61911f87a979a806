"""The Decision: what was decided for one lead, and every check that led there.

`Decision.to_json()` is the decision JSON of policy-spec.md (the ledger stores it and
`leadgate route --json` prints it). Fields may be added, never renamed or dropped.

What the engine records is already JSON-ready where it can be: each condition leaf is its JSON
object from the moment it is evaluated (see `leaf`), and the team, rep, teams considered,
outreach and lead summary are built from plain values. `to_json` then only assembles; it
converts what is not plain (the cooling-off times) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from routing_core.screening import ScreeningResult

Outcome = Literal["assigned", "refused"]

REFUSAL_REASONS = (
    "unlicensed_jurisdiction", "sanctions_hit", "pep", "blocklisted", "screening_unavailable",
    "invalid_lead", "suitability_gate", "no_rule_matched", "no_licensed_team",
    "no_available_rep", "cooling_off_violation",
)
REVIEW_QUEUE = "compliance_review"


class _Missing:
    """The value of a path the lead does not have (distinct from an explicit null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# One evaluated condition leaf, as it appears in the decision JSON (see `leaf`).
Leaf = dict[str, Any]


# The JSON scalars that need no conversion.
PLAIN = frozenset({str, int, float, bool, type(None)})


def json_safe(value: Any) -> Any:
    """Decimals as strings (exact amounts), times as ISO 8601, sets and tuples as lists."""
    kind = type(value)
    if kind in PLAIN:
        return value
    if kind is dict:
        return {str(k): v if type(v) in PLAIN else json_safe(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in PLAIN else json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [json_safe(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if value is MISSING:
        return None
    return str(value)


def iso(moment: datetime) -> str:
    """UTC, second precision or finer, with a Z."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def json_value(value: Any) -> Any:
    """`value` itself when it is a plain JSON scalar, else its `json_safe` form."""
    return value if type(value) in PLAIN else json_safe(value)


def leaf(path: str, op: str, expected: Any, actual: Any, result: bool,
         note: str | None = None) -> Leaf:
    """One evaluated condition leaf as its decision JSON object.

    `expected` must already be JSON-ready (conditions convert it once, at load). A missing
    value is recorded as `actual: null` with `missing: true`; a note only when there is one.
    """
    out: Leaf = {"path": path, "op": op, "expected": expected,
                 "actual": None if actual is MISSING else json_value(actual), "result": result}
    if actual is MISSING:
        out["missing"] = True
    if note:
        out["note"] = note
    return out


# A rule (or conduct / cooling-off rule) tried: (id, held, leaves evaluated).
RuleTrace = tuple[str, bool, list[Leaf]]
# A gate: (id, applied, passed or None when it did not apply, leaves, reason).
GateTrace = tuple[str, bool, "bool | None", list[Leaf], str]


def rule_json(rule: RuleTrace) -> dict[str, Any]:
    rule_id, result, leaves = rule
    return {"id": rule_id, "result": result, "conditions": leaves}


def rules_json(rules: list[RuleTrace]) -> list[dict[str, Any]]:
    """`rule_json` of each rule (one call per list: a decision tries a dozen rules or more)."""
    return [{"id": rule_id, "result": result, "conditions": leaves}
            for rule_id, result, leaves in rules]


def gate_json(gate: GateTrace) -> dict[str, Any]:
    gate_id, applied, passed, leaves, reason = gate
    if not applied:
        return {"id": gate_id, "applied": applied, "conditions": leaves}
    out: dict[str, Any] = {"id": gate_id, "applied": applied, "passed": passed,
                           "conditions": leaves}
    if not passed:
        out["reason"] = reason
    return out


@dataclass(slots=True)
class Decision:
    """One lead's decision. `lead`, `policy`, `teams_considered`, `team`, `rep` and `outreach`
    hold JSON-ready values (str keys; str, number, bool, null, lists and dicts of those), as
    the engine builds them; `to_json` passes them through unconverted."""

    decision_id: str
    decided_at: datetime
    lead: dict[str, Any]
    policy: dict[str, Any]
    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    problems: list[str] = field(default_factory=list)
    screening: Sequence[ScreeningResult] = ()
    gates: list[GateTrace] = field(default_factory=list)
    rule: RuleTrace | None = None
    rules_tried: list[RuleTrace] = field(default_factory=list)
    teams_considered: list[dict[str, Any]] = field(default_factory=list)
    team: dict[str, Any] | None = None
    rep: dict[str, Any] | None = None
    outreach: dict[str, Any] | None = None
    cooling_off: dict[str, Any] | None = None
    conduct_rules: list[RuleTrace] = field(default_factory=list)
    cooling_off_rules: list[RuleTrace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def team_id(self) -> str | None:
        return self.team["id"] if self.team else None

    @property
    def rep_id(self) -> str | None:
        return self.rep["id"] if self.rep else None

    @property
    def rule_id(self) -> str | None:
        """The rule that decided (the first whose conditions held), if the rules ran."""
        return self.rule[0] if self.rule else None

    @property
    def failed_gate(self) -> str | None:
        """The gate that refused the lead, if any."""
        for gate_id, applied, passed, _, _ in self.gates:
            if applied and not passed:
                return gate_id
        return None

    @property
    def queue(self) -> str | None:
        return REVIEW_QUEUE if self.outcome == "refused" else None

    @property
    def not_before(self) -> datetime | None:
        """When the cooling-off window ends, if one applies and its anchor is known: an aware
        datetime in the anchor's offset (`to_json` writes it as RFC 3339 UTC)."""
        if not self.cooling_off:
            return None
        when: datetime | None = self.cooling_off.get("not_before")
        return when

    def rep_crm_id(self, crm: str) -> str | None:
        """The assigned rep's user/owner id in one CRM ("salesforce", "hubspot")."""
        if not self.rep:
            return None
        value = (self.rep.get("crm") or {}).get(crm)
        return None if value is None else str(value)

    def to_json(self) -> dict[str, Any]:
        """The decision JSON. It shares the engine's JSON-ready parts (condition leaves, team,
        rep, outreach, ...) with this Decision instead of copying them: copy before changing."""
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "decided_at": iso(self.decided_at),
            "lead": self.lead,
            "policy": dict(self.policy),
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "screening": [result.to_json() for result in self.screening],
            "gates": [gate_json(gate) for gate in self.gates],
            "rule": rule_json(self.rule) if self.rule else None,
            "rules_tried": rules_json(self.rules_tried),
            "teams_considered": self.teams_considered,
            "team": self.team,
            "rep": self.rep,
            "outreach": self.outreach,
            "cooling_off": json_safe(self.cooling_off),  # anchor_at, not_before: datetimes
            "queue": self.queue,
            "conduct_rules": rules_json(self.conduct_rules),
            "cooling_off_rules": rules_json(self.cooling_off_rules),
        }
        if self.problems:
            out["problems"] = list(self.problems)
        if self.notes:
            out["notes"] = list(self.notes)
        return out
