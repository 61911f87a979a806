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


def _secrets_readable(settings: Any, where: str) -> None:
    """Every secret the connection names can be read, or the check cannot begin (exit 2): all
    of those that cannot are named at once, not one per try."""
    from connectors.config import SecretRef

    unreadable = []
    for key, value in settings.connection:
        if isinstance(value, SecretRef):
            try:
                value.resolve(f"{where}.{key}")
            except LeadgateError as exc:
                unreadable.append(exc)
    if len(unreadable) == 1:
        raise unreadable[0]
    if unreadable:
        raise LeadgateError("; ".join(f"{e.where}: {e.message}" for e in unreadable),
                            fix="set each variable, or point each file: at its secret")


def _policy_problems(config_path: Path, config: Any, name: str, settings: Any) -> list[str]:
    """What the policy asks of this source's mapping that it cannot give, found here before a
    run would fail on it, or refuse every lead it touches: the policy itself (it must load),
    the stage (the cooling-off watch reads it), and the codes the value maps give product and
    customer_type (one the policy does not know makes each such lead `invalid_lead`)."""
    from routing_core.policy import load_policy
    from sync.context import existing_policy
    from sync.violations import require_watch

    where = f"{config_path}: sources.{name}.mapping"
    try:
        policy = load_policy(existing_policy(config_path, config))
        require_watch(policy, settings.mapping, where)
    except LeadgateError as exc:
        return [str(exc)]
    return _unknown_codes(policy, settings.mapping, where)


def _unknown_codes(policy: Any, mapping: Any, where: str) -> list[str]:
    from routing_core.lead import CUSTOMER_TYPES, customer_type_code

    checks = (("product", lambda code: code in policy.products,
               f"a product of policy {policy.id}"),
              ("customer_type", lambda code: customer_type_code(code) is not None,
               f"one of {', '.join(CUSTOMER_TYPES)}"))
    problems = []
    for path, known, what in checks:
        spec = mapping.get(path)
        for label, code in (spec.values or {}).items() if spec is not None else ():
            if not known(str(code)):
                problems.append(f"{where}.{path}.values: {label!r} maps to {code!r}, which is "
                                f"not {what} (fix: correct the code; every lead with that value "
                                "would be refused as invalid_lead)")
    return problems


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
    _secrets_readable(settings, f"sources.{name}.connection")
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
