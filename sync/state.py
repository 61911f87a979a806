"""The sync job's own tables (SQLAlchemy Core), created by migration 0002_sync_state.

These hold everything a later run needs to finish what an earlier one started: where each
source's pull got to (cursors), who is running (leases), the rotation and per-day cap state
that decisions consumed, every decision with its write-back status (keyed by source, record id
and intake episode), the compliance review queue and the history of runs.

No personal data is stored here except `sync_review_queue.lead_input`, which is kept only while
a transient refusal may need re-evaluating and cleared once the item is resolved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from audit.canonical import compact_encoder

metadata = sa.MetaData()

# Write-back status of a decision. "pending" = written ahead, outcome not yet recorded: the
# crash rule retries exactly these with the same decision.
PENDING = "pending"
OK = "ok"
ERROR = "error"
CONFLICT = "conflict"
GONE = "gone"  # the record no longer exists in the CRM (deleted, merged or converted): final
# the record was edited between leadgate's read and its write: not written, final; the job
# reads it again and decides it anew (episode "changed:<this decision id>")
CHANGED = "changed"
# sync_runs.status of a run that went through its whole backlog (partial: some write-backs
# failed; the next run retries them)
COMPLETED = ("done", "partial")
WRITEBACK_STATUSES = (PENDING, OK, ERROR, CONFLICT, GONE, CHANGED)
# outcomes that end a decision's write-back: nothing left to retry
FINAL_STATUSES = (OK, CONFLICT, GONE, CHANGED)


CHANGED_PREFIX = "changed:"


def changed_episode(decision_id: str) -> str:
    """The episode in which a record is decided again after `decision_id` was `changed`."""
    return CHANGED_PREFIX + decision_id

sync_cursors = sa.Table(
    "sync_cursors",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),  # source, or source#shard
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("cursor", sa.Text, nullable=True),  # the connector's cursor, as JSON
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=True),
)

sync_leases = sa.Table(
    "sync_leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),  # source, or source#shard
    sa.Column("holder", sa.String(200), nullable=False),  # host:pid:run id
    sa.Column("run_id", sa.String(40), nullable=False),
    # Epoch seconds: compared in SQL the same way on SQLite and PostgreSQL.
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

sync_rotation = sa.Table(
    "sync_rotation",
    metadata,
    sa.Column("team_id", sa.String(100), primary_key=True),
    # The team's rotation state as the routing core's RotationState sees it (JSON), and the
    # number of rotation steps taken so far: every assignment takes the next slot number.
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("slots_used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

sync_daily_counts = sa.Table(
    "sync_daily_counts",
    metadata,
    sa.Column("rep_id", sa.String(100), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # ISO date in the policy's timezone
    sa.Column("count", sa.Integer, nullable=False),
)

sync_decisions = sa.Table(
    "sync_decisions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("record_id", sa.String(100), nullable=False),
    sa.Column("episode", sa.String(40), nullable=False),
    sa.Column("cause", sa.String(20), nullable=False),  # intake | reevaluation | review
    sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.String(60), nullable=True),
    sa.Column("team_id", sa.String(100), nullable=True),
    sa.Column("rep_id", sa.String(100), nullable=True),
    sa.Column("rotation_slot", sa.BigInteger, nullable=True),
    # The decision JSON, compact (sync.writeahead.stored_decision; no personal data): the
    # full decision is the ledger entry of the same decision_id.
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("writeback", sa.Text, nullable=False),  # the Outcome sent to the CRM, as JSON
    sa.Column("writeback_status", sa.String(20), nullable=False),
    sa.Column("writeback_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("writeback_message", sa.Text, nullable=True),
    sa.Column("writeback_at", sa.DateTime(timezone=True), nullable=True),
    # Also the index for look-ups by (source, record_id): migration 0004 dropped a second one.
    sa.UniqueConstraint("source", "record_id", "episode", name="uq_sync_decisions_episode"),
    # A rotation slot is used by exactly one assignment, whatever the number of workers.
    sa.UniqueConstraint("team_id", "rotation_slot", name="uq_sync_decisions_slot"),
    sa.Index("ix_sync_decisions_pending", "source", "writeback_status"),
)

sync_review_queue = sa.Table(
    "sync_review_queue",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("record_id", sa.String(100), nullable=False),
    sa.Column("episode", sa.String(40), nullable=False),
    sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
    sa.Column("reason", sa.String(60), nullable=False),
    sa.Column("transient", sa.Boolean, nullable=False),
    # open | awaiting_second_officer | approved | rejected | superseded | resolved (a
    # cooling-off violation closed by an officer) | gone (the record was deleted, merged or converted in the CRM)
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("lead_input", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("evaluations", sa.Integer, nullable=False, server_default="0"),
    sa.Column("approvals", sa.Text, nullable=True),  # JSON list of officer approvals so far
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_by", sa.String(200), nullable=True),
    sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_sync_review_queue_status", "status", "source"),
    sa.Index("ix_sync_review_queue_record", "source", "record_id"),  # migration 0003
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # running | done | partial | failed
    sa.Column("summary", sa.Text, nullable=True),  # the run summary JSON (counts, ids only)
    sa.Index("ix_sync_runs_source", "source", "started_at"),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored time in UTC: SQLite hands back naive datetimes (everything we store is UTC),
    PostgreSQL aware ones in the session's time zone."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def json_default(value: Any) -> Any:
    """`default=` for the JSON the CLI prints for schedulers and scripts: a stored time as
    RFC 3339 UTC (`2026-12-07T06:20:14.378413Z`), anything else as its text."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    return str(value)


# json.dumps(value, sort_keys=True, separators=(",", ":"), default=str), made once
_compact = compact_encoder(str, ensure_ascii=True, allow_nan=True)
# Datetimes, dataclasses and subclasses of str, int, dict and list go to `default=str`, as
# with json.dumps; keys that are not strings, lone surrogates and integers beyond 64 bits
# make orjson refuse, and the C encoder writes them as json.dumps does.
_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)


def dumps(value: Any) -> str:
    """Compact JSON text with sorted keys for the JSON columns (`default=str`). Two per decision
    in the helper: orjson, a fifth of the C encoder's time. Text is UTF-8, not \\u-escaped;
    NaN and infinities, which JSON lacks, are written as null (json.dumps wrote NaN, which
    JSON readers refuse)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return _compact(value)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
