"""The rules in force, in the ledger: a `policy_loaded` entry each time a new policy digest
is first used.

Every decision names its policy by id, version and digest; this entry holds what that digest
stood for, so that a regulator can rebuild the rule set from the ledger alone instead of
trusting that the firm's copy of the files is the one that decided. It keeps the policy as
validated (`Policy.raw`, what the digest is taken over), except what is not about routing and
must not be kept for good in clear: the notify targets (a webhook's address is often its
secret), the officers' names and emails (their ids stay: they are who may act), and the
policy's own tests (sample leads). Those parts are kept as digests.

The entry is filed under the subject `policy:<id>`, so the latest one is found by the ledger's
subject index; one is written per digest, not per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit.db import write_transaction
from audit.ledger import EntryIn, Ledger, read_head, read_payloads
from routing_core.policy import canonical_digest

KIND = "policy_loaded"


def subject(policy: Any) -> str:
    return f"policy:{policy.id}"


def payload(policy: Any) -> dict[str, Any]:
    raw = dict(policy.raw)
    review = dict(raw.pop("review", {}) or {})
    tests = raw.pop("tests", [])
    return {
        "policy": policy.reference(),
        "files": [Path(f).name for f in policy.files],
        "content": raw,
        "review": {"queue": review.get("queue"),
                   "officers": [o.get("id") for o in review.get("officers") or []],
                   "four_eyes_for_overrides": review.get("four_eyes_for_overrides")},
        "withheld": {"review": canonical_digest(review), "tests": canonical_digest(tests)},
    }


def recorded_digest(conn: sa.Connection, policy: Any) -> str | None:
    """The digest of the latest `policy_loaded` entry of this policy id, if any."""
    latest = next(read_payloads(conn, KIND, subject(policy)), None)
    return None if latest is None else str((latest.get("policy") or {}).get("digest"))


def record_policy(engine: sa.Engine, ledger: Ledger, policy: Any, *, run_id: str) -> int | None:
    """Append the policy's `policy_loaded` entry unless its digest is already the latest one
    recorded; the entry's sequence number, or None."""
    with write_transaction(engine) as conn:
        read_head(conn, for_update=True)  # one writer at a time decides whether it is new
        if recorded_digest(conn, policy) == policy.digest:
            return None
        body = {**payload(policy), "run_id": run_id}
        [appended] = ledger.append(conn, [EntryIn(KIND, subject(policy), body, None)])
        return appended.seq
