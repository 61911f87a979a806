"""`leadgate init`, `leadgate install` and `leadgate connect` (CLI glue over connectors/)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from audit.files import write_atomically
from routing_core.errors import LeadgateError

if TYPE_CHECKING:
    from connectors.base import Connector

CRMS = click.Choice(["salesforce", "hubspot"])


def _config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        default=lambda: os.environ.get("LEADGATE_CONFIG", "leadgate.yaml"), show_default=True,
        help="leadgate.yaml to use (env LEADGATE_CONFIG).")(f)


def _source_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--source", default=None,
                        help="Source name in leadgate.yaml (default: the one of this kind).")(f)


def _source(config_path: Path, kind: str, source: str | None) -> tuple[Any, str, Any]:
    """leadgate.yaml, and the name and settings of its source of this kind."""
    from connectors.config import load_config

    config = load_config(config_path)
    if source is not None:
        name, settings = source, config.source(source)
        if settings.kind != kind:
            raise LeadgateError(f"source {source!r} is a {settings.kind} source, not {kind}",
                                where=f"{config_path}: sources.{source}.kind",
                                fix=f"run `leadgate ... {settings.kind} --source {source}`")
    else:
        name, settings = config.source_of_kind(kind)
    return config, name, settings


def _open(config_path: Path, kind: str, source: str | None) -> Connector:
    from connectors import open_connector

    _, name, settings = _source(config_path, kind, source)
    return open_connector(settings, source=name)


def _policy_problems(config_path: Path, config: Any, name: str, settings: Any) -> list[str]:
    """What the policy asks of this source's mapping that it cannot give (the cooling-off
    watch reads the stage): found here, before a run would fail on it."""
    from routing_core.policy import load_policy
    from sync.context import policy_path
    from sync.violations import require_watch

    path = policy_path(config_path, config)
    if not path.exists():
        return []  # not written yet (`leadgate init`, then connect): `sync run` says so
    try:
        require_watch(load_policy(path), settings.mapping,
                      f"{config_path}: sources.{name}.mapping")
    except LeadgateError as exc:
        return [str(exc)]
    return []


@click.command()
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("leadgate.yaml"), show_default=True, help="Where to write it.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--print", "print_only", is_flag=True, help="Print the template; write nothing.")
def init(path: Path, force: bool, print_only: bool) -> None:
    """Create leadgate.yaml (commented) and the ledger signing key."""
    from connectors.template import TEMPLATE

    if print_only:
        click.echo(TEMPLATE, nl=False)
        return
    if path.exists() and not force:
        raise LeadgateError("the file already exists", where=str(path),
                            fix="edit it, or pass --force to overwrite it with the template")
    from audit.keys import ensure_signing_key, signing_key_path

    path.parent.mkdir(parents=True, exist_ok=True)
    # The key first: if it cannot be written, no leadgate.yaml is left to refuse the retry.
    key = ensure_signing_key(signing_key_path(str(path.parent / "leadgate-signing.key")))
    write_atomically(path, TEMPLATE)
    click.echo(f"wrote {path}")
    click.echo(f"signing key: {key} (keep it secret and backed up)")
    click.echo("next: set the environment variables it names, then "
               "`leadgate connect salesforce|hubspot`; put your routing policy where `policy:` "
               "points (`leadgate demo` writes the example one, to start from); "
               "`leadgate db upgrade` creates the database's tables (the first `sync run` "
               "does too; a `--dry-run` writes nothing, so it needs them first)")


@click.command()
@click.argument("crm", type=CRMS)
@_config_option
@_source_option
@click.option("--dry-run", is_flag=True, help="Say what would be created; change nothing.")
@click.option("--print-metadata", is_flag=True,
              help="Salesforce: print an sfdx source package instead of creating anything.")
def install(crm: str, config_path: Path, source: str | None, dry_run: bool,
            print_metadata: bool) -> None:
    """Create leadgate's fields (and the Compliance Review queue) in a CRM. Idempotent."""
    connector = _open(config_path, crm, source)
    try:
        if print_metadata:
            if crm != "salesforce":
                raise LeadgateError("--print-metadata is for Salesforce only", where="install",
                                    fix="run `leadgate install hubspot` without it")
            from connectors.salesforce.adapter import SalesforceConnector
            from connectors.salesforce.install import metadata_package

            assert isinstance(connector, SalesforceConnector)
            for name, content in metadata_package(connector).items():
                click.echo(f"==> {name} <==\n{content}")
            click.echo("# deploy with: sf project deploy start --manifest manifest/package.xml")
            return
        report = connector.install(dry_run=dry_run)
    finally:
        connector.close()
    verb = "would create" if dry_run else "created"
    for item in report.created:
        click.echo(f"{verb}: {item}")
    for item in report.existing:
        click.echo(f"exists: {item}")
    if not report.created:
        click.echo(f"nothing to do: leadgate is already installed in {crm}")
    elif crm == "salesforce" and not dry_run:
        click.echo("next: give the integration user edit access to the new fields "
                   "(permission set), then `leadgate connect salesforce`")
    click.echo(f"({connector.api_calls} API calls)")


@click.command()
@click.argument("crm", type=CRMS)
@_config_option
@_source_option
def connect(crm: str, config_path: Path, source: str | None) -> None:
    """Check credentials, API version and the field mapping against the CRM and the policy."""
    from connectors import open_connector

    config, name, settings = _source(config_path, crm, source)
    connector = open_connector(settings, source=name)
    try:
        report = connector.check()
    finally:
        connector.close()
    problems = [*report.problems, *_policy_problems(config_path, config, name, settings)]
    for fact in report.facts:
        click.echo(f"ok: {fact}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        raise SystemExit(1)
    click.echo(f"{crm}: connection and mapping are in order")
