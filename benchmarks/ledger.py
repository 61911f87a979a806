"""Ledger figures: append rate against raw inserts, and verification rate.

    python benchmarks/ledger.py                      # SQLite, plus PostgreSQL if configured
    python benchmarks/ledger.py --entries 100000 --verify-entries 1000000

PostgreSQL runs when LEADGATE_BENCH_DATABASE_URL or LEADGATE_TEST_DATABASE_URL names a server
(a fresh database is created there and dropped afterwards).

"Raw" is the same rows into a table of the same shape in batches of the same size, each
payload serialised with plain json.dumps (what an application storing JSON would do), with no
canonical form, no hashing, no encryption, no chain and no writer lock. Raw and ledger batches
alternate, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from audit import db  # noqa: E402
from audit.canonical import rfc3339  # noqa: E402
from audit.ids import new_ulid  # noqa: E402
from audit.ledger import ENTRY_COLUMNS, EntryIn, Ledger  # noqa: E402
from audit.verify import verify_database  # noqa: E402

DECISION: dict[str, Any] = {
    "decision_id": "01JD8Z6Q3W4XKQ0S0M5VJ3B1AA", "decided_at": "2026-11-24T10:15:02Z",
    "lead": {"source": "salesforce", "id": "00Q5g00000ABCDE", "jurisdiction": "GB",
             "customer_type": "retail", "product": "easy_saver"},
    "policy": {"id": "northwind-routing", "version": "2026.11.2", "digest": "sha256:" + "ab" * 32},
    "outcome": "assigned", "reason": None,
    "screening": [{"check": c, "list": c, "list_digest": "sha256:" + "cd" * 32, "hit": False,
                   "best_score": "0.41"} for c in ("sanctions", "pep", "blocklist")],
    "gates": [{"id": "complex-needs-appropriateness", "applied": False}],
    "rule": {"id": "uk-retail", "conditions": [
        {"path": p, "op": "in", "expected": ["GB"], "actual": "GB", "result": True}
        for p in ("jurisdiction", "customer_type", "product")]},
    "rules_tried": [{"id": "difc-professional", "result": False}],
    "teams_considered": [
        {"team": "uk_retail", "eligible": True, "license": "FCA-FRN-123456-retail",
         "why": "FCA licence covers GB / easy_saver / retail, valid until 2027-06-30"},
        {"team": "uk_direct", "eligible": False, "license": None,
         "why": "licence FCA-FRN-123456-direct expired 2026-10-31"}],
    "team": {"id": "uk_retail", "why": "first eligible team of rule uk-retail"},
    "rep": {"id": "alice", "crm_id": "005000000000001AAA",
            "why": "round robin: next after bob; carol skipped (unavailable)"},
    "outreach": {"allowed_channels": ["email", "phone"], "contact_window": None,
                 "disclosures": [], "applied": ["uk-pension-cold-call-ban"]},
    "cooling_off": None,
}
PERSONAL = {"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+44 20 7946 0958"}

RAW_DDL = """CREATE TABLE bench_raw (seq BIGINT PRIMARY KEY, entry_id VARCHAR(32) UNIQUE NOT NULL,
 kind VARCHAR(32) NOT NULL, subject VARCHAR(255), time VARCHAR(40) NOT NULL,
 body {blob} NOT NULL, prev_hash {blob} NOT NULL, entry_hash {blob} NOT NULL)"""


def entries(start: int, count: int) -> list[EntryIn]:
    out = []
    for n in range(start, start + count):
        payload = copy.deepcopy(DECISION)
        payload["lead"]["id"] = f"00Q{n:012d}"
        out.append(EntryIn("decision", f"salesforce:00Q{n:012d}", payload, PERSONAL))
    return out


def raw_rows(batch: list[EntryIn], seq: int) -> list[tuple[Any, ...]]:
    now = rfc3339(__import__("datetime").datetime.now(__import__("datetime").UTC))
    rows = []
    for entry in batch:
        seq += 1
        body = json.dumps({"kind": entry.kind, "subject": entry.subject,
                           "payload": entry.payload, "personal": entry.personal}).encode()
        rows.append((seq, new_ulid(), entry.kind, entry.subject, now, body, b"\0" * 32,
                     b"\0" * 32))
    return rows


def append_vs_raw(url: str, total: int, batch: int, key: Path) -> tuple[float, float]:
    db.upgrade(url)
    engine = db.make_engine(url)
    blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
    with engine.begin() as conn:
        conn.execute(sa.text(RAW_DDL.format(blob=blob)))
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw_insert = (f"INSERT INTO bench_raw ({', '.join(ENTRY_COLUMNS)}) "  # noqa: S608
                  f"VALUES ({', '.join([marker] * len(ENTRY_COLUMNS))})")
    ledger = Ledger(engine, key_path=key)
    raw_time = ledger_time = 0.0
    for start in range(0, total, batch):
        work = entries(start, batch)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql(raw_insert, raw_rows(work, start))  # same driver path
        t1 = time.perf_counter()
        ledger.append_batch(work)
        t2 = time.perf_counter()
        raw_time += t1 - t0
        ledger_time += t2 - t1
    ledger.checkpoint()
    assert verify_database(engine).entries == total + 2
    engine.dispose()
    return total / raw_time, total / ledger_time


def verify_rate(path: Path, total: int, key: Path) -> tuple[float, float]:
    url = f"sqlite:///{path}"
    db.upgrade(url)
    engine = db.make_engine(url)
    ledger = Ledger(engine, key_path=key)
    t0 = time.perf_counter()
    chunk = 5000
    for start in range(0, total, chunk):
        ledger.append_batch(entries(start, min(chunk, total - start)))
        if start % 100_000 == 0:
            ledger.checkpoint()  # a sync run ends now and then
    ledger.checkpoint()
    build = time.perf_counter() - t0
    engine.dispose()
    engine = db.make_engine(url)  # a fresh process-like start: nothing cached in Python
    t0 = time.perf_counter()
    report = verify_database(engine)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return report.entries / elapsed, report.entries / build


def pg_database() -> tuple[str, Any] | None:
    base = os.environ.get("LEADGATE_BENCH_DATABASE_URL") or os.environ.get(
        "LEADGATE_TEST_DATABASE_URL")
    if not base:
        return None
    name = f"lg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return sa.engine.make_url(base).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--verify-entries", type=int, default=1_000_000)
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()
    size = len(json.dumps(DECISION))
    print(f"decision payload {size} bytes of JSON, plus encrypted name/email/phone")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = []
        raw, led = append_vs_raw(f"sqlite:///{folder / 'append.db'}", args.entries, args.batch,
                                 folder / "k1.key")
        results.append(("SQLite", raw, led))
        pg = pg_database()
        if pg is not None:
            url, drop = pg
            try:
                raw, led = append_vs_raw(url, args.entries, args.batch, folder / "k2.key")
                results.append(("PostgreSQL", raw, led))
            finally:
                drop()
        print(f"\nappend, {args.entries:,} entries in batches of {args.batch}:")
        print(f"{'database':<12}{'raw rows/s':>12}{'ledger entries/s':>18}{'ratio':>8}")
        for name, raw, led in results:
            print(f"{name:<12}{raw:>12,.0f}{led:>18,.0f}{led / raw:>8.0%}")
        if not args.skip_verify:
            rate, build = verify_rate(folder / "verify.db", args.verify_entries, folder / "k3.key")
            print(f"\nverify, SQLite, {args.verify_entries:,} entries (+ checkpoints): "
                  f"{rate:,.0f} entries/s (built at {build:,.0f} entries/s)")


if __name__ == "__main__":
    main()
