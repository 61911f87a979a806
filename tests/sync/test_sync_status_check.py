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
