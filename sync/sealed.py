"""Personal data the sync job must keep for a while (a transient refusal's lead, to re-evaluate
it later) is sealed with the data subject's ledger key, so erasing the subject in the ledger
(crypto-shredding) makes this copy unreadable too."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from audit import crypto, schema
from audit.db import in_lists
from audit.ledger import read_head
from sync.state import dumps, loads


def seal(conn: sa.Connection, subject: str, data: dict[str, Any]) -> str | None:
    key = _key(conn, subject)
    if key is None:
        return None
    return dumps(crypto.seal(key, read_head(conn).ledger_id, subject, data))


def seal_many(conn: sa.Connection, data: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """seal() for many subjects with one key look-up per `in_lists` piece."""
    table = schema.subject_keys
    keys: dict[str, bytes] = {}
    subjects = sorted(data)
    for chunk in in_lists(conn, subjects):
        for row in conn.execute(sa.select(table.c.subject, table.c.key)
                                .where(table.c.subject.in_(chunk))):
            if row.key is not None:
                keys[row.subject] = bytes(row.key)
    ledger_id = read_head(conn).ledger_id
    return {s: dumps(crypto.seal(keys[s], ledger_id, s, d)) if s in keys else None
            for s, d in data.items()}


def unseal(conn: sa.Connection, subject: str, text: str | None) -> dict[str, Any] | None:
    """The data, or None when it was never stored or the subject has been erased."""
    if text is None:
        return None
    key = _key(conn, subject)
    if key is None:
        return None
    try:
        return crypto.unseal(key, read_head(conn).ledger_id, subject, loads(text))
    except ValueError:
        return None


def _key(conn: sa.Connection, subject: str) -> bytes | None:
    row = conn.execute(sa.select(schema.subject_keys.c.key)
                       .where(schema.subject_keys.c.subject == subject)).first()
    return None if row is None or row.key is None else bytes(row.key)
