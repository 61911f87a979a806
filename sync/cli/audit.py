"""`leadgate db ...` and `leadgate audit ...`: the schema and the audit ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from routing_core.errors import LeadgateError

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default="leadgate.yaml",
    show_default=True, help="leadgate.yaml; its database_url and signing_key are used.",
)
URL_OPTION = click.option(
    "--database-url", default=None,
    help="Overrides LEADGATE_DATABASE_URL and the config (default sqlite:///leadgate.db).",
)


def _config_value(config_path: str, key: str) -> Any:
    """One top-level key of leadgate.yaml (if the file exists)."""
    path = Path(config_path)
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LeadgateError(f"cannot read the config ({exc.__class__.__name__})",
                            where=str(path), fix="fix the YAML or pass --database-url") from exc
    return data.get(key) if isinstance(data, dict) else None


def resolve_url(database_url: str | None, config_path: str) -> str:
    from audit.db import database_url as default_url

    if database_url:
        return database_url
    return default_url(_config_value(config_path, "database_url"))


@click.group()
def db() -> None:
    """Create or upgrade the database schema."""


@db.command("upgrade")
@URL_OPTION
@CONFIG_OPTION
@click.option("--revision", default="head", show_default=True)
def db_upgrade(database_url: str | None, config_path: str, revision: str) -> None:
    """Create the tables, or bring them up to date (safe to run again)."""
    from audit import db as audit_db

    url = resolve_url(database_url, config_path)
    audit_db.upgrade(url, revision)
    engine = audit_db.make_engine(url)
    try:
        click.echo(f"database {audit_db.mask_url(url)} at revision "
                   f"{audit_db.current_revision(engine)}")
    finally:
        engine.dispose()


@db.command("downgrade")
@URL_OPTION
@CONFIG_OPTION
@click.argument("revision")
def db_downgrade(database_url: str | None, config_path: str, revision: str) -> None:
    """Take the schema down to REVISION ("base" drops every leadgate table)."""
    from audit import db as audit_db

    url = resolve_url(database_url, config_path)
    audit_db.downgrade(url, revision)
    click.echo(f"database {audit_db.mask_url(url)} downgraded to {revision}")


@click.group()
def audit() -> None:
    """Verify, export, explain and erase in the audit ledger."""
