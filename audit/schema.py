"""SQLAlchemy Core views of the ledger tables (created by migration 0001_ledger)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

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


# -- reading the BLOB columns ------------------------------------------------------------------
# SQLite lets any row of a BLOB column hold any type: a row edited below the triggers may hand
# back TEXT (Python's driver decodes it, and fails on bytes that are not UTF-8), a number or
# NULL. Every read of a body or signature goes through these two, so verify, explain and export
# see the bytes the row holds and report an edited entry instead of crashing on it.

def blob_sql(dialect: str, column: str = "body") -> str:
    """The SQL that reads `column` as bytes: SQLite's CAST gives a TEXT value's own bytes."""
    return f"CAST({column} AS BLOB)" if dialect == "sqlite" else column


def entries_sql(dialect: str, *, seq_range: bool = False) -> str:
    """Every column of the ledger's entries, the body as bytes, in sequence order (with
    `seq_range`, those whose seq lies between the query's two `?` parameters, SQLite's style):
    the raw query the verifiers stream."""
    parts = ("SELECT seq, entry_id, kind, subject, time,", blob_sql(dialect),
             ", entry_hash FROM ledger_entries", "WHERE seq BETWEEN ? AND ?" if seq_range else "",
             "ORDER BY seq")
    return " ".join(part for part in parts if part)


class StoredBlob(FunctionElement[bytes]):
    """`blob_sql` for SQLAlchemy selects: `StoredBlob(entries.c.body).label("body")`."""

    type = sa.LargeBinary()
    inherit_cache = True


@compiles(StoredBlob)
def _compile_stored_blob(element: StoredBlob, compiler: Any, **kw: Any) -> str:
    return blob_sql(compiler.dialect.name, compiler.process(element.clauses, **kw))


def stored_bytes(value: object) -> bytes:
    """A body or signature as bytes, whatever the driver returned: TEXT (a PostgreSQL column
    whose type was changed) is its UTF-8, NULL is no bytes; neither hashes as the entry did."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode("utf-8", "surrogatepass")
