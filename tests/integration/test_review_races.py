"""Two actors on one review item at once: two officers, or an officer and the sync job's
re-evaluation. Each reads the item, then takes the ledger's writer lock to record what it did;
the one that comes second must see that the item changed and record nothing, so a lead is
never both approved and rejected, nor assigned twice.

The interleaving is made, not hoped for: the test holds the writer lock (PostgreSQL:
`SELECT ... FOR UPDATE` on the ledger head) while both actors start, waits until both are
queued on it (pg_stat_activity), and then lets them go."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync.state import sync_decisions
from tests.integration.synctools import (
    REPO_ROOT,
    Env,
    check_invariants,
    crm_state,
    issue_token,
    leadgate,
    ledger_entries,
    record_id,
    start_env,
    summary,
    sync_run,
)

pytestmark = pytest.mark.postgres


@contextmanager
def writer_lock_held(env: Env) -> Iterator[sa.Engine]:
    """Hold the ledger's writer lock; yields an engine to watch the waiters with."""
    engine = env.engine()
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(sa.text("SELECT id FROM ledger_head WHERE id = 1 FOR UPDATE"))
            yield engine
    finally:
        engine.dispose()


def wait_for_waiters(engine: sa.Engine, n: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE '%ledger_head%FOR UPDATE%'")
    with engine.connect() as conn:
        while True:
            waiting = conn.execute(query).scalar_one()
            conn.rollback()  # pg_stat_activity is read once per transaction
            if waiting >= n:
                return
            for p in procs:
                assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the actors never queued on the writer lock"
            time.sleep(0.05)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sync.cli", *args],
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _one_officer_approves(env: Env) -> None:
    """Approvals here override a failed licence check (the refusal considered no team): let
    one officer's approval assign the lead, so that an approval and the job both can."""
    path = env.folder / "policy" / "80-review.yaml"
    text = path.read_text()
    assert "four_eyes_for_overrides: true" in text
    path.write_text(text.replace("four_eyes_for_overrides: true",
                                 "four_eyes_for_overrides: false"))


def _token(env: Env, officer: str) -> str:
    return issue_token(env, officer)  # authorised by the first officer issued one


def _items(env: Env) -> list[dict[str, Any]]:
    return json.loads(leadgate("review", "list", "--all", "--json", "--config",
                               str(env.config)).stdout)


def _actions_on(env: Env, item: int) -> list[str]:
    engine = env.engine()
    try:
        return [e["payload"]["action"] for e in ledger_entries(engine)
                if e["kind"] == "review_action" and e["payload"]["item"] == item]
    finally:
        engine.dispose()


def _assignments_of(env: Env, record: str) -> list[Any]:
    engine = env.engine()
    try:
        with engine.connect() as conn:
            return list(conn.execute(
                sa.select(sync_decisions.c.cause, sync_decisions.c.rep_id)
                .where(sync_decisions.c.record_id == record,
                       sync_decisions.c.outcome == "assigned")).all())
    finally:
        engine.dispose()


def _synced(tmp_path: Path, pg_url: str) -> Env:
    """A synced environment on PostgreSQL whose overrides one officer's approval assigns."""
    env = start_env(tmp_path, leads=150, db_url=pg_url)
    try:
        _one_officer_approves(env)
        assert sync_run(env, "salesforce").returncode == 0
    except BaseException:
        env.sb.stop()
        raise
    return env


def test_an_approval_and_a_rejection_at_once_record_one(tmp_path: Path, pg_url: str) -> None:
    env = _synced(tmp_path, pg_url)
    try:
        item = next(i for i in _items(env) if i["reason"] == "no_rule_matched")
        cfg = ("--config", str(env.config))
        marta, kwame = _token(env, "cco-marta"), _token(env, "mlro-kwame")
        with writer_lock_held(env) as watch:
            procs = [
                _start("review", "approve", str(item["id"]), "--team", "uk_retail", "--rep",
                       "alice", "--officer", "cco-marta", "--token", marta, *cfg),
                _start("review", "reject", str(item["id"]), "--officer", "mlro-kwame",
                       "--token", kwame, "--note", "not suitable", *cfg)]
            wait_for_waiters(watch, 2, procs)
        outs = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], outs
        loser = next(err for p, (_out, err) in zip(procs, outs, strict=True) if p.returncode)
        assert "changed while this action was being recorded" in loser
        assert loser.count("\n") == 1 and "Traceback" not in loser  # one line

        # One action in the ledger, and the queue and the CRM say what it did.
        actions = _actions_on(env, item["id"])
        assert len(actions) == 1 and actions[0] in ("approve", "reject")
        status = next(i["status"] for i in _items(env) if i["id"] == item["id"])
        i = env.sb.store.leads.index_of(item["record_id"])
        crm = crm_state(env.sb, "salesforce", i)[1]
        assert (status, crm) == (("approved", "assigned") if actions[0] == "approve"
                                 else ("rejected", "refused"))
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


@pytest.mark.parametrize("job_first", [True, False])
def test_an_officer_and_a_re_evaluation_at_once_assign_the_lead_once(
        tmp_path: Path, pg_url: str, job_first: bool) -> None:
    """The job has read the queue (a transient refusal: every rep of the team was away) and
    waits to write its re-evaluation; an officer has read the same item and waits to record an
    approval. Whichever takes the lock second finds the item decided and leaves it. (Not a
    lead refused while screening was down: that one was never screened, and no officer may
    approve it.)"""
    env = start_env(tmp_path, leads=150, db_url=pg_url)
    try:
        _one_officer_approves(env)
        teams = tmp_path / "policy" / "20-teams-uk.yaml"
        present = teams.read_text()
        away = present
        for rep in ("alice", "bilal", "dev", "ellie", "farid", "grace"):  # uk_retail's reps
            away = away.replace(f"      - id: {rep}\n",
                                f"      - id: {rep}\n        available: false\n", 1)
        teams.write_text(away)
        assert summary(sync_run(env, "salesforce"))["refused_by_reason"]["no_available_rep"]
        teams.write_text(present)  # and back
        # An item that the re-evaluation will assign (a dry run moves nothing).
        would = summary(sync_run(env, "salesforce", "--dry-run"))["would_write"]
        assigned = {w["record_id"] for w in would if w["outcome"] == "assigned"}
        item = next(i for i in _items(env)
                    if i["reason"] == "no_available_rep" and i["record_id"] in assigned)
        marta = _token(env, "cco-marta")
        approve = ("review", "approve", str(item["id"]), "--team", "uk_retail", "--rep",
                   "alice", "--officer", "cco-marta", "--token", marta, "--config",
                   str(env.config))
        run = ("sync", "run", "--config", str(env.config), "--source", "salesforce", "--json")
        first, second = (run, approve) if job_first else (approve, run)
        with writer_lock_held(env) as watch:
            procs = [_start(*first)]
            wait_for_waiters(watch, 1, procs)  # it has read the item and waits to write
            procs.append(_start(*second))
            wait_for_waiters(watch, 2, procs)
        outs = [p.communicate(timeout=300) for p in procs]
        job, officer = (procs[0], procs[1]) if job_first else (procs[1], procs[0])
        job_out, officer_out = (outs[0], outs[1]) if job_first else (outs[1], outs[0])
        assert job.returncode == 0, job_out[1][-2000:]

        record = item["record_id"]
        assignments = _assignments_of(env, record)
        assert len(assignments) == 1, assignments  # never assigned twice
        status = next(i["status"] for i in _items(env) if i["id"] == item["id"])
        if officer.returncode == 0:  # the officer's approval came first
            assert assignments[0].cause == "review" and status == "approved"
        else:  # the re-evaluation came first and assigned or refused it itself
            assert officer.returncode == 2, officer_out
            assert "changed while this action was being recorded" in officer_out[1]
            assert status == "superseded" and assignments[0].cause == "reevaluation"
            assert _actions_on(env, item["id"]) == []
        # Everything else the re-evaluation decided, and the CRM agrees with the ledger.
        assert summary(sync_run(env, "salesforce"))["decided"] == 0
        check_invariants(env, "salesforce")
        i = env.sb.store.leads.index_of(record)
        assert record_id(env.sb, "salesforce", i) == record
        assert crm_state(env.sb, "salesforce", i)[1] == "assigned"
    finally:
        env.sb.stop()


def test_two_administrators_issuing_tokens_at_once_keep_both(tmp_path: Path,
                                                             pg_url: str) -> None:
    # The key file is read, changed and written under the writer lock: without it the second
    # writer would put back the file it read before the first wrote, losing that token.
    env = start_env(tmp_path, leads=20, db_url=pg_url)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        marta = _token(env, "cco-marta")  # the bootstrap; she authorises the two at once
        officers = ("mlro-kwame", "co-difc-noor")
        with writer_lock_held(env) as watch:
            procs = [_start("review", "add-officer", o, "--by", "cco-marta", "--token", marta,
                            "--config", str(env.config))
                     for o in officers]
            wait_for_waiters(watch, 2, procs)
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
        keys = json.loads((tmp_path / "leadgate-officers.json").read_text())
        for officer, (out, _) in zip(officers, outs, strict=True):
            token = out.strip().splitlines()[-1]
            assert keys[officer]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
        engine = env.engine()
        try:
            issued = sorted(e["payload"]["officer"] for e in ledger_entries(engine)
                            if e["kind"] == "officer_credential")
        finally:
            engine.dispose()
        assert issued == sorted(("cco-marta", *officers))
    finally:
        env.sb.stop()


def test_a_token_revoked_while_an_approval_is_under_way_does_not_act(
        tmp_path: Path, pg_url: str) -> None:
    """The approval authenticated, then read the CRM; meanwhile the officer's token was revoked
    (stolen, say). The revocation takes the writer lock first; the approval, queued behind it,
    must find the credential no longer current and record nothing."""
    env = _synced(tmp_path, pg_url)
    try:
        item = next(i for i in _items(env) if i["reason"] == "no_rule_matched")
        cfg = ("--config", str(env.config))
        marta = _token(env, "cco-marta")
        _token(env, "mlro-kwame")  # the last credential would not be revoked
        with writer_lock_held(env) as watch:
            revoke = _start("review", "revoke-officer", "cco-marta", "--by", "cco-marta",
                            "--token", marta, *cfg)
            wait_for_waiters(watch, 1, [revoke])
            approve = _start("review", "approve", str(item["id"]), "--team", "uk_retail",
                             "--rep", "alice", "--officer", "cco-marta", "--token", marta, *cfg)
            wait_for_waiters(watch, 2, [revoke, approve])
        assert revoke.wait(timeout=120) == 0, revoke.communicate()
        _out, err = approve.communicate(timeout=120)
        assert approve.returncode == 2, err
        assert "token was revoked or replaced while this action was being recorded" in err
        assert _actions_on(env, item["id"]) == []
        i = env.sb.store.leads.index_of(item["record_id"])
        assert crm_state(env.sb, "salesforce", int(i))[1] == "refused"
    finally:
        env.sb.stop()
