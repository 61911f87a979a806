"""Helpers for the sync job's tests: a sandbox with a config, running the real CLI, and the
end-state invariants every test checks (read from the sandbox CRM and the database)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from audit import schema as audit_schema
from audit.db import make_engine
from connectors.sandbox import Sandbox
from sync.demo import copy_policy, write_sandbox_config
from sync.state import FINAL_STATUSES, sync_decisions, sync_rotation

REPO_ROOT = Path(__file__).resolve().parents[2]

# What leadgate writes on a record, per CRM: (owner field, status, decision id) and intake test.
SF = ("OwnerId", "LeadGate_Status__c", "LeadGate_Decision_Id__c")
HS = ("hubspot_owner_id", "leadgate_status", "leadgate_decision_id")


@dataclass
class Env:
    sb: Sandbox
    folder: Path
    config: Path
    db_url: str
    intake: dict[str, set[int]] = field(default_factory=dict)  # crm -> intake indices at start
    officers: dict[str, str] = field(default_factory=dict)  # officer -> token, by issue_token

    def engine(self) -> sa.Engine:
        return make_engine(self.db_url)


def start_env(folder: Path, *, leads: int, contacts: int | None = None, db_url: str | None = None,
              faults: str | None = None, notify: list[dict[str, Any]] | None = None,
              seed: int = 3, latency_ms: float = 0.0) -> Env:
    sb = Sandbox(seed=seed, leads=leads, contacts=contacts if contacts is not None else leads,
                 faults=faults, install_leadgate_fields=True, latency_ms=latency_ms).start()
    policy = copy_policy(folder / "policy", notify=notify)
    url = db_url or f"sqlite:///{folder / 'leadgate.db'}"
    config = write_sandbox_config(sb, folder, database_url=url, policy=policy)
    env = Env(sb, folder, config, url)
    env.intake = {"salesforce": intake_indices(sb, "salesforce"),
                  "hubspot": intake_indices(sb, "hubspot")}
    return env


def intake_indices(sb: Sandbox, crm: str) -> set[int]:
    st = sb.store
    if crm == "salesforce":
        t = st.leads
        return {i for i in range(t.n) if t.get(i, "OwnerId") == st.intake_queue_id
                and not t.get(i, "LeadGate_Status__c")}
    t = st.contacts
    return {i for i in range(t.n) if t.get(i, "lifecyclestage") == "lead"
            and not t.get(i, "leadgate_status")}


def return_to_intake(env: Env, crm: str, indices: set[int]) -> None:
    """RevOps sends records back for re-routing: a new intake episode for each."""
    st = env.sb.store
    with st.lock:
        for i in indices:
            if crm == "salesforce":
                t = st.stamp(seconds=True)
                st.leads.set(i, {"OwnerId": st.intake_queue_id, "LeadGate_Status__c": None,
                                 "SystemModstamp": t, "LastModifiedDate": t})
            else:
                st.contacts.set(i, {"hubspot_owner_id": None, "leadgate_status": None,
                                    "lifecyclestage": "lead",
                                    "lastmodifieddate": st.stamp(seconds=False)})


@contextmanager
def hubspot_down(env: Env, retry: str) -> Iterator[None]:
    """The HubSpot source pointed at a port that refuses connections (bound, never listening),
    with these retry settings ("{ attempts: 2, initial_wait: 0 }"); its config back after."""
    good = env.config.read_text()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    text = re.sub(r"base_url: http://127\.0\.0\.1:\d+", f"base_url: http://127.0.0.1:{port}",
                  good).replace("    kind: hubspot\n", f"    kind: hubspot\n    retry: {retry}\n")
    assert text != good
    env.config.write_text(text)
    try:
        yield
    finally:
        closed.close()
        env.config.write_text(good)


def leadgate(*args: str, env: dict[str, str] | None = None, timeout: float = 600,
             ) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "sync.cli", *args], env=full,
                          capture_output=True, text=True, timeout=timeout)


def issue_token(env: Env, officer: str) -> str:
    """A token for `officer` through `review add-officer`, as officers get them: the ledger's
    first is its bootstrap; a later one is authorised by the first officer issued here, and
    its holder at once replaces it with their own (rotation, authenticated with it), so that
    no other officer knows it and two officers are two pairs of eyes."""
    if env.officers and officer not in env.officers:
        first = next(iter(env.officers))
        env.officers[officer] = _add_officer(env, officer, first, env.officers[first])
    by = officer if officer in env.officers else None
    env.officers[officer] = _add_officer(env, officer, by, env.officers.get(officer, ""))
    return env.officers[officer]


def _add_officer(env: Env, officer: str, by: str | None, token: str) -> str:
    auth = ("--by", by, "--token", token) if by else ()
    proc = leadgate("review", "add-officer", officer, *auth, "--config", str(env.config))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def sync_run(env: Env, source: str, *extra: str, crash_at: str | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    e = {"LEADGATE_CRASH_AT": crash_at} if crash_at else {}
    return leadgate("sync", "run", "--config", str(env.config), "--source", source, "--json",
                    *extra, env=e, timeout=timeout)


def run_past_its_first_page(env: Env, decided_before: int = 0, *extra: str,
                            stop_at: str | None = None) -> subprocess.Popen[str]:
    """`leadgate sync run --json` of Salesforce in pages of 200, returned once its first page
    is written ahead, i.e. the database holds more than `decided_before` decisions (the run is
    then still pulling if the sandbox was started with latency: at 150 ms, a run of 1,500 leads
    takes seconds more). With `stop_at` (a crash point, sync/crashpoints.py) the run SIGSTOPs
    itself there instead, and is returned stopped: a stall at a known point, where it holds no
    database transaction (a SIGSTOP from outside may land inside one, and a SQLite writer
    stopped there blocks every other)."""
    data = yaml.safe_load(env.config.read_text())
    data["sources"]["salesforce"].update(query_page_size=200)
    env.config.write_text(yaml.safe_dump(data, sort_keys=False))
    variables = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    if stop_at:
        variables["LEADGATE_STOP_AT"] = stop_at
    proc = subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "run", "--config",
                             str(env.config), "--source", "salesforce", "--json", *extra],
                            env=variables, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    engine = env.engine()
    deadline = time.monotonic() + 120
    try:
        while not (_stopped(proc.pid) if stop_at else _decisions(engine) > decided_before):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
    finally:
        engine.dispose()
    return proc


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0] == "T"


def _decisions(engine: sa.Engine) -> int:
    if not sa.inspect(engine).has_table("sync_decisions"):  # the run has not migrated yet
        return 0
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sync_decisions))
                   .scalar_one())


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), f"no output; stderr: {proc.stderr[-2000:]}"
    assert proc.stdout.count("\n") == 1, "not one line (a log of runs is JSON Lines)"
    return json.loads(proc.stdout)


def ledger_entries(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_schema.entries.c.body)
                            .order_by(audit_schema.entries.c.seq)).all()
    return [json.loads(bytes(r.body)) for r in rows]


def crm_state(sb: Sandbox, crm: str, i: int) -> tuple[Any, Any, Any]:
    t = sb.store.leads if crm == "salesforce" else sb.store.contacts
    fields = SF if crm == "salesforce" else HS
    return tuple(t.get(i, f) for f in fields)  # type: ignore[return-value]


def record_id(sb: Sandbox, crm: str, i: int) -> str:
    t = sb.store.leads if crm == "salesforce" else sb.store.contacts
    return str(t.id_of(i))


def check_invariants(env: Env, crm: str, *, indices: set[int] | None = None) -> dict[str, Any]:
    """The end state after a completed run (asserts; returns counts for further checks).

    Every intake lead is assigned to a rep of the policy or owned by the compliance queue; no
    (record, episode) has two decisions; no rotation slot was used twice (per team the slots are
    exactly 1..N and N is the stored count); every leadgate stamp in the CRM is a decision (or
    officer action) in the ledger whose owner matches what the CRM holds; every decision has a
    recorded write-back; the ledger verifies.
    """
    sb = env.sb
    indices = env.intake[crm] if indices is None else indices
    engine = env.engine()
    try:
        entries = ledger_entries(engine)
        with engine.connect() as conn:
            decisions = conn.execute(sa.select(sync_decisions)
                                     .where(sync_decisions.c.source == crm)).all()
            slots_used = dict(conn.execute(sa.select(sync_rotation.c.team_id,
                                                     sync_rotation.c.slots_used)).all())
            all_slots = conn.execute(sa.select(sync_decisions.c.team_id,
                                               sync_decisions.c.rotation_slot)
                                     .where(sync_decisions.c.rotation_slot.is_not(None))).all()
        from audit.ledger import Ledger

        Ledger(engine).verify()
    finally:
        engine.dispose()

    review_owner = sb.store.review_queue_id if crm == "salesforce" else str(
        sb.hubspot_review_owner_id)
    rep_owner_ids = {r.salesforce_id if crm == "salesforce" else r.hubspot_id
                     for r in sb.reps}
    ledger_decisions: dict[str, dict[str, Any]] = {}
    per_episode: Counter[tuple[str, str]] = Counter()
    writebacks: Counter[str] = Counter()
    for e in entries:
        if e["kind"] == "decision" and e["subject"].startswith(f"{crm}:"):
            p = e["payload"]
            ledger_decisions[p["decision_id"]] = p
            per_episode[(e["subject"], p["sync"]["episode"])] += 1
        elif e["kind"] == "review_action":
            ledger_decisions[e["payload"]["action_id"]] = e["payload"]
        elif e["kind"] == "writeback" and e["payload"]["status"] == "ok":
            writebacks[e["payload"]["decision_id"]] += 1
    twice = [k for k, n in per_episode.items() if n > 1]
    assert not twice, f"{len(twice)} (record, episode) with two decisions, e.g. {twice[:3]}"

    # The database agrees with the ledger, and every decision's write-back is recorded.
    assert {d.decision_id for d in decisions if d.cause != "review"} == {
        k for k, p in ledger_decisions.items() if "sync" in p}
    pending = [d.record_id for d in decisions if d.writeback_status not in FINAL_STATUSES]
    assert not pending, f"{len(pending)} decisions without a write-back outcome: {pending[:5]}"
    assert all(writebacks[d.decision_id] >= 1 for d in decisions if d.writeback_status == "ok")

    # Rotation: slots 1..N per team, each once.
    by_team: dict[str, list[int]] = {}
    for team, slot in all_slots:
        by_team.setdefault(team, []).append(int(slot))
    for team, slots in by_team.items():
        assert sorted(slots) == list(range(1, len(slots) + 1)), f"slot gap/duplicate in {team}"
        assert slots_used.get(team) == len(slots), team

    assigned = refused = 0
    conflicts = {d.record_id for d in decisions if d.writeback_status == "conflict"}
    for i in indices:
        owner, status, decision_id = crm_state(sb, crm, i)
        rid = record_id(sb, crm, i)
        if rid in conflicts and status is None:
            continue  # a person took it over mid-write: leadgate did not overwrite them
        assert status in ("assigned", "refused"), f"{crm} {rid} not routed (status {status})"
        assert decision_id in ledger_decisions, f"{crm} {rid}: stamp {decision_id} not in ledger"
        if status == "assigned":
            assert str(owner) in rep_owner_ids, f"{rid} assigned to non-rep {owner}"
            assigned += 1
        else:
            assert str(owner) == str(review_owner), f"{rid} refused but owned by {owner}"
            refused += 1
        p = ledger_decisions[decision_id]
        if "sync" in p:  # a decision (not an officer action): the CRM holds what it said
            assert p["outcome"] == status, rid
            if status == "assigned":
                assert str(owner) in {str(v) for v in (p["rep"].get("crm") or {}).values()}, rid
    return {"assigned": assigned, "refused": refused, "decisions": len(decisions),
            "entries": len(entries)}
