"""One sync run of one source, in DESIGN.md's order:

lease -> finish earlier decisions (crash rule) -> re-evaluate transient refusals -> pull pages ->
normalise + decide + write ahead (one transaction) -> write back -> record outcomes -> advance the
cursor -> watch cooling-off windows (report violations) -> notify -> checkpoint the ledger.

Memory is bounded by one page: records stream from the connector page by page, and each page is
decided, written ahead, written back and recorded before the next is read.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from ulid import ULID

from audit.db import database_failures, in_lists
from audit.errors import DatabaseFailed, KeyRotated
from audit.ledger import Ledger
from connectors.base import BudgetExhausted, Connector, WriteResult
from connectors.base import Cursor as PullCursor
from connectors.calls import CallFailed
from connectors.writeback import GONE as GONE_MESSAGE
from routing_core.errors import LeadgateError
from sync import (
    crashpoints,
    cursor,
    decide_ahead,
    notify,
    policy_record,
    sealed,
    violations,
    writeback,
)
from sync.decide_ahead import DecideAhead
from sync.lease import DEFAULT_TTL, Lease, default_holder
from sync.planner_stats import PlannerStatistics
from sync.rotation_db import DbRotationState
from sync.state import (
    CHANGED,
    CHANGED_PREFIX,
    ERROR,
    PENDING,
    dumps,
    loads,
    sync_decisions,
    sync_review_queue,
    sync_runs,
    utcnow,
)
from sync.summary import RunSummary
from sync.writeahead import (
    OPEN_STATUSES,
    Candidate,
    Decider,
    ToWrite,
    WriteAheadResult,
    write_ahead,
)

log = logging.getLogger("leadgate.sync")  # ids and counts only: never a name or an email
RETRY_CHUNK = 500
KEEP_IDS = 1000  # ids kept in memory for the digest/summary: memory must not grow with leads
REEVALUATE_CHUNK = 200
# Pages in a row the helper decided in vain (another worker of the source moved the rotation
# first) before it is stopped for the rest of the run.
GIVE_UP_AFTER = 3
PREFETCH_MARGIN = 4  # API calls kept per write-back group before the next page is read early

Progress = Callable[[RunSummary], None]


@dataclass
class RunOptions:
    dry_run: bool = False
    limit: int | None = None
    shard: tuple[int, int] | None = None  # (index, count): this worker's share of record ids
    lease_ttl: float = DEFAULT_TTL
    notify: bool = True
    checkpoint: bool = True
    decide_ahead: bool = True  # decide pulled pages in a second process where that helps


def lease_name(source: str, shard: tuple[int, int] | None) -> str:
    return source if shard is None else f"{source}#{shard[0]}/{shard[1]}"


def in_shard(record_id: str, shard: tuple[int, int] | None) -> bool:
    return shard is None or zlib.crc32(record_id.encode()) % shard[1] == shard[0]


class SyncJob:
    def __init__(self, *, source: str, crm: str, engine: sa.Engine, ledger: Ledger,
                 connector: Connector, decider: Decider, policy: Any,
                 options: RunOptions | None = None, progress: Progress | None = None,
                 checkpoint: Callable[[], int | None] | None = None) -> None:
        self.source = source
        self.crm = crm
        self.engine = engine
        self.ledger = ledger
        self.connector = connector
        self.decider = decider
        self.policy = policy
        self.options = options or RunOptions()
        self.progress = progress
        self.checkpoint = checkpoint
        self.run_id = str(ULID())
        self.name = lease_name(source, self.options.shard)
        self.summary = RunSummary(source=source, run_id=self.run_id,
                                  dry_run=self.options.dry_run)
        self._new_refusals: list[dict[str, Any]] = []
        self._violations: list[dict[str, Any]] = []  # reported this run (the digest's ids)
        self._queue_mark = 0  # the last review item made before this run (see run)
        self.stop_requested: str | None = None  # why the run is to stop early (request_stop)
        self._pages = 0  # pages written back and recorded (the log's page numbers)
        self.outbox: Path | None = None
        self._working = False
        self._lease: Lease | None = None  # held from acquire to release (none in a dry run)
        self._database_failed = False  # a failed run's cause (see _part_way)
        self._again_in_row = 0  # see GIVE_UP_AFTER
        self.write_chunk = 200  # outcomes per write_back call (build_job: connector.write_group)
        self.statistics = PlannerStatistics(engine)

    # -- the run --------------------------------------------------------------------------
    def request_stop(self, why: str) -> None:
        """Stop at the next page boundary (a scheduler's SIGTERM, a Ctrl-C): no further page
        is decided; the pages already written ahead are written back and recorded, the cursor
        moves past them, the digest and checkpoint go out and the lease is released. The next
        run goes on from there. A CRM call failing meanwhile is not retried (its write-back is
        recorded as failed, for the next run). Safe to call from a signal handler."""
        self.stop_requested = why
        self.connector.stop()

    def run(self) -> RunSummary:
        with database_failures(self.engine):  # one line (exit 2) for a database gone at start
            return self._run()

    def _run(self) -> RunSummary:
        started = time.monotonic()
        calls_before = self.connector.api_calls
        if self.options.dry_run:
            self.summary.status = "dry_run"
            self._part_way(self._work)  # a CRM that does not answer: "failed", as a run would
            self.summary.api_calls = self.connector.api_calls - calls_before
            self.summary.seconds = time.monotonic() - started
            return self.summary
        lease = Lease(self.engine, self.name, default_holder(self.run_id), self.run_id,
                      self.options.lease_ttl)
        held = lease.acquire()
        if held is not None:
            log.info("%s: another run holds the lease (%s); nothing to do", self.name,
                     held.holder)
            self.summary.status = "lease_held"
            self.summary.lease_held_by = held.holder
            return self.summary
        log.info("%s: run %s started%s", self.name, self.run_id,
                 f" (took over the lease of run {lease.taken_over})" if lease.taken_over else "")
        lease.start_heartbeat()
        self._lease = lease
        status = "failed"
        try:
            self._record_start(lease)
            policy_record.record_policy(self.engine, self.ledger, self.policy,
                                        run_id=self.run_id)
            if self._part_way(self._work):
                if self.stop_requested:
                    self.summary.status = "interrupted"
                    self.summary.error = (f"stopped on {self.stop_requested}; what was in "
                                          "flight is written back and recorded")
                else:
                    self.summary.status = "partial" if self.summary.write_errors else "done"
            elif self.stop_requested:  # a CRM call given up on because the run is stopping
                self.summary.status = "interrupted"
            if not self._database_failed and not lease.lost:  # the run that holds it will
                self._part_way(self._digest_and_checkpoint)
            status = self.summary.status
        finally:
            self.summary.api_calls = self.connector.api_calls - calls_before
            self.summary.seconds = time.monotonic() - started
            self._record_end(lease, status)
        return self.summary

    def _hold(self, conn: sa.Connection) -> None:
        """Fence what `conn` commits with the lease (LeaseLost when another run took it)."""
        if self._lease is not None:
            self._lease.hold(conn)

    def _part_way(self, step: Callable[[], None]) -> bool:
        """Run a step of a started run; False when it stopped part-way. An error then (the CRM
        down, the API budget spent, the database gone) fails the run, not the process:
        everything decided so far is written ahead, and the next run finishes it with the
        same decisions. Before any work the error is raised (cannot start: exit 2), unless
        it is the CRM not answering after every retry or the API budget spent: a person can
        do nothing about those, and the next run may well get through (exit 1). A CRM refusal
        met later (a mapped field the CRM does not have) ends the run with exit 2 too."""
        try:
            with database_failures(self.engine):
                step()
            return True
        except LeadgateError as exc:
            if not self._working and not _crm_unavailable(exc):
                raise  # could not start (configuration, credentials): exit 2
            self.summary.status = "failed"
            self.summary.needs_a_person |= _refused_for_good(exc)
            earlier = self.summary.error
            self.summary.error = f"{earlier}; then {exc}" if earlier else str(exc)
            self._database_failed = isinstance(exc, DatabaseFailed)
            return False

    def _digest_and_checkpoint(self) -> None:
        # The checkpoint first, so that the digest carries it: a signed tree head kept outside
        # the database (a mailbox, a webhook's store, the log of --json lines), against which a
        # later deletion from the ledger shows (`audit verify --prior-checkpoint`).
        unsigned: Exception | None = None
        if self.options.checkpoint and self.checkpoint is not None:
            try:
                signed = self.checkpoint()
                self.summary.checkpoint = int(signed["checkpoint"]["size"])
                self.summary.signed_checkpoint = signed
            except KeyRotated as exc:
                # `audit rotate-key` ran while this run worked. Its work is in the ledger; the
                # next run, given the new key, signs a checkpoint that covers it.
                self.summary.checkpoint_left = str(exc)
                log.warning("%s: run %s: the signing key was rotated during the run; its "
                            "checkpoint is left to the next run", self.name, self.run_id)
            except Exception as exc:  # noqa: BLE001 - raised once compliance has its digest
                unsigned = exc
        if self.options.notify:
            self._notify()
        if unsigned is not None:
            raise unsigned

    def _record_start(self, lease: Lease) -> None:
        with self.engine.begin() as conn:
            # Review items up to here were made by earlier runs (one run per source or shard
            # at a time): those no digest reached are carried into this run's (_notify).
            self._queue_mark = int(conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(sync_review_queue.c.id), 0))).scalar_one())
            if lease.taken_over:
                conn.execute(sa.update(sync_runs).where(sync_runs.c.run_id == lease.taken_over,
                                                        sync_runs.c.status == "running")
                             .values(status="died", finished_at=utcnow()))
            conn.execute(sa.insert(sync_runs).values(
                run_id=self.run_id, source=self.name, holder=lease.holder,
                started_at=utcnow(), status="running"))

    def _record_end(self, lease: Lease, status: str) -> None:
        lease.stop_heartbeat()
        try:
            with database_failures(self.engine):
                with self.engine.begin() as conn:
                    if not lease.release(conn) and status not in ("failed", "interrupted"):
                        # taken over while this run worked: it did not finish the source's work
                        status = self.summary.status = "failed"
                        self.summary.error = str(lease.lost_error())
                    conn.execute(sa.update(sync_runs).where(sync_runs.c.run_id == self.run_id)
                                 .values(finished_at=utcnow(), status=status,
                                         summary=dumps(self.summary.to_json())))
        except DatabaseFailed:
            # The database is still gone: the run stays "running" in `sync status` until the
            # next run takes its lease over (at once on this host, else when it expires).
            log.warning("%s: run %s: the database failed; its end is not recorded and its "
                        "lease expires in %.0f s", self.name, self.run_id, lease.ttl)
        s = self.summary
        log.info("%s: run %s %s in %.1f s: pulled %d, assigned %d, refused %d, written %d, "
                 "write errors %d, conflicts %d, %d API calls", self.name, self.run_id,
                 status, s.seconds, s.pulled, s.assigned, s.refused, s.written,
                 s.write_errors, s.conflicts, s.api_calls)

    def _work(self) -> None:
        with few_collections():
            self._steps()

    def _steps(self) -> None:
        self.connector.begin_run()
        self._working = True
        steps = (self._reevaluate, self._pull, self._watch)
        for step in steps if self.options.dry_run else (
                self._finish_earlier, self._reevaluate, self._pull, self._decide_changed,
                self._watch):
            if self.stop_requested:
                return
            step()

    # -- 1. the crash rule: decisions with no recorded write-back outcome -------------------
    def _finish_earlier(self) -> None:
        last_id = 0
        while not self.stop_requested:  # in chunks: a large backlog is never all in memory
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(sync_decisions.c.record_id, sync_decisions.c.decision_id,
                              sync_decisions.c.outcome, sync_decisions.c.reason,
                              sync_decisions.c.team_id, sync_decisions.c.writeback,
                              sync_decisions.c.id)
                    .where(sync_decisions.c.source == self.source,
                           sync_decisions.c.writeback_status.in_((PENDING, ERROR)),
                           sync_decisions.c.run_id != self.run_id,
                           sync_decisions.c.id > last_id)
                    .order_by(sync_decisions.c.id).limit(RETRY_CHUNK)).all()
            if not rows:
                return
            last_id = rows[-1].id
            self._write_back([_again(r) for r in rows
                              if in_shard(r.record_id, self.options.shard)])

    # -- records edited between leadgate's read and its write ---------------------------------
    def _decide_changed(self) -> None:
        """Decisions not written because the record was edited in the CRM after it was read
        (a person correcting a name or a country, an enrichment tool): read each record again
        and decide it anew while it is still at intake as it was read (the same owner, no
        leadgate stamp). One a person has taken since is theirs (`conflict`); one deleted
        since is `gone`. Whatever the pull's cursor did meanwhile, no such lead is left."""
        d = sync_decisions.c
        later = sync_decisions.alias("later")
        with self.engine.connect() as conn:
            rows = [r for r in conn.execute(
                sa.select(d.record_id, d.decision_id, d.episode, d.outcome, d.reason,
                          d.team_id, d.writeback)
                .where(d.source == self.source, d.writeback_status == CHANGED,
                       ~sa.exists().where(later.c.source == d.source,
                                          later.c.record_id == d.record_id,
                                          later.c.episode == sa.literal(CHANGED_PREFIX)
                                          + d.decision_id))
                .order_by(d.id)).all() if in_shard(r.record_id, self.options.shard)]
            # The leadgate stamp the record had when first read (a record changed twice
            # was decided in episode "changed:<first decision>"): it must have it still.
            stamped = {r.decision_id: _first_episode(conn, r.episode) for r in rows}
        for start in range(0, len(rows), RETRY_CHUNK):
            if self.stop_requested:
                return
            chunk = rows[start:start + RETRY_CHUNK]
            found = {r.record_id: r for r in self.connector.read([r.record_id for r in chunk])}
            again: list[Candidate] = []
            closed: list[tuple[ToWrite, WriteResult]] = []
            for row in chunk:
                record, stale = found.get(row.record_id), _again(row)
                item = stale.writeback
                if record is None:
                    closed.append((stale, WriteResult(row.record_id, "gone", GONE_MESSAGE)))
                elif record.owner_at_read != item.get("expected_owner") \
                        or (record.episode or "") != stamped[row.decision_id]:
                    closed.append((stale, WriteResult(
                        row.record_id, "conflict", "changed in the CRM after leadgate read it, "
                        "then taken from intake (a new owner or decision); not decided again")))
                else:
                    again.append(Candidate(row.record_id, record.episode or "", "intake",
                                           record.lead_input, list(record.problems or []),
                                           record.owner_at_read,
                                           modified_at_read=record.modstamp))
            if closed:
                self._record([c[0] for c in closed], [c[1] for c in closed])
            if again:
                self._decide_and_write(again)

    # -- 2. transient refusals, re-evaluated until an officer acts -------------------------
    def _reevaluate(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sync_review_queue).where(
                    sync_review_queue.c.source == self.source,
                    sync_review_queue.c.transient.is_(True),
                    sync_review_queue.c.status.in_(OPEN_STATUSES))
                .order_by(sync_review_queue.c.id)).all()
            cands = []
            for row in rows:
                if not in_shard(row.record_id, self.options.shard):
                    continue
                lead_input = sealed.unseal(conn, f"{self.source}:{row.record_id}",
                                           row.lead_input)
                if lead_input is None:
                    continue  # erased subject or nothing kept: stays with the officer
                cands.append(Candidate(row.record_id, row.decision_id, "reevaluation",
                                       lead_input, review_id=row.id,
                                       previous_reason=row.reason))
        for start in range(0, len(cands), REEVALUATE_CHUNK):
            if self.stop_requested:
                return
            self._decide_and_write(self._as_the_crm_holds_them(
                cands[start:start + REEVALUATE_CHUNK]))

    def _as_the_crm_holds_them(self, cands: Sequence[Candidate]) -> list[Candidate]:
        """Transient refusals as the CRM holds their records now: one edited while it waited
        (a new name, a new country) is re-evaluated on what it is, not on the copy read when
        it was refused (that copy only says the lead may still be re-evaluated: an erased
        subject's is unreadable). A record that no longer carries the refusal's stamp (an
        officer acted, it went back to intake, its write is still to be retried) or that is
        gone from the CRM is left as it is."""
        found = {r.record_id: r for r in self.connector.read([c.record_id for c in cands])}
        return [replace(cand, lead_input=record.lead_input, problems=list(record.problems or []))
                for cand in cands
                if (record := found.get(cand.record_id)) is not None
                and record.episode == cand.episode]

    # -- 3. pull, page by page ---------------------------------------------------------------
    def _pull(self) -> None:
        """Pages flow through three lanes. This thread normalises, decides and writes ahead page
        k, then records page k-1's write-back outcomes; meanwhile one CRM thread reads the pages
        after k, and another sends the write-backs of pages k-1 and k, in that order. The
        connector is thus used by at most two threads at once, one reading and one writing
        (connectors/README.md); the cooling-off watch runs after both have stopped. A page is
        sent only after its write-ahead committed, and the cursor advances past it only after
        its outcomes, and those of every page before it, are recorded. With a helper deciding
        pages ahead, reads run two pages ahead, so that each page reaches the helper well
        before this thread needs its answer."""
        with self.engine.connect() as conn:
            stored = cursor.load(conn, self.name)
        start = PullCursor.loads(stored) if isinstance(stored, str) else None
        pages: Iterator[Any] = iter(self.connector.pull(start))
        helper = self._start_helper()
        depth = 1 if helper is None else 2  # pages read ahead of the one being decided
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadgate-crm-read")
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadgate-crm-write")
        readings: deque[Future[Any]] = deque([reader.submit(self._read, pages, helper)])
        sendings: deque[_Sending] = deque()  # in page order; recorded in that order
        broken = False  # a page's outcomes could not be recorded: the cursor stays before it

        def finish_next() -> None:
            nonlocal broken
            sending = sendings.popleft()
            try:
                self._finish(sending, advance=not broken)
            except BaseException:
                broken = True
                raise

        try:
            while readings and not self.stop_requested:  # stopping: no further page decided
                page, ticket = readings.popleft().result()
                crashpoints.reached("crm")
                if page is None or self.stop_requested:  # (asked to stop during the read)
                    break
                records, whole_page = self._take(page.records)
                if records is None:
                    break
                while whole_page and len(readings) < depth and self._may_read_ahead(
                        len(records) * (1 + len(readings)), sendings):
                    readings.append(reader.submit(self._read, pages, helper))
                result = self._decide(_intake(records), helper, ticket)
                if self.options.dry_run:
                    self._would_write(result)
                else:
                    sendings.append(_Sending(writer.submit(self._send_page, result.to_write),
                                             page.cursor if whole_page else None,
                                             len(result.to_write)))
                while len(sendings) > 1:  # page k-1 is recorded while page k is being sent
                    finish_next()
                if not whole_page:
                    break
                if not readings:  # not read ahead (the budget is nearly spent): in turn
                    while sendings:
                        finish_next()
                    readings.append(reader.submit(self._read, pages, helper))
            while sendings:
                finish_next()
        finally:
            try:
                # Stopped part-way: record what the CRM already answered, if we can (a run that
                # cannot leaves those decisions pending; the next run re-sends them).
                while sendings:
                    with contextlib.suppress(Exception):
                        finish_next()
            finally:
                reader.shutdown(wait=True, cancel_futures=True)  # no CRM call left running
                writer.shutdown(wait=True, cancel_futures=True)
                if helper is not None:
                    helper.close()

    def _start_helper(self) -> DecideAhead | None:
        """A process deciding pages ahead (sync/decide_ahead.py), where it can help."""
        if self.options.dry_run or not self.options.decide_ahead or not decide_ahead.usable():
            return None
        day = self.decider.clock().astimezone(self.policy.tz).date()
        with self.engine.connect() as conn:
            start = DbRotationState(conn, read_only=True).snapshot(frozenset({day}))
        return DecideAhead(self.decider, self.run_id, start)

    def _read(self, pages: Iterator[Any], helper: DecideAhead | None) -> tuple[Any, int | None]:
        """The next page (None at the end), handed to the helper as soon as it is read (on the
        CRM reading thread), with its ticket there."""
        page = next(pages, None)
        if page is None or helper is None:
            return page, None
        cands = _intake(r for r in page.records if in_shard(r.record_id, self.options.shard))
        return page, helper.submit(cands, self.decider.clock())

    def _take(self, pulled: Sequence[Any]) -> tuple[list[Any] | None, bool]:
        """The page's records of this shard within --limit, and whether that is all of them
        (None when the limit is already reached)."""
        records = [r for r in pulled if in_shard(r.record_id, self.options.shard)]
        whole_page = True
        limit = self.options.limit
        if limit is not None:
            room = limit - self.summary.pulled
            if room <= 0:
                self.summary.limit_reached = True
                return None, False
            if len(records) > room:
                records, whole_page = records[:room], False
                self.summary.limit_reached = True
        self.summary.pulled += len(records)
        return records, whole_page

    def _may_read_ahead(self, n_records: int, sendings: Sequence[_Sending]) -> bool:
        """Whether reading the next page early cannot take API calls that the write-backs
        still to be sent (`n_records`: this page's and those of pages already read ahead; and
        those in flight) need: with a budget nearly spent, pages are read only after the
        write-backs before them."""
        if n_records == 0 and not sendings:
            return True
        gate = getattr(self.connector, "gate", None)
        remaining = getattr(gate, "remaining", None)
        if not callable(remaining):
            return False
        pending = n_records + sum(s.count for s in sendings)
        batches = -(-pending // max(1, self.write_chunk))
        return int(remaining()) >= PREFETCH_MARGIN * batches + PREFETCH_MARGIN

    def _decide(self, cands: Sequence[Candidate], helper: DecideAhead | None = None,
                ticket: int | None = None) -> WriteAheadResult:
        """Decide and write ahead (with the helper's answer for `ticket` where it applies);
        count what is new in the summary."""
        if not cands:
            return WriteAheadResult()
        if helper is None or ticket is None or helper.broken:
            result = write_ahead(self.engine, self.ledger, self.decider, cands,
                                 run_id=self.run_id, dry_run=self.options.dry_run,
                                 fence=self._hold)
        else:
            result = write_ahead(self.engine, self.ledger, self.decider, cands,
                                 run_id=self.run_id, ahead=helper.take(ticket), helped=True,
                                 fence=self._hold)
            if result.rotation_after is None:
                self.summary.pages_decided_ahead += 1
                self._again_in_row = 0
            else:  # decided here: the helper replays the pages after it from what committed
                self.summary.pages_decided_again += 1
                self._again_in_row += 1
                if self._again_in_row >= GIVE_UP_AFTER:  # another worker moves the rotation
                    helper.close()
                else:
                    helper.rebase(ticket, result.rotation_after)
        self.summary.already_done += result.already_done
        self.summary.still_refused += result.still_refused
        by_id = {c.record_id: c for c in cands}
        decided_so_far = self.summary.decided
        for w in result.to_write:
            if w.retry:
                continue
            self.summary.decided += 1
            if by_id[w.record_id].cause == "reevaluation":
                self.summary.reevaluated += 1
            if w.outcome == "assigned":
                self.summary.assigned_by_team[w.team_id or "?"] += 1
            else:
                self.summary.refused_by_reason[w.reason or "?"] += 1
                if len(self._new_refusals) < KEEP_IDS:  # the digest lists the first ones
                    self._new_refusals.append({"record_id": w.record_id, "reason": w.reason,
                                               "decision_id": w.decision_id})
        if not self.options.dry_run:
            self.statistics.added(self.summary.decided - decided_so_far)
        return result

    def _decide_and_write(self, cands: Sequence[Candidate]) -> None:
        """Decide, write ahead and write back in this thread (re-evaluations)."""
        result = self._decide(cands)
        if self.options.dry_run:
            self._would_write(result)
        else:
            self._write_back(result.to_write)
        self._report()

    def _would_write(self, result: WriteAheadResult) -> None:
        room = max(0, 10 * KEEP_IDS - len(self.summary.would_write))
        self.summary.would_write.extend(w.writeback for w in result.to_write[:room])
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.summary)

    def _write_back(self, items: Sequence[ToWrite]) -> None:
        for chunk, results in self._send_chunks(items):
            self._record(chunk, results)

    def _send_chunks(self, items: Sequence[ToWrite]
                     ) -> Iterator[tuple[Sequence[ToWrite], list[Any]]]:
        """One CRM batch at a time, each with its results. In this thread each is recorded
        before the next is sent; the CRM writing thread hands a page's results back at once. A crash
        loses at most the outcomes not yet recorded: the next run re-sends those decisions."""
        size = self.write_chunk
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            yield chunk, writeback.send(self.connector, chunk)

    def _send_page(self, items: Sequence[ToWrite]) -> list[tuple[Sequence[ToWrite], list[Any]]]:
        return list(self._send_chunks(items))

    def _record(self, items: Sequence[ToWrite], results: Sequence[Any]) -> None:
        if not items:
            return
        rec = writeback.record(self.engine, self.ledger, self.source, self.crm, self.run_id,
                               items, results)
        self.summary.written += rec.ok
        self.summary.write_errors += rec.errors
        self.summary.conflicts += rec.conflicts
        self.summary.gone += rec.gone
        self.summary.changed += rec.changed
        self.summary.retried += rec.retried
        self.summary.failed.extend(rec.failed[:max(0, KEEP_IDS - len(self.summary.failed))])
        if rec.failed and log.isEnabledFor(logging.DEBUG):
            log.debug("%s: write-back failed for %s (retried next run)", self.name,
                      ", ".join(str(f["record_id"]) for f in rec.failed[:100]))

    def _finish(self, sending: _Sending, advance: bool = True) -> None:
        """Wait for a page's write-back, record its outcomes, then advance the cursor (unless
        `advance` is false: the outcomes of a page before it were not recorded). Called once
        per page, in page order (`_pull`'s finish_next)."""
        s = self.summary
        before = (s.written, s.write_errors, s.conflicts)
        for chunk, results in sending.future.result():
            self._record(chunk, results)
        self._pages += 1
        moved = advance and sending.cursor is not None
        log.info("%s: page %d: %d sent, written %d, write errors %d, conflicts %d%s", self.name,
                 self._pages, sending.count, s.written - before[0], s.write_errors - before[1],
                 s.conflicts - before[2], "" if moved else "; the cursor stays before it")
        if moved:
            # Everything on this page is decided and its outcome recorded: only now advance,
            # and only while the lease is ours (a run that took it over may be further on).
            with self.engine.begin() as conn:
                self._hold(conn)
                cursor.save(conn, self.name, self.source, sending.cursor.dumps(), self.run_id)
        self._report()

    # -- 4. cooling-off violations ---------------------------------------------------------
    def _watch(self) -> None:
        """Records moved into their cooling-off window's blocked stage too early (see
        sync/violations.py): one watch query, made here in the job's thread once the pull's
        CRM threads have been shut down, so no other connector call is in flight. A dry run
        reports what it would flag and records nothing."""
        stages = violations.blocked_stages(self.policy)
        if not stages:
            return
        now = self.decider.clock()
        watched = [w for w in self.connector.cooling_off_watch(now, stages)
                   if in_shard(w.record_id, self.options.shard)]
        with self.engine.connect() as conn:
            found = violations.find(conn, self.source, watched, now)
        if self.options.dry_run:
            self.summary.would_flag = [v.digest() for v in found[:KEEP_IDS]]
            return
        new = violations.record(self.engine, self.ledger, self.source, self.run_id, found, now)
        self.summary.violations += len(new)
        self._violations.extend(v.digest() for v in new[:max(0, KEEP_IDS - len(
            self._violations))])
        self._report()

    # -- 5. notify -------------------------------------------------------------------------
    def _notify(self) -> None:
        """One digest of this run's refusals, violations and failed writes, and of the open
        review items of earlier runs that no digest reached (a run killed before its digest,
        a target that was down): every open item is notified once all targets took it."""
        if not notify.targets(self.policy):
            return
        unnotified, earlier = self._unnotified()
        if not (self._new_refusals or self.summary.failed or self._violations or earlier.total):
            return
        body = notify.digest(self.source, self.run_id, self._new_refusals, self.summary.failed,
                             refused_by_reason=dict(self.summary.refused_by_reason),
                             write_failures=self.summary.write_errors,
                             violations=self._violations,
                             violations_total=self.summary.violations, earlier=earlier,
                             checkpoint=self.summary.signed_checkpoint)
        sent, problems = notify.send(self.policy, body, outbox=self.outbox)
        self.summary.notified, self.summary.notify_errors = sent, problems
        if sent and not problems:  # every target took it
            self.summary.notified_earlier = earlier.total
            with self.engine.begin() as conn:
                for chunk in in_lists(conn, unnotified):
                    conn.execute(sa.update(sync_review_queue)
                                 .where(sync_review_queue.c.id.in_(chunk))
                                 .values(notified=True))

    def _unnotified(self) -> tuple[array[int], notify.Earlier]:
        """The ids of this source's (shard's) open review items no digest has reached, and
        those of them made before this run (counted by reason; the first KEEP_IDS listed).
        Streamed: a backfill's refusals are not held in memory, only their ids."""
        q = sync_review_queue.c
        ids: array[int] = array("q")
        earlier = notify.Earlier()
        with self.engine.connect() as conn:
            rows = conn.execution_options(yield_per=2_000).execute(
                sa.select(q.id, q.record_id, q.reason, q.decision_id)
                .where(q.source == self.source, q.status.in_(OPEN_STATUSES),
                       q.notified.is_(False)))
            for row in rows:
                if not in_shard(row.record_id, self.options.shard):
                    continue
                ids.append(row.id)
                if row.id <= self._queue_mark:
                    earlier.add(row.record_id, row.reason, row.decision_id, keep=KEEP_IDS)
        return ids, earlier


def _again(row: Any) -> ToWrite:
    """A stored decision's write-back, to be sent or recorded again with the same decision."""
    return ToWrite(row.record_id, row.decision_id, row.outcome, row.reason, row.team_id,
                   loads(row.writeback), retry=True)


def _first_episode(conn: sa.Connection, episode: str) -> str:
    """The intake episode a chain of decisions on a changed record began in."""
    while episode.startswith(CHANGED_PREFIX):
        episode = conn.execute(sa.select(sync_decisions.c.episode).where(
            sync_decisions.c.decision_id == episode[len(CHANGED_PREFIX):])).scalar_one()
    return episode


def _intake(records: Iterable[Any]) -> list[Candidate]:
    return [Candidate(r.record_id, r.episode or "", "intake", r.lead_input,
                      list(r.problems or []), r.owner_at_read, modified_at_read=r.modstamp)
            for r in records]


@dataclass
class _Sending:
    """A page's write-back on the CRM writing thread: its (chunk, results) pairs to come, how
    many records it sends, and the cursor to store once they are recorded (None: do not
    advance)."""

    future: Future[Any]
    cursor: Any
    count: int


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """A run allocates millions of short-lived objects (records, decisions, their JSON) and
    frees nearly all of them by reference counting, yet with the default thresholds the cyclic
    collector runs every 700 allocations and now and then walks everything alive (the policy,
    the modules, the page in flight): about a quarter of the run's CPU. Freeze what exists at
    the start and collect a young generation of 50,000 instead; the old settings come back at
    the end."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _refused_for_good(exc: LeadgateError) -> bool:
    """The CRM refused a call as sent (a 4xx: a field or object it does not have, access
    denied): every later run would meet the same refusal until a person acts."""
    return isinstance(exc, CallFailed) and not exc.retryable


def _crm_unavailable(exc: LeadgateError) -> bool:
    """The CRM did not answer after every retry, or the run's API budget is spent."""
    return isinstance(exc, BudgetExhausted) or (isinstance(exc, CallFailed) and exc.retryable)


