"""sync/decide_ahead.py: pages decided ahead by a helper process land exactly as deciding them
in the job's own process would, are decided again when the rotation moved under them, and the
helper dies with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit import db
from audit.ledger import Ledger
from routing_core.policy import load_policy
from sync import decide_ahead
from sync.context import screener_for
from sync.decide_ahead import DecideAhead
from sync.rotation_db import DbRotationState
from sync.state import sync_daily_counts, sync_decisions, sync_review_queue, sync_rotation
from sync.writeahead import Candidate, Decider, write_ahead

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

needs_helper = pytest.mark.skipif(not decide_ahead.usable(),
                                  reason="a helper process needs Linux and two cores")


def _leads() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in
            (ROOT / "examples" / "leads" / "sample-leads.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("id"), row.pop("source")
    return rows


def _pages(sizes: list[int]) -> list[list[Candidate]]:
    """Pages of intake candidates: the example leads over and over, each with its own id."""
    leads, pages, n = _leads(), [], 0
    for size in sizes:
        pages.append([Candidate(f"00Q{n + i:012d}", "", "intake", dict(leads[(n + i) % len(leads)]),
                                owner_at_read="00GQUEUE") for i in range(size)])
        n += size
    return pages


def _setup(folder: Path, url: str | None = None) -> tuple[sa.Engine, Ledger, Decider]:
    url = url or f"sqlite:///{folder / 'lg.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    policy = load_policy(ROOT / "examples" / "policy")
    decider = Decider(source="salesforce", crm="salesforce", policy=policy,
                      screener=screener_for(policy), clock=lambda: NOW)
    return engine, Ledger(engine, key_path=folder / "key"), decider


def _state(engine: sa.Engine) -> dict[str, Any]:
    """What the decisions landed as (without their random ids) and the rotation tables."""
    with engine.connect() as conn:
        decisions = conn.execute(
            sa.select(sync_decisions.c.record_id, sync_decisions.c.outcome,
                      sync_decisions.c.reason, sync_decisions.c.team_id,
                      sync_decisions.c.rep_id, sync_decisions.c.rotation_slot)
            .order_by(sync_decisions.c.record_id)).all()
        rotation = conn.execute(sa.select(sync_rotation.c.team_id, sync_rotation.c.state,
                                          sync_rotation.c.slots_used)
                                .order_by(sync_rotation.c.team_id)).all()
        counts = conn.execute(sa.select(sync_daily_counts.c.rep_id, sync_daily_counts.c.day,
                                        sync_daily_counts.c.count)
                              .order_by(sync_daily_counts.c.rep_id)).all()
        review = conn.execute(sa.select(sync_review_queue.c.record_id,
                                        sync_review_queue.c.episode,
                                        sync_review_queue.c.reason, sync_review_queue.c.status,
                                        sync_review_queue.c.lead_input.is_not(None))
                              .order_by(sync_review_queue.c.record_id,
                                        sync_review_queue.c.episode)).all()
    return {"decisions": [tuple(r) for r in decisions], "rotation": [tuple(r) for r in rotation],
            "counts": [tuple(r) for r in counts], "review": [tuple(r) for r in review]}


def _decided_here(tmp_path: Path, pages: list[list[Candidate]]) -> dict[str, Any]:
    """The state after deciding `pages` in order in this process, in a database of its own:
    what a run with the helper must end in."""
    here = tmp_path / "here"
    here.mkdir()
    engine, ledger, decider = _setup(here)
    for page in pages:
        result = write_ahead(engine, ledger, decider, page, run_id="run-1")
        assert result.rotation_after is None  # reported only when helped
    state = _state(engine)
    engine.dispose()
    return state


def _start(engine: sa.Engine, decider: Decider) -> DecideAhead:
    day = NOW.astimezone(decider.policy.tz).date()
    with engine.connect() as conn:
        start = DbRotationState(conn, read_only=True).snapshot(frozenset({day}))
    return DecideAhead(decider, "run-1", start)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: Any, tmp_path: Path) -> str | None:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None


@needs_helper
def test_pages_decided_ahead_land_as_deciding_here_would(tmp_path: Path, url: str | None) -> None:
    pages = _pages([300, 300, 300, 7])
    expected = _decided_here(tmp_path, pages)

    engine, ledger, decider = _setup(tmp_path, url)
    helper = _start(engine, decider)
    try:
        tickets = [helper.submit(page, NOW) for page in pages]
        for page, ticket in zip(pages, tickets, strict=True):
            assert ticket is not None
            ahead = helper.take(ticket)
            assert ahead is not None
            result = write_ahead(engine, ledger, decider, page, run_id="run-1", ahead=ahead,
                                 helped=True)
            assert result.rotation_after is None  # taken as the helper decided it
            assert len(result.to_write) == len(page)
    finally:
        helper.close()
    got = _state(engine)
    assert got == expected
    # The example policy's caps bind, rotation moved, refusals were sealed for re-evaluation.
    assert sum(1 for d in got["decisions"] if d[1] == "assigned") > 50
    assert any(r[2] == "no_available_rep" and r[4] for r in got["review"])
    ledger.verify()  # raises if the chain or any entry is wrong
    engine.dispose()


@needs_helper
def test_a_page_decided_from_a_moved_rotation_is_decided_again(tmp_path: Path) -> None:
    """Another worker commits between the helper's decision and ours: the helper's pages no
    longer apply, are decided here, and the helper catches up (replaying what it had been
    handed) so that later pages apply again."""
    other, a, b, c = _pages([40, 200, 200, 200])
    expected = _decided_here(tmp_path, [other, a, b, c])

    engine, ledger, decider = _setup(tmp_path)
    helper = _start(engine, decider)
    try:
        ta, tb = helper.submit(a, NOW), helper.submit(b, NOW)
        assert ta is not None and tb is not None
        write_ahead(engine, ledger, decider, other, run_id="run-1")  # the other worker
        again = []
        for page, ticket in ((a, ta), (b, tb)):
            result = write_ahead(engine, ledger, decider, page, run_id="run-1",
                                 ahead=helper.take(ticket), helped=True)
            assert result.rotation_after is not None
            again.append(ticket)
            helper.rebase(ticket, result.rotation_after)
        tc = helper.submit(c, NOW)
        assert tc is not None
        result = write_ahead(engine, ledger, decider, c, run_id="run-1",
                             ahead=helper.take(tc), helped=True)
        assert result.rotation_after is None  # in step again
    finally:
        helper.close()
    assert _state(engine) == expected
    ledger.verify()  # raises if the chain or any entry is wrong
    engine.dispose()


@needs_helper
def test_a_page_already_decided_is_not_decided_twice(tmp_path: Path) -> None:
    (page,) = _pages([120])
    engine, ledger, decider = _setup(tmp_path)
    helper = _start(engine, decider)
    try:
        ticket = helper.submit(page, NOW)
        assert ticket is not None
        ahead = helper.take(ticket)
        first = write_ahead(engine, ledger, decider, page, run_id="run-1")  # e.g. a crash re-run
        again = write_ahead(engine, ledger, decider, page, run_id="run-1", ahead=ahead,
                            helped=True)
    finally:
        helper.close()
    assert again.rotation_after is not None
    assert all(w.retry for w in again.to_write)
    assert [w.decision_id for w in again.to_write] == [w.decision_id for w in first.to_write]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)).scalar() \
            == len(page)
    engine.dispose()


@needs_helper
def test_leads_back_at_intake_in_a_new_episode_are_taken_as_decided_ahead(
        tmp_path: Path) -> None:
    """Earlier episodes of the same records are no reason to decide the page again."""
    (first,) = _pages([150])
    again = [Candidate(c.record_id, "episode-2", "intake", c.lead_input,
                       owner_at_read="00GQUEUE") for c in first]
    expected = _decided_here(tmp_path, [first, again])

    engine, ledger, decider = _setup(tmp_path)
    write_ahead(engine, ledger, decider, first, run_id="run-1")
    helper = _start(engine, decider)
    try:
        ticket = helper.submit(again, NOW)
        assert ticket is not None
        result = write_ahead(engine, ledger, decider, again, run_id="run-1",
                             ahead=helper.take(ticket), helped=True)
    finally:
        helper.close()
    assert result.rotation_after is None and len(result.to_write) == len(again)
    # The new episode ended the first one's open refusals, as deciding here did.
    assert {(r[1], r[3]) for r in expected["review"]} >= {("", "superseded"), ("episode-2", "open")}
    assert _state(engine) == expected
    engine.dispose()


@needs_helper
def test_a_helper_that_dies_leaves_the_page_to_be_decided_here(tmp_path: Path) -> None:
    (page,) = _pages([60])
    engine, ledger, decider = _setup(tmp_path)
    helper = _start(engine, decider)
    try:
        os.kill(helper.pid, signal.SIGKILL)
        ticket = helper.submit(page, NOW)
        ahead = helper.take(ticket) if ticket is not None else None
        assert ahead is None and helper.broken
        result = write_ahead(engine, ledger, decider, page, run_id="run-1", ahead=ahead,
                             helped=True)
    finally:
        helper.close()
    assert len(result.to_write) == len(page) and result.rotation_after is not None
    engine.dispose()


PARENT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.sync.test_decide_ahead import _setup, _start
engine, ledger, decider = _setup(Path({folder!r}))
helper = _start(engine, decider)
print(helper.pid, flush=True)
time.sleep(120)
"""


@needs_helper
def test_the_helper_dies_with_its_parent_even_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c",
                               PARENT.format(root=str(ROOT), folder=str(tmp_path))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.kill(pid, 0)  # the helper runs
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _running(pid):
            return
        time.sleep(0.05)
    pytest.fail(f"helper {pid} outlived its parent")


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead orphan waits for whoever adopts it to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@needs_helper
@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_run_with_the_helper_ends_as_a_run_in_one_process(tmp_path: Path, crm: str) -> None:
    """`leadgate sync run` over HTTP on two identically seeded sandboxes, one with the helper
    (the default) and one with --one-process: the same owners and statuses in the CRM and the
    same rotation, and the helper's pages were the ones committed."""
    import yaml

    from tests.integration.synctools import check_invariants, start_env, summary, sync_run

    ends = {}
    for mode in ("helper", "one"):
        folder = tmp_path / mode
        folder.mkdir()
        env = start_env(folder, leads=1500, contacts=1500)
        try:
            data = yaml.safe_load(env.config.read_text())
            data["sources"]["salesforce"]["query_page_size"] = 200
            data["sources"]["hubspot"]["search_page_size"] = 100
            env.config.write_text(yaml.safe_dump(data, sort_keys=False))
            proc = sync_run(env, crm, *(["--one-process"] if mode == "one" else []))
            assert proc.returncode == 0, proc.stderr[-2000:]
            ends[mode] = summary(proc)
            check_invariants(env, crm)
            table = env.sb.store.leads if crm == "salesforce" else env.sb.store.contacts
            owner, status = (("OwnerId", "LeadGate_Status__c") if crm == "salesforce"
                             else ("hubspot_owner_id", "leadgate_status"))
            ends[mode]["crm"] = [(table.id_of(i), table.get(i, owner), table.get(i, status))
                                 for i in sorted(env.intake[crm])]
            engine = env.engine()
            ends[mode]["rotation"] = _state(engine)["rotation"]
            engine.dispose()
        finally:
            env.sb.stop()
    helper, one = ends["helper"], ends["one"]
    assert helper["pages_decided_ahead"] >= 5 and helper["pages_decided_again"] == 0
    assert one["pages_decided_ahead"] == one["pages_decided_again"] == 0
    assert helper["crm"] == one["crm"] and helper["rotation"] == one["rotation"]
    assert helper["assigned_by_team"] == one["assigned_by_team"]
    assert helper["refused_by_reason"] == one["refused_by_reason"]


@pytest.mark.parametrize(("files", "cpus"), [
    ({}, float("inf")),
    ({"cpu.max": "max 100000\n"}, float("inf")),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, float("inf")),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
])
def test_a_container_cpu_quota_counts_as_cores(tmp_path: Path, files: dict[str, str],
                                               cpus: float) -> None:
    """A pod limited to 1.5 CPUs gets no helper, whatever the node's core count."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert decide_ahead._cpu_quota(tmp_path) == cpus
