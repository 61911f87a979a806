"""The ledger holds the rules each decision was made under: a `policy_loaded` entry the first
time a policy digest is used, before any decision made with it, carrying the policy as
validated (without notify targets, officers' contact details and the policy's tests), so a
regulator can rebuild the rule set from the ledger alone. Real sync subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from audit.canonical import normalise
from routing_core.policy import canonical_digest, load_policy
from tests.integration.synctools import (
    leadgate,
    ledger_entries,
    return_to_intake,
    start_env,
    sync_run,
)


def test_each_policy_digest_is_recorded_once_before_its_decisions(tmp_path: Path) -> None:
    notify = [{"kind": "webhook", "url": "https://hooks.example.com/T000/B000/s3cr3tpath"}]
    env = start_env(tmp_path, leads=60, notify=notify)
    try:
        policy_dir = tmp_path / "policy"
        first = load_policy(policy_dir)
        for source in ("salesforce", "hubspot", "salesforce"):  # the same policy three times
            assert sync_run(env, source).returncode == 0
        engine = env.engine()
        entries = ledger_entries(engine)
        loaded = [e for e in entries if e["kind"] == "policy_loaded"]
        assert len(loaded) == 1, [e["payload"]["policy"] for e in loaded]
        entry = loaded[0]
        assert entry["subject"] == f"policy:{first.id}"
        body = entry["payload"]
        assert body["policy"] == first.reference()
        # what decides is there as validated; what must not be kept in clear is a digest
        # (floats as the ledger's canonical JSON writes them: as strings of their repr)
        as_stored = normalise({k: v for k, v in first.raw.items() if k not in ("review", "tests")})
        assert body["content"] == as_stored[0]
        assert body["withheld"] == {"review": canonical_digest(first.raw["review"]),
                                    "tests": canonical_digest(first.raw["tests"])}
        assert body["review"]["officers"] == [o["id"] for o in first.raw["review"]["officers"]]
        text = json.dumps(entry)
        assert "s3cr3tpath" not in text and "@example.com" not in text
        decisions = [e for e in entries if e["kind"] == "decision"]
        assert decisions and all(d["payload"]["policy"]["digest"] == first.digest
                                 for d in decisions)
        assert entry["chain"]["seq"] < min(d["chain"]["seq"] for d in decisions)

        # A new version of the rules: recorded before the first decision made under it.
        head = policy_dir / "00-policy.yaml"
        head.write_text(head.read_text().replace(f'version: "{first.version}"',
                                                 'version: "2026.12.1"', 1))
        second = load_policy(policy_dir)
        assert second.digest != first.digest, "the test did not change the policy"
        return_to_intake(env, "salesforce", set(range(10)))
        assert sync_run(env, "salesforce").returncode == 0
        entries = ledger_entries(engine)
        engine.dispose()
        loaded = [e for e in entries if e["kind"] == "policy_loaded"]
        assert [e["payload"]["policy"]["digest"] for e in loaded] == [first.digest,
                                                                       second.digest]
        later = [e for e in entries if e["kind"] == "decision"
                 and e["payload"]["policy"]["digest"] == second.digest]
        assert later and loaded[1]["chain"]["seq"] < min(d["chain"]["seq"] for d in later)
        # A dry run records nothing, and the chain verifies with the new entries in it.
        before = len(entries)
        dry = leadgate("sync", "run", "--source", "hubspot", "--dry-run",
                       "--config", str(env.config))
        assert dry.returncode == 0, dry.stderr
        assert len(ledger_entries(env.engine())) == before
        verified = leadgate("audit", "verify", "--config", str(env.config))
        assert verified.returncode == 0 and "2 policy_loaded" in verified.stdout, verified.stdout
    finally:
        env.sb.stop()
