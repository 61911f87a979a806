"""Where each source's pull got to. Advanced only after a batch's outcomes are recorded."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from sync.state import dumps, loads, sync_cursors, utcnow


def cursor_to_json(cursor: Any) -> Any:
    """The connector's cursor as plain JSON data (pydantic model, dataclass, dict or scalar)."""
    if cursor is None:
        return None
    if hasattr(cursor, "model_dump"):
        return cursor.model_dump(mode="json")
    if dataclasses.is_dataclass(cursor) and not isinstance(cursor, type):
        return dataclasses.asdict(cursor)
    return cursor


def load(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(sync_cursors.c.cursor).where(sync_cursors.c.name == name)).first()
    return None if row is None else loads(row.cursor)


def save(conn: sa.Connection, name: str, source: str, cursor: Any, run_id: str) -> None:
    values = {"cursor": dumps(cursor_to_json(cursor)), "updated_at": utcnow(), "run_id": run_id}
    updated = conn.execute(
        sa.update(sync_cursors).where(sync_cursors.c.name == name).values(**values)
    ).rowcount
    if updated == 0:
        conn.execute(sa.insert(sync_cursors).values(name=name, source=source, **values))
