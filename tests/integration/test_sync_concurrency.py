"""Two workers of one source at once on PostgreSQL (`--shard 0/2` and `--shard 1/2`): each has
its own lease and cursor, they share the rotation and cap state, and no lead is decided twice
while round robin stays fair across both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from routing_core.policy import load_policy
from sync.state import sync_decisions, sync_runs
from tests.integration.synctools import REPO_ROOT, check_invariants, start_env


def _worker(config: Path, shard: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "run", "--config",
                             str(config), "--source", "salesforce", "--shard", shard, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.postgres
def test_two_workers_of_one_source_share_rotation_fairly(tmp_path: Path, pg_url: str) -> None:
    env = start_env(tmp_path, leads=3000, db_url=pg_url)
    try:
        # Small write batches: many interleaved write-ahead transactions from both workers.
        env.config.write_text(env.config.read_text().replace(
            "kind: salesforce", "kind: salesforce\n    write_batch_size: 50\n"
            "    query_page_size: 200", 1))
        procs = [_worker(env.config, "0/2"), _worker(env.config, "1/2")]
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err[-2000:]
        summaries = [json.loads(out) for out, _ in outs]
        assert all(s["decided"] > 300 for s in summaries), summaries
        assert sum(s["decided"] for s in summaries) == len(env.intake["salesforce"])

        engine = env.engine()
        with engine.connect() as conn:
            runs = conn.execute(sa.select(sync_runs.c.started_at, sync_runs.c.finished_at)).all()
            rows = conn.execute(sa.select(sync_decisions.c.record_id, sync_decisions.c.team_id,
                                          sync_decisions.c.rep_id, sync_decisions.c.run_id)
                                .where(sync_decisions.c.source == "salesforce")).all()
        engine.dispose()
        # The two runs really overlapped in time.
        assert len(runs) == 2 and max(r.started_at for r in runs) < min(r.finished_at
                                                                        for r in runs)
        assert len({r.run_id for r in rows}) == 2  # both workers decided leads
        assert len({r.record_id for r in rows}) == len(rows)  # no lead decided twice
        check_invariants(env, "salesforce")  # incl. rotation slots 1..N, each used once

        # Fair round robin: in every round-robin team whose members are all available, uncapped
        # and need no individual licence, per-rep counts differ by at most one.
        policy = load_policy(tmp_path / "policy")
        per_team: dict[str, Counter[str]] = {}
        for r in rows:
            if r.team_id:
                per_team.setdefault(r.team_id, Counter())[r.rep_id] += 1
        checked = 0
        for team_id, counts in per_team.items():
            team = policy.teams[team_id]
            members = [m for m in team.members if m.available]
            if (team.assignment != "round_robin" or team.requires_individual_license
                    or len(members) < 2 or any(m.max_per_day for m in members)
                    or sum(counts.values()) < 2 * len(members)):
                continue
            values = [counts.get(m.id, 0) for m in members]
            assert max(values) - min(values) <= 1, (team_id, dict(counts))
            checked += 1
        assert checked >= 1, per_team
    finally:
        env.sb.stop()
