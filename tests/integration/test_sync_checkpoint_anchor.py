"""Each run's signed checkpoint leaves the database: in the --json summary line (the log of
runs) and in the digest to compliance. Kept there, it shows a rollback that rewrites the
database whole (entries, checkpoint rows and head), which nothing inside the database can:
`audit verify` alone says ok, `audit verify --prior-checkpoint` does not. Real sync runs."""

from __future__ import annotations

import email
import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from audit import schema as audit_schema
from audit.merkle import Accumulator
from tests.audit.test_audit_tamper import below_triggers
from tests.integration.synctools import leadgate, return_to_intake, start_env, summary, sync_run


def _digest_checkpoint(outbox: Path) -> dict:
    """The checkpoint of the newest digest in the outbox (its JSON part)."""
    newest = max(outbox.glob("salesforce-*.eml"), key=lambda f: f.stat().st_mtime_ns)
    message = email.message_from_bytes(newest.read_bytes())
    [part] = [p for p in message.walk() if p.get_content_type() == "application/json"]
    return json.loads(part.get_payload(decode=True))["checkpoint"]


def test_a_checkpoint_kept_outside_shows_a_rollback_of_the_whole_database(
        tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=80, notify=[{"kind": "email", "to": ["ops@example.com"]}])
    try:
        cfg = ("--config", str(env.config))
        first = summary(sync_run(env, "salesforce", "--json"))
        return_to_intake(env, "salesforce", set(range(20)))
        second = summary(sync_run(env, "salesforce", "--json"))
        kept = second["signed_checkpoint"]
        assert kept["checkpoint"]["size"] == second["checkpoint"] > first["checkpoint"]
        assert _digest_checkpoint(tmp_path / "leadgate-outbox") == kept  # the same anchor
        anchor = tmp_path / "kept-checkpoint.json"
        anchor.write_text(json.dumps(kept))
        ok = leadgate("audit", "verify", "--prior-checkpoint", str(anchor), *cfg)
        assert ok.returncode == 0 and "extends prior checkpoint" in ok.stdout, ok.stdout

        # Someone who can write the database takes the second run back out of it: its
        # entries, its checkpoint row, and the head as it stood after the first run.
        back_to = first["checkpoint"] + 1  # the first run's checkpoint and its entry
        engine = env.engine()
        with below_triggers(engine) as conn:
            conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq > :n"), {"n": back_to})
            conn.execute(sa.text("DELETE FROM ledger_checkpoints WHERE size > :n"),
                         {"n": first["checkpoint"]})
            leaves = [bytes(h) for h in conn.execute(sa.text(
                "SELECT entry_hash FROM ledger_entries ORDER BY seq")).scalars()]
            acc = Accumulator()
            for leaf in leaves:
                acc.add(leaf)
            number, body = conn.execute(sa.text(
                "SELECT number, body FROM ledger_checkpoints ORDER BY number DESC LIMIT 1")).one()
            conn.execute(audit_schema.head.update().values(
                size=len(leaves), last_hash=leaves[-1], frontier=acc.frontier(),
                checkpoints=number, last_checkpoint_digest=hashlib.sha256(bytes(body)).digest()))
            conn.commit()
        engine.dispose()
        inside = leadgate("audit", "verify", *cfg)
        assert inside.returncode == 0, inside.stderr  # the database alone cannot tell
        outside = leadgate("audit", "verify", "--prior-checkpoint", str(anchor), *cfg)
        assert outside.returncode == 1, outside.stdout + outside.stderr
        assert "truncated" in outside.stderr, outside.stderr
    finally:
        env.sb.stop()
