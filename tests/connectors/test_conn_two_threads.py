"""A connector used by two threads at once, as the sync job uses it: one reads pages while the
other writes back (sync/run.py). Real adapters, real SDKs, the sandbox over HTTPS."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conn_sources import hs_source, sf_source
from test_conn_sandbox_hubspot import outcomes_for as hs_outcomes
from test_conn_sandbox_hubspot import owner
from test_conn_sandbox_salesforce import outcomes_for as sf_outcomes
from test_conn_sandbox_salesforce import rep

from connectors import open_connector
from connectors.base import Outcome, WriteResult


def read_while_writing(crm: Any, outcomes: Callable[[list[Any]], list[Outcome]]
                       ) -> tuple[int, list[WriteResult]]:
    """Pull on one thread; write each page back on another as soon as it is read."""
    pages: queue.Queue[list[Any] | None] = queue.Queue()
    pulled: list[Any] = []
    results: list[WriteResult] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for page in crm.pull(None):
                pulled.extend(page.records)
                pages.put(page.records)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            pages.put(None)

    def write() -> None:
        try:
            while (records := pages.get()) is not None:
                results.extend(crm.write_back(outcomes(records)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return len(pulled), results


@pytest.mark.parametrize("faults", [None, "salesforce.*:expire_session@call=7"])
def test_salesforce_reads_while_it_writes(sandbox: Any, faults: str | None) -> None:
    sb = sandbox(leads=1500, faults=faults, latency_ms=5)
    crm = open_connector(sf_source(sb, query_page_size=200, write_batch_size=50), source="sf")
    crm.begin_run()
    pulled, results = read_while_writing(crm, lambda records: sf_outcomes(records, rep(sb)))
    assert pulled > 1000 and len(results) == pulled
    assert {r.status for r in results} == {"ok"}
    assert crm.api_calls == sb.calls("salesforce")  # every call counted once, either thread
    if faults:
        assert sb.counts()["salesforce"]["fault.expire_session"] == 1
        assert len(sb.salesforce.tokens) == 1  # logged in once after the expiry, not twice


def test_one_login_when_both_threads_find_the_session_expired(sandbox: Any) -> None:
    sb = sandbox(leads=10, latency_ms=300)  # both calls are in flight before either fails
    crm = open_connector(sf_source(sb), source="sf")
    crm.read_limits()
    sb.salesforce.expire_sessions()
    start = threading.Barrier(2)
    failed: list[BaseException] = []

    def call() -> None:
        start.wait()
        try:
            crm.read_limits()
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failed
    assert len(sb.salesforce.tokens) == 1  # one new session, used by both retries
    assert crm.api_calls == sb.calls("salesforce") == 1 + 1 + 2 + 1 + 2  # login, limits,
    # two expired calls, one login, two retries


@pytest.mark.parametrize("faults", [None, "hubspot.batch_update:expire_session@call=2"])
def test_hubspot_reads_while_it_writes(sandbox: Any, faults: str | None) -> None:
    sb = sandbox(leads=0, contacts=700, faults=faults, latency_ms=5)
    crm = open_connector(hs_source(sb, write_batch_size=50), source="hs")
    crm.begin_run()
    pulled, results = read_while_writing(crm, lambda records: hs_outcomes(records, owner(sb)))
    assert pulled > 400 and len(results) == pulled
    assert {r.status for r in results} == {"ok"}
    assert crm.api_calls == sb.calls("hubspot")
