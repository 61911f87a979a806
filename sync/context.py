"""Open what a run needs from leadgate.yaml: config, policy, database, ledger, connector.

Every failure here is a "could not start" (exit 2) with one line naming the thing and the fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from routing_core.errors import LeadgateError

log = logging.getLogger("leadgate.sync")

if TYPE_CHECKING:
    from routing_core.policy.model import Policy

CONFIG_ENV = "LEADGATE_CONFIG"


@dataclass
class Context:
    config_path: Path
    config: Any
    policy: Any
    engine: sa.Engine
    ledger: Any
    key_path: Path
    # Why the policy did not load, for a command that reads only the database (sync status,
    # review list): it warns and goes on, so the state can be seen while the policy is fixed.
    policy_problem: str | None = None

    def source(self, name: str | None) -> tuple[str, Any]:
        return select_source(self.config, name)

    def close(self) -> None:
        self.engine.dispose()


def select_source(config: Any, name: str | None) -> tuple[str, Any]:
    """(name, settings) of the source `name`, or of the only one configured."""
    if name is None:
        if len(config.sources) != 1:
            raise LeadgateError(
                f"{len(config.sources)} sources are configured", where="--source",
                fix=f"name one of {', '.join(sorted(config.sources))} with --source")
        name = next(iter(config.sources))
    return name, config.source(name)


def config_path(value: str | None) -> Path:
    return Path(value or os.environ.get(CONFIG_ENV) or "leadgate.yaml")


def _relative(base: Path, value: Path | str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def policy_path(path: Path, cfg: Any) -> Path:
    """The policy file leadgate.yaml at `path` names (relative to that file's folder)."""
    return _relative(path.resolve().parent, cfg.policy)


def existing_policy(path: Path, cfg: Any) -> Path:
    """policy_path, which must exist: its absence is a setting to fix, not a YAML problem."""
    policy = policy_path(path, cfg)
    if not policy.exists():
        raise LeadgateError(f"policy: {policy} does not exist", where=str(path),
                            fix="write your routing policy there or point `policy:` at it; "
                                "`leadgate demo` writes the example policy to start from")
    return policy


def open_context(config: str | Path | None, *, migrate: bool = True,
                 check: Callable[[Any, Policy], None] | None = None,
                 reads_only: bool = False) -> Context:
    """leadgate.yaml, its policy and its database (brought to the shipped schema unless
    `migrate` is false). `check(config, policy)` runs before the database is opened: a command
    refused for its configuration leaves a new database uncreated. With `reads_only` (a command
    that shows the database and decides nothing) a policy that exists but does not load is a
    warning, and `policy` is None."""
    from audit import db
    from audit.ledger import Ledger
    from connectors.config import load_config
    from routing_core.policy import load_policy

    path = config_path(str(config) if config else None)
    cfg = load_config(path)
    base = path.resolve().parent
    where = existing_policy(path, cfg)
    problem = None
    try:
        policy = load_policy(where)
    except LeadgateError as exc:
        if not reads_only:
            raise
        policy, problem = None, str(exc)
        log.warning("the policy does not load, so sync runs and officers' actions are refused "
                    "until it is fixed (`leadgate policy validate %s`): %s", where, problem)
    if check is not None:
        check(cfg, policy)
    url = db.database_url(cfg.database_url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path is relative to leadgate.yaml, not to wherever cron starts us.
        rel = url.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            url = "sqlite:///" + str(_relative(base, rel))
    engine = db.make_engine(url)
    if not migrate:  # a command that only reads (status, a dry run) creates no database
        db.require_database_file(engine, "run `leadgate db upgrade`, or a first `leadgate "
                                         "sync run`, which creates it")
    try:
        if migrate and not schema_is_current(engine):
            migrate_serialised(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        failure = db.database_failure(exc, engine)  # unreachable, full, not a database
        if failure is not None:
            raise failure from exc
        raise LeadgateError(f"database error: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}",
                            where=db.mask_url(url),
                            fix="check the database is reachable and `leadgate db upgrade` "
                                "runs") from exc
    else:
        db.require_schema(engine)
    key_path = _relative(base, cfg.signing_key)
    return Context(path, cfg, policy, engine, Ledger(engine, key_path=key_path), key_path,
                   problem)


def _head_revisions() -> set[str]:
    """Head revision(s) of the shipped migrations, read from the files (no Alembic import)."""
    import re

    from audit.db import MIGRATIONS

    revs: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M)
        if rev:
            revs.add(rev.group(1))
        if down:
            downs.add(down.group(1))
    return revs - downs


def migrate_serialised(engine: sa.Engine) -> None:
    """Alembic upgrade, one process at a time: workers started together on a fresh database
    would otherwise race to create the same tables (PostgreSQL advisory lock; a lock file
    next to a SQLite database)."""
    from audit import db
    from audit.errors import DatabaseFailed

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(724911003)"))
            try:
                if not schema_is_current(engine):
                    db.upgrade(engine)
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(724911003)"))
                conn.commit()
        return
    import fcntl

    database = engine.url.database
    if not database or database == ":memory:":
        db.upgrade(engine)
        return
    try:
        lock = open(f"{database}.migrate.lock", "w")  # noqa: SIM115 - closed below
    except OSError as exc:  # the folder is missing or not writable: SQLite could not either
        raise DatabaseFailed(
            f"cannot create the database here ({exc.strerror})", where=database,
            fix="create the folder, or point database_url in leadgate.yaml (or "
                "LEADGATE_DATABASE_URL) at a folder leadgate may write") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not schema_is_current(engine):
            db.upgrade(engine)


def schema_is_current(engine: sa.Engine) -> bool:
    """True when the database is at the shipped head: the run then skips Alembic (~1 s)."""
    try:
        with engine.connect() as conn:
            current = set(conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                          .scalars())
    except sa.exc.DBAPIError:
        return False
    return bool(current) and current == _head_revisions()


def open_source(ctx: Context, name: str | None) -> tuple[str, Any, Any]:
    """(source name, its config, an opened connector)."""
    from connectors import open_connector

    source, source_cfg = ctx.source(name)
    return source, source_cfg, open_connector(source_cfg, source=source)


def screener_for(policy: Any) -> Any:
    """The list screener for the policy's `screening` section (NullScreener when none; a
    screener that refuses every lead `screening_unavailable` when a list cannot be read)."""
    from sync.screening_lists import load_screener

    return load_screener(policy)
