"""Deciding pulled pages ahead, in a second process, while this one writes the pages before.

Deciding a lead (parse, screen, gates, rules, licences, rotation, conduct, the decision's JSON
and its canonical ledger bytes) is pure computation. In one process it competes with the CRM
threads and the database writes for Python's one interpreter lock, so on a machine with a second
core the sync job hands each pulled page to one helper process as soon as the page is read; the
helper decides it while this process writes ahead, sends and records the pages before it.

The helper decides from a copy of the rotation state, which it carries from page to page as this
process would. What it returns is not trusted blindly: `write_ahead` commits a page decided
ahead only if, inside the write-ahead transaction, the database holds exactly the rotation state
the helper started from and none of the page's leads was decided before (`Ahead.applies`);
otherwise the page is decided again in this process and the helper is given the state as
committed. So the helper only saves time: what lands is what deciding here would have landed.

The helper is a fork of this process: it holds no lease, uses no database connection or CRM
session, and dies with this process (PR_SET_PDEATHSIG), so a killed run leaves nothing behind.
Linux only; elsewhere, and with less than two cores' worth of CPU (affinity or container
quota), pages are decided in this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sync.rotation_db import RotationSnapshot, SnapshotRotation
from sync.writeahead import Ahead, Candidate, Decider, plan_batch

ANSWER_TIMEOUT = 600.0  # seconds to wait for a page (then it is decided here)
REPLAY_PAGES = 4  # pages the helper keeps to replay after a rebase (at most 2 are in flight)
_PR_SET_PDEATHSIG = 1


def usable() -> bool:
    """Whether a helper process can help here: Linux, and two cores this process may use (the
    CPUs it may run on, and its container's CPU quota, if one is set)."""
    return sys.platform == "linux" and min(len(os.sched_getaffinity(0)), _cpu_quota()) >= 2


def _cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """CPUs' worth of time the cgroup allows (inf when unlimited or unknown): cgroup v2
    `cpu.max` ("quota period" or "max period"), else v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`
    (quota -1 when unlimited)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return math.inf if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1 = cgroup / "cpu"
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        return math.inf if quota_us < 0 else quota_us / int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return math.inf


@dataclass
class _Page:
    """A page handed over: its candidates as plain tuples of their fields (a third cheaper to
    pickle than the dataclasses, on the CRM reading thread)."""

    ticket: int
    fields: list[tuple[Any, ...]]
    at: datetime

    @classmethod
    def of(cls, ticket: int, candidates: Sequence[Candidate], at: datetime) -> _Page:
        return cls(ticket, [tuple(vars(c).values()) for c in candidates], at)

    def candidates(self) -> list[Candidate]:
        return [Candidate(*values) for values in self.fields]


@dataclass
class _Rebase:
    """The state committed after page `after`, decided in the parent: the helper replays the
    pages it was handed after that one from it, so the next page starts where the parent's
    database will be."""

    after: int
    state: RotationSnapshot


class DecideAhead:
    """One helper process and the pages handed to it, answered in order (see module).

    Two threads of this process talk to the helper, so that neither the CRM reading thread nor
    the job's thread ever waits on a pipe (which holds far less than a page): one sends what is
    handed over (pages from the reading thread, rebases from the job's thread) in the order it
    was handed over, one reads the answers as soon as they come. So the helper is never stuck
    sending an answer, and the reading thread goes on to its next call while a page is sent."""

    def __init__(self, decider: Decider, run_id: str, start: RotationSnapshot) -> None:
        context = multiprocessing.get_context("fork")
        requests_in, requests = context.Pipe(duplex=False)
        answers, answers_out = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_serve, name="leadgate-decide-ahead", daemon=True,
            args=(decider, run_id, start, requests_in, answers_out, requests, answers,
                  os.getpid()))
        self._process.start()
        requests_in.close()
        answers_out.close()
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._answers: queue.Queue[Any] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._send_all, args=(requests,), daemon=True,
                             name="leadgate-decide-ahead-pages"),
            threading.Thread(target=_receive, args=(answers, self._answers), daemon=True,
                             name="leadgate-decide-ahead-answers")]
        for thread in self._threads:
            thread.start()
        self._sent = 0
        self._taken = 0
        self.broken = False

    @property
    def pid(self) -> int:
        return int(self._process.pid or 0)

    def submit(self, candidates: Sequence[Candidate], at: datetime) -> int | None:
        """Hand a page over; its ticket (None: the helper is gone, decide it here)."""
        if self.broken:
            return None
        self._sent += 1
        self._outbox.put(_Page.of(self._sent, candidates, at))
        return self._sent

    def rebase(self, after: int, state: RotationSnapshot) -> None:
        """Page `after` was decided here and committed `state` (see _Rebase)."""
        self._outbox.put(_Rebase(after, state))

    def take(self, ticket: int) -> Ahead | None:
        """The answer for `ticket` (answers come in the order pages were handed over); None
        when there is none to use (the helper failed on it or is gone)."""
        while self._taken < ticket and not self.broken:
            try:
                answer = self._answers.get(timeout=ANSWER_TIMEOUT)
            except queue.Empty:
                answer = _GONE
            if answer is _GONE:
                self.broken = True
                return None
            self._taken += 1
            if self._taken == ticket:
                return answer if isinstance(answer, Ahead) else None
        return None

    def close(self) -> None:
        """Stop the helper at once (it holds nothing to finish) and reap it, so that its CPU
        time counts as this process's children's."""
        self.broken = True
        self._process.kill()  # also ends a send blocked on it, and the answers' EOF
        self._process.join()
        self._outbox.put(_GONE)
        for thread in self._threads:
            thread.join()

    def _send_all(self, requests: Connection) -> None:
        try:
            while (message := self._outbox.get()) is not _GONE:
                if not self.broken:
                    requests.send(message)
        except Exception:  # noqa: BLE001 - gone, or a page it cannot take: decide here
            self.broken = True
            self._answers.put(_GONE)  # wakes a take() waiting for an answer that won't come
        finally:
            requests.close()


_GONE = object()


def _receive(answers: Connection, into: queue.Queue[Any]) -> None:
    """Move what arrives on `answers` into `into`, then _GONE once nothing more can arrive."""
    try:
        while True:
            into.put(answers.recv())
    except Exception:  # noqa: BLE001 - closed, or unreadable: either way nothing more comes
        into.put(_GONE)
    finally:
        answers.close()


def _serve(decider: Decider, run_id: str, state: RotationSnapshot, requests: Connection,
           answers: Connection, parent_requests: Connection, parent_answers: Connection,
           parent: int) -> None:
    """The helper: decide each page handed over and answer an Ahead (or why not, as text)."""
    _die_with(parent)
    parent_requests.close()
    parent_answers.close()
    # Read what is handed over as soon as it comes, so that the CRM thread handing over the
    # next page never waits for this one to be decided.
    inbox: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=_receive, args=(requests, inbox), daemon=True).start()
    history: deque[_Page] = deque(maxlen=REPLAY_PAGES)
    while True:
        message = inbox.get()
        if message is _GONE:  # the parent closed its end
            return
        if isinstance(message, _Rebase):
            state = message.state
            for page in history:
                if page.ticket > message.after:
                    with contextlib.suppress(Exception):  # it failed the first time too
                        state = _decide(decider, run_id, page, state).final
            continue
        history.append(message)
        answer: Any
        try:
            answer = _decide(decider, run_id, message, state)
            state = answer.final
        except Exception as exc:  # noqa: BLE001 - the page is then decided (and fails) there
            answer = f"{type(exc).__name__}: {exc}"
        answers.send(answer)


def _decide(decider: Decider, run_id: str, page: _Page, state: RotationSnapshot) -> Ahead:
    rotation = SnapshotRotation(state)
    candidates = page.candidates()
    plan = plan_batch(decider, candidates, rotation, {}, page.at, run_id, encode=True)
    base = RotationSnapshot.of(state.cursors, state.slots, state.counts,
                               state.days | rotation.days)
    return Ahead([(c.record_id, c.episode) for c in candidates], base, rotation.snapshot(),
                 plan)


def _die_with(parent: int) -> None:
    """Be killed when the parent dies (even by SIGKILL), and leave interrupts to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
