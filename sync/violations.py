"""Cooling-off violations: a routed record moved into its window's `blocks_stage` too early.

policy-spec.md, Cooling-off: "a stage change into `blocks_stage` before `not_before` is a
violation that the sync job reports to the compliance queue and the ledger". Once per run the
connector lists the records still inside their window that sit at one of the policy's blocked
stages (`Connector.cooling_off_watch`, one query); each is matched to its decision in
`sync_decisions` by (source, record id, decision id) and judged against the cooling-off that
decision recorded (its rule, blocks_stage and not_before, not the CRM's copy). A violation is
recorded ONCE per decision (a decision has one cooling-off, so one blocked stage): a `violation`
ledger entry and an open, non-transient review item with reason `cooling_off_violation` under
the decision's id, in one write transaction. Ids, stages and times only: no personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from audit.db import in_lists, write_transaction
from audit.ledger import EntryIn, Ledger
from connectors.base import Watched
from connectors.mapping import stage_mapping
from routing_core.decision import iso
from routing_core.outreach import same_stage
from sync.state import loads, sync_decisions, sync_review_queue

REASON = "cooling_off_violation"


@dataclass(frozen=True)
class Violation:
    record_id: str
    decision_id: str
    episode: str
    rule_id: str
    blocks_stage: str
    observed_stage: str
    not_before: str  # RFC 3339 UTC, from the decision

    def digest(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "decision_id": self.decision_id,
                "rule": self.rule_id, "stage": self.observed_stage,
                "not_before": self.not_before}


def blocked_stages(policy: Any) -> list[str]:
    """Every stage a cooling-off rule of the policy blocks (none: nothing to watch)."""
    return sorted({c.blocks_stage for c in getattr(policy, "cooling_off", ()) or ()
                   if c.blocks_stage})


def require_watch(policy: Any, mapping: Mapping[str, Any], mapping_key: str) -> None:
    """Refuse a source whose mapping cannot read the stage the policy's cooling-off rules
    block: its runs would route every lead and then fail at the watch, run after run. Said
    before anything is pulled (LeadgateError naming the mapping and the fix)."""
    stages = blocked_stages(policy)
    if stages:
        stage_mapping(mapping, mapping_key, stages)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else None


def find(conn: sa.Connection, source: str, watched: Sequence[Watched],
         now: datetime) -> list[Violation]:
    """The watched records that are violations not yet reported.

    A record counts when leadgate's decision for it (the decision id stamped on the record) is
    an assignment of this source whose cooling-off blocks the stage the record is at now, and
    `now` is before that decision's not_before. An officer's approval (review) counts too: it
    keeps the window of the refusal it overrides, except when that refusal was the lead sitting
    at the blocked stage already. A refusal is left out: it is already with the compliance
    queue (under the same decision id).
    """
    stamped = [w for w in watched if w.decision_id]
    out: list[Violation] = []
    for chunk in in_lists(conn, stamped):
        rows = {(r.record_id, r.decision_id): r for r in conn.execute(
            sa.select(sync_decisions.c.record_id, sync_decisions.c.decision_id,
                      sync_decisions.c.episode, sync_decisions.c.outcome,
                      sync_decisions.c.decision)
            .where(sync_decisions.c.source == source,
                   sync_decisions.c.decision_id.in_([w.decision_id for w in chunk])))}
        reported = set(conn.execute(
            sa.select(sync_review_queue.c.decision_id)
            .where(sync_review_queue.c.decision_id.in_([w.decision_id for w in chunk])))
            .scalars())
        for w in chunk:
            row = rows.get((w.record_id, w.decision_id))
            if row is None or row.outcome != "assigned" or row.decision_id in reported:
                continue
            decision = loads(row.decision) or {}
            if decision.get("refusal_reason") == REASON:
                # an officer's approval of a lead refused because it already sat at the
                # blocked stage: approved at that stage knowingly, not a later move into it
                continue
            cooling = decision.get("cooling_off") or {}
            blocks = cooling.get("blocks_stage")
            not_before = _when(cooling.get("not_before"))
            if not same_stage(w.stage, blocks) or not_before is None or not now < not_before:
                continue
            out.append(Violation(w.record_id, row.decision_id, row.episode,
                                 str(cooling.get("id") or ""), str(blocks), str(w.stage),
                                 iso(not_before)))
    return out


def record(engine: sa.Engine, ledger: Ledger, source: str, run_id: str,
           violations: Sequence[Violation], observed_at: datetime) -> list[Violation]:
    """Report the violations not reported yet (checked again inside the transaction): a ledger
    `violation` entry and a review item each, all in one write transaction. Returns those
    recorded now."""
    if not violations:
        return []
    with write_transaction(engine) as conn:
        reported = set(conn.execute(
            sa.select(sync_review_queue.c.decision_id)
            .where(sync_review_queue.c.decision_id.in_([v.decision_id for v in violations])))
            .scalars())
        new = [v for v in violations if v.decision_id not in reported]
        if not new:
            return []
        at = iso(observed_at)
        ledger.append(conn, [EntryIn("violation", f"{source}:{v.record_id}", {
            "kind": "cooling_off", "source": source, "record_id": v.record_id,
            "decision_id": v.decision_id, "cooling_off": v.rule_id,
            "blocks_stage": v.blocks_stage, "observed_stage": v.observed_stage,
            "not_before": v.not_before, "observed_at": at, "run_id": run_id})
            for v in new])
        conn.execute(sa.insert(sync_review_queue), [{
            "source": source, "record_id": v.record_id, "episode": v.episode,
            "decision_id": v.decision_id, "reason": REASON, "transient": False,
            "status": "open", "lead_input": None, "created_at": observed_at,
            "last_evaluated_at": observed_at, "evaluations": 1} for v in new])
    return new
