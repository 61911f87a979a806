"""`leadgate db ...` and `leadgate audit ...`: the schema and the audit ledger."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from audit.files import write_atomically
from routing_core.errors import LeadgateError
from sync.cli.officer import ask_token, officer_options
from sync.context import CONFIG_ENV
from sync.context import config_path as resolve_config


def _named_config(_ctx: Any, _param: Any, value: str | None) -> str:
    """The leadgate.yaml that `sync run` would read. Without one in this folder the commands
    still work on --database-url; one named by --config or LEADGATE_CONFIG must exist."""
    from connectors.config import read_config_file

    path = resolve_config(value)
    if (value or os.environ.get(CONFIG_ENV)) and not path.is_file():
        read_config_file(path)  # raises the error `sync run` gives for it
    return str(path)


CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    callback=_named_config,
    help="leadgate.yaml, whose database_url and signing_key are used (default: "
         "$LEADGATE_CONFIG or ./leadgate.yaml).",
)
URL_OPTION = click.option(
    "--database-url", default=None,
    help="Overrides LEADGATE_DATABASE_URL and the config (default sqlite:///leadgate.db).",
)


def _config_value(config_path: str, key: str) -> Any:
    """One top-level key of leadgate.yaml (if the file exists), read as `sync run` reads it."""
    from connectors.config import read_config_file

    path = Path(config_path)
    if not path.is_file():
        return None
    data = read_config_file(path).data
    return data.get(key) if isinstance(data, dict) else None


def resolve_url(database_url: str | None, config_path: str) -> str:
    from audit.db import database_url as default_url
    from connectors.config import DATABASE_PASSWORD_FIX, DATABASE_PASSWORD_REFUSED, has_password

    if database_url:
        return database_url
    configured = _config_value(config_path, "database_url")
    if isinstance(configured, str) and has_password(configured):
        raise LeadgateError(DATABASE_PASSWORD_REFUSED, where=f"{config_path}: database_url",
                            fix=DATABASE_PASSWORD_FIX)
    return default_url(configured)


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


KEY_OPTION = click.option(
    "--key", "key_path", type=click.Path(dir_okay=False), default=None,
    help="Signing key file (default: LEADGATE_SIGNING_KEY, signing_key in leadgate.yaml, "
         "./leadgate-signing.key).",
)


def open_ledger(database_url: str | None, config_path: str, key_path: str | None = None,
                *, need_schema: bool = True) -> Any:
    from audit import db as audit_db
    from audit.keys import signing_key_path
    from audit.ledger import Ledger

    url = resolve_url(database_url, config_path)
    engine = audit_db.make_engine(url)
    if need_schema:
        audit_db.require_database_file(
            engine, "run `leadgate db upgrade` (or point --database-url at the ledger)")
        audit_db.require_schema(engine)
    configured = _config_value(config_path, "signing_key")
    if configured and not Path(configured).is_absolute():  # relative to leadgate.yaml's folder
        configured = str(Path(config_path).parent / configured)
    key = Path(key_path) if key_path else signing_key_path(configured)
    return Ledger(engine, key_path=key)


def _read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LeadgateError(f"cannot read the {what} ({exc.strerror})", where=path,
                            fix=f"pass the path of the {what} file") from exc


@audit.command("verify")
@URL_OPTION
@CONFIG_OPTION
@click.option("--prior-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="A checkpoint file saved earlier: prove today's ledger extends it.")
@click.option("--bundle", type=click.Path(file_okay=False), default=None,
              help="Verify an exported bundle offline (no database).")
def verify_cmd(database_url: str | None, config_path: str, prior_checkpoint: str | None,
               bundle: str | None) -> None:
    """Check the hash chain, Merkle roots and every checkpoint signature (exit 1 if bad)."""
    prior = _read_file(prior_checkpoint, "prior checkpoint") if prior_checkpoint else None
    if bundle:
        from audit.bundle import verify_bundle

        click.echo(verify_bundle(Path(bundle), prior_checkpoint=prior).summary())
        return
    from audit.verify import verify_database

    ledger = open_ledger(database_url, config_path)
    try:
        report = verify_database(ledger.engine, prior_checkpoint=prior,
                                 prior_name=prior_checkpoint or "")
    finally:
        ledger.engine.dispose()
    click.echo(report.summary())


@audit.command("checkpoint")
@URL_OPTION
@CONFIG_OPTION
@KEY_OPTION
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Also write the signed checkpoint to this file (keep it for --prior-checkpoint).")
def checkpoint_cmd(database_url: str | None, config_path: str, key_path: str | None,
                   out: str | None) -> None:
    """Sign the ledger's current tree head."""
    from audit.keys import load_signing_key, public_bytes

    ledger = open_ledger(database_url, config_path, key_path)
    try:
        signed = ledger.checkpoint()
    finally:
        ledger.engine.dispose()
    st = signed.statement
    if out:
        write_atomically(Path(out),
                         signed.to_file(public_bytes(load_signing_key(ledger.key_path))))
    click.echo(f"checkpoint {st['number']}: {st['size']} entries, root {st['root'][:16]}..., "
               f"key {st['key'][:19]}...")


@audit.command("rotate-key")
@URL_OPTION
@CONFIG_OPTION
@KEY_OPTION
@click.option("--new-key", type=click.Path(dir_okay=False), required=True,
              help="File for the new key (created with 0600 if missing).")
def rotate_key_cmd(database_url: str | None, config_path: str, key_path: str | None,
                   new_key: str) -> None:
    """Announce a new signing key, endorsed by the current one."""
    ledger = open_ledger(database_url, config_path, key_path)
    try:
        fp = ledger.rotate_key(new_key)
    finally:
        ledger.engine.dispose()
    click.echo(f"signing key rotated to {fp}; point signing_key in leadgate.yaml (or "
               f"LEADGATE_SIGNING_KEY) at {new_key} now: runs given the old key stop at start, "
               "and a run already working leaves its checkpoint to the next run")


@audit.command("erase")
@URL_OPTION
@CONFIG_OPTION
@click.argument("subject")
@click.option("--reason", required=True, help="Why (e.g. the erasure request reference).")
@officer_options(what=" (checked against the policy of --config)")
@KEY_OPTION
def erase_cmd(database_url: str | None, config_path: str, subject: str, reason: str,
              officer: str, token: str | None, key_path: str | None) -> None:
    """Destroy SUBJECT's personal-data key and record the erasure, with the officer who
    authorised it (the chain still verifies), under a signed checkpoint."""
    from audit.erasure import erase_subject

    who = _officer(config_path, officer, token, action="erase", database_url=database_url,
                   key_path=key_path)
    ledger = open_ledger(database_url, config_path, key_path)
    try:
        appended = erase_subject(ledger, subject, reason, by=who["officer"])
        done = (f"erased {subject}: key destroyed, erasure recorded as entry {appended.seq} "
                f"({appended.entry_hash[:16]}...)")
        ledger.checkpoint_recorded(done)  # NotSigned says it was erased all the same
    finally:
        ledger.engine.dispose()
    click.echo(done)


def _officer(config_path: str, officer: str, token: str | None, *, action: str,
             database_url: str | None, key_path: str | None) -> dict[str, str]:
    """The authenticated officer of an erasure or a showing of personal data; a refused
    attempt is recorded in the ledger (`officer_auth_refused`) before the error is shown.
    The signing key is checked first: what the officer does next is signed at once."""
    from sync.review import OfficerRefused, authenticate_officer, record_refused

    ledger = open_ledger(database_url, config_path, key_path)
    try:
        ledger.check_signing_key()
        return authenticate_officer(config_path, officer, token or ask_token(), ledger.engine)
    except OfficerRefused as exc:
        record_refused(ledger, officer, action, exc)
        raise
    finally:
        ledger.engine.dispose()


@audit.command("retention")
@URL_OPTION
@CONFIG_OPTION
@click.option("--years", type=int, required=True, help="Retention period in years.")
def retention_cmd(database_url: str | None, config_path: str, years: int) -> None:
    """Report what is past retention (nothing is deleted)."""
    from audit.erasure import retention_report

    ledger = open_ledger(database_url, config_path)
    try:
        click.echo(retention_report(ledger, years).summary())
    finally:
        ledger.engine.dispose()


@audit.command("explain")
@URL_OPTION
@CONFIG_OPTION
@click.argument("subject")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained, printable HTML page.")
@click.option("--show-personal", is_flag=True,
              help="Decrypt and show the subject's personal data (recorded in the ledger).")
@click.option("--reason", default=None,
              help="Why personal data is shown (e.g. the subject access request reference).")
@officer_options(required=False, what=" (needed with --show-personal)")
@KEY_OPTION
def explain_cmd(database_url: str | None, config_path: str, subject: str,
                html_path: str | None, show_personal: bool, reason: str | None,
                officer: str | None, token: str | None, key_path: str | None) -> None:
    """Every ledger entry about SUBJECT (source:record_id), in order, and whether it verifies.
    Personal data stays sealed unless --show-personal is given with a --reason."""
    from audit.explain import explain_subject, record_personal_access, render_html, render_text

    if show_personal and not reason:
        raise LeadgateError("--show-personal needs --reason", where="--reason",
                            fix="say why, e.g. --reason 'subject access request #4711' "
                                "(it is recorded in the ledger)")
    if show_personal and not officer:
        raise LeadgateError("--show-personal needs --officer", where="--officer",
                            fix="give your officer id from the policy's review.officers "
                                "(and your token): the showing is recorded with it")
    who = _officer(config_path, officer, token, action="show_personal",
                   database_url=database_url, key_path=key_path) \
        if show_personal and officer else None
    ledger = open_ledger(database_url, config_path, key_path)
    try:
        if who is not None:
            assert reason is not None
            access = record_personal_access(ledger, subject, reason, by=who["officer"])
            # Fail closed: nothing is shown until a checkpoint covers the record of showing it.
            ledger.checkpoint_recorded(f"the showing of {subject}'s personal data is recorded "
                                       f"as entry {access.seq}, and nothing was shown")
        explanation = explain_subject(ledger.engine, subject, reveal_personal=show_personal)
    finally:
        ledger.engine.dispose()
    click.echo(render_text(explanation))
    if html_path:
        # About one person, perhaps with their data revealed: readable by its owner only.
        write_atomically(Path(html_path), render_html(explanation), private=True)
        click.echo(f"wrote {html_path}")
    if not explanation.chain_ok:  # shown above; a scripted check must not read it as sound
        raise SystemExit(1)


@audit.command("export")
@URL_OPTION
@CONFIG_OPTION
@KEY_OPTION
@click.option("--from", "start", default=None,
              help="First day (YYYY-MM-DD) or time (RFC 3339 with offset), inclusive.")
@click.option("--to", "end", default=None,
              help="Last day (YYYY-MM-DD) or time (RFC 3339 with offset), inclusive.")
@click.option("--subject", default=None, help="Only entries about this source:record_id.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="A new or empty folder for the bundle.")
def export_cmd(database_url: str | None, config_path: str, key_path: str | None,
               start: str | None, end: str | None, subject: str | None, fmt: str,
               out: str) -> None:
    """Write a bundle a regulator verifies offline with `leadgate audit verify --bundle`."""
    from audit.export import export

    ledger = open_ledger(database_url, config_path, key_path)
    try:
        result = export(ledger, Path(out), start=start, end=end, subject=subject, fmt=fmt)
    finally:
        ledger.engine.dispose()
    span = (f"entries {result.first_seq}..{result.last_seq}" if result.entries
            else "no entries")
    click.echo(f"exported {result.entries} entries ({span}; "
               f"{'complete' if result.complete else 'partial, with inclusion proofs'}) to {out}; "
               f"signed checkpoint {result.checkpoint_number} covers {result.tree_size} entries. "
               f"Keep {Path(out) / 'checkpoint.json'} for --prior-checkpoint.")
