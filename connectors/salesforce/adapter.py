"""The Salesforce connector: pull intake leads by SystemModstamp, write outcomes in collections.

Write-back batches through Composite (API 43.0 and later): up to 5 sObject Collections of 200 per
call, and the conflict check's owner re-reads as up to 5 `Id IN (400 ids)` queries per call.
The Composite resource counts as one API call however many subrequests it carries; below 43.0
each collection and each query is its own call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors import writeback
from connectors.base import (
    BudgetExhausted,
    CheckReport,
    Cursor,
    InstallReport,
    Outcome,
    Page,
    PulledRecord,
    Watched,
    WriteResult,
)
from connectors.calls import ApiGate, CallFailed, Failure, chunked
from connectors.config import SalesforceSource
from connectors.mapping import (
    RecordMapper,
    crm_fields,
    crm_values_for,
    lead_value,
    parse_crm_time,
    stage_mapping,
)
from connectors.salesforce import soql
from connectors.salesforce.errors import RETRYABLE_RECORD_CODES, classify
from connectors.salesforce.session import login, make_session
from routing_core.errors import LeadgateError

#: Composite carries sObject Collections from this API version on, and at most this many
#: collections or queries per call (REST API Developer Guide, "Composite")
COMPOSITE_SINCE = (43, 0)
COMPOSITE_HEAVY = 5


def _id15(record_id: str | None) -> str | None:
    """Salesforce ids compare on their case-sensitive 15-character form (18 adds a checksum)."""
    return record_id[:15] if record_id else record_id


def api_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


NO_ASSIGNMENT_RULES = {"Sforce-Auto-Assign": "FALSE"}


@dataclass(frozen=True)
class Sub:
    """One REST request that may travel inside a Composite call (path under vXX.X/)."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] | None = None


class SalesforceConnector:
    kind = "salesforce"

    def __init__(self, config: SalesforceSource, *, source: str,
                 sleep: Callable[[float], None] | None = None,
                 session_factory: Callable[[], requests.Session] | None = None) -> None:
        self.config = config
        self.source = source
        self.where = f"sources.{source}"
        self.map_record = RecordMapper(config.mapping, source=source,
                                       mapping_key=f"{self.where}.mapping")
        self.session = (session_factory or (lambda: make_session(config.connection.ca_file)))()
        self.session.hooks["response"].append(self._on_response)
        # The sync job reads pages on one thread while it writes back on another: what a call
        # leaves behind for its own error handling is kept per thread, and logging in anew
        # happens once for both (see _relogin).
        self._local = threading.local()
        self._login_lock = threading.RLock()  # re-entered if logging in itself needs a login
        self.gate = ApiGate(source=source, limits=config.limits, retry=config.retry,
                            classify=self._classify, reauth=self._relogin, sleep=sleep)
        self._sf: Salesforce | None = None
        self._run_ready = False
        self.intake_queue_id: str | None = None
        self.review_queue_id: str | None = None
        self.active_users: set[str] | None = None

    # ------------------------------------------------------------ plumbing

    @property
    def api_calls(self) -> int:
        return self.gate.calls

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.headers = dict(response.headers)
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.gate.note_org_usage(usage.used, usage.total)

    def _classify(self, exc: BaseException) -> Failure:
        return classify(exc, getattr(self._local, "headers", {}))

    @property
    def _ids_per_query(self) -> int:
        """Ids in one `Id IN (...)` query: two collections' worth (400 at most), so that the
        query's URI stays under Salesforce's 16,384 characters."""
        return 2 * self.config.write_batch_size

    @property
    def timeout(self) -> float:
        return self.config.retry.timeout_seconds

    def _connect(self) -> Salesforce:
        conn = self.config.connection
        found = self.gate.call("log in", lambda: login(
            self.session, conn, where=f"{self.where}.connection", timeout=self.timeout))
        # Plain dicts, not the SDK's default OrderedDict: json's C scanner builds those itself,
        # where an object hook is a Python call per object (2.5x slower on a page of leads).
        return Salesforce(instance_url=found.instance_url, session_id=found.access_token,
                          session=self.session, version=conn.api_version, parse_float=Decimal,
                          object_pairs_hook=None)

    def _relogin(self) -> None:
        """Log in anew, unless another thread already did since this thread's failed call
        (both saw the session expire: one new session is enough)."""
        with self._login_lock:
            if self._sf is None or self._sf is getattr(self._local, "sf", None):
                self._sf = None
                self._sf = self._connect()

    @property
    def sf(self) -> Salesforce:
        with self._login_lock:
            if self._sf is None:
                self._sf = self._connect()
            self._local.sf = self._sf
            return self._sf

    def query(self, what: str, text: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={self.config.query_page_size}"}
        return self.gate.call(what, lambda: self.sf.query(
            text, headers=headers, timeout=self.timeout, **kwargs))

    def query_more(self, what: str, url: str) -> dict[str, Any]:
        return self.gate.call(what, lambda: self.sf.query_more(
            url, identifier_is_url=True, timeout=self.timeout))

    def query_all(self, what: str, text: str) -> Iterator[dict[str, Any]]:
        yield from self._follow(what, self.query(what, text))

    def _follow(self, what: str, result: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The records of a query result and of the batches after it (query_more)."""
        while True:
            yield from result["records"]
            if result.get("done", True):
                return
            result = self.query_more(what, result["nextRecordsUrl"])

    def rest(self, what: str, path: str, method: str = "GET",
             headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        # Sforce-Auto-Assign: without it, REST API runs the org's active lead assignment rules
        # on every update, which could move a lead leadgate just gave a rep, or the compliance
        # queue, elsewhere (REST API Developer Guide, "Assignment Rule Header": TRUE if absent).
        sent = {"Sforce-Call-Options": "client=leadgate", "Sforce-Auto-Assign": "FALSE",
                **(headers or {})}
        return self.gate.call(what, lambda: self.sf.restful(
            path, method=method, headers=sent, timeout=self.timeout, **kwargs))

    @property
    def write_group(self) -> int:
        """Records re-read in one call (5 queries of 400 ids) and then written in Composite
        calls of 5 collections: 2,000 with the conflict check, 1,000 without."""
        size = self.config.write_batch_size
        per_call = COMPOSITE_HEAVY if self.composite else 1
        return (2 * size if self.config.conflict_check else size) * per_call

    @property
    def composite(self) -> bool:
        """Whether collections and queries can travel inside Composite at this API version."""
        return api_version(self.config.connection.api_version) >= COMPOSITE_SINCE

    def batch(self, what: str, subs: Sequence[Sub]) -> list[Any]:
        """Each request's answer, or the LeadgateError it failed with, in order: up to 5 per
        Composite call (allOrNone false, so a failing subrequest leaves the others), or one
        call each below API 43.0. A failed call (after the gate's retries) fails its requests."""
        out: list[Any] = []
        for chunk in chunked(list(subs), COMPOSITE_HEAVY if self.composite else 1):
            try:
                if self.composite:
                    out += self._composite(what, chunk)
                else:
                    [sub] = chunk
                    out.append(self.rest(what, sub.path, sub.method, sub.headers, json=sub.body))
            except (CallFailed, BudgetExhausted) as exc:
                out += [exc] * len(chunk)
        return out

    def _composite(self, what: str, subs: list[Sub]) -> list[Any]:
        base = f"/services/data/v{self.config.connection.api_version}/"
        # no collateSubrequests: the field only exists from API 48.0 (the default is true)
        body = {"allOrNone": False, "compositeRequest": [
            {"method": sub.method, "url": base + sub.path, "referenceId": f"r{k}",
             **({"body": sub.body} if sub.body is not None else {}),
             **({"httpHeaders": sub.headers} if sub.headers else {})}
            for k, sub in enumerate(subs)]}
        answer = self.rest(f"{what} (Composite)", "composite", "POST", json=body)
        items = answer.get("compositeResponse") if isinstance(answer, dict) else None
        by_ref = {item.get("referenceId"): item for item in items or []
                  if isinstance(item, dict)}
        if set(by_ref) != {f"r{k}" for k in range(len(subs))}:
            if items and len(items) == 1 and isinstance(items[0], dict):
                raise self._failed(what, items[0])  # the body was refused (LIMIT_EXCEEDED)
            raise CallFailed(f"{what}: the Composite answer does not list one result per "
                             "subrequest", where=self.where, retryable=True)
        return [self._answer(what, by_ref[f"r{k}"]) for k in range(len(subs))]

    def _answer(self, what: str, item: dict[str, Any]) -> Any:
        status = item.get("httpStatusCode")
        if isinstance(status, int) and 200 <= status < 300:
            return item.get("body")
        return self._failed(what, item)

    def _failed(self, what: str, item: dict[str, Any]) -> CallFailed:
        """A failed subrequest, judged as the same request made alone would be: transient ones
        are retryable by the next run, the others say what to fix."""
        status = item.get("httpStatusCode")
        status = status if isinstance(status, int) else 500
        content: Any = item.get("body")  # the error list, as a call's error body
        failure = self._classify(SalesforceError(what, status, what, content))
        retryable = failure.kind != "fatal"
        return CallFailed(f"{what}: {failure.message}", where=self.where, status=status,
                          fix=failure.fix or ("the next run retries" if retryable else None),
                          retryable=retryable)

    def stop(self) -> None:
        self.gate.stop()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------ run set-up

    def read_limits(self) -> dict[str, Any]:
        limits = self.rest("read API limits", "limits/") or {}
        daily = limits.get("DailyApiRequests") or {}
        if "Max" in daily and "Remaining" in daily:
            self.gate.note_org_usage(int(daily["Max"]) - int(daily["Remaining"]),
                                     int(daily["Max"]))
        return limits

    def find_queues(self, names: Sequence[str]) -> dict[str, str]:
        """Queue name or DeveloperName -> Group Id."""
        found: dict[str, str] = {}
        for row in self.query_all("look up queues", soql.queues_query(names)):
            found[row["DeveloperName"]] = row["Id"]
            found[row["Name"]] = row["Id"]
        return found

    def begin_run(self) -> None:
        """Read the org's limits, resolve the intake and review queues and the active users."""
        self.read_limits()
        queues = self.find_queues([self.config.intake.owner_queue, self.config.review_queue])
        self.intake_queue_id = queues.get(self.config.intake.owner_queue)
        self.review_queue_id = queues.get(self.config.review_queue)
        for label, name, value, key, fix in (
                ("intake", self.config.intake.owner_queue, self.intake_queue_id,
                 "intake.owner_queue", "correct the name of the queue new leads arrive in"),
                ("review", self.config.review_queue, self.review_queue_id, "review_queue",
                 "correct the queue name, or run `leadgate install salesforce` to create the "
                 "Compliance Review queue")):
            if value is None:
                raise LeadgateError(f"the {label} queue {name!r} is not a queue in this org",
                                    where=f"{self.where}.{key}", fix=fix)
        self.active_users = {
            _id15(row["Id"]) or "" for row in self.query_all(
                "look up active users", "SELECT Id FROM User WHERE IsActive = true")}
        self._run_ready = True

    def _ensure_run(self) -> None:
        if not self._run_ready:
            self.begin_run()

    # ------------------------------------------------------------ pull

    def _pull_fields(self) -> list[str]:
        wb = self.config.writeback
        return ["Id", "OwnerId", "SystemModstamp", wb.decision_id,
                *crm_fields(self.config.mapping)]

    def _pulled(self, row: dict[str, Any]) -> PulledRecord:
        raw, problems = self.map_record(row)
        modstamp = parse_crm_time(row["SystemModstamp"])
        raw["modstamp"] = row["SystemModstamp"]
        raw["owner"] = row.get("OwnerId")
        return PulledRecord(
            record_id=row["Id"], modstamp=modstamp,
            episode=row.get(self.config.writeback.decision_id) or "",
            owner_at_read=row.get("OwnerId"),
            lead_input=None if problems else raw, problems=problems)

    def pull(self, cursor: Cursor | None) -> Iterator[Page]:
        """Intake leads changed since `cursor`, a query batch (up to 2,000) per page."""
        self._ensure_run()
        assert self.intake_queue_id is not None
        overlap = timedelta(seconds=self.config.overlap_seconds)

        def first(after: Cursor | None, window: timedelta) -> dict[str, Any]:
            text = soql.pull_query(fields=self._pull_fields(), sobject=self.config.object,
                                   intake_queue_id=self.intake_queue_id or "",
                                   unstamped_field=self.config.intake.unstamped_field,
                                   after=after, overlap=window)
            return self.query("query intake leads", text)

        result = first(cursor, overlap)
        last = cursor
        while True:
            records = [self._pulled(row) for row in result["records"]]
            if records:
                last = Cursor(records[-1].modstamp, records[-1].record_id)
                yield Page(records, last)
            if result.get("done", True):
                return
            try:
                result = self.query_more("query more intake leads", result["nextRecordsUrl"])
            except CallFailed as exc:
                # a query locator expires when a page is held too long: start again after the
                # last record yielded (strictly, so nothing is read twice within the run)
                if "INVALID_QUERY_LOCATOR" not in exc.message:
                    raise
                result = first(last, timedelta(0))

    def read(self, record_ids: Sequence[str]) -> list[PulledRecord]:
        """These records as pull maps them: one `Id IN` query per `_ids_per_query` ids."""
        found: list[PulledRecord] = []
        for chunk in chunked(list(record_ids), self._ids_per_query):
            text = soql.by_ids_query(fields=self._pull_fields(), sobject=self.config.object,
                                     ids=chunk)
            found.extend(self._pulled(row) for row in self.query_all("read records", text))
        return found

    # ------------------------------------------------------------ cooling-off watch

    def cooling_off_watch(self, now: datetime, stages: Collection[str]) -> list[Watched]:
        """Leads whose LeadGate not_before is after `now` and whose mapped stage is one of
        `stages`: one SOQL query (batches of up to 2,000 followed with query_more)."""
        spec = stage_mapping(self.config.mapping, f"{self.where}.mapping")
        crm_stages = crm_values_for(spec, stages)
        if not crm_stages:
            return []
        wb = self.config.writeback
        text = soql.watch_query(sobject=self.config.object, stage_field=spec.field,
                                decision_field=wb.decision_id, not_before_field=wb.not_before,
                                stages=crm_stages, now=now)
        what = "query leads inside a cooling-off window"
        return [Watched(record_id=row["Id"], stage=lead_value(spec, row.get(spec.field)),
                        decision_id=row.get(wb.decision_id) or None,
                        not_before=parse_crm_time(row[wb.not_before]))
                for row in self.query_all(what, text) if row.get(wb.not_before)]

    # ------------------------------------------------------------ write-back

    def _owner_for(self, outcome: Outcome) -> tuple[str | None, str | None]:
        """(OwnerId to write, or None with the reason it cannot be written)."""
        if outcome.owner_crm_id is None or outcome.outcome == "refused":
            return self.review_queue_id, None
        if self.active_users is not None and _id15(outcome.owner_crm_id) not in self.active_users:
            return None, f"owner {outcome.owner_crm_id} is not an active Salesforce user " \
                         "(fix: correct the rep's crm.salesforce id in the policy)"
        return outcome.owner_crm_id, None

    def _record(self, outcome: Outcome, owner: str) -> dict[str, Any]:
        wb = self.config.writeback
        fields = writeback.fields(outcome)
        return {
            "attributes": {"type": self.config.object}, "id": outcome.record_id,
            "OwnerId": owner, wb.status: fields["status"], wb.decision_id: fields["decision_id"],
            wb.reason: fields["reason"], wb.policy_version: fields["policy_version"],
            wb.outreach: fields["outreach"], wb.not_before: fields["not_before"],
        }

    def _current(self, group: list[Outcome]) -> list[tuple[list[Outcome], Any]]:
        """The owners now of the group's records, one `Id IN` query per `_ids_per_query`:
        (records, their rows by 15-character id) or (records, the LeadgateError the query
        failed with)."""
        what = "re-read owners before writing"
        fields = ["Id", "OwnerId", self.config.writeback.decision_id, "SystemModstamp"]
        chunks = chunked(group, self._ids_per_query)
        headers = {"Sforce-Query-Options": f"batchSize={self.config.query_page_size}"}
        subs = [Sub("GET", "query/?" + urlencode({"q": soql.by_ids_query(
            fields=fields, sobject=self.config.object, ids=[o.record_id for o in chunk])}),
            headers=headers) for chunk in chunks]
        out: list[tuple[list[Outcome], Any]] = []
        for chunk, answer in zip(chunks, self.batch(what, subs), strict=True):
            if not isinstance(answer, LeadgateError):
                try:
                    answer = {_id15(row["Id"]) or "": row for row in self._follow(what, answer)}
                except (CallFailed, BudgetExhausted) as exc:
                    answer = exc
            out.append((chunk, answer))
        return out

    def write_back(self, outcomes: Sequence[Outcome]) -> list[WriteResult]:
        """Write outcomes in collections of up to 200 (allOrNone=false); one result per outcome.

        With conflict_check, the owners of the same records are re-read immediately before:
        one Composite call of up to 5 queries of 400 records, then the writes of those 2,000
        records in Composite calls of up to 5 collections (below API 43.0: a query per 400
        records, then a call per collection).
        """
        results: dict[str, WriteResult] = {}
        for group in chunked(list(outcomes), self.write_group):
            try:
                self._ensure_run()
                judged = self._current(group) if self.config.conflict_check else [(group, None)]
            except (CallFailed, BudgetExhausted) as exc:
                self._fail(group, exc, results)
                continue
            to_send: list[tuple[Outcome, dict[str, Any]]] = []
            for chunk, current in judged:
                if isinstance(current, LeadgateError):
                    self._fail(chunk, current, results)
                else:
                    to_send += self._judge(chunk, current, results)
            self._send(to_send, results)
        return [results[o.record_id] for o in outcomes]

    @staticmethod
    def _fail(outcomes: Sequence[Outcome], exc: LeadgateError,
              results: dict[str, WriteResult]) -> None:
        retryable = isinstance(exc, BudgetExhausted) or getattr(exc, "retryable", False)
        for outcome in outcomes:
            results.setdefault(outcome.record_id,
                               WriteResult(outcome.record_id, "error", str(exc), retryable))

    def _judge(self, group: list[Outcome], current: dict[str, dict[str, Any]] | None,
               results: dict[str, WriteResult]) -> list[tuple[Outcome, dict[str, Any]]]:
        """Records to send, after the owner check against `current` (the rows re-read, or None
        without conflict_check); the others get their result now."""
        to_send: list[tuple[Outcome, dict[str, Any]]] = []
        wb = self.config.writeback
        for outcome in group:
            owner, problem = self._owner_for(outcome)
            if problem or owner is None:
                results[outcome.record_id] = WriteResult(
                    outcome.record_id, "error", problem or "the review queue is not resolved")
                continue
            if current is not None:
                row = current.get(_id15(outcome.record_id) or "")
                verdict = writeback.judge(
                    outcome, exists=row is not None,
                    owner_now=row.get("OwnerId") if row else None,
                    decision_now=row.get(wb.decision_id) if row else None,
                    review_owner=self.review_queue_id, same=lambda a, b: _id15(a) == _id15(b),
                    modified_now=row.get("SystemModstamp") if row else None)
                if verdict is not None:
                    results[outcome.record_id] = verdict
                    continue
            to_send.append((outcome, self._record(outcome, owner)))
        return to_send

    def _send(self, to_send: list[tuple[Outcome, dict[str, Any]]],
              results: dict[str, WriteResult]) -> None:
        """Collections of up to 200 (filled: records judged already leave no holes)."""
        chunks = chunked(to_send, self.config.write_batch_size)
        subs = [Sub("PATCH", "composite/sobjects",
                    {"allOrNone": False, "records": [record for _, record in chunk]},
                    headers=NO_ASSIGNMENT_RULES)  # on the subrequest too, inside Composite
                for chunk in chunks]
        answers = self.batch("update leads (sObject Collection)", subs)
        for chunk, answer in zip(chunks, answers, strict=True):
            if not isinstance(answer, LeadgateError) and (
                    not isinstance(answer, list) or len(answer) != len(chunk)):
                answer = CallFailed("the sObject Collection answer does not list one result per "
                                    "record", where=self.where, retryable=True)
            if isinstance(answer, LeadgateError):
                self._fail([outcome for outcome, _ in chunk], answer, results)
                continue
            results.update({outcome.record_id: self._result(outcome.record_id, item)
                            for (outcome, _), item in zip(chunk, answer, strict=True)})

    @staticmethod
    def _result(record_id: str, item: dict[str, Any]) -> WriteResult:
        if item.get("success"):
            return WriteResult(record_id, "ok")
        errors = item.get("errors") or []
        codes = [str(e.get("statusCode", "")) for e in errors]
        message = "; ".join(
            f"{e.get('statusCode', '')}: {e.get('message', '')}"
            + (f" ({', '.join(e['fields'])})" if e.get("fields") else "") for e in errors
        ) or "Salesforce reported failure without a reason"
        if codes in (["ENTITY_IS_DELETED"], ["CANNOT_UPDATE_CONVERTED_LEAD"]):
            return WriteResult(record_id, "gone", writeback.GONE)
        return WriteResult(record_id, "error", message,
                           retryable=any(code in RETRYABLE_RECORD_CODES for code in codes))

    # ------------------------------------------------------------ connect / install

    def check(self) -> CheckReport:
        from connectors.salesforce.install import check

        return check(self)

    def install(self, dry_run: bool = False) -> InstallReport:
        from connectors.salesforce.install import install

        return install(self, dry_run=dry_run)

