"""`leadgate sync status`: cursors, last runs, leases and the backlog, per source."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from sync.state import (
    ERROR,
    PENDING,
    loads,
    sync_cursors,
    sync_decisions,
    sync_leases,
    sync_review_queue,
    sync_runs,
)


def gather(config: str | None) -> dict[str, Any]:
    from sync.context import open_context

    ctx = open_context(config, migrate=False)
    try:
        return gather_from(ctx.engine, sorted(ctx.config.sources))
    finally:
        ctx.close()


def gather_from(engine: sa.Engine, sources: list[str]) -> dict[str, Any]:
    now = time.time()
    out: dict[str, Any] = {"sources": {}}
    with engine.connect() as conn:
        for source in sources:
            cursors = [{"name": r.name, "cursor": loads(r.cursor), "updated_at": r.updated_at}
                       for r in conn.execute(sa.select(sync_cursors)
                                             .where(sync_cursors.c.source == source))]
            leases = [{"name": r.name, "holder": r.holder, "expires_in_s": round(r.expires_at - now),
                       "expired": r.expires_at < now}
                      for r in conn.execute(sa.select(sync_leases).where(
                          sa.or_(sync_leases.c.name == source,
                                 sync_leases.c.name.like(f"{source}#%"))))]
            runs = [{"run_id": r.run_id, "name": r.source, "status": r.status,
                     "started_at": r.started_at, "finished_at": r.finished_at,
                     "summary": _short(loads(r.summary))}
                    for r in conn.execute(sa.select(sync_runs).where(
                        sa.or_(sync_runs.c.source == source,
                               sync_runs.c.source.like(f"{source}#%")))
                        .order_by(sync_runs.c.started_at.desc()).limit(5))]
            backlog: dict[str, int] = dict(conn.execute(
                sa.select(sync_decisions.c.writeback_status, sa.func.count())
                .where(sync_decisions.c.source == source,
                       sync_decisions.c.writeback_status.in_((PENDING, ERROR)))
                .group_by(sync_decisions.c.writeback_status)).all())
            review: dict[str, int] = dict(conn.execute(
                sa.select(sync_review_queue.c.status, sa.func.count())
                .where(sync_review_queue.c.source == source)
                .group_by(sync_review_queue.c.status)).all())
            out["sources"][source] = {"cursors": cursors, "leases": leases, "runs": runs,
                                      "writeback_backlog": backlog, "review_queue": review}
    return out


def _short(summary: Any) -> dict[str, Any] | None:
    if not isinstance(summary, dict):
        return None
    keys = ("pulled", "decided", "assigned", "refused", "written", "write_errors", "conflicts",
            "violations", "api_calls", "seconds", "exit_code")
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
            s = run["summary"] or {}
            lines.append(f"  run {run['run_id']} {run['status']:<8} started "
                         f"{_utc(run['started_at'])} "
                         f"pulled {s.get('pulled')} assigned {s.get('assigned')} refused "
                         f"{s.get('refused')} errors {s.get('write_errors')}"
                         + (f" violations {s['violations']}" if s.get("violations") else ""))
    return "\n".join(lines)


def _utc(moment: Any) -> str:
    """A stored time to the second, in UTC (SQLite gives it back naive, in UTC)."""
    if not isinstance(moment, datetime):
        return str(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
