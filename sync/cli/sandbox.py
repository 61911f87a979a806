"""`leadgate sandbox serve`: the local sandbox CRM, until interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from connectors.sandbox.sandbox import Sandbox


@click.group()
def sandbox() -> None:
    """The local sandbox CRM: Salesforce and HubSpot emulated on 127.0.0.1."""


@sandbox.command()
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed for generated data and faults (same seed, same data).")
@click.option("--leads", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Generated Salesforce leads (and as many HubSpot contacts).")
@click.option("--contacts", type=click.IntRange(min=0), default=None,
              help="Generated HubSpot contacts, if not as many as --leads.")
@click.option("--faults", "faults", default=None, metavar="SPEC",
              help="Faults to inject, e.g. 'salesforce.query:429@0.1,hubspot.*:drop@call=3'.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Salesforce HTTPS port (HubSpot uses the next one); 0 picks free ports.")
@click.option("--persist", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file to load state from at start and save it to at exit.")
@click.option("--installed", is_flag=True,
              help="Start with leadgate's fields and properties already created.")
@click.option("--rate-limits", is_flag=True,
              help="Enforce HubSpot's rate limits (429 when exceeded).")
@click.option("--json", "as_json", is_flag=True,
              help="Also print the URLs and credentials as one JSON line first (for scripts).")
def serve(seed: int, leads: int, contacts: int | None, faults: str | None, port: int,
          persist: Path | None, installed: bool, rate_limits: bool, as_json: bool) -> None:
    """Serve the sandbox CRM until interrupted (Ctrl-C or SIGTERM); print call counts at exit."""
    from connectors.sandbox.sandbox import Sandbox, serve_until_signalled

    sb = Sandbox(seed=seed, leads=leads, contacts=contacts, faults=faults, persist=persist,
                 install_leadgate_fields=installed, enforce_rate_limits=rate_limits,
                 salesforce_port=port, hubspot_port=port + 1 if port else 0)

    def started(box: Sandbox) -> None:
        if as_json:
            click.echo(json.dumps(box.info()))
        click.echo("leadgate sandbox CRM is running (fake credentials, loopback only)")
        click.echo(box.describe())
        if faults:
            click.echo(f"Faults                  : {faults}")
        click.echo("Press Ctrl-C to stop.")

    serve_until_signalled(sb, started)
    click.echo("sandbox stopped; calls answered:")
    click.echo(sb.accounting.table())
    if persist:
        click.echo(f"state saved to {persist}")
