"""Assemble a SyncJob from leadgate.yaml (the CLI, the demo and the benchmark use this)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sync import violations
from sync.context import (
    Context,
    config_path,
    open_context,
    open_source,
    screener_for,
    select_source,
)
from sync.lease import DEFAULT_TTL
from sync.run import RunOptions, SyncJob
from sync.writeahead import Decider


def build_job(config: str | Path | None, source: str | None, *, dry_run: bool = False,
              limit: int | None = None, shard: tuple[int, int] | None = None,
              lease_ttl: float | None = None, notify: bool = True, decide_ahead: bool = True,
              connector_options: dict[str, Any] | None = None) -> tuple[SyncJob, Context]:
    def check(cfg: Any, policy: Any) -> None:  # configuration first: then the database
        name, source_cfg = select_source(cfg, source)
        violations.require_watch(policy, source_cfg.mapping,
                                 f"{config_path(config)}: sources.{name}.mapping")

    ctx = open_context(config, migrate=not dry_run, check=check)
    try:
        name, source_cfg = ctx.source(source)
        if not dry_run:
            ctx.ledger.check_signing_key()  # before any work: a run must end in a checkpoint
        from connectors import open_connector

        connector = open_connector(source_cfg, source=name, **(connector_options or {}))
        decider = Decider(source=name, crm=source_cfg.kind, policy=ctx.policy,
                          screener=screener_for(ctx.policy))
        ledger = ctx.ledger

        def checkpoint() -> dict[str, Any]:
            return json.loads(ledger.checkpoint_file(ledger.checkpoint()))

        options = RunOptions(dry_run=dry_run, limit=limit, shard=shard,
                             lease_ttl=lease_ttl or DEFAULT_TTL, notify=notify,
                             decide_ahead=decide_ahead)
        job = SyncJob(source=name, crm=source_cfg.kind, engine=ctx.engine, ledger=ledger,
                      connector=connector, decider=decider, policy=ctx.policy,
                      options=options, checkpoint=checkpoint)
        job.write_chunk = connector.write_group
        job.outbox = ctx.config_path.resolve().parent / "leadgate-outbox"
        return job, ctx
    except BaseException:
        ctx.close()
        raise


__all__ = ["build_job", "open_source"]
