"""`leadgate sync status --check`: a monitor's probe. Exit 1, naming the source and what is
wrong, when no run completed within --max-age or a write-back waited longer; exit 0 otherwise."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.status import check, gather_from, parse_age
from tests.integration.synctools import leadgate, start_env, sync_run


def test_check_names_sources_without_a_recent_completed_run_and_old_write_backs(
        tmp_path: Path) -> None:
    # 20% of the records in a write-back fail: the run completes (partial) and leaves
    # write-backs for the next run.
    env = start_env(tmp_path, leads=300,
                    faults="salesforce.collections_update:record_error@0.2")
    try:
        assert sync_run(env, "salesforce").returncode == 1
        proc = leadgate("sync", "status", "--config", str(env.config), "--check")
        assert proc.returncode == 1, proc.stderr
        assert "ok salesforce" in proc.stdout  # completed just now; its write-backs are new
        assert "PROBLEM hubspot: no run has completed yet" in proc.stdout

        data = gather_from(env.engine(), ["salesforce"])
        assert check(data, timedelta(hours=1)) == {"salesforce": []}
        waiting = sum(data["sources"]["salesforce"]["writeback_backlog"].values())
        assert waiting > 0
        # Two hours on, with no run since: both problems.
        later = check(data, timedelta(hours=1), now=datetime.now(UTC) + timedelta(hours=2))
        stale, backlog = later["salesforce"]
        assert re.fullmatch(r"no run completed since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                            stale)
        assert backlog.startswith(f"{waiting} write-backs waiting, the oldest decided ")

        proc = leadgate("sync", "status", "--config", str(env.config), "--check",
                        "--max-age", "soon")
        assert proc.returncode == 2 and "--max-age" in proc.stderr
    finally:
        env.sb.stop()


def test_ages_parse_with_a_unit_only() -> None:
    assert parse_age("90s") == timedelta(seconds=90)
    assert parse_age("30m") == timedelta(minutes=30)
    assert parse_age(" 2h ") == timedelta(hours=2)
    assert parse_age("1d") == timedelta(days=1)
    for bad in ("", "30", "m", "1.5h", "-1h", "1w"):
        try:
            parse_age(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


def test_times_in_the_json_are_utc_with_a_z_whatever_the_zones(tmp_path: Path,
                                                                any_url: str) -> None:
    # Schedulers and scripts parse these: naive text ("2026-12-07 06:20:14") reads as local
    # time on the reader's machine. The job's and the database session's zones must not leak.
    import json

    env = start_env(tmp_path, leads=40, db_url=any_url)
    zones = {"TZ": "America/New_York", "PGTZ": "Asia/Tokyo"}
    cfg = ("--config", str(env.config))
    try:
        before = datetime.now(UTC).replace(microsecond=0)
        assert sync_run(env, "salesforce").returncode == 0
        token = leadgate("review", "add-officer", "cco-marta", *cfg).stdout.splitlines()[-1]
        items = json.loads(leadgate("review", "list", "--json", *cfg, env=zones).stdout)
        done = leadgate("review", "reject", str(items[0]["id"]), "--officer", "cco-marta",
                        "--token", token, "--note", "confirmed", *cfg, env=zones)
        assert done.returncode == 0, done.stderr
        status = json.loads(leadgate("sync", "status", "--json", *cfg, env=zones).stdout)
        run = status["sources"]["salesforce"]["runs"][0]
        listed = json.loads(leadgate("review", "list", "--all", "--json", *cfg,
                                     env=zones).stdout)
        rejected = next(i for i in listed if i["id"] == items[0]["id"])
        assert rejected["status"] == "rejected" and rejected["resolved_by"] == "cco-marta"
        after = datetime.now(UTC)
        for text in (run["started_at"], run["finished_at"], items[0]["created_at"],
                     rejected["resolved_at"]):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), text
            assert before <= datetime.fromisoformat(text) <= after, text
    finally:
        env.sb.stop()


def test_a_digest_that_cannot_be_delivered_is_named_and_turns_the_check_red(
        tmp_path: Path) -> None:
    # The outbox under a file: it cannot be made (a read-only mount fails the same way). The
    # run's work stands (exit 0), but compliance hears of nothing: the monitor must say so.
    env = start_env(tmp_path, leads=60, notify=[{"kind": "email", "to": ["ops@example.com"]}])
    try:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        proc = leadgate("sync", "run", "--config", str(env.config), "--source", "salesforce",
                        env={"LEADGATE_OUTBOX": str(blocker / "outbox")})
        assert proc.returncode == 0, proc.stderr
        assert f"email outbox {blocker / 'outbox'}: cannot write (" in proc.stdout, proc.stdout
        assert "set LEADGATE_SMTP_HOST to send through a mail relay, or LEADGATE_OUTBOX to a " \
            "writable folder" in proc.stdout
        check = leadgate("sync", "status", "--config", str(env.config), "--check")
        assert check.returncode == 1
        assert "PROBLEM salesforce: the last run's digest did not reach 1 target(s): email " \
            "outbox" in check.stdout, check.stdout
        assert sync_run(env, "salesforce").returncode == 0  # delivered again: green
        check = leadgate("sync", "status", "--config", str(env.config), "--check")
        assert "ok salesforce" in check.stdout, check.stdout
    finally:
        env.sb.stop()


def test_a_run_without_a_summary_is_shown_without_made_up_counts(tmp_path: Path) -> None:
    """A run killed before its end has no summary: its line says when it started and what
    became of it, not "pulled None assigned None"; a completed run's line has its counts."""
    env = start_env(tmp_path, leads=40)
    try:
        killed = sync_run(env, "salesforce", crash_at="committed:1")
        assert killed.returncode != 0
        assert sync_run(env, "salesforce").returncode == 0  # takes over, marks it died
        proc = leadgate("sync", "status", "--config", str(env.config))
        assert proc.returncode == 0, proc.stderr
        runs = [line for line in proc.stdout.splitlines() if line.startswith("  run ")]
        assert len(runs) == 2 and "None" not in proc.stdout, proc.stdout
        assert re.fullmatch(r"  run \w+ died +started [\d-]+ [\d:]+ UTC", runs[1]), runs
        assert re.fullmatch(r"  run \w+ done +started [\d-]+ [\d:]+ UTC pulled \d+ assigned "
                            r"\d+ refused \d+ errors 0", runs[0]), runs
    finally:
        env.sb.stop()


def test_a_policy_that_does_not_load_still_shows_the_state_and_turns_the_check_red(
        tmp_path: Path) -> None:
    """While the policy is being fixed, status and the review queue are what an admin needs:
    they show, with a warning; runs stay refused."""
    import json

    env = start_env(tmp_path, leads=40)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        rules = tmp_path / "policy" / "50-rules.yaml"
        rules.write_text(rules.read_text().replace("route_to: [uk_pensions]",
                                                   "route_to: [uk_pension]", 1))
        cfg = ("--config", str(env.config))
        status = leadgate("sync", "status", *cfg)
        assert status.returncode == 0, status.stderr
        assert "salesforce" in status.stdout and "cursor" in status.stdout
        assert "the policy does not load" in status.stderr and "uk_pension" in status.stderr
        as_json = json.loads(leadgate("sync", "status", "--json", *cfg).stdout)
        assert "uk_pension" in as_json["policy_problem"]
        red = leadgate("sync", "status", "--check", *cfg)
        assert red.returncode == 1 and "PROBLEM salesforce: the policy does not load" \
            in red.stdout, red.stdout
        listed = leadgate("review", "list", *cfg)
        assert listed.returncode == 0 and "item(s)" in listed.stdout, listed.stderr
        assert "the policy does not load" in listed.stderr
        run = sync_run(env, "salesforce")  # deciding needs the policy: refused as before
        assert run.returncode == 2 and "uk_pension" in run.stderr, run.stderr
    finally:
        env.sb.stop()


def test_commands_that_only_read_create_no_database(tmp_path: Path) -> None:
    """Connecting to a SQLite file that is not there creates it: a `sync status` (or a dry run)
    in the wrong folder used to leave an empty file that then looked like a ledger."""
    env = start_env(tmp_path, leads=10)
    try:
        missing = tmp_path / "elsewhere" / "ledger.db"
        missing.parent.mkdir()
        for args in (("sync", "status"), ("sync", "run", "--dry-run", "--source", "hubspot"),
                     ("review", "list")):
            done = leadgate(*args, "--config", str(env.config),
                            env={"LEADGATE_DATABASE_URL": f"sqlite:///{missing}"})
            assert done.returncode == 2, (args, done.stderr)
            assert f"{missing}: no database file here" in done.stderr, done.stderr
            assert "leadgate db upgrade" in done.stderr
            assert list(missing.parent.iterdir()) == [], args
    finally:
        env.sb.stop()


def test_a_misspelt_filter_of_the_review_queue_is_an_error_not_an_empty_queue(
        tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=30)
    try:
        assert sync_run(env, "salesforce").returncode == 0
        cfg = ("--config", str(env.config))
        assert leadgate("review", "list", "--reason", "sanctions_hit", *cfg).returncode == 0
        reason = leadgate("review", "list", "--reason", "sanction_hit", *cfg)
        assert reason.returncode == 2 and "sanctions_hit" in reason.stderr, reason.stderr
        source = leadgate("review", "list", "--source", "salesfroce", *cfg)
        assert source.returncode == 2, source.stdout + source.stderr
        assert "no source named 'salesfroce'" in source.stderr, source.stderr
        assert "no review items match" not in reason.stdout + source.stdout
    finally:
        env.sb.stop()
