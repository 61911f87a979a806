"""A misspelt field in the mapping stops the run before anything is decided, with exit 2 (a
person must act), never a run that quietly decides without the field.

HubSpot answers a property it does not have as empty: a misspelt last name read as no name
would be screened as none, and a sanctioned party sent to sales. Salesforce refuses the query
(INVALID_FIELD) on every run alike, which exit 1 ("the next run retries") would leave unseen.
Real sync subprocesses against the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.mapping import default_mapping
from sync.demo import write_sandbox_config
from sync.state import sync_decisions
from tests.integration.synctools import (
    Env,
    crm_state,
    intake_indices,
    leadgate,
    start_env,
)


def _mapping(kind: str, path: str, field: str) -> dict[str, Any]:
    mapping = {p: spec.model_dump(exclude_defaults=True) | {"field": spec.field}
               for p, spec in default_mapping(kind).items()}
    mapping[path]["field"] = field
    return mapping


def _decisions(env: Env) -> int:
    engine = env.engine()
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(sync_decisions)).scalar_one()
    engine.dispose()
    return int(count)


@pytest.mark.parametrize(("crm", "path", "wrong"), [
    ("hubspot", "last_name", "lastnme"),
    ("hubspot", "email", "emial"),
    ("salesforce", "email", "Emial"),
])
def test_a_misspelt_mapped_field_stops_the_run_with_exit_2(tmp_path: Path, crm: str, path: str,
                                                            wrong: str) -> None:
    env = start_env(tmp_path, leads=80)
    try:
        assert leadgate("db", "upgrade", "--config", str(env.config)).returncode == 0
        policy = tmp_path / "policy"
        write_sandbox_config(env.sb, tmp_path, database_url=env.db_url, policy=policy,
                             extra={crm: {"mapping": _mapping(crm, path, wrong)}})
        before = {i: crm_state(env.sb, crm, i) for i in intake_indices(env.sb, crm)}
        for dry in ((), ("--dry-run",)):
            run = leadgate("sync", "run", "--source", crm, "--json", *dry,
                           "--config", str(env.config))
            assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
            # one JSON line, for the log of runs; the error names the field and the fix
            line = json.loads(run.stdout.strip().splitlines()[-1])
            assert line["exit_code"] == 2 and wrong in line["error"], line
            assert "mapping" in line["error"], line
            assert "Traceback" not in run.stderr
        assert _decisions(env) == 0  # nothing decided
        assert {i: crm_state(env.sb, crm, i) for i in before} == before  # nothing written
        # Corrected, the same leads go through.
        write_sandbox_config(env.sb, tmp_path, database_url=env.db_url, policy=policy)
        done = leadgate("sync", "run", "--source", crm, "--json", "--config", str(env.config))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["decided"] == len(before) > 0
    finally:
        env.sb.stop()
