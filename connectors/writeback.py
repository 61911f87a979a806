"""What leadgate writes on a record, and the conflict rule; shared by both adapters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from connectors.base import Outcome, WriteResult
from connectors.mapping import iso_z, parse_crm_time

GONE = "the record is no longer an open lead in the CRM (deleted, merged or converted)"
CHANGED = "the record was changed in the CRM after leadgate read it; not written, decided again"


def fields(outcome: Outcome) -> dict[str, Any]:
    """leadgate's values in neutral names (each adapter maps them to its field names)."""
    outreach = None if outcome.outreach is None else json.dumps(
        outcome.outreach, sort_keys=True, separators=(",", ":"), default=str)
    return {
        "status": outcome.outcome,
        "decision_id": outcome.decision_id,
        "reason": outcome.reason,
        "policy_version": outcome.policy_version,
        "outreach": outreach,
        "not_before": iso_z(outcome.not_before) if outcome.not_before else None,
    }


def judge(outcome: Outcome, *, exists: bool, owner_now: str | None, decision_now: str | None,
          review_owner: str | None, modified_now: Any = None,
          same: Callable[[str | None, str | None], bool] = lambda a, b: a == b,
          ) -> WriteResult | None:
    """Decide from a fresh read whether to write: None = write; else the result to report.

    A record that no longer exists is gone (final). A record already stamped with this decision
    was written before (a retried run): ok, and not
    written again. A record whose owner differs from the owner leadgate read (None = it had no
    owner) was reassigned by a person in between: conflict, not overwritten. The review
    queue/owner is leadgate's own, so a record sitting there (a refusal an officer now approves)
    is not a conflict. A record modified after leadgate read it (its owner unchanged) may no
    longer be what was decided on: changed, not written (the job decides it again).
    `modified_now` is the record's last-modified stamp as the CRM gives it (None: not read).
    """
    if not exists:
        return WriteResult(outcome.record_id, "gone", GONE)
    if decision_now and decision_now == outcome.decision_id:
        return WriteResult(outcome.record_id, "ok", "already written by an earlier attempt")
    if not same(owner_now or None, outcome.expected_owner or None) and not (
            review_owner and same(owner_now, review_owner)):
        return WriteResult(outcome.record_id, "conflict",
                           f"owner changed to {owner_now} after leadgate read the record "
                           f"(owner then: {outcome.expected_owner}); not overwritten")
    if (outcome.modified_at_read is not None and modified_now
            and parse_crm_time(modified_now) > outcome.modified_at_read):
        return WriteResult(outcome.record_id, "changed", CHANGED)
    return None
