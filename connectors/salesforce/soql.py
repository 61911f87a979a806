"""SOQL built only from the mapping, with every value escaped.

Identifiers (object and field names) come from configuration and are checked against the API-name
grammar, never quoted into place; values (queue names, record ids) are always string literals
escaped per the SOQL reference (backslash escapes for quote, backslash and control characters);
timestamps are formatted from datetime objects. Nothing from a record or a config value can end a
literal or add a clause.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from connectors.base import Cursor
from connectors.mapping import iso_z

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")  # whole string: fullmatch
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\b": "\\b", "\f": "\\f"}


class UnsafeName(ValueError):
    pass


def name(identifier: str) -> str:
    """An object or field API name, or UnsafeName."""
    if not _NAME.fullmatch(identifier):
        raise UnsafeName(f"{identifier!r} is not a Salesforce API name")
    return identifier


def literal(value: str) -> str:
    """A quoted, escaped SOQL string literal."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in str(value)) + "'"


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


def when(value: datetime) -> str:
    """A SOQL dateTime literal (unquoted, UTC)."""
    return iso_z(value)


def select(fields: Sequence[str], sobject: str) -> str:
    # names pass name(), values pass literal(): this module is the one place SOQL is assembled
    columns = ", ".join(dict.fromkeys(name(f) for f in fields))
    return f"SELECT {columns} FROM {name(sobject)}"  # noqa: S608


def open_records(sobject: str) -> list[str]:
    """Conditions that keep out records no longer open: a converted Lead stays queryable but
    read-only (an update fails with CANNOT_UPDATE_CONVERTED_LEAD) and is past routing."""
    return ["IsConverted = false"] if sobject.lower() == "lead" else []


def pull_query(*, fields: Sequence[str], sobject: str, intake_queue_id: str,
               unstamped_field: str, after: Cursor | None, overlap: timedelta) -> str:
    """Intake records changed after the cursor, oldest first, ties broken by Id.

    With an overlap window the lower bound moves back by the window and is inclusive (records a
    late commit stamped just before the cursor are read again; the sync job's idempotency key
    makes that harmless). Without one, the (SystemModstamp, Id) pair is compared strictly.
    """
    where = [f"OwnerId = {literal(intake_queue_id)}", f"{name(unstamped_field)} = null",
             *open_records(sobject)]
    if after is not None:
        if overlap > timedelta(0):
            where.append(f"SystemModstamp >= {when(after.modstamp - overlap)}")
        else:
            stamp = when(after.modstamp)
            where.append(f"(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND "
                         f"Id > {literal(after.record_id)}))")
    return (f"{select(fields, sobject)} WHERE {' AND '.join(where)} "
            "ORDER BY SystemModstamp ASC, Id ASC")


def watch_query(*, sobject: str, stage_field: str, decision_field: str, not_before_field: str,
                stages: Iterable[str], now: datetime) -> str:
    """Records still inside their cooling-off window (not_before after `now`) whose stage is one
    of `stages` (CRM values, each an escaped literal), in Id order."""
    fields = ["Id", stage_field, decision_field, not_before_field]
    return (f"{select(fields, sobject)} WHERE {name(not_before_field)} > {when(now)} "
            f"AND {name(stage_field)} IN {in_list(stages)} ORDER BY Id ASC")


def by_ids_query(*, fields: Sequence[str], sobject: str, ids: Iterable[str]) -> str:
    """These records while still open: a converted lead reads as gone."""
    where = " AND ".join([f"Id IN {in_list(ids)}", *open_records(sobject)])
    return f"{select(fields, sobject)} WHERE {where}"


def queues_query(names: Iterable[str]) -> str:
    listed = in_list(names)
    return ("SELECT Id, Name, DeveloperName FROM Group WHERE Type = 'Queue' AND "  # noqa: S608
            f"(DeveloperName IN {listed} OR Name IN {listed})")
