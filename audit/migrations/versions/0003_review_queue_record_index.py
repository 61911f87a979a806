"""An index on the review queue by (source, record id).

Revision ID: 0003_review_record
Revises: 0002_sync_state

A new intake episode ends its record's open refusals (sync/writeahead.py): without this index
that update read every open item of the source once per 500 records of a page, so a large
backlog cost time in the square of its refusals.
"""

from __future__ import annotations

from alembic import op

revision = "0003_review_record"
down_revision = "0002_sync_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sync_review_queue_record", "sync_review_queue", ["source", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_sync_review_queue_record", table_name="sync_review_queue")
