"""`leadgate sync status`: cursors, last runs, leases and the backlog, per source."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audit.db import snapshot
from sync.lease import db_time
from sync.state import (
    COMPLETED,
    ERROR,
    PENDING,
    as_utc,
    loads,
    sync_cursors,
    sync_decisions,
    sync_leases,
    sync_review_queue,
    sync_runs,
)


def gather(config: str | None) -> dict[str, Any]:
    from sync.context import open_context

    ctx = open_context(config, migrate=False, reads_only=True)
    try:
        data = gather_from(ctx.engine, sorted(ctx.config.sources))
        data["policy_problem"] = ctx.policy_problem
        return data
    finally:
        ctx.close()


def gather_from(engine: sa.Engine, sources: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"sources": {}}
    with snapshot(engine) as conn:  # one moment: a run ending mid-read shows once, consistently
        now = db_time(conn)  # the clock the leases were written by
        for source in sources:
            cursors = [{"name": r.name, "cursor": loads(r.cursor), "updated_at": r.updated_at}
                       for r in conn.execute(sa.select(sync_cursors)
                                             .where(sync_cursors.c.source == source))]
            leases = [{"name": r.name, "holder": r.holder, "expires_in_s": round(r.expires_at - now),
                       "expired": r.expires_at < now}
                      for r in conn.execute(sa.select(sync_leases).where(
                          _of_source(sync_leases.c.name, source)))]
            runs = [{"run_id": r.run_id, "name": r.source, "status": r.status,
                     "started_at": r.started_at, "finished_at": r.finished_at,
                     "summary": _short(loads(r.summary))}
                    for r in conn.execute(sa.select(sync_runs).where(
                        _of_source(sync_runs.c.source, source))
                        .order_by(sync_runs.c.started_at.desc()).limit(5))]
            backlog: dict[str, int] = dict(conn.execute(
                sa.select(sync_decisions.c.writeback_status, sa.func.count())
                .where(sync_decisions.c.source == source,
                       sync_decisions.c.writeback_status.in_((PENDING, ERROR)))
                .group_by(sync_decisions.c.writeback_status)).all())
            oldest_waiting = conn.execute(
                sa.select(sa.func.min(sync_decisions.c.decided_at))
                .where(sync_decisions.c.source == source,
                       sync_decisions.c.writeback_status.in_((PENDING, ERROR)))).scalar_one()
            completed = {r.source: {"run_id": r.run_id, "finished_at": r.finished_at}
                         for r in conn.execute(
                             sa.select(sync_runs.c.source, sync_runs.c.run_id,
                                       sync_runs.c.finished_at)
                             .where(_of_source(sync_runs.c.source, source),
                                    sync_runs.c.status.in_(COMPLETED))
                             .order_by(sync_runs.c.finished_at))}  # the last one per name
            review: dict[str, int] = dict(conn.execute(
                sa.select(sync_review_queue.c.status, sa.func.count())
                .where(sync_review_queue.c.source == source)
                .group_by(sync_review_queue.c.status)).all())
            out["sources"][source] = {"cursors": cursors, "leases": leases, "runs": runs,
                                      "writeback_backlog": backlog, "review_queue": review,
                                      "last_completed": completed,
                                      "oldest_waiting_writeback": oldest_waiting}
    return out


def _of_source(name: sa.Column[str], source: str) -> sa.ColumnElement[bool]:
    """A lease or run name of `source`: the source itself, or one of its shards (source#I/N)."""
    return sa.or_(name == source, name.like(f"{source}#%"))


def check(data: dict[str, Any], max_age: timedelta, now: datetime | None = None
          ) -> dict[str, list[str]]:
    """Problems per source for a monitor: no run of it (or of one of its shards) completed
    within `max_age`, or a write-back waiting longer than that, or a policy that does not load.
    Empty lists: healthy."""
    now = now or datetime.now(UTC)
    since = now - max_age
    problems: dict[str, list[str]] = {}
    for source, info in data["sources"].items():
        problems[source] = found = []
        if data.get("policy_problem"):  # the next run of every source is refused (exit 2)
            found.append(f"the policy does not load: {data['policy_problem']}")
        last = info["runs"][0] if info["runs"] else None
        completed = info["last_completed"]
        if not completed:
            found.append("no run has completed yet")
        for name, run in sorted(completed.items()):
            finished = as_utc(run["finished_at"])
            if finished < since:
                found.append(("" if name == source else f"{name}: ")
                             + f"no run completed since {_utc(finished)}"
                             + (f" (the last, {last['run_id']}, {last['status']})"
                                if last and last["run_id"] != run["run_id"] else ""))
        unsent = ((last or {}).get("summary") or {}).get("notify_errors")
        if unsent:  # compliance is not hearing of new refusals: as urgent as a stalled run
            found.append(f"the last run's digest did not reach {len(unsent)} target(s): "
                         f"{unsent[0]}")
        waiting = info["oldest_waiting_writeback"]
        if waiting is not None and as_utc(waiting) < since:
            backlog = info["writeback_backlog"]
            found.append(f"{sum(backlog.values())} write-backs waiting, the oldest decided "
                         f"{_utc(as_utc(waiting))}")
    return problems


def parse_age(text: str) -> timedelta:
    """'90s', '30m', '2h', '1d' as a duration; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(text)
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _short(summary: Any) -> dict[str, Any] | None:
    if not isinstance(summary, dict):
        return None
    keys = ("pulled", "decided", "assigned", "refused", "written", "write_errors", "conflicts",
            "violations", "api_calls", "seconds", "exit_code", "notify_errors")
    return {k: summary.get(k) for k in keys}


def render(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for source, info in data["sources"].items():
        lines.append(f"{source}")
        for c in info["cursors"] or [{"name": source, "cursor": None, "updated_at": None}]:
            lines.append(f"  cursor {c['name']}: {c['cursor'] or 'none (first run pulls all)'}")
        for lease in info["leases"]:
            state = "expired" if lease["expired"] else f"expires in {lease['expires_in_s']}s"
            lines.append(f"  lease {lease['name']}: held by {lease['holder']} ({state})")
        if not info["leases"]:
            lines.append("  lease: free")
        backlog = info["writeback_backlog"]
        lines.append(f"  write-backs to retry: {sum(backlog.values())} "
                     f"(pending {backlog.get(PENDING, 0)}, failed {backlog.get(ERROR, 0)})")
        queue = info["review_queue"]
        open_items = queue.get("open", 0) + queue.get("awaiting_second_officer", 0)
        lines.append(f"  review queue: {open_items} open"
                     + "".join(f", {k} {v}" for k, v in sorted(queue.items())
                               if k not in ("open",)))
        for run in info["runs"]:
            s = run["summary"]
            line = f"  run {run['run_id']} {run['status']:<8} started {_utc(run['started_at'])}"
            if s:  # a run still going, or that died, has no summary yet
                line += (f" pulled {s.get('pulled')} assigned {s.get('assigned')} refused "
                         f"{s.get('refused')} errors {s.get('write_errors')}"
                         + (f" violations {s['violations']}" if s.get("violations") else ""))
            lines.append(line)
    return "\n".join(lines)


def _utc(moment: Any) -> str:
    """A stored time to the second, in UTC."""
    if not isinstance(moment, datetime):
        return str(moment)
    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S} UTC"
