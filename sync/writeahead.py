"""Decide a batch and write it ahead: decisions, rotation/cap state and ledger `decision`
entries committed in ONE write transaction, before anything is written to the CRM.

Idempotency: (source, record id, intake episode) has at most one decision. A candidate whose key
already has a decision is never decided again: if that decision's write-back has no recorded
outcome (a crash, a CRM error) the same decision is sent again; if it has one, nothing happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from audit.canonical import Canonical
from audit.db import in_lists, insert_rows, write_transaction
from audit.ledger import EntryIn, Ledger
from routing_core import engine as routing_engine
from routing_core.decision import Decision, iso
from routing_core.lead import InvalidLead, Lead, parse_lead
from routing_core.withheld import withhold_values
from sync import crashpoints, sealed
from sync.rotation_db import DbRotationState, RotationSnapshot
from sync.state import (
    CHANGED,
    FINAL_STATUSES,
    PENDING,
    changed_episode,
    dumps,
    loads,
    sync_decisions,
    sync_review_queue,
    utcnow,
)

# Refusals that may clear by themselves (a screening service back up, a rep back from leave or
# under their cap tomorrow): re-evaluated on later runs until an officer acts.
TRANSIENT_REASONS = frozenset({"screening_unavailable", "no_available_rep"})
OPEN_STATUSES = ("open", "awaiting_second_officer")
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone")
# What `sync_decisions.decision` keeps of a decision: the outcome and what review needs
# (teams_considered, for the licence check of an override; a refusal's lead summary, which
# `review list` shows). The full decision (lead, screening,
# gates, every rule tried with its condition leaves) is in the ledger's `decision` entry, under
# the same decision_id; storing it twice cost as much JSON again as the ledger's own encoding.
STORED_KEYS = ("decision_id", "decided_at", "policy", "outcome", "reason", "detail",
               "teams_considered", "team", "rep", "outreach", "cooling_off", "queue",
               "problems", "notes")


def stored_decision(payload: dict[str, Any]) -> dict[str, Any]:
    """The compact decision kept in `sync_decisions` (see STORED_KEYS; `full` says where the
    rest is)."""
    out = {key: payload[key] for key in STORED_KEYS if key in payload}
    rule = payload.get("rule")
    out["rule"] = rule.get("id") if isinstance(rule, dict) else None
    if payload.get("outcome") == "refused":  # what an officer picks a team by (no PII)
        out["lead"] = payload.get("lead")
    out["full"] = "ledger"
    return out


def ledger_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` with the screening scores (the only floats of a decision) as the strings the
    ledger's canonical JSON makes of floats anyway (audit.canonical.normalise: repr): the same
    bytes in the ledger, without the encoder's float route (a third of a decision's encoding
    time: audit.canonical._floats_as_strings)."""
    screening = payload.get("screening")
    if screening:
        payload["screening"] = [
            {**item, "best_score": repr(item["best_score"])}
            if isinstance(item, dict) and type(item.get("best_score")) is float
            and math.isfinite(item["best_score"]) else item
            for item in screening]
    return payload


def withhold_given_values(payload: dict[str, Any]) -> list[str] | None:
    """Take the record's values out of a refusal's problems (and its detail) in `payload`,
    which is stored in clear (routing_core/withheld.py); return the problems as given, to be
    sealed with the lead's personal data, or None when they quoted nothing."""
    problems = payload.get("problems")
    if not problems:
        return None
    shown = [withhold_values(p) for p in problems]
    if payload.get("detail"):
        payload["detail"] = withhold_values(payload["detail"])
    if shown == problems:
        return None
    payload["problems"] = shown
    return list(problems)


@dataclass
class Candidate:
    """One lead to decide (or whose earlier decision to finish) in this batch."""

    record_id: str
    episode: str
    cause: str  # "intake" | "reevaluation"
    lead_input: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    owner_at_read: str | None = None
    review_id: int | None = None  # reevaluation: the review item being re-evaluated
    previous_reason: str | None = None
    modified_at_read: datetime | None = None  # intake: the record's modstamp as read


@dataclass
class ToWrite:
    """A decision whose write-back is to be sent (new, or retried with the same decision)."""

    record_id: str
    decision_id: str
    outcome: str
    reason: str | None
    team_id: str | None
    writeback: dict[str, Any]
    retry: bool


@dataclass
class WriteAheadResult:
    to_write: list[ToWrite] = field(default_factory=list)
    already_done: int = 0
    still_refused: int = 0  # re-evaluations that came out the same: nothing recorded
    decisions: list[dict[str, Any]] = field(default_factory=list)  # dry run: what would be
    rotation_after: RotationSnapshot | None = None  # see write_ahead(helped=True)


def normalise(source: str, record_id: str, lead_input: dict[str, Any] | None,
              problems: Sequence[str]) -> Lead | list[str]:
    """A pulled record's lead as a sync run normalises it, or every problem found (a record
    the mapping could not read, or a lead parse_lead refuses)."""
    if lead_input is None or problems:
        return list(problems) or ["the record could not be mapped to a lead"]
    try:
        return parse_lead({**lead_input, "id": record_id}, source=source)
    except InvalidLead as exc:
        return list(exc.problems)


@dataclass
class Decider:
    """Everything needed to decide leads from one source."""

    source: str
    crm: str  # "salesforce" | "hubspot": which CRM id of the rep to write
    policy: Any
    screener: Any
    clock: Callable[[], datetime] = utcnow

    def decide(self, cand: Candidate, rotation: DbRotationState, at: datetime) -> Decision:
        lead = normalise(self.source, cand.record_id, cand.lead_input, cand.problems)
        if isinstance(lead, list):
            return routing_engine.refuse_invalid(
                self.source, cand.record_id, lead, self.policy, at=at,
                product=(cand.lead_input or {}).get("product"))
        return routing_engine.decide(lead, self.policy, at=at, rotation=rotation,
                                     screener=self.screener)

    def outcome_for(self, decision: Decision, cand: Candidate,
                    payload: dict[str, Any]) -> dict[str, Any]:
        """The write-back (connectors.base.Outcome fields) for a decision, as JSON."""
        return {
            "record_id": cand.record_id,
            "decision_id": decision.decision_id,
            "outcome": decision.outcome,
            "owner_crm_id": decision.rep_crm_id(self.crm) if decision.outcome == "assigned"
            else None,
            "reason": decision.reason,
            "policy_version": str(decision.policy.get("version", "")),
            "outreach": payload.get("outreach"),
            "not_before": iso(decision.not_before) if decision.not_before else None,
            "expected_owner": cand.owner_at_read if cand.cause == "intake" else None,
            "modified_at_read": iso(cand.modified_at_read)
            if cand.cause == "intake" and cand.modified_at_read else None,
        }


def _existing(conn: sa.Connection, source: str,
              keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    ids = sorted({record_id for record_id, _ in keys})
    for chunk in in_lists(conn, ids):
        rows = conn.execute(
            sa.select(sync_decisions.c.record_id, sync_decisions.c.episode,
                      sync_decisions.c.decision_id, sync_decisions.c.outcome,
                      sync_decisions.c.reason, sync_decisions.c.team_id,
                      sync_decisions.c.writeback, sync_decisions.c.writeback_status)
            .where(sync_decisions.c.source == source,
                   sync_decisions.c.record_id.in_(chunk)))
        for row in rows:
            found[(row.record_id, row.episode)] = row
    return found


def write_ahead(engine: sa.Engine, ledger: Ledger | None, decider: Decider,
                candidates: Sequence[Candidate], *, run_id: str, dry_run: bool = False,
                ahead: Ahead | None = None, helped: bool = False,
                fence: Callable[[sa.Connection], None] | None = None) -> WriteAheadResult:
    """Decide what is new in `candidates` and commit it ahead of the CRM write (see module).

    `ahead`: the same batch decided in advance by another process (sync/decide_ahead.py). It is
    committed only if it is exactly what deciding here would produce: the same candidates, none
    decided before, and the rotation state it started from equal to the database's now.
    Otherwise the batch is decided here, as without it; with `helped` (a helper is deciding
    the pages after it) the result then carries the rotation state committed. `fence` runs
    first inside the transaction and may refuse it (the run's lease: `Lease.hold`)."""
    if not candidates:
        return WriteAheadResult()
    keys = [(c.record_id, c.episode) for c in candidates]
    if dry_run:
        with engine.connect() as conn:
            return plan_batch(decider, candidates, DbRotationState(conn, read_only=True),
                              _existing(conn, decider.source, keys), decider.clock(), run_id,
                              dry_run=True).result
    with write_transaction(engine) as conn:
        if fence is not None:
            fence(conn)
        if any(c.review_id is not None for c in candidates):
            candidates = _still_open(conn, candidates)
            keys = [(c.record_id, c.episode) for c in candidates]
        rotation = DbRotationState(conn)
        existing = _existing(conn, decider.source, keys)
        if ahead is not None and ahead.applies(keys, existing, rotation):
            rotation.adopt(ahead.final)
            plan = ahead.plan
        else:
            plan = plan_batch(decider, candidates, rotation, existing, decider.clock(), run_id)
            if helped:
                plan.result.rotation_after = rotation.snapshot()
        commit_plan(conn, ledger, decider.source, plan, rotation,
                    decided_before={record_id for record_id, _ in existing})
        crashpoints.reached("ledger")  # killed here: the whole batch rolls back
    crashpoints.reached("committed")
    return plan.result


def _still_open(conn: sa.Connection, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates whose review item is still open, read under the writer lock: an officer
    who approved or rejected one since the job read the queue has decided it (their action
    takes the same lock), and a re-evaluation must not assign it a second time."""
    ids = [c.review_id for c in candidates if c.review_id is not None]
    q = sync_review_queue.c
    open_ids = {row.id for chunk in in_lists(conn, ids) for row in conn.execute(
        sa.select(q.id).where(q.id.in_(chunk), q.status.in_(OPEN_STATUSES)))}
    return [c for c in candidates if c.review_id is None or c.review_id in open_ids]


@dataclass
class Plan:
    """What one batch's write-ahead transaction writes, worked out before it writes anything."""

    at: datetime
    result: WriteAheadResult = field(default_factory=WriteAheadResult)
    rows: list[dict[str, Any]] = field(default_factory=list)  # sync_decisions
    entries: list[EntryIn] = field(default_factory=list)  # the ledger's `decision` entries
    review_rows: list[dict[str, Any]] = field(default_factory=list)  # new review items
    to_seal: dict[str, dict[str, Any]] = field(default_factory=dict)  # subject -> lead input
    superseded: list[int] = field(default_factory=list)  # review items re-evaluated anew
    returned: list[str] = field(default_factory=list)  # record ids back at intake
    evaluated: list[int] = field(default_factory=list)  # re-evaluated, came out the same


@dataclass
class Ahead:
    """A batch decided in advance from `base` (the rotation state it assumed), ending in
    `final`; `keys` are its candidates' (record id, episode) in order."""

    keys: list[tuple[str, str]]
    base: RotationSnapshot
    final: RotationSnapshot
    plan: Plan

    def applies(self, keys: list[tuple[str, str]], existing: dict[Any, Any],
                rotation: DbRotationState) -> bool:
        """Whether committing this is what deciding the batch `keys` here would commit."""
        return (self.keys == keys and not existing.keys() & keys  # (other episodes may be)
                and rotation.snapshot(self.base.days) == self.base)


def plan_batch(decider: Decider, candidates: Sequence[Candidate], rotation: Any,
               existing: dict[tuple[str, str], Any], at: datetime, run_id: str, *,
               dry_run: bool = False, encode: bool = False) -> Plan:
    """Decide the batch against `rotation` (advanced as leads are assigned). Reads nothing
    else: the same inputs give the same plan in any process. `encode`: the ledger payloads as
    their canonical bytes (made by the process that decides, not the one that commits)."""
    plan = Plan(at)
    result = plan.result
    seen: set[tuple[str, str]] = set()
    for cand in candidates:
        key = (cand.record_id, cand.episode)
        if key in seen:  # the same record twice in one batch (pull overlap): once is enough
            continue
        seen.add(key)
        prev = existing.get(key)
        while prev is not None and prev.writeback_status == CHANGED:
            # decided on the record as it was before an edit: decide it anew, once
            key = (cand.record_id, changed_episode(prev.decision_id))
            prev = existing.get(key)
            cand = replace(cand, episode=key[1])
        if prev is not None:
            if prev.writeback_status in FINAL_STATUSES:
                result.already_done += 1
            else:  # decided before, outcome unknown or failed: same decision again
                result.to_write.append(ToWrite(cand.record_id, prev.decision_id, prev.outcome,
                                               prev.reason, prev.team_id,
                                               loads(prev.writeback), retry=True))
            continue
        decision = decider.decide(cand, rotation, at)
        if (cand.cause == "reevaluation" and decision.outcome == "refused"
                and decision.reason == cand.previous_reason):
            # Nothing changed: no new decision (a refusal consumed no rotation step).
            result.still_refused += 1
            if cand.review_id is not None:
                plan.evaluated.append(cand.review_id)
            continue
        if cand.review_id is not None:
            plan.superseded.append(cand.review_id)
        else:
            plan.returned.append(cand.record_id)  # a new intake episode ends older review items
        payload = decision.to_json()
        as_given = withhold_given_values(payload)
        writeback = decider.outcome_for(decision, cand, payload)
        result.to_write.append(ToWrite(cand.record_id, decision.decision_id, decision.outcome,
                                       decision.reason, decision.team_id, writeback,
                                       retry=False))
        if dry_run:
            result.decisions.append({"record_id": cand.record_id, "episode": cand.episode,
                                     "cause": cand.cause, "decision": payload,
                                     "writeback": writeback})
            continue
        slot = rotation.take_slot(decision.team_id) if decision.outcome == "assigned" \
            and decision.team_id else None
        plan.rows.append({
            "source": decider.source, "record_id": cand.record_id, "episode": cand.episode,
            "cause": cand.cause, "decision_id": decision.decision_id, "run_id": run_id,
            "decided_at": at, "outcome": decision.outcome, "reason": decision.reason,
            "team_id": decision.team_id, "rep_id": decision.rep_id, "rotation_slot": slot,
            "decision": dumps(stored_decision(payload)), "writeback": dumps(writeback),
            "writeback_status": PENDING, "writeback_attempts": 0,
        })
        subject = f"{decider.source}:{cand.record_id}"
        personal: dict[str, Any] = {k: cand.lead_input[k] for k in PERSONAL_FIELDS
                                    if cand.lead_input and cand.lead_input.get(k) is not None}
        if as_given:
            personal["problems"] = as_given
        payload["sync"] = {"episode": cand.episode, "cause": cand.cause, "run_id": run_id,
                           "rotation_slot": slot}
        body = ledger_payload(payload)
        plan.entries.append(EntryIn("decision", subject,
                                    Canonical.of(body) if encode else body,
                                    personal or None))
        if decision.outcome == "refused":
            transient = decision.reason in TRANSIENT_REASONS
            if transient and cand.lead_input:
                plan.to_seal[subject] = cand.lead_input
            plan.review_rows.append({
                "source": decider.source, "record_id": cand.record_id,
                "episode": cand.episode, "decision_id": decision.decision_id,
                "reason": decision.reason or "unknown", "transient": transient,
                "status": "open", "lead_input": None, "created_at": at,
                "last_evaluated_at": at, "evaluations": 1,
            })
    return plan


def commit_plan(conn: sa.Connection, ledger: Ledger | None, source: str, plan: Plan,
                rotation: DbRotationState, decided_before: Collection[str]) -> None:
    """Write a plan inside the write-ahead transaction: rotation, decisions, ledger entries,
    review items (transient refusals' lead input sealed with the subject's key).
    `decided_before`: the batch's record ids that have a decision of an earlier episode; only
    they can have review items for a new intake episode to end (every review item is a
    decision's), so a first backfill never looks for any."""
    at = plan.at
    returned = [record_id for record_id in plan.returned if record_id in decided_before]
    if plan.evaluated:
        conn.execute(sa.update(sync_review_queue)
                     .where(sync_review_queue.c.id == sa.bindparam("item"))
                     .values(last_evaluated_at=at,
                             evaluations=sync_review_queue.c.evaluations + 1),
                     [{"item": item} for item in plan.evaluated])
    if plan.superseded:
        conn.execute(sa.update(sync_review_queue)
                     .where(sync_review_queue.c.id.in_(plan.superseded))
                     .values(status="superseded", resolved_at=at, resolved_by="re-evaluation",
                             lead_input=None))
    for chunk in in_lists(conn, returned):
        conn.execute(sa.update(sync_review_queue)
                     .where(sync_review_queue.c.source == source,
                            sync_review_queue.c.record_id.in_(chunk),
                            sync_review_queue.c.status.in_(OPEN_STATUSES),
                            # A reported violation stays with compliance: it happened whatever
                            # becomes of the lead now (only refusals end with the episode).
                            # (per item, through the unique decision_id index: the set of
                            # all assignments is never read on the pull's hot path)
                            ~sa.exists().where(
                                sync_decisions.c.decision_id == sync_review_queue.c.decision_id,
                                sync_decisions.c.outcome == "assigned"))
                     .values(status="superseded", resolved_at=at, resolved_by="new intake",
                             lead_input=None))
    rotation.flush()
    _insert_dicts(conn, sync_decisions, plan.rows)
    if plan.entries:
        assert ledger is not None
        ledger.append(conn, plan.entries)
    if plan.review_rows:
        sealed_inputs = sealed.seal_many(conn, plan.to_seal) if plan.to_seal else {}
        for row in plan.review_rows:
            row["lead_input"] = sealed_inputs.get(f"{source}:{row['record_id']}")
        _insert_dicts(conn, sync_review_queue, plan.review_rows)


def _insert_dicts(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """`rows`, all with the same keys (one dict literal in `plan_batch`), through `insert_rows`."""
    if rows:
        columns = tuple(rows[0])
        values = itemgetter(*columns)
        insert_rows(conn, table, columns, [values(row) for row in rows])
