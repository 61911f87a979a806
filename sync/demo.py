"""`leadgate demo`: leadgate end to end on the sandbox CRM, with no configuration.

Starts the sandbox (Salesforce + HubSpot on loopback) in this process, writes a demo
leadgate.yaml and the example policy into a working folder, installs leadgate's fields, syncs
both CRMs into a local SQLite ledger, verifies the ledger and says where to look next.
`write_sandbox_config` is also what the tests and the benchmark use to point leadgate at a
sandbox.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from audit.files import write_atomically
from routing_core.errors import LeadgateError

MARKER = ".leadgate-demo"
EXAMPLE_POLICY = Path(__file__).resolve().parents[1] / "examples" / "policy"


def write_sandbox_config(sb: Any, folder: Path, *, database_url: str | None = None,
                         policy: Path | None = None, sources: tuple[str, ...] = (
                             "salesforce", "hubspot"), extra: dict[str, Any] | None = None,
                         ) -> Path:
    """leadgate.yaml pointing at a running Sandbox; secrets in files under folder/secrets."""
    folder.mkdir(parents=True, exist_ok=True)
    secrets = folder / "secrets"
    secrets.mkdir(exist_ok=True)
    creds = sb.salesforce_credentials

    def secret(name: str, value: str) -> dict[str, str]:
        path = secrets / name
        write_atomically(path, value, private=True)
        return {"file": str(path.resolve())}

    srcs: dict[str, Any] = {}
    if "salesforce" in sources:
        srcs["salesforce"] = {"kind": "salesforce", "connection": {
            "login_url": creds["login_url"], "api_version": creds.get("api_version", "59.0"),
            "auth": "password", "username": creds["username"],
            "client_id": creds["client_id"],
            "client_secret": secret("sf-client-secret", creds["client_secret"]),
            "password": secret("sf-password", creds["password"]),
            "security_token": secret("sf-security-token", creds["security_token"]),
            "ca_file": str(Path(sb.ca_file).resolve()),
        }}
    if "hubspot" in sources:
        hs: dict[str, Any] = {"base_url": sb.hubspot_base_url,
                              "token": secret("hubspot-token", sb.hubspot_token)}
        if sb.hubspot_base_url.startswith("https"):
            hs["ca_file"] = str(Path(sb.ca_file).resolve())
        srcs["hubspot"] = {"kind": "hubspot", "connection": hs,
                           "review_owner_id": str(sb.hubspot_review_owner_id)}
    for name, overrides in (extra or {}).items():
        srcs[name].update(overrides)
    data = {
        "database_url": database_url or f"sqlite:///{(folder / 'leadgate.db').resolve()}",
        "policy": str((policy or folder / "policy").resolve()),
        "signing_key": str((folder / "leadgate-signing.key").resolve()),
        "sources": srcs,
    }
    path = folder / "leadgate.yaml"
    path.write_text("# Written by leadgate for the sandbox CRM (fake credentials).\n"
                    + yaml.safe_dump(data, sort_keys=False))
    return path


def copy_policy(dest: Path, *, notify: list[dict[str, Any]] | None = None) -> Path:
    """The example policy, with review.notify replaced (the demo must not call out)."""
    if not EXAMPLE_POLICY.is_dir():
        raise LeadgateError("the example policy is not installed", where=str(EXAMPLE_POLICY),
                            fix="install from a source checkout: pip install -e .")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(EXAMPLE_POLICY, dest)
    review = dest / "80-review.yaml"
    text = review.read_text()
    block = yaml.safe_dump({"notify": notify or []}, default_flow_style=None,
                           sort_keys=False).strip()
    text = re.sub(r"(?ms)^  notify:\n(?:    .*\n?)*", "  " + block.replace("\n", "\n  ") + "\n",
                  text)
    review.write_text(text)
    return dest


def _prepare(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise LeadgateError("the folder exists and was not made by `leadgate demo`",
                            where=str(folder), fix="pass --dir with a new or empty folder")
    if folder.exists():
        shutil.rmtree(folder)  # a demo folder from an earlier run: start afresh
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by leadgate demo; safe to delete\n")


def run_demo(folder: str | Path, *, leads: int = 300,
             echo: Callable[[str], None] = print) -> int:
    import os

    from audit.db import make_engine
    from audit.ledger import Ledger
    from connectors import open_connector
    from connectors.config import load_config
    from connectors.sandbox import Sandbox
    from sync.job import build_job

    # The demo uses only its own folder: never a production database named in the environment.
    for name in ("LEADGATE_DATABASE_URL", "LEADGATE_CONFIG", "LEADGATE_OUTBOX"):
        os.environ.pop(name, None)
    started = time.monotonic()
    folder = Path(folder)
    _prepare(folder)
    copy_policy(folder / "policy", notify=[{"kind": "email", "to": ["ops-admin@example.com"]}])
    echo(f"leadgate demo in {folder}/ (sandbox CRM on 127.0.0.1, nothing leaves this machine)")
    worst = 0
    with Sandbox(seed=7, leads=leads, contacts=leads) as sb:
        config_path = write_sandbox_config(sb, folder)
        cfg = load_config(config_path)
        echo(f"  sandbox: {leads} Salesforce leads, {leads} HubSpot contacts")
        for name in ("salesforce", "hubspot"):
            connector = open_connector(cfg.source(name), source=name)
            try:
                report = connector.install(dry_run=False)
            finally:
                connector.close()
            echo(f"  leadgate install {name}: created {len(report.created)}, "
                 f"already there {len(report.existing)}")
        summaries = []
        for name in ("salesforce", "hubspot"):
            job, ctx = build_job(config_path, name)
            job.options.notify = True
            try:
                summary = job.run()
            finally:
                job.connector.close()
                ctx.close()
            summaries.append(summary)
            worst = max(worst, summary.exit_code)
            echo("")
            echo(summary.render())
    engine = make_engine(cfg.database_url or "")
    try:
        report = Ledger(engine).verify()
        echo("")
        echo(f"ledger verify: {report.summary()}")
        example = _example_subjects(engine)
    finally:
        engine.dispose()
    echo("")
    echo(f"done in {time.monotonic() - started:.1f}s. Where to look next (cd {folder}):")
    if example.get("assigned"):
        echo(f"  leadgate audit explain {example['assigned']}   # why this lead went to its rep")
    if example.get("refused"):
        echo(f"  leadgate audit explain {example['refused']}   # why this one was refused")
    echo("  leadgate review list                  # the compliance review queue")
    echo("  leadgate sync status                  # cursors, runs, backlog")
    echo("  leadgate audit verify                 # check the ledger again")
    echo("  policy/  the example policy           outbox: leadgate-outbox/ (the run digests)")
    return worst


def _example_subjects(engine: Any) -> dict[str, str]:
    import sqlalchemy as sa

    from sync.state import sync_decisions

    out: dict[str, str] = {}
    with engine.connect() as conn:
        for outcome in ("assigned", "refused"):
            row = conn.execute(sa.select(sync_decisions.c.source, sync_decisions.c.record_id)
                               .where(sync_decisions.c.outcome == outcome)
                               .order_by(sync_decisions.c.id).limit(1)).first()
            if row is not None:
                out[outcome] = f"{row.source}:{row.record_id}"
    return out
