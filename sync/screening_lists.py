"""Reading the policy's screening lists from disk into a `ListScreener`.

Formats (policy-spec.md "Screening"):
- `ofac_sdn_csv`: OFAC's sdn.csv (no header; ent_num, name, type, program, ..., remarks), with
  the "a.k.a. '...'" spellings in the remarks taken as aliases; "-0-" is OFAC's empty value.
- `opensanctions_simple`: OpenSanctions' targets.simple.csv (header; `aliases`, `phones` and
  `emails` are ';'-separated).
- `csv`: the internal blocklist (header name, email, domain, phone; any may be empty).

A list that cannot be read never lets a lead through unscreened: the screener returned then
refuses every lead `screening_unavailable` (policy `on_error: refuse`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from routing_core.lead import Lead
from routing_core.name_screening import ListEntry, ListScreener, LoadedList
from routing_core.policy import Policy
from routing_core.screening import (
    Check,
    NullScreener,
    Screener,
    ScreeningResult,
    ScreeningUnavailable,
)

_AKA = re.compile(r"a\.k\.a\.\s*'([^']+)'")
_OFAC_EMPTY = "-0-"


class ListUnreadable(Exception):
    """A screening list file is missing, unreadable or not in its declared format."""


class UnavailableScreener:
    """Refuses every lead: a list could not be read, and routing unscreened is not allowed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        raise ScreeningUnavailable(self.reason)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def _ofac_rows(rows: Iterable[list[str]]) -> Iterable[ListEntry]:
    for row in rows:
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise ListUnreadable(f"row {row[0]!r} has {len(row)} columns, expected 12")
        remarks = row[11] if len(row) > 11 else ""
        aliases = tuple(_AKA.findall(remarks)) if remarks.strip() != _OFAC_EMPTY else ()
        yield ListEntry(entry_id=row[0].strip(), name=row[1].strip(), aliases=aliases)


def _opensanctions_rows(rows: Iterable[dict[str, str]]) -> Iterable[ListEntry]:
    for row in rows:
        if "name" not in row or "id" not in row:
            raise ListUnreadable("missing the `id` or `name` column of the simple CSV format")
        yield ListEntry(entry_id=row["id"], name=row["name"] or "",
                        aliases=_split(row.get("aliases")), emails=_split(row.get("emails")),
                        phones=_split(row.get("phones")))


def _cell(row: dict[str, str], key: str) -> tuple[str, ...]:
    value = (row.get(key) or "").strip()
    return (value,) if value else ()


def _blocklist_rows(rows: Iterable[dict[str, str]]) -> Iterable[ListEntry]:
    for number, row in enumerate(rows, start=2):
        if not {"name", "email", "domain", "phone"} & set(row):
            raise ListUnreadable("expected the columns name, email, domain, phone")
        yield ListEntry(entry_id=f"row {number}", name=(row.get("name") or "").strip(),
                        emails=_cell(row, "email"), domains=_cell(row, "domain"),
                        phones=_cell(row, "phone"))


_READERS: dict[str, Callable[[str], Iterable[ListEntry]]] = {
    "ofac_sdn_csv": lambda text: _ofac_rows(csv.reader(io.StringIO(text))),
    "opensanctions_simple": lambda text: _opensanctions_rows(csv.DictReader(io.StringIO(text))),
    "csv": lambda text: _blocklist_rows(csv.DictReader(io.StringIO(text))),
}


def read_list(check: Check, list_id: str, fmt: str, path: Path) -> LoadedList:
    """Read one list file; ListUnreadable says why it cannot be used."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise ListUnreadable(f"unknown list format {fmt!r} (known: {', '.join(_READERS)})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        entries = list(reader(data.decode("utf-8-sig")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ListUnreadable(f"{path} is not a readable {fmt} file: {exc}") from None
    except ListUnreadable as exc:
        raise ListUnreadable(f"{path}: {exc}") from None
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return LoadedList(check=check, list_id=list_id, digest=digest, entries=entries)


def policy_folder(policy: Policy) -> Path:
    """Where relative list paths start: the policy folder, or the policy file's folder."""
    if not policy.files:
        return Path.cwd()
    first = Path(policy.files[0])
    return first.parent


def _declared_lists(screening: dict[str, Any]) -> list[tuple[Check, str, str, str]]:
    """(check, list id, format, path) of every list the policy's screening section names."""
    declared: list[tuple[Check, str, str, str]] = [
        ("sanctions", item["id"], item["format"], item["path"])
        for item in screening.get("lists") or []
    ]
    singles: tuple[tuple[str, Check], ...] = (("pep", "pep"), ("blocklist", "blocklist"))
    for key, check in singles:
        source = screening.get(key)
        if source:
            declared.append((check, source.get("id") or key, source["format"], source["path"]))
    return declared


def load_screener(policy: Policy) -> Screener:
    """The screener the policy's `screening` section asks for.

    No section: a NullScreener. A list that cannot be read: an UnavailableScreener that refuses
    every lead (fail closed), whose `reason` callers show to the person running the job.
    """
    if policy.screening is None:
        return NullScreener()
    screening = dict(policy.screening)
    base = policy_folder(policy)
    loaded: list[LoadedList] = []
    for check, list_id, fmt, raw_path in _declared_lists(screening):
        path = Path(raw_path)
        if not path.is_absolute():
            path = base / path
        try:
            loaded.append(read_list(check, list_id, fmt, path))
        except ListUnreadable as exc:
            return UnavailableScreener(f"screening list {list_id!r} is unusable: {exc}")
    return ListScreener(loaded, threshold=float(screening.get("match_threshold", 0.9)))
