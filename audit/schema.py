"""SQLAlchemy Core views of the ledger tables (created by migration 0001_ledger)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

head = sa.Table(
    "ledger_head", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ledger_id", sa.String(64)),
    sa.Column("size", sa.BigInteger),
    sa.Column("last_hash", sa.LargeBinary(32)),
    sa.Column("frontier", sa.LargeBinary),
    sa.Column("checkpoints", sa.BigInteger),
    sa.Column("last_checkpoint_digest", sa.LargeBinary(32)),
)

entries = sa.Table(
    "ledger_entries", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.String(32)),
    sa.Column("kind", sa.String(32)),
    sa.Column("subject", sa.String(255)),
    sa.Column("time", sa.String(40)),
    sa.Column("body", sa.LargeBinary),
    sa.Column("prev_hash", sa.LargeBinary(32)),
    sa.Column("entry_hash", sa.LargeBinary(32)),
)

checkpoints = sa.Table(
    "ledger_checkpoints", metadata,
    sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("time", sa.String(40)),
    sa.Column("key_fingerprint", sa.String(80)),
    sa.Column("body", sa.LargeBinary),
    sa.Column("signature", sa.LargeBinary),
)

subject_keys = sa.Table(
    "ledger_subject_keys", metadata,
    sa.Column("subject", sa.String(255), primary_key=True),
    sa.Column("key", sa.LargeBinary(32)),
    sa.Column("created_at", sa.String(40)),
    sa.Column("erased_at", sa.String(40)),
)

signing_keys = sa.Table(
    "ledger_signing_keys", metadata,
    sa.Column("fingerprint", sa.String(80), primary_key=True),
    sa.Column("public_key", sa.LargeBinary(32)),
    sa.Column("announced_seq", sa.BigInteger),
    sa.Column("created_at", sa.String(40)),
)
