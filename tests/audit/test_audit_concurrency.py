"""Several processes appending at once make one unbroken chain; SQLite and PostgreSQL store
byte-identical entries with identical hashes."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from audit import db
from audit.explain import explain_subject
from audit.ledger import EntryIn, Ledger
from audit.verify import verify_database

REPO = Path(__file__).resolve().parents[2]
WORKER = """
import os, sys, time
from audit import db
from audit.ledger import EntryIn, Ledger
url, worker, count, batch, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
engine = db.make_engine(url)
ledger = Ledger(engine)
while not os.path.exists(go):  # start together, so that the appends really contend
    time.sleep(0.005)
for start in range(0, count, batch):
    ledger.append_batch([EntryIn("decision", f"w{worker}:{n}", {"worker": worker, "n": n})
                         for n in range(start, min(start + batch, count))])
engine.dispose()
"""


def _run_workers(url: str, workers: int, count: int, batch: int, go: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(w), str(count), str(batch),
                               str(go)], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    time.sleep(1.0)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_appenders_make_one_chain(backend: str, request: pytest.FixtureRequest,
                                             tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" \
        else f"sqlite:///{tmp_path / 'ledger.db'}"
    workers, count = (4, 2000) if backend == "postgresql" else (4, 500)
    db.upgrade(url)
    _run_workers(url, workers, count, batch=25, go=tmp_path / "go")
    engine = db.make_engine(url)
    try:
        report = verify_database(engine)
        assert report.entries == workers * count and report.last_seq == workers * count
        with engine.connect() as conn:
            per_worker = dict(conn.execute(sa.text(
                "SELECT substr(subject, 1, 2), count(*) FROM ledger_entries GROUP BY 1")).all())
            # Each worker's batches are contiguous runs: batches were never interleaved.
            seqs = conn.execute(sa.text("SELECT seq, subject FROM ledger_entries ORDER BY seq"))
            runs = [len(list(g)) for _, g in itertools.groupby(seqs, key=lambda r: r[1][:2])]
        assert per_worker == {f"w{w}": count for w in range(workers)}
        assert all(run % 25 == 0 for run in runs)
        if backend == "postgresql":  # row locks queue fairly: the workers really interleaved
            assert len(runs) > workers
    finally:
        engine.dispose()


APPENDER = """
import os, sys
from audit import db
from audit.ledger import EntryIn, Ledger
url, stop = sys.argv[1], sys.argv[2]
ledger = Ledger(db.make_engine(url))
n = 0
while not os.path.exists(stop):  # small, frequent transactions, as a sync run's pages
    ledger.append_batch([EntryIn("decision", f"s:{n % 7}", {"n": n}) for _ in range(5)])
    n += 1
"""


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_verify_and_explain_while_a_run_appends_see_one_moment(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """An auditor verifies while the sync job writes: every verification reads the head, the
    checkpoints and the entries as of one moment, so it passes instead of reporting a head that
    does not match its last entry (PostgreSQL's READ COMMITTED takes a snapshot per statement)."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" \
        else f"sqlite:///{tmp_path / 'ledger.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    ledger = Ledger(engine, key_path=tmp_path / "key")
    ledger.append_batch([EntryIn("decision", f"s:{n}", {"n": n}) for n in range(7)])
    ledger.checkpoint()
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", APPENDER, url, str(stop)], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    sizes: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while verify_database(engine).entries < 100:  # the appender has started
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        while len(sizes) < 40 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            report = verify_database(engine)
            sizes.append(report.entries)
            explained = explain_subject(engine, "s:3")
            assert explained.chain_ok, explained.chain_message
            if len(sizes) % 10 == 0:
                ledger.checkpoint()  # checkpoints land mid-stream too
    finally:
        stop.touch()
        _, err = proc.communicate(timeout=60)
        engine.dispose()
    assert proc.returncode == 0, err
    assert len(sizes) == 40
    # The appends really ran alongside: the ledger grew between nearly every two verifications.
    assert sum(b > a for a, b in itertools.pairwise(sizes)) >= 30, sizes


def test_sqlite_and_postgresql_give_identical_bytes_and_hashes(pg_url: str,
                                                               tmp_path: Path) -> None:
    entries = [
        EntryIn("policy_loaded", None, {"policy": {"id": "northwind", "version": "2026.11.2"}}),
        EntryIn("decision", "salesforce:00Q1", {
            "amount": Decimal("1000000.00"), "score": 0.41, "name": "Zoë Ångström 山田 😀",
            "nested": {"b": [1, 2, {"z": None, "a": True}], "a": "\u2028\t\"quoted\""}}),
        EntryIn("writeback", "hubspot:7", {"status": "conflict", "expected_owner": "71001"}),
    ]
    results = []
    for url in (f"sqlite:///{tmp_path / 'a.db'}", pg_url):
        db.upgrade(url)
        engine = db.make_engine(url)
        with engine.begin() as conn:  # the same ledger identity on both
            conn.execute(sa.text("UPDATE ledger_head SET ledger_id = 'same-ledger'"))
        ids = (f"01TEST{n:020d}" for n in itertools.count())
        times = (datetime(2026, 11, 24, 10, 0, tzinfo=UTC) + timedelta(seconds=n)
                 for n in itertools.count())
        ledger = Ledger(engine, clock=times.__next__, new_id=ids.__next__)
        ledger.append_batch(entries)
        ledger.append_batch(entries[1:])
        with engine.connect() as conn:
            rows = [(r[0], bytes(r[1]), bytes(r[2])) for r in conn.execute(sa.text(
                "SELECT seq, body, entry_hash FROM ledger_entries ORDER BY seq"))]
        results.append((rows, verify_database(engine).root))
        engine.dispose()
    assert results[0] == results[1]
    assert len(results[0][0]) == 5
