"""The Decision: what was decided for one lead, and every check that led there.

`Decision.to_json()` is the decision JSON of policy-spec.md (the ledger stores it and
`leadgate route --json` prints it). Fields may be added, never renamed or dropped. The engine
records condition leaves as tuples (cheap on the hot path); they become JSON objects here.
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

# One evaluated condition leaf: (path, operator, expected, actual, result, note or None).
Leaf = tuple[str, str, Any, Any, bool, "str | None"]


_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_safe(value: Any) -> Any:
    """Decimals as strings (exact amounts), times as ISO 8601, sets and tuples as lists."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {str(k): v if type(v) in _PLAIN else json_safe(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else json_safe(v) for v in value]
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


def leaf_json(leaf: Leaf) -> dict[str, Any]:
    path, op, expected, actual, result, note = leaf
    out: dict[str, Any] = {
        "path": path, "op": op,
        "expected": expected if type(expected) in _PLAIN else json_safe(expected),
        "actual": actual if type(actual) in _PLAIN else json_safe(actual), "result": result}
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
    return {"id": rule_id, "result": result, "conditions": [leaf_json(leaf) for leaf in leaves]}


def gate_json(gate: GateTrace) -> dict[str, Any]:
    gate_id, applied, passed, leaves, reason = gate
    out: dict[str, Any] = {"id": gate_id, "applied": applied}
    if applied:
        out["passed"] = passed
    out["conditions"] = [leaf_json(leaf) for leaf in leaves]
    if applied and not passed:
        out["reason"] = reason
    return out


@dataclass(slots=True)
class Decision:
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
    def not_before(self) -> str | None:
        """When the cooling-off window ends (ISO time), if one applies and its anchor is known."""
        return self.cooling_off.get("not_before") if self.cooling_off else None

    def rep_crm_id(self, crm: str) -> str | None:
        """The assigned rep's user/owner id in one CRM ("salesforce", "hubspot")."""
        if not self.rep:
            return None
        value = (self.rep.get("crm") or {}).get(crm)
        return None if value is None else str(value)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "decided_at": iso(self.decided_at),
            "lead": json_safe(self.lead),
            "policy": dict(self.policy),
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "screening": [result.to_json() for result in self.screening],
            "gates": [gate_json(gate) for gate in self.gates],
            "rule": rule_json(self.rule) if self.rule else None,
            "rules_tried": [rule_json(rule) for rule in self.rules_tried],
            "teams_considered": json_safe(self.teams_considered),
            "team": json_safe(self.team),
            "rep": json_safe(self.rep),
            "outreach": json_safe(self.outreach),
            "cooling_off": json_safe(self.cooling_off),
            "queue": self.queue,
            "conduct_rules": [rule_json(rule) for rule in self.conduct_rules],
            "cooling_off_rules": [rule_json(rule) for rule in self.cooling_off_rules],
        }
        if self.problems:
            out["problems"] = list(self.problems)
        if self.notes:
            out["notes"] = list(self.notes)
        return out
