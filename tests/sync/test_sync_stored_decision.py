"""The compact stored decision and the ledger payload with float scores as strings."""

from __future__ import annotations

import copy

from audit.canonical import canonical, normalise
from sync.writeahead import STORED_KEYS, ledger_payload, stored_decision


def _payload() -> dict:
    return {
        "decision_id": "d1", "decided_at": "2026-01-01T00:00:00Z", "lead": {"id": "L1"},
        "policy": {"version": "3"}, "outcome": "refused", "reason": "pep", "detail": "x",
        "screening": [{"list": "pep", "best_score": 0.9312345678901234, "hit": True},
                      {"list": "sanctions", "best_score": None, "hit": False},
                      {"list": "other", "best_score": 1e-07, "hit": False}],
        "gates": [], "rule": {"id": "r1", "result": True, "conditions": []},
        "rules_tried": [{"id": "r1", "result": True, "conditions": []}],
        "teams_considered": [{"team": "t", "eligible": True}], "team": None, "rep": None,
        "outreach": None, "cooling_off": None, "queue": "compliance_review",
        "conduct_rules": [], "cooling_off_rules": [], "problems": ["p"],
    }


def test_ledger_payload_has_the_same_canonical_bytes() -> None:
    original = _payload()
    changed = ledger_payload(copy.deepcopy(original))
    assert canonical(changed) == canonical(original)
    norm, _ = normalise(original)
    assert changed["screening"] == norm["screening"]


def test_stored_decision_keeps_what_review_reads() -> None:
    stored = stored_decision(_payload())
    assert stored["teams_considered"] == [{"team": "t", "eligible": True}]
    assert stored["rule"] == "r1" and stored["full"] == "ledger"
    assert "screening" not in stored and "rules_tried" not in stored
    # a refusal keeps its lead summary (ids and routing facts): `review list` shows it
    assert stored["lead"] == {"id": "L1"}
    assert set(stored) <= set(STORED_KEYS) | {"rule", "full", "lead"}
    assigned = stored_decision({**_payload(), "outcome": "assigned", "reason": None})
    assert "lead" not in assigned  # an assignment's stays in the ledger only
