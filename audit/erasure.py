"""Erasure (crypto-shredding) and the retention report.

Erasing a subject destroys its AES key and appends an `erasure` entry. The ciphertext stays in
the ledger (the hashes cover it, so the chain still verifies) but can no longer be decrypted,
in the database or in any export made before. SQLite overwrites the freed key bytes
(secure_delete) and its write-ahead log is truncated; PostgreSQL's old row version is vacuumed.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit import schema
from audit.canonical import rfc3339
from audit.db import connect, is_sqlite, write_transaction
from audit.errors import LedgerError
from audit.ledger import Appended, EntryIn, Ledger
from audit.reasons import check_reason


def erase_subject(ledger: Ledger, subject: str, reason: str, *, by: str | None = None) -> Appended:
    check_reason(reason, what="an erasure", example="GDPR art. 17 request DSR-2026-0412")
    with write_transaction(ledger.engine) as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.entries)
                             .where(schema.entries.c.subject == subject)).scalar_one()
        if not count:
            raise LedgerError(f"no ledger entries about {subject!r}",
                              fix="give the subject as source:record_id, as `audit explain` shows")
        keys = schema.subject_keys
        row = conn.execute(sa.select(keys.c.key, keys.c.erased_at)
                           .where(keys.c.subject == subject)).first()
        if row is not None and row.erased_at is not None:
            raise LedgerError(f"{subject!r} was already erased on {row.erased_at}")
        now = rfc3339(ledger.clock())
        had_key = row is not None
        if had_key:
            conn.execute(keys.update().where(keys.c.subject == subject)
                         .values(key=None, erased_at=now))
        else:  # no personal data so far; remember the erasure so none is ever stored
            conn.execute(keys.insert().values(subject=subject, key=None, created_at=now,
                                              erased_at=now))
        appended = ledger.append(conn, [EntryIn("erasure", subject, {
            "subject": subject, "reason": reason, "by": by, "os_user": getpass.getuser(),
            "key_destroyed": had_key,
            "entries_about_subject": int(count)})])[0]
    _scrub(ledger)
    return appended


def _scrub(ledger: Ledger) -> None:
    """Push the destroyed key out of the places a database keeps old copies."""
    engine = ledger.engine
    if is_sqlite(engine):
        with connect(engine) as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with connect(engine) as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ledger_subject_keys")


def subject_key(conn: Connection, subject: str) -> tuple[bytes | None, str | None]:
    """(key, erased_at) of a subject; (None, None) when it never had personal data."""
    keys = schema.subject_keys
    row = conn.execute(sa.select(keys.c.key, keys.c.erased_at)
                       .where(keys.c.subject == subject)).first()
    if row is None:
        return None, None
    return (None if row.key is None else bytes(row.key)), row.erased_at


@dataclass
class RetentionReport:
    cutoff: str
    total: int
    past: int
    by_kind: dict[str, int]
    oldest: str | None
    newest_past: str | None
    subjects: int

    def summary(self) -> str:
        if not self.past:
            return (f"nothing is past retention: all {self.total} entries are newer than "
                    f"{self.cutoff}. Nothing was deleted.")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind.items()))
        return (f"{self.past} of {self.total} entries ({kinds}) about {self.subjects} subjects "
                f"are older than {self.cutoff} (oldest {self.oldest}, newest {self.newest_past}). "
                "Nothing was deleted: ledger rows are never removed silently; erase subjects "
                "with `leadgate audit erase` or archive an export before any deliberate purge.")


def retention_report(ledger: Ledger, years: int, *, now: datetime | None = None) -> RetentionReport:
    if years < 1:
        raise LedgerError("--years must be at least 1", fix="e.g. --years 7")
    moment = now or ledger.clock()
    try:
        cutoff_dt = moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        cutoff_dt = moment.replace(year=moment.year - years, day=28) + timedelta(days=1)
    cutoff = rfc3339(cutoff_dt)
    e = schema.entries
    with connect(ledger.engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
        rows = conn.execute(sa.select(e.c.kind, sa.func.count(), sa.func.min(e.c.time),
                                      sa.func.max(e.c.time)).where(e.c.time < cutoff)
                            .group_by(e.c.kind)).all()
        subjects = conn.execute(sa.select(sa.func.count(sa.distinct(e.c.subject)))
                                .where(e.c.time < cutoff)).scalar_one()
    by_kind = {str(r[0]): int(r[1]) for r in rows}
    return RetentionReport(
        cutoff=cutoff, total=int(total), past=sum(by_kind.values()), by_kind=by_kind,
        oldest=min((str(r[2]) for r in rows), default=None),
        newest_past=max((str(r[3]) for r in rows), default=None), subjects=int(subjects))
