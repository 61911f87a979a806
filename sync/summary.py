"""The run summary: counts a person (or a scheduler, with --json) reads at the end of a run.

Ids and counts only: no names, emails or phone numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

EXIT_DONE = 0
EXIT_WRITE_FAILED = 1
EXIT_CANNOT_START = 2
EXIT_LEASE_HELD = 3


@dataclass
class RunSummary:
    source: str
    run_id: str
    dry_run: bool = False
    status: str = "done"  # done | partial (write-backs to retry) | lease_held | dry_run
    lease_held_by: str | None = None
    strict_lease: bool = False  # --strict-lease: a lease held by another run exits 3, not 0
    error: str | None = None  # why a run stopped part-way (status "failed")
    # It stopped on a refusal no later run gets past (a field the CRM does not have, access
    # denied): exit 2, as for a run that could not start, so that a scheduler alerts a person.
    needs_a_person: bool = False
    limit_reached: bool = False  # --limit stopped the pull: more intake may be waiting
    pulled: int = 0
    decided: int = 0
    assigned_by_team: Counter[str] = field(default_factory=Counter)
    refused_by_reason: Counter[str] = field(default_factory=Counter)
    already_done: int = 0
    reevaluated: int = 0
    still_refused: int = 0
    retried: int = 0
    written: int = 0
    write_errors: int = 0
    conflicts: int = 0
    gone: int = 0  # records deleted, merged or converted in the CRM before their write-back: not retried
    changed: int = 0  # records edited in the CRM between read and write: not written, decided again
    violations: int = 0  # cooling-off violations reported by this run (sync/violations.py)
    api_calls: int = 0
    seconds: float = 0.0
    # Pages decided by the helper process and committed as it decided them, and pages it had
    # decided that were decided again here instead (sync/decide_ahead.py).
    pages_decided_ahead: int = 0
    pages_decided_again: int = 0
    notified: list[str] = field(default_factory=list)
    notified_earlier: int = 0  # open review items of earlier runs first notified in this digest
    notify_errors: list[str] = field(default_factory=list)
    checkpoint: int | None = None  # the entries the run's signed checkpoint covers
    # That checkpoint as `audit verify --prior-checkpoint` reads it (saved from the log of
    # --json lines or the digest, it shows any later deletion from the ledger).
    signed_checkpoint: dict[str, Any] | None = None
    checkpoint_left: str | None = None  # why this run left its checkpoint to the next one
    failed: list[dict[str, Any]] = field(default_factory=list)
    would_write: list[dict[str, Any]] = field(default_factory=list)  # dry run only
    would_flag: list[dict[str, Any]] = field(default_factory=list)  # dry run only: violations

    @property
    def assigned(self) -> int:
        return sum(self.assigned_by_team.values())

    @property
    def refused(self) -> int:
        return sum(self.refused_by_reason.values())

    @property
    def leads_per_second(self) -> float:
        return round(self.decided / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.status == "lease_held":
            return EXIT_LEASE_HELD if self.strict_lease else EXIT_DONE
        if self.status in ("failed", "interrupted"):
            return EXIT_CANNOT_START if self.needs_a_person else EXIT_WRITE_FAILED
        return EXIT_WRITE_FAILED if self.write_errors else EXIT_DONE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["assigned_by_team"] = dict(sorted(self.assigned_by_team.items()))
        data["refused_by_reason"] = dict(sorted(self.refused_by_reason.items()))
        data.update(assigned=self.assigned, refused=self.refused,
                    leads_per_second=self.leads_per_second, exit_code=self.exit_code,
                    seconds=round(self.seconds, 3))
        if not self.dry_run:
            data.pop("would_write")
            data.pop("would_flag")
        return data

    def render(self) -> str:
        if self.status == "lease_held":
            return (f"{self.source}: another run holds the lease ({self.lease_held_by}); "
                    "nothing to do")
        head = "dry run (nothing written)" if self.dry_run else f"run {self.run_id}"
        lines = [f"{self.source}: {head}, {self.seconds:.1f}s, "
                 f"{self.leads_per_second} leads/s, {self.api_calls} API calls"]
        if self.error:
            lines.append(f"  stopped, and every run will until a person acts: {self.error}"
                         if self.needs_a_person else
                         f"  stopped part-way (the next run resumes): {self.error}")
        lines.append(f"  pulled {self.pulled}, decided {self.decided}: assigned {self.assigned}, "
                     f"refused {self.refused}"
                     + (" (stopped at --limit: more may be waiting for the next run)"
                        if self.limit_reached else ""))
        for team, n in sorted(self.assigned_by_team.items()):
            lines.append(f"    assigned  {team:<28} {n}")
        for reason, n in sorted(self.refused_by_reason.items()):
            lines.append(f"    refused   {reason:<28} {n}")
        if self.reevaluated or self.still_refused:
            lines.append(f"  re-evaluated transient refusals: {self.reevaluated} changed, "
                         f"{self.still_refused} still refused")
        if self.already_done:
            lines.append(f"  already decided (skipped): {self.already_done}")
        if not self.dry_run:
            lines.append(f"  written {self.written}, write errors {self.write_errors} "
                         f"(retried next run), conflicts {self.conflicts}, "
                         f"retries of earlier decisions {self.retried}")
            for item in self.failed[:10]:
                lines.append(f"    failed {item['record_id']}: {item['message']}")
            if self.gone:
                lines.append(f"  gone from the CRM before their write-back: {self.gone} "
                             "(deleted, merged or converted; recorded, not retried)")
            if self.changed:
                lines.append(f"  changed in the CRM after they were read: {self.changed} "
                             "(not written; read again and decided anew)")
            if self.violations:
                lines.append(f"  cooling-off violations reported to the review queue: "
                             f"{self.violations}")
            if self.notified:
                lines.append(f"  digest sent to {', '.join(self.notified)}"
                             + (f" (with {self.notified_earlier} earlier review items no "
                                "digest had reached)" if self.notified_earlier else ""))
            for problem in self.notify_errors:
                lines.append(f"  digest not sent: {problem}")
            if self.notify_errors:
                lines.append("    (its review items go out with the next run's digest)")
            if self.checkpoint is not None:
                lines.append(f"  ledger checkpoint at entry {self.checkpoint}")
            if self.checkpoint_left:
                lines.append(f"  ledger checkpoint left to the next run: {self.checkpoint_left}")
        else:
            lines.append(f"  would write {len(self.would_write)} records")
            if self.would_flag:
                lines.append(f"  would report {len(self.would_flag)} cooling-off violations")
                for item in self.would_flag[:10]:
                    lines.append(f"    {item['record_id']} at {item['stage']} before "
                                 f"{item['not_before']} ({item['rule']})")
        return "\n".join(lines)
