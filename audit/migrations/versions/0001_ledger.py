"""The audit ledger: entries, head, checkpoints, subject keys, signing keys.

Revision ID: 0001_ledger
Revises:
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None

# Tables whose rows may never change once written.
APPEND_ONLY = ("ledger_entries", "ledger_checkpoints")


def upgrade() -> None:
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ledger_id", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.LargeBinary(32), nullable=False),
        # The Merkle tree's left-edge perfect subtree hashes, so a checkpoint needs no scan.
        sa.Column("frontier", sa.LargeBinary, nullable=False),
        sa.Column("checkpoints", sa.BigInteger, nullable=False),
        sa.Column("last_checkpoint_digest", sa.LargeBinary(32), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_ledger_head_single_row"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_ledger_entries_subject", "ledger_entries", ["subject", "seq"])
    op.create_index("ix_ledger_entries_time", "ledger_entries", ["time"])
    op.create_table(
        "ledger_checkpoints",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("key_fingerprint", sa.String(80), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_subject_keys",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("key", sa.LargeBinary(32), nullable=True),  # NULL once erased
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("erased_at", sa.String(40), nullable=True),
    )
    op.create_table(
        "ledger_signing_keys",
        sa.Column("fingerprint", sa.String(80), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("announced_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "ledger_head", sa.column("id", sa.Integer), sa.column("ledger_id", sa.String),
            sa.column("size", sa.BigInteger), sa.column("last_hash", sa.LargeBinary), sa.column("frontier", sa.LargeBinary),
            sa.column("checkpoints", sa.BigInteger),
        ),
        [{"id": 1, "ledger_id": uuid.uuid4().hex, "size": 0, "last_hash": bytes(32), "frontier": b"",
          "checkpoints": 0}],
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'leadgate ledger is append-only: % on % refused', "
            "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
    elif dialect == "sqlite":  # SQLite has no TRUNCATE; DELETE without WHERE hits the trigger
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'leadgate ledger is append-only: "
                    f"{action} on {table} refused'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    for table in ("ledger_signing_keys", "ledger_subject_keys", "ledger_checkpoints",
                  "ledger_entries", "ledger_head"):
        op.drop_table(table)
