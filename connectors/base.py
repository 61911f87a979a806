"""The one small interface every CRM adapter implements, and the values that cross it.

The sync job sees only these types: it never imports an SDK. Records come out of `pull` page by
page (memory does not grow with the backlog); outcomes go into `write_back` in any number and come
back as one `WriteResult` per record (a CRM's per-record refusal is a result, never an exception).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from routing_core.errors import LeadgateError

# gone: the record no longer exists (deleted, or merged into another): final, nothing to retry
WriteStatus = Literal["ok", "error", "conflict", "gone", "changed"]


class BudgetExhausted(LeadgateError):
    """The per-run API budget (or the org's daily reserve) is reached: stop cleanly, resume later.

    Raised by `pull` before it makes the call that would overspend; `write_back` never raises it
    but reports the records it could not write as retryable errors.
    """


@dataclass(frozen=True, order=True)
class Cursor:
    """Position in a source's change stream: everything up to (modstamp, record_id) was pulled.

    Ordered by time, then record id, so that records sharing a timestamp are never skipped.
    Stored by the sync job as the string from `dumps()` and read back with `Cursor.loads()`.
    """

    modstamp: datetime
    record_id: str = ""

    def __post_init__(self) -> None:
        if self.modstamp.tzinfo is None:
            raise ValueError("Cursor.modstamp must be timezone-aware")

    def dumps(self) -> str:
        stamp = self.modstamp.astimezone(UTC).isoformat(timespec="milliseconds")
        return f"{stamp.replace('+00:00', 'Z')}|{self.record_id}"

    @classmethod
    def loads(cls, text: str) -> Cursor:
        stamp, _, record_id = text.partition("|")
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError as exc:
            raise LeadgateError(
                f"stored cursor {text!r} is not '<ISO timestamp>|<record id>'",
                fix="reset the source's cursor with `leadgate sync reset-cursor`",
            ) from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return cls(when, record_id)


@dataclass(frozen=True)
class PulledRecord:
    """One intake record as read from the CRM.

    `lead_input` is parse_lead's raw dict (produced by the source's field mapping) or None when the
    mapping failed, in which case `problems` lists every failure (the sync job refuses the record
    with reason invalid_lead instead of dropping it).
    `episode` changes whenever the record re-enters intake after a leadgate decision: it is the
    last decision id leadgate stamped on it ("" for the first episode), so (source, record_id,
    episode) is the idempotency key of a decision.
    """

    record_id: str
    modstamp: datetime
    episode: str
    owner_at_read: str | None
    lead_input: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What to write back for one record: an assignment or a refusal to the review queue.

    `owner_crm_id` is the CRM user/owner id of the chosen rep, or None for the review queue (the
    adapter resolves the queue/owner itself). `expected_owner` must be the owner leadgate read
    (PulledRecord.owner_at_read; None = the record had no owner): if the CRM shows another owner
    now, a person changed it since and the write is a `conflict` (with conflict_check on). A
    record owned by the review queue/owner is never a conflict (review actions pass None).
    `modified_at_read` is the record's last-modified stamp leadgate decided on
    (PulledRecord.modstamp): if the CRM shows a later one now, the record was edited since
    (a new name, a new country) and the decision may not hold: the write is `changed`, not
    made, and the sync job decides the record again (None: not checked).
    """

    record_id: str
    decision_id: str
    outcome: Literal["assigned", "refused"]
    owner_crm_id: str | None
    reason: str | None
    policy_version: str
    outreach: dict[str, Any] | None = None
    not_before: datetime | None = None
    expected_owner: str | None = None
    modified_at_read: datetime | None = None


@dataclass(frozen=True)
class WriteResult:
    """One record's write-back result. `retryable` says whether trying again later may succeed."""

    record_id: str
    status: WriteStatus
    message: str = ""
    retryable: bool = False


@dataclass(frozen=True)
class Page:
    """A page of pulled records and the cursor after it (safe to store once the page is done)."""

    records: list[PulledRecord]
    cursor: Cursor


@dataclass(frozen=True)
class Watched:
    """A record leadgate routed that is still inside its cooling-off window (`cooling_off_watch`).

    `stage` is the record's stage now as the source's mapping reads it (the `stage` mapping: the
    same value the routing core compares with a rule's `blocks_stage`); `decision_id` and
    `not_before` are what leadgate last stamped on the record.
    """

    record_id: str
    stage: str | None
    decision_id: str | None
    not_before: datetime


@dataclass(frozen=True)
class CheckReport:
    """Result of `check()` (`leadgate connect`): every mismatch found, each with its fix."""

    ok: bool
    facts: list[str]
    problems: list[str]


@dataclass(frozen=True)
class InstallReport:
    """Result of `install()`: what was (or, with dry_run, would be) created and what existed."""

    created: list[str]
    existing: list[str]
    dry_run: bool

    @property
    def changed(self) -> bool:
        return bool(self.created)


@runtime_checkable
class Connector(Protocol):
    """One CRM source. Open with `connectors.open_connector(source_config)`."""

    source: str
    kind: str

    @property
    def api_calls(self) -> int:
        """HTTP calls made to the CRM since this connector was opened (retries included)."""
        ...

    @property
    def write_group(self) -> int:
        """How many outcomes one `write_back` call should carry to use the CRM's calls best
        (its batches, bundled where the API allows, and the owner re-read before them)."""
        ...

    def check(self) -> CheckReport: ...

    def install(self, dry_run: bool = False) -> InstallReport: ...

    def begin_run(self) -> None:
        """Resolve users/owners and queues once for this run (and read the org's API limits)."""
        ...

    def pull(self, cursor: Cursor | None) -> Iterator[Page]: ...

    def write_back(self, outcomes: Sequence[Outcome]) -> list[WriteResult]: ...

    def read(self, record_ids: Sequence[str]) -> list[PulledRecord]:
        """These records as `pull` maps them, whatever their owner, stage or status (an
        officer's approval works out the lead's cooling-off from it); ids not found are
        absent."""
        ...

    def cooling_off_watch(self, now: datetime, stages: Collection[str]) -> list[Watched]:
        """Records whose leadgate not_before is after `now` and whose stage (as the mapping
        reads it) is one of `stages`: one filtered query, paged. No stages: no call."""
        ...

    def stop(self) -> None:
        """The run is stopping: retry no failed call, and end any wait for a retry (the next
        run retries). Safe to call from a signal handler."""
        ...

    def close(self) -> None: ...
