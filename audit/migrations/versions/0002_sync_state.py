"""Sync job state: cursors, leases, rotation and caps, decisions, review queue, runs.

Revision ID: 0002_sync_state
Revises: 0001_ledger

A frozen copy of sync/state.py at this revision (tests/sync/test_sync_state.py checks that the two
agree, with the revisions after it); later changes to sync/state.py need a new revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sync_state"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=True),
    )
    op.create_table(
        "sync_leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "sync_rotation",
        sa.Column("team_id", sa.String(100), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("slots_used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sync_daily_counts",
        sa.Column("rep_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "sync_decisions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("episode", sa.String(40), nullable=False),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(60), nullable=True),
        sa.Column("team_id", sa.String(100), nullable=True),
        sa.Column("rep_id", sa.String(100), nullable=True),
        sa.Column("rotation_slot", sa.BigInteger, nullable=True),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("writeback", sa.Text, nullable=False),
        sa.Column("writeback_status", sa.String(20), nullable=False),
        sa.Column("writeback_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("writeback_message", sa.Text, nullable=True),
        sa.Column("writeback_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("source", "record_id", "episode", name="uq_sync_decisions_episode"),
        sa.UniqueConstraint("team_id", "rotation_slot", name="uq_sync_decisions_slot"),
    )
    op.create_index("ix_sync_decisions_pending", "sync_decisions", ["source", "writeback_status"])
    op.create_index("ix_sync_decisions_record", "sync_decisions", ["source", "record_id"])
    op.create_table(
        "sync_review_queue",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("episode", sa.String(40), nullable=False),
        sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
        sa.Column("reason", sa.String(60), nullable=False),
        sa.Column("transient", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("lead_input", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluations", sa.Integer, nullable=False, server_default="0"),
        sa.Column("approvals", sa.Text, nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("notified", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_sync_review_queue_status", "sync_review_queue", ["status", "source"])
    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
    )
    op.create_index("ix_sync_runs_source", "sync_runs", ["source", "started_at"])


def downgrade() -> None:
    for name in ("sync_runs", "sync_review_queue", "sync_decisions", "sync_daily_counts",
                 "sync_rotation", "sync_leases", "sync_cursors"):
        op.drop_table(name)
