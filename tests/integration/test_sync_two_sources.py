"""Two sources synced at the same time into one database, as the cron example in sync/README.md
runs them: `sync run --source salesforce` and `--source hubspot` as two processes. Each has its
own lease and cursor; they share the rotation and the reps' daily caps. On SQLite (one file,
two writers) and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from routing_core.policy import load_policy
from sync.state import sync_daily_counts, sync_decisions, sync_runs
from tests.integration.synctools import REPO_ROOT, check_invariants, start_env


def _run(config: Path, source: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "sync.cli", "sync", "run", "--config",
                             str(config), "--source", source, "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_sources_at_once_share_rotation_and_caps(tmp_path: Path, any_url: str) -> None:
    env = start_env(tmp_path, leads=2500, db_url=any_url)
    try:
        # Small pages and write batches: many interleaved write-ahead transactions.
        text = env.config.read_text()
        text = text.replace("kind: salesforce", "kind: salesforce\n    write_batch_size: 50\n"
                            "    query_page_size: 200", 1)
        text = text.replace("kind: hubspot", "kind: hubspot\n    write_batch_size: 50", 1)
        env.config.write_text(text)
        procs = {source: _run(env.config, source) for source in ("salesforce", "hubspot")}
        outs = {source: p.communicate(timeout=600) for source, p in procs.items()}
        for source, p in procs.items():
            assert p.returncode == 0, (source, outs[source][1][-2000:])
        for source, (out, _err) in outs.items():
            assert json.loads(out)["decided"] == len(env.intake[source]), source

        engine = env.engine()
        with engine.connect() as conn:
            runs = conn.execute(sa.select(sync_runs.c.source, sync_runs.c.started_at,
                                          sync_runs.c.finished_at)).all()
            rows = conn.execute(sa.select(sync_decisions.c.source, sync_decisions.c.rep_id,
                                          sync_decisions.c.decided_at)
                                .where(sync_decisions.c.outcome == "assigned")).all()
            counted = {(r.rep_id, r.day): r.count
                       for r in conn.execute(sa.select(sync_daily_counts))}
        engine.dispose()
        # The two runs really overlapped in time.
        assert sorted(r.source for r in runs) == ["hubspot", "salesforce"]
        assert max(r.started_at for r in runs) < min(r.finished_at for r in runs)

        # Each source's end state holds; the rotation slots of both are 1..N per team, each
        # used once (check_invariants reads every team's slots, whichever source used them).
        for source in ("salesforce", "hubspot"):
            check_invariants(env, source)

        # One daily count per rep across both sources, never above the rep's cap.
        policy = load_policy(tmp_path / "policy")
        caps = {m.id: m.max_per_day for t in policy.teams.values() for m in t.members
                if m.max_per_day}
        per_day: Counter[tuple[str, str]] = Counter()
        sources_of: dict[str, set[str]] = {}
        for r in rows:
            day = r.decided_at.astimezone(policy.tz).date().isoformat()
            per_day[(r.rep_id, day)] += 1
            sources_of.setdefault(r.rep_id, set()).add(r.source)
        assert counted == dict(per_day)
        assert all(n <= caps[rep] for (rep, _day), n in per_day.items() if rep in caps)
        shared_caps = [rep for rep in caps if sources_of.get(rep) == {"salesforce", "hubspot"}
                       and any(n == caps[rep] for (r, _d), n in per_day.items() if r == rep)]
        assert shared_caps, "no capped rep reached their cap with leads from both sources"
    finally:
        env.sb.stop()
