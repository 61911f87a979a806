"""Cheaper writes: one index fewer on sync_decisions; lz4 for ledger bodies on PostgreSQL.

Revision ID: 0004_cheaper_writes
Revises: 0003_review_record

- `ix_sync_decisions_record` (source, record_id) repeated the leading columns of the unique
  (source, record_id, episode) index, which serves the same look-ups; every decision row and
  every write-back outcome (an update that moves the row) paid for it.
- A `decision` entry's body is about 4 kB of JSON, so PostgreSQL compresses it. lz4 does that in
  half the time of the default pglz, to about the same size (benchmarks/README.md, "Sync job").
  Only values stored from now on are affected; old ones stay readable as they are. Servers built
  without lz4 (or older than PostgreSQL 14) keep pglz.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_cheaper_writes"
down_revision = "0003_review_record"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sync_decisions_record", table_name="sync_decisions")
    if _server_has_lz4():
        op.execute("ALTER TABLE ledger_entries ALTER COLUMN body SET COMPRESSION lz4")


def downgrade() -> None:
    if _server_has_lz4():
        op.execute("ALTER TABLE ledger_entries ALTER COLUMN body SET COMPRESSION default")
    op.create_index("ix_sync_decisions_record", "sync_decisions", ["source", "record_id"])


def _server_has_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )).scalar())
