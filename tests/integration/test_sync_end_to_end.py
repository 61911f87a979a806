"""The real `leadgate sync run` against the sandbox CRM over HTTP(S), on SQLite and PostgreSQL:
end state, idempotence, dry run, intake episodes, lease contention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.state import sync_decisions, sync_leases, sync_rotation
from tests.integration.synctools import (
    check_invariants,
    crm_state,
    hubspot_down,
    leadgate,
    ledger_entries,
    return_to_intake,
    run_past_its_first_page,
    start_env,
    summary,
    sync_run,
)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leadgate.db'}"
    return request.getfixturevalue("pg_url")


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_sync_routes_every_intake_lead_and_a_second_run_changes_nothing(
        tmp_path: Path, db_url: str, crm: str) -> None:
    env = start_env(tmp_path, leads=400, db_url=db_url)
    try:
        first = sync_run(env, crm)
        assert first.returncode == 0, first.stderr
        s1 = summary(first)
        assert s1["pulled"] == len(env.intake[crm]) and s1["decided"] == s1["pulled"]
        assert s1["limit_reached"] is False
        assert s1["assigned"] > 0 and s1["refused"] > 0 and s1["write_errors"] == 0
        counts = check_invariants(env, crm)
        assert counts["assigned"] == s1["assigned"] and counts["refused"] == s1["refused"]
        before = [crm_state(env.sb, crm, i) for i in sorted(env.intake[crm])]
        n_entries = counts["entries"]

        second = sync_run(env, crm)
        assert second.returncode == 0, second.stderr
        s2 = summary(second)
        assert s2["decided"] == 0 and s2["written"] == 0, s2
        assert [crm_state(env.sb, crm, i) for i in sorted(env.intake[crm])] == before
        engine = env.engine()
        entries = ledger_entries(engine)
        engine.dispose()
        # Only the second run's checkpoint was added.
        assert [e["kind"] for e in entries[n_entries:]] == ["checkpoint"]
    finally:
        env.sb.stop()


def test_the_orgs_lead_assignment_rule_does_not_move_what_leadgate_writes(
        tmp_path: Path) -> None:
    """An org with an active lead assignment rule (the one that files web leads into intake):
    Salesforce runs it on every update that does not say Sforce-Auto-Assign: FALSE, and would
    move each lead leadgate gave a rep, or the compliance queue, back into intake."""
    env = start_env(tmp_path, leads=300)
    try:
        env.sb.store.lead_assignment_rule = env.sb.store.intake_queue_id
        run = sync_run(env, "salesforce")
        assert run.returncode == 0, run.stderr
        s = summary(run)
        assert s["assigned"] > 0 and s["refused"] > 0 and s["write_errors"] == 0
        owners = {crm_state(env.sb, "salesforce", i)[0] for i in env.intake["salesforce"]}
        assert env.sb.store.intake_queue_id not in owners
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_dry_run_writes_nothing_anywhere(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=200)
    try:
        # Warm up the schema (a dry run never migrates) with one real run on nothing new:
        # the database then exists, and the dry run must not change it.
        first = sync_run(env, "salesforce", "--limit", "20")
        assert first.returncode == 0, first.stderr
        # done, and saying that it stopped at its limit with intake left for the next run
        assert (summary(first)["status"], summary(first)["limit_reached"]) == ("done", True)
        engine = env.engine()
        with engine.connect() as conn:
            rot_before = conn.execute(sa.select(sync_rotation)).all()
            n_dec = conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)).scalar()
        n_entries = len(ledger_entries(engine))
        crm_before = [crm_state(env.sb, "salesforce", i) for i in sorted(env.intake["salesforce"])]
        writes_before = env.sb.calls("salesforce.composite")

        dry = sync_run(env, "salesforce", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        s = summary(dry)
        assert s["dry_run"] and s["decided"] > 100 and len(s["would_write"]) == s["decided"]
        assert env.sb.calls("salesforce.composite") == writes_before
        assert [crm_state(env.sb, "salesforce", i)
                for i in sorted(env.intake["salesforce"])] == crm_before
        with engine.connect() as conn:
            assert conn.execute(sa.select(sync_rotation)).all() == rot_before
            assert conn.execute(sa.select(sa.func.count())
                                .select_from(sync_decisions)).scalar() == n_dec
            assert conn.execute(sa.select(sa.func.count()).select_from(sync_leases)).scalar() == 0
        assert len(ledger_entries(engine)) == n_entries
        engine.dispose()

        # The real run afterwards decides the same outcomes the dry run showed.
        real = summary(sync_run(env, "salesforce"))
        assert real["assigned_by_team"] == s["assigned_by_team"]
        assert real["refused_by_reason"] == s["refused_by_reason"]
    finally:
        env.sb.stop()


def test_a_lead_returned_to_intake_starts_a_new_episode(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=150)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        again = set(sorted(env.intake["salesforce"])[:10])
        old = {i: crm_state(env.sb, "salesforce", i)[2] for i in again}
        return_to_intake(env, "salesforce", again)
        s = summary(sync_run(env, "salesforce"))
        assert s["decided"] == 10 and s["pulled"] == 10
        for i in again:
            assert crm_state(env.sb, "salesforce", i)[2] != old[i]
        engine = env.engine()
        with engine.connect() as conn:
            episodes = conn.execute(sa.select(sync_decisions.c.episode).where(
                sync_decisions.c.episode != "")).scalars().all()
        engine.dispose()
        assert sorted(episodes) == sorted(old.values())
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_lease_held_exit_codes(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=20)
    try:
        assert sync_run(env, "salesforce", "--limit", "1").returncode == 0
        engine = env.engine()
        import time

        with engine.begin() as conn:
            conn.execute(sa.insert(sync_leases).values(
                name="salesforce", holder="otherhost:4242:01RUN", run_id="01RUN",
                acquired_at=time.time(), heartbeat_at=time.time(),
                expires_at=time.time() + 600))
        relaxed = sync_run(env, "salesforce")
        assert relaxed.returncode == 0
        assert summary(relaxed)["lease_held_by"] == "otherhost:4242:01RUN"
        assert summary(relaxed)["exit_code"] == 0
        strict = sync_run(env, "salesforce", "--strict-lease")
        assert strict.returncode == 3
        assert summary(strict)["exit_code"] == 3  # what a scheduler's log says is what it saw
        # A dead run's lease expires and is taken over.
        with engine.begin() as conn:
            conn.execute(sa.update(sync_leases).values(expires_at=time.time() - 1))
        engine.dispose()
        taken = sync_run(env, "salesforce", "--strict-lease")
        assert taken.returncode == 0 and summary(taken)["decided"] > 0
    finally:
        env.sb.stop()


def test_could_not_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=5)
    try:
        env.config.write_text(env.config.read_text().replace("kind: hubspot", "kind: hubspt"))
        proc = sync_run(env, "salesforce")
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        (tmp_path / "secrets" / "sf-password").write_text("wrong")
        env.config.write_text(env.config.read_text().replace("kind: hubspt", "kind: hubspot"))
        proc = sync_run(env, "salesforce")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
        assert "wrong" not in proc.stderr
        # found once the run was recorded (the CRM refused the log-in): still not started,
        # a person must act; its run id names the run `sync status` lists as failed
        line = summary(proc)
        assert (line["status"], line["exit_code"]) == ("not_started", 2) and line["run_id"]
        assert "wrong" not in line["error"]
        # a SQLite database in a folder that does not exist: configuration, one line, not the
        # traceback (and exit 1, "the next run retries") it was, with --json as without
        missing = tmp_path / "no-such-folder" / "leadgate.db"
        for extra in ((), ("--json",)):
            proc = leadgate("sync", "run", "--config", str(env.config), "--source",
                            "salesforce", *extra,
                            env={"LEADGATE_DATABASE_URL": f"sqlite:///{missing}"})
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr == (
                f"error: {missing}: cannot create the database here (No such file or "
                "directory) (fix: create the folder, or point database_url in leadgate.yaml "
                "(or LEADGATE_DATABASE_URL) at a folder leadgate may write)\n"), proc.stderr
            # and a scheduler reading the log of runs (JSON Lines) still gets this run's line
            if extra:
                line = summary(proc)
                assert (line["status"], line["exit_code"]) == ("not_started", 2), line
                assert line["error"] == proc.stderr.removeprefix("error: ").rstrip("\n")
            else:
                assert proc.stdout == ""
        assert not missing.parent.exists()
        # refused for its configuration (two sources, none named): no database made for it
        fresh = tmp_path / "fresh.db"
        proc = leadgate("sync", "run", "--config", str(env.config),
                        env={"LEADGATE_DATABASE_URL": f"sqlite:///{fresh}"})
        assert proc.returncode == 2 and "2 sources are configured" in proc.stderr, proc.stderr
        assert not fresh.exists()
    finally:
        env.sb.stop()


def test_a_crm_that_does_not_answer_at_start_fails_the_run_for_the_next_run_to_retry(
        tmp_path: Path) -> None:
    # Exit 1, not 2: nobody can fix an outage, and the next scheduled run gets through. Wrong
    # credentials (above) still ask for a person.
    env = start_env(tmp_path, leads=20)
    try:
        with hubspot_down(env, "{ attempts: 2, initial_wait: 0 }"):
            for extra in ((), ("--dry-run",)):  # a dry run the same: nothing a person can fix
                down = sync_run(env, "hubspot", *extra)
                assert down.returncode == 1, down.stderr[-2000:]
                failed = summary(down)
                assert failed["status"] == "failed" and failed["exit_code"] == 1, (extra, failed)
                assert "gave up after 2 attempts" in failed["error"] and failed["decided"] == 0
                assert "Traceback" not in down.stderr
        again = summary(sync_run(env, "hubspot"))  # the lease was released, nothing half-done
        assert again["status"] == "done" and again["decided"] == len(env.intake["hubspot"])
        check_invariants(env, "hubspot")
    finally:
        env.sb.stop()


def test_a_lost_signing_key_stops_the_run_before_any_work_and_is_not_replaced(
        tmp_path: Path) -> None:
    # A run ends in a signed checkpoint. Without the ledger's key it would do a run's work and
    # fail at the end; and a new key made in its place would sign nothing the ledger accepts
    # while looking, to whoever backs it up, like the real one.
    env = start_env(tmp_path, leads=120)
    try:
        assert summary(sync_run(env, "salesforce", "--limit", "40"))["status"] == "done"
        key = tmp_path / "leadgate-signing.key"
        key.rename(tmp_path / "backup.key")
        engine = env.engine()
        with engine.connect() as conn:
            decided = conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)
                                   ).scalar_one()
        calls = env.sb.calls()
        proc = sync_run(env, "salesforce")
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"error: {key}: signing key file not found (the ledger is "
                                      "signed with key sha256:"), proc.stderr
        assert "restore that key file from your backup" in proc.stderr
        assert proc.stderr.count("\n") == 1 and not key.exists()
        assert env.sb.calls() == calls  # not even a log-in
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)
                                ).scalar_one() == decided
        engine.dispose()
        (tmp_path / "backup.key").rename(key)
        again = summary(sync_run(env, "salesforce"))
        assert again["status"] == "done" and again["decided"] > 0
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


def test_a_key_rotated_during_a_run_leaves_its_checkpoint_to_the_next_run(
        tmp_path: Path) -> None:
    # `audit rotate-key` while the job works (cron keeps running): the run's work is recorded
    # and it ends `done`, without signing with the key that was rotated out; the next run
    # says which file to use, and once pointed at it signs a checkpoint covering everything.
    env = start_env(tmp_path, leads=1_500, latency_ms=150)
    try:
        first = summary(sync_run(env, "salesforce", "--limit", "40"))  # the ledger has a key
        assert first["checkpoint"] is not None
        proc = run_past_its_first_page(env, decided_before=first["decided"])
        rotated = leadgate("audit", "rotate-key", "--new-key", str(tmp_path / "new.key"),
                           "--config", str(env.config))
        assert rotated.returncode == 0, rotated.stderr
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        done = json.loads(out)
        assert done["status"] == "done"
        assert first["decided"] + done["decided"] == len(env.intake["salesforce"])
        assert done["checkpoint"] is None
        assert "which was rotated out" in done["checkpoint_left"]
        assert "rotated during the run" in err

        stale = sync_run(env, "salesforce")  # still configured with the old key
        assert stale.returncode == 2 and stale.stderr.count("\n") == 1, stale.stderr
        assert "which was rotated out" in stale.stderr and "signing_key" in stale.stderr
        env.config.write_text(env.config.read_text().replace(
            str(tmp_path / "leadgate-signing.key"), str(tmp_path / "new.key")))
        after = summary(sync_run(env, "salesforce"))
        assert after["status"] == "done" and after["decided"] == 0
        engine = env.engine()
        entries = ledger_entries(engine)
        engine.dispose()
        assert entries[-1]["kind"] == "checkpoint"
        assert entries[-1]["payload"]["size"] == len(entries) - 1  # all but itself are signed
        check_invariants(env, "salesforce")  # incl. the ledger verifies
    finally:
        env.sb.stop()
