"""What `leadgate sync run` logs on stderr for the people who run it: CRM retries always; each
page and the run with -v; the ids of leads whose write-back failed with -vv. Never a name, an
email or a phone, and stdout stays the summary alone (--json parses)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.synctools import start_env, sync_run

# The first query answers 503 once (a retry); 20% of the records in a write-back fail.
FAULTS = "salesforce.query:503@call=1,salesforce.collections_update:record_error@0.2"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) leadgate\.")


def _personal_values(env) -> list[str]:  # type: ignore[no-untyped-def]
    t = env.sb.store.leads
    values = [str(t.get(i, field)) for i in sorted(env.intake["salesforce"])
              for field in ("FirstName", "LastName", "Email", "Phone")]
    return [v for v in values if v and v != "None" and len(v) > 4]


def test_retries_always_pages_with_v_and_failed_ids_with_vv_never_personal_data(
        tmp_path: Path) -> None:
    env = start_env(tmp_path / "quiet", leads=500, faults=FAULTS)
    try:
        quiet = sync_run(env, "salesforce")
        assert quiet.returncode == 1, quiet.stderr[-2000:]  # record errors: retried next run
        json.loads(quiet.stdout)
        assert "WARNING leadgate.crm: salesforce: " in quiet.stderr
        assert "attempt 1 of" in quiet.stderr and "503" in quiet.stderr
        assert "page 1:" not in quiet.stderr  # pages only with -v
    finally:
        env.sb.stop()

    env = start_env(tmp_path / "verbose", leads=500, faults=FAULTS)
    try:
        proc = sync_run(env, "salesforce", "-vv")
        assert proc.returncode == 1, proc.stderr[-2000:]
        summary = json.loads(proc.stdout)
        lines = proc.stderr.splitlines()
        assert lines and all(LINE.match(line) for line in lines), lines[:5]
        text = proc.stderr
        assert f"run {summary['run_id']} started" in text
        assert re.search(r"INFO leadgate\.sync: salesforce: page 1: \d+ sent, written \d+, "
                         r"write errors \d+", text)
        assert f"run {summary['run_id']} partial in" in text
        failed = [f["record_id"] for f in summary["failed"]]
        assert failed and all(record_id in text for record_id in failed)  # -vv: the ids
        assert not [v for v in _personal_values(env) if v in text]
    finally:
        env.sb.stop()


def test_a_reader_that_stops_early_leaves_the_exit_code_to_the_run(tmp_path: Path) -> None:
    """`leadgate sync run | head -1` in a cron line: the reader closing the pipe is not the
    run stopping part-way (exit 1) nor a traceback; the run's own exit code stands."""
    import os
    import subprocess
    import sys

    from tests.integration.synctools import REPO_ROOT

    env = start_env(tmp_path, leads=60)
    try:
        full = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        for extra in ((), ("--dry-run",)):  # a dry run prints a line per lead it would write
            proc = subprocess.Popen(
                [sys.executable, "-m", "sync.cli", "sync", "run", "--source", "salesforce",
                 *extra, "--config", str(env.config)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full)
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.close()  # the reader is gone before the summary is printed
            err = proc.stderr.read().decode()
            assert proc.wait(timeout=300) == 0, err
            assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert sync_run(env, "salesforce").returncode == 0  # the run was recorded as done
    finally:
        env.sb.stop()
