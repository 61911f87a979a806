"""`leadgate demo` from an empty folder with no configuration: the README's first command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.synctools import REPO_ROOT


def _demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADGATE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "sync.cli", "demo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_demo_runs_end_to_end_and_points_to_next_steps(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = _demo(tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "salesforce: run" in out and "hubspot: run" in out
    assert "ledger verify: ok" in out
    assert "leadgate audit explain salesforce:" in out and "leadgate review list" in out
    assert elapsed < 120  # < 1 minute on an idle machine; generous for a loaded CI box
    folder = tmp_path / "leadgate-demo"
    assert (folder / "leadgate.yaml").exists() and (folder / "policy").is_dir()
    assert list((folder / "leadgate-outbox").glob("*.eml"))
    # The follow-up commands work in the demo folder without the sandbox.
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    status = subprocess.run([sys.executable, "-m", "sync.cli", "sync", "status"], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "review queue:" in status.stdout
    assert re.search(r"run \w+ done +started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ", status.stdout)
    # The explain command it suggests shows the decision and keeps the lead's personal data
    # sealed (the sandbox's leads have example.com addresses).
    subject = re.search(r"leadgate audit explain (salesforce:\w+)", out)
    assert subject is not None
    explained = subprocess.run([sys.executable, "-m", "sync.cli", "audit", "explain",
                                subject.group(1)], cwd=folder, env=env, capture_output=True,
                               text=True, timeout=120)
    assert explained.returncode == 0, explained.stderr
    assert "rep chosen" in explained.stdout and "personal data: [sealed" in explained.stdout
    assert "@example" not in explained.stdout
    # Running it again starts afresh; a folder it did not make is left alone.
    assert _demo(tmp_path).returncode == 0
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    refused = _demo(tmp_path, "--dir", str(other))
    assert refused.returncode == 2 and "not made by `leadgate demo`" in refused.stderr
    assert (other / "notes.txt").read_text() == "keep me"
