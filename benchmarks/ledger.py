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
import resource
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
from audit.ledger import ENTRY_COLUMNS, EntryIn, Ledger  # noqa: E402
from audit.verify import verify_database  # noqa: E402
from routing_core.ids import new_ulid  # noqa: E402

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


def append_vs_raw(url: str, total: int, batch: int, key: Path,
                  raw_url: str | None = None) -> dict[str, float]:
    """`raw_url`: where the raw table goes (default: beside the ledger). SQLite gives it a file
    of its own: in one file, whichever side's commit takes the WAL past its autocheckpoint
    threshold copies both sides' pages back into the database, and with alternating batches of
    similar size that is nearly always the same side."""
    db.upgrade(url)
    engine = db.make_engine(url)
    raw_engine = db.make_engine(raw_url) if raw_url else engine
    blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
    with raw_engine.begin() as conn:  # the ledger table's shape, indexes included
        conn.execute(sa.text(RAW_DDL.format(blob=blob)))
        conn.execute(sa.text("CREATE INDEX ix_bench_raw_subject ON bench_raw (subject, seq)"))
        conn.execute(sa.text("CREATE INDEX ix_bench_raw_time ON bench_raw (time)"))
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    raw_insert = (f"INSERT INTO bench_raw ({', '.join(ENTRY_COLUMNS)}) "  # noqa: S608
                  f"VALUES ({', '.join([marker] * len(ENTRY_COLUMNS))})")
    ledger = Ledger(engine, key_path=key)
    wall = {"raw": 0.0, "ledger": 0.0}
    cpu = {"raw": 0.0, "ledger": 0.0}
    for start in range(0, total, batch):
        work = entries(start, batch)
        w0, c0 = time.perf_counter(), time.process_time()
        with raw_engine.begin() as conn:
            conn.exec_driver_sql(raw_insert, raw_rows(work, start))  # same driver path
        w1, c1 = time.perf_counter(), time.process_time()
        ledger.append_batch(work)
        w2, c2 = time.perf_counter(), time.process_time()
        wall["raw"] += w1 - w0
        wall["ledger"] += w2 - w1
        cpu["raw"] += c1 - c0
        cpu["ledger"] += c2 - c1
    ledger.checkpoint()
    assert verify_database(engine).entries == total + 2
    engine.dispose()
    raw_engine.dispose()
    return {"raw": total / wall["raw"], "ledger": total / wall["ledger"],
            "raw_cpu": total / cpu["raw"], "ledger_cpu": total / cpu["ledger"]}


def build_ledger(path: Path, total: int, key: Path) -> float:
    """A ledger of `total` decision entries (checkpoint every 100,000); entries/s to build."""
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
    engine.dispose()
    return total / (time.perf_counter() - t0)


def verify_rate(path: Path, *, parallel: bool) -> tuple[int, float, float]:
    """(entries, entries per wall second, entries per CPU second of all processes)."""
    engine = db.make_engine(f"sqlite:///{path}")  # a fresh engine: nothing cached
    w0, c0 = time.perf_counter(), time.process_time()
    k0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = verify_database(engine, parallel=parallel)
    k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0 + (k1.ru_utime + k1.ru_stime - k0.ru_utime - k0.ru_stime)
    engine.dispose()
    return report.entries, report.entries / wall, report.entries / cpu


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
    parser.add_argument("--verify-db", default=None,
                        help="Reuse (or create) the verification ledger at this path.")
    args = parser.parse_args()
    size = len(json.dumps(DECISION))
    print(f"decision payload {size} bytes of JSON, plus encrypted name/email/phone")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = []
        if args.entries:
            results.append(("SQLite", append_vs_raw(f"sqlite:///{folder / 'append.db'}",
                                                    args.entries, args.batch, folder / "k1.key",
                                                    raw_url=f"sqlite:///{folder / 'raw.db'}")))
            pg = pg_database()
            if pg is not None:
                url, drop = pg
                try:
                    results.append(("PostgreSQL", append_vs_raw(url, args.entries, args.batch,
                                                                folder / "k2.key")))
                finally:
                    drop()
            print(f"\nappend, {args.entries:,} entries in batches of {args.batch} "
                  "(wall clock; CPU-time rates of this process in brackets):")
            print(f"{'database':<12}{'raw rows/s':>20}{'ledger entries/s':>22}{'ratio':>14}")
            for name, r in results:
                print(f"{name:<12}{r['raw']:>10,.0f} [{r['raw_cpu']:>7,.0f}]"
                      f"{r['ledger']:>12,.0f} [{r['ledger_cpu']:>7,.0f}]"
                      f"{r['ledger'] / r['raw']:>6.0%} [{r['ledger_cpu'] / r['raw_cpu']:>4.0%}]")
        if args.verify_entries:
            path = Path(args.verify_db) if args.verify_db else folder / "verify.db"
            if not path.exists():
                rate = build_ledger(path, args.verify_entries, path.with_suffix(".key"))
                print(f"\nbuilt a {args.verify_entries:,}-entry SQLite ledger at {rate:,.0f} "
                      "entries/s")
            for parallel in (False, True):
                n, wall, cpu = verify_rate(path, parallel=parallel)
                print(f"verify, SQLite, {n:,} entries, {'parallel' if parallel else 'one process'}"
                      f": {wall:,.0f} entries/s ({cpu:,.0f} per CPU-second)")


if __name__ == "__main__":
    main()
