"""The sync job's screener (sync.screening_lists) on the example policy's lists: every sample lead gets its expected outcome,
and an unreadable list refuses every lead (fail closed)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from routing_core.engine import decide, refuse_invalid
from routing_core.lead import InvalidLead, parse_lead
from routing_core.policy import load_policy
from routing_core.rotation import InMemoryRotationState
from sync.context import screener_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _route(policy_dir: Path) -> dict[str, tuple[str, str | None]]:
    policy = load_policy(policy_dir)
    screener = screener_for(policy)
    rotation = InMemoryRotationState()
    out = {}
    for line in (EXAMPLES / "leads" / "sample-leads.jsonl").read_text().splitlines():
        raw = json.loads(line)
        try:
            d = decide(parse_lead(raw), policy, at=AT, rotation=rotation, screener=screener)
        except InvalidLead as exc:
            d = refuse_invalid(raw["source"], raw["id"], exc.problems, policy, at=AT)
        out[raw["id"]] = (d.outcome, d.reason)
    return out


def test_sample_leads_get_their_expected_outcomes_with_real_lists() -> None:
    expected = {e["id"]: (e["outcome"], e["reason"])
                for e in json.loads((EXAMPLES / "leads" / "expected-outcomes.json").read_text())}
    got = _route(EXAMPLES / "policy")
    assert got == expected
    assert ("refused", "sanctions_hit") in got.values() and ("refused", "pep") in got.values()


def test_an_unreadable_list_refuses_every_lead(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "policy", policy_dir)
    (policy_dir / "lists" / "peps.csv").unlink()
    got = _route(policy_dir)
    parsed = [v for v in got.values() if v[1] != "invalid_lead"
              and v[1] != "unlicensed_jurisdiction"]
    assert parsed and all(v == ("refused", "screening_unavailable") for v in parsed)
