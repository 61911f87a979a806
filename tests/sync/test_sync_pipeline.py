"""The pull pipeline: pages decided on the job's thread while one CRM thread reads ahead and
another writes back. The connector is the real Salesforce connector against the sandbox over
HTTPS; a thin wrapper only watches which thread calls it (and, in one test, makes one write
fail)."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.base import Outcome, Page, WriteResult
from sync import cursor
from sync.job import build_job
from tests.integration.synctools import check_invariants, start_env, sync_run


class Watched:
    """Forwards to a real connector; records the calling thread of every pull page and
    write-back, and counts calls that overlap where they must not: two reads, two writes, or
    the cooling-off watch with anything."""

    def __init__(self, inner: Any, *, fail_write: int | None = None,
                 fail_read: int | None = None) -> None:
        self.inner = inner
        self.lanes = {"read": threading.Lock(), "write": threading.Lock()}
        self.threads: dict[str, set[str]] = {"read": set(), "write": set(), "watch": set()}
        self.events: list[tuple[str, Any]] = []  # ("page", cursor) / ("write", record ids)
        self.overlaps = 0
        self.both = 0  # calls made while a call of the other lane was in flight
        self.fail_write = fail_write
        self.fail_read = fail_read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def _call(self, *lanes: str) -> Iterator[None]:
        for lane in lanes:
            if not self.lanes[lane].acquire(blocking=False):
                self.overlaps += 1
                self.lanes[lane].acquire()
        if len(lanes) == 1 and any(lock.locked() for name, lock in self.lanes.items()
                                   if name not in lanes):
            self.both += 1
        try:
            yield
        finally:
            for lane in lanes:
                self.lanes[lane].release()

    def pull(self, start: Any) -> Iterator[Page]:
        pages = iter(self.inner.pull(start))
        while True:
            with self._call("read"):
                self.threads["read"].add(threading.current_thread().name)
                reads = sum(1 for kind, _ in self.events if kind == "page")
                if self.fail_read is not None and reads + 1 == self.fail_read:
                    raise RuntimeError("the CRM went away here")
                page = next(pages, None)
            if page is None:
                return
            self.events.append(("page", page.cursor))
            yield page

    def cooling_off_watch(self, now: Any, stages: Any) -> list[Any]:
        with self._call("read", "write"):
            self.threads["watch"].add(threading.current_thread().name)
            self.events.append(("watch", list(stages)))
            return list(self.inner.cooling_off_watch(now, stages))

    def write_back(self, outcomes: Sequence[Outcome]) -> list[WriteResult]:
        with self._call("write"):
            self.threads["write"].add(threading.current_thread().name)
            writes = sum(1 for kind, _ in self.events if kind == "write")
            if self.fail_write is not None and writes + 1 == self.fail_write:
                raise RuntimeError("the process died here")
            self.events.append(("write", [o.record_id for o in outcomes]))
            return list(self.inner.write_back(outcomes))


def _small_pages(config: Path) -> None:
    data = yaml.safe_load(config.read_text())
    data["sources"]["salesforce"].update(query_page_size=200, write_batch_size=5)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def _run(config: Path, fail_write: int | None = None,
         fail_read: int | None = None) -> tuple[Watched, Any, str | None]:
    job, ctx = build_job(config, "salesforce", notify=False)
    watched = Watched(job.connector, fail_write=fail_write, fail_read=fail_read)
    job.connector = watched  # type: ignore[assignment]
    try:
        try:
            summary = job.run()
        except RuntimeError:
            summary = None
        with ctx.engine.connect() as conn:
            stored = cursor.load(conn, "salesforce")
        return watched, summary, stored
    finally:
        watched.inner.close()
        ctx.close()


def test_one_thread_reads_another_writes_and_every_lead_is_finished(tmp_path: Path) -> None:
    env = start_env(tmp_path, leads=1400, contacts=0)
    try:
        _small_pages(env.config)
        thresholds = gc.get_threshold()
        watched, summary, stored = _run(env.config)
        # The run collects garbage less often while it works, and puts the settings back.
        assert gc.get_threshold() == thresholds and gc.get_freeze_count() == 0
        pages = [c for kind, c in watched.events if kind == "page"]
        assert len(pages) >= 5  # enough pages for reads and writes to overlap
        # Reads on one thread, write-backs on another, never two of a kind at once; and they
        # did run side by side (the connector is safe for one reader and one writer).
        assert watched.overlaps == 0
        assert watched.threads["read"] == {"leadgate-crm-read_0"}
        assert watched.threads["write"] == {"leadgate-crm-write_0"}
        assert watched.both > 0
        assert summary.written == summary.decided == len(env.intake["salesforce"])
        assert stored == pages[-1].dumps()
        # Reads ran ahead of the writes: some page was read before the page before it was
        # written back.
        order = [kind for kind, _ in watched.events]
        assert "page" in order[order.index("write"):]
        # The cooling-off watch is made once, last, on the job's thread, when both CRM
        # threads have finished (no call in flight: overlaps is 0 above).
        assert order.count("watch") == 1 and order[-1] == "watch"
        assert watched.threads["watch"] == {threading.current_thread().name}
        assert summary.violations == 0
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()


@pytest.mark.parametrize("fail_write", [1, 5, 10])
def test_a_failed_write_back_leaves_the_cursor_behind_it_and_the_next_run_finishes(
        tmp_path: Path, fail_write: int) -> None:
    env = start_env(tmp_path, leads=1400, contacts=0)
    try:
        _small_pages(env.config)
        watched, summary, stored = _run(env.config, fail_write=fail_write)
        assert summary is None  # the run stopped with the error
        # The cursor is at the last page all of whose records were written back and
        # recorded: four write groups of 50 per page of 200 (Composite calls of 5 collections
        # of 5 records, after a re-read of the same 50).
        pages = [c for kind, c in watched.events if kind == "page"]
        recorded_pages = (fail_write - 1) // 4
        assert stored == (pages[recorded_pages - 1].dumps() if recorded_pages else None)

        done = sync_run(env, "salesforce")
        assert done.returncode == 0, done.stderr[-2000:]
        check_invariants(env, "salesforce")  # no second decision, every write recorded
    finally:
        env.sb.stop()


def test_a_failed_read_leaves_the_cursor_after_every_page_recorded(tmp_path: Path) -> None:
    """The CRM goes away while page 5 is read: pages 1-4 were decided and sent, and the run
    records the last one's outcomes on its way out, so the cursor is after page 4."""
    env = start_env(tmp_path, leads=1400, contacts=0)
    try:
        _small_pages(env.config)
        watched, summary, stored = _run(env.config, fail_read=5)
        assert summary is None  # the run stopped with the error
        pages = [c for kind, c in watched.events if kind == "page"]
        assert len(pages) == 4
        assert stored == pages[3].dumps()
        done = sync_run(env, "salesforce")
        assert done.returncode == 0, done.stderr[-2000:]
        check_invariants(env, "salesforce")
    finally:
        env.sb.stop()
