"""The HubSpot connector: pull intake contacts through search, write outcomes in batches of 100.

Pull pages by keyset, not by offset: every search starts at offset 0 from the last
lastmodifieddate seen (inclusive, skipping the ids already yielded at that instant). So the
10,000-result cap of search is never reached however large the backlog, and contacts that leave
intake while we page (leadgate's own write-backs) cannot shift an offset and make us skip others.
A run of more contacts than a page sharing one timestamp is read by id within that timestamp.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

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
from connectors.calls import ApiGate, CallFailed, chunked
from connectors.config import HubSpotSource
from connectors.hubspot.errors import classify, rate_headers
from connectors.mapping import (
    RecordMapper,
    crm_fields,
    crm_values_for,
    iso_z,
    lead_value,
    parse_crm_time,
    stage_mapping,
)
from routing_core.errors import LeadgateError
from routing_core.ids import ulid_ms

MODIFIED = "lastmodifieddate"
OBJECT_ID = "hs_object_id"
OWNER = "hubspot_owner_id"
CONVERTED = "recent_conversion_date"  # a form submission: HubSpot merges it by email
BATCH_READ_LIMIT = 100  # ids in one batch read
# per-record error categories a later attempt may get past
RETRYABLE_CATEGORIES = frozenset({"RATE_LIMITS", "LOCKED", "TIMEOUT", "CONFLICT"})
# a batch refused whole with one of these is split to find the records it refuses (401, 403
# and 429 are about the caller, not a record)
SPLIT_ON = frozenset({400, 404, 409, 422, 423})
MAX_SPLITS = 16  # halvings per batch: a bad record of 100 takes 7, so two are singled out
# the keys of a 207 error's context that list records: ids, or the trace ids (the record ids)
ERROR_ID_KEYS = frozenset({"ids", "objectWriteTraceId", "objectWriteTraceIds"})


def _millis(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


def _failed(record_ids: list[str], exc: CallFailed | BudgetExhausted) -> dict[str, WriteResult]:
    """The result of each of these records when the call writing them failed."""
    retryable = isinstance(exc, BudgetExhausted) or exc.retryable
    return {r: WriteResult(r, "error", str(exc), retryable) for r in record_ids}


class HubSpotConnector:
    kind = "hubspot"

    def __init__(self, config: HubSpotSource, *, source: str,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.config = config
        self.source = source
        self.where = f"sources.{source}"
        self.map_record = RecordMapper(config.mapping, source=source,
                                       mapping_key=f"{self.where}.mapping")
        self.gate = ApiGate(source=source, limits=config.limits, retry=config.retry,
                            classify=classify, reauth=self._reconnect, sleep=sleep)
        self._last_search = 0.0
        self._client: Any = None
        self._apis: dict[str, Any] = {}
        self._apis_lock = threading.Lock()  # pages are read on one thread, written on another
        self.owners: set[str] | None = None
        self._run_ready = False

    # ------------------------------------------------------------ plumbing

    @property
    def api_calls(self) -> int:
        return self.gate.calls

    @property
    def write_group(self) -> int:
        """One batch update (HubSpot has no call that bundles batches)."""
        return self.config.write_batch_size

    def api(self, name: str) -> Any:
        """One SDK API object per kind, built once (each property access of the SDK builds a
        new client with its own connection pool)."""
        with self._apis_lock:
            if name not in self._apis:
                if self._client is None:
                    self._client = self._make_client()
                crm = self._client.crm
                self._apis[name] = {
                    "search": lambda: crm.contacts.search_api,
                    "batch": lambda: crm.contacts.batch_api,
                    "owners": lambda: crm.owners.owners_api,
                    "properties": lambda: crm.properties.core_api,
                    "groups": lambda: crm.properties.groups_api,
                }[name]()
            return self._apis[name]

    def _reconnect(self) -> None:
        """Read the token again (it may have been rotated) and rebuild the SDK clients."""
        with self._apis_lock:
            self._client = None
            self._apis.clear()

    def _make_client(self) -> Any:
        import os

        from hubspot import HubSpot

        conn = self.config.connection
        token = conn.token.resolve(f"{self.where}.connection.token").get_secret_value()
        # urllib3 ignores REQUESTS_CA_BUNDLE: a private CA comes from ca_file, else the
        # environment's bundle is honoured the way requests would
        ca = conn.ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE") or None
        options: dict[str, Any] = {"access_token": token, "host": conn.base_url.rstrip("/"),
                                   "retry": False}  # retries are ours (the gate), not urllib3's
        if ca:
            options["ssl_ca_cert"] = str(ca)
        return HubSpot(**options)

    def call(self, what: str, fn: Callable[[], tuple[Any, int, Any]]) -> tuple[Any, int]:
        """Run an SDK `*_with_http_info` call through the gate; read its rate-limit headers."""
        data, status, headers = self.gate.call(what, fn)
        wait, used, total = rate_headers(headers)
        self.gate.note_org_usage(used, total)
        if wait:
            self.gate.pause(wait)
        return data, status

    @property
    def timeout(self) -> float:
        return self.config.retry.timeout_seconds

    def stop(self) -> None:
        self.gate.stop()

    def close(self) -> None:
        self._apis.clear()
        self._client = None

    # ------------------------------------------------------------ run set-up

    def list_owners(self) -> set[str]:
        owners: set[str] = set()
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "_request_timeout": self.timeout}
            if after:
                kwargs["after"] = after
            data, _ = self.call("list owners", lambda kw=kwargs: self.api(  # type: ignore[misc]
                "owners").get_page_with_http_info(**kw))
            page = data.to_dict() if data is not None else {}
            owners.update(str(o["id"]) for o in page.get("results") or [])
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return owners

    def begin_run(self) -> None:
        """Resolve the portal's owners once for this run, and check that leadgate's properties
        and the mapped ones exist."""
        self.owners = self.list_owners()
        if self.config.review_owner_id not in self.owners:
            raise LeadgateError(
                f"the review owner {self.config.review_owner_id} is not an owner in this portal",
                where=f"{self.where}.review_owner_id",
                fix="set review_owner_id to the compliance review owner's id "
                    "(Settings > Users & Teams)",
            )
        from connectors.hubspot.install import all_properties, missing_properties, unknown_mapped

        have = all_properties(self)
        missing = missing_properties(self, have)
        if missing:  # every write would be refused: say so before deciding anything
            raise LeadgateError(
                f"leadgate's contact properties are missing in this portal: {', '.join(missing)}",
                where=f"{self.where}.writeback",
                fix="run `leadgate install hubspot`, which creates only what is missing")
        unknown = unknown_mapped(self, have)
        if unknown:  # read as empty: a lead without its name would pass screening unseen
            raise LeadgateError(
                "mapped contact properties do not exist in this portal: "
                + ", ".join(f"{name} (for {path})" for path, name in unknown),
                where=f"{self.where}.mapping",
                fix="correct each property's internal name (`leadgate connect hubspot` checks "
                    "the mapping); nothing is decided until then")
        self._run_ready = True

    def _ensure_run(self) -> None:
        if not self._run_ready:
            self.begin_run()

    # ------------------------------------------------------------ pull

    def _properties(self) -> list[str]:
        return list(dict.fromkeys([OBJECT_ID, MODIFIED, OWNER, CONVERTED,
                                   self.config.intake.unstamped_property,
                                   self.config.writeback.decision_id,
                                   self.config.writeback.read_at,
                                   *crm_fields(self.config.mapping)]))

    def _intake(self) -> list[list[dict[str, Any]]]:
        """The filter groups (ORed) of intake contacts: unstamped ones at the intake stage, and
        stamped ones that have submitted a form (a returning client enquiring again: HubSpot
        merges the submission into the contact and moves no stage back; `_at_intake` keeps
        those whose submission came after leadgate read them). The submission time is not
        bounded by the cursor: a contact edited after its submission is past it by then, and
        would never be read again; lastmodifieddate bounds the search."""
        intake = self.config.intake
        return [[{"propertyName": "lifecyclestage", "operator": "EQ",
                  "value": intake.lifecyclestage},
                 {"propertyName": intake.unstamped_property, "operator": "NOT_HAS_PROPERTY"}],
                [{"propertyName": intake.unstamped_property, "operator": "HAS_PROPERTY"},
                 {"propertyName": CONVERTED, "operator": "HAS_PROPERTY"}]]

    def _at_intake(self, row: dict[str, Any]) -> bool:
        """Unstamped (the first group), or stamped and enquired again since leadgate read it to
        decide: `read_at` (HubSpot's clock, so no clock skew can make a decision look older
        than the submission it answered), else, for a stamp written without it, the time of
        its decision id. A stamp that cannot be dated takes the enquiry as new: decided again
        (and dated by that write) rather than left unrouted."""
        wb = self.config.writeback
        if not row.get(self.config.intake.unstamped_property):
            return True
        if not row.get(CONVERTED):
            return False
        enquired = parse_crm_time(row[CONVERTED])
        if row.get(wb.read_at):
            return enquired > parse_crm_time(row[wb.read_at])
        decided = ulid_ms(str(row.get(wb.decision_id) or ""))
        return decided is None or enquired.timestamp() * 1000 > decided

    def _search(self, filters: list[dict[str, Any]], sort: str,
                groups: list[list[dict[str, Any]]], *, properties: list[str] | None = None,
                what: str = "search intake contacts") -> list[dict[str, Any]]:
        """One search from offset 0: contacts matching any of `groups` and all of `filters`,
        sorted ascending by `sort`."""
        body = {
            "filterGroups": [{"filters": [*group, *filters]} for group in groups],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": properties or self._properties(),
            "limit": self.config.search_page_size,
            "after": "0",
        }
        # search answers without rate-limit headers and has its own per-second limit: pace it
        gap = 1 / self.config.search_per_second - (time.monotonic() - self._last_search)
        if gap > 0:
            self.gate.sleep(gap)
        self._last_search = time.monotonic()
        data, _ = self.call(what, lambda: self.api(
            "search").do_search_with_http_info(body, _request_timeout=self.timeout))
        return [{"id": str(r["id"]), **(r.get("properties") or {})}
                for r in (data.to_dict().get("results") or [])] if data is not None else []

    def _pulled(self, row: dict[str, Any]) -> PulledRecord:
        raw, problems = self.map_record(row)
        raw["modstamp"] = row.get(MODIFIED)
        raw["owner"] = row.get(OWNER) or None
        return PulledRecord(
            record_id=row["id"], modstamp=parse_crm_time(row[MODIFIED]),
            episode=row.get(self.config.writeback.decision_id) or "",
            owner_at_read=row.get(OWNER) or None,
            lead_input=None if problems else raw, problems=problems)

    def pull(self, cursor: Cursor | None) -> Iterator[Page]:
        """Intake contacts changed since `cursor` (inclusive of its instant), oldest first.
        Pages by every contact the search returns, yielding those `_at_intake`."""
        self._ensure_run()
        size = self.config.search_page_size
        anchor: datetime | None = None
        if cursor is not None:
            anchor = cursor.modstamp - timedelta(seconds=self.config.overlap_seconds)
        groups = self._intake()
        seen_at_anchor: set[str] = set()  # ids read whose timestamp equals `anchor`
        while True:
            filters = [] if anchor is None else [
                {"propertyName": MODIFIED, "operator": "GTE", "value": _millis(anchor)}]
            rows = self._search(filters, MODIFIED, groups)
            new = [r for r in rows if r["id"] not in seen_at_anchor]
            if not new and len(rows) == size and anchor is not None:
                # a full page of one instant already seen: read that instant by id instead
                yield from self._pull_instant(anchor, seen_at_anchor, groups)
                anchor += timedelta(milliseconds=1)
                seen_at_anchor = set()
                continue
            if new:
                yield from self._page(new)
                last = parse_crm_time(new[-1][MODIFIED])
                if last != anchor:
                    anchor, seen_at_anchor = last, set()
                seen_at_anchor.update(r["id"] for r in new if parse_crm_time(r[MODIFIED]) == last)
            if len(rows) < size:
                return

    def _page(self, rows: list[dict[str, Any]]) -> Iterator[Page]:
        records = [self._pulled(r) for r in rows if self._at_intake(r)]
        if records:
            yield Page(records, Cursor(records[-1].modstamp, records[-1].record_id))

    def _pull_instant(self, instant: datetime, seen: set[str],
                      groups: list[list[dict[str, Any]]]) -> Iterator[Page]:
        """Every intake contact modified exactly at `instant`, paged by id."""
        after_id = "0"
        while True:
            rows = self._search([
                {"propertyName": MODIFIED, "operator": "EQ", "value": _millis(instant)},
                {"propertyName": OBJECT_ID, "operator": "GT", "value": after_id}], OBJECT_ID,
                groups)
            yield from self._page([r for r in rows if r["id"] not in seen])
            if len(rows) < self.config.search_page_size:
                return
            after_id = rows[-1]["id"]

    # ------------------------------------------------------------ cooling-off watch

    def cooling_off_watch(self, now: datetime, stages: Collection[str]) -> list[Watched]:
        """Contacts whose leadgate not_before is after `now` and whose mapped stage is one of
        `stages`: searches keyset-paged by not_before as pull pages by lastmodifieddate (offset
        0 each time, ids at the last instant skipped, an instant wider than a page read by
        hs_object_id), so the 10,000-result cap is never met; paced like every search."""
        spec = stage_mapping(self.config.mapping, f"{self.where}.mapping")
        crm_stages = crm_values_for(spec, stages)
        if not crm_stages:
            return []
        nb = self.config.writeback.not_before
        decision = self.config.writeback.decision_id
        # IN on a text property matches lower-case values (CRM search guide, "Filter search
        # results"); enumeration option values are compared the same way
        base = [{"propertyName": spec.field, "operator": "IN",
                 "values": sorted({v.lower() for v in crm_stages})}]
        props = list(dict.fromkeys([OBJECT_ID, spec.field, decision, nb]))
        what = "search contacts inside a cooling-off window"

        def watched(row: dict[str, Any]) -> Watched:
            return Watched(record_id=row["id"], stage=lead_value(spec, row.get(spec.field)),
                           decision_id=row.get(decision) or None,
                           not_before=parse_crm_time(row[nb]))

        size = self.config.search_page_size
        out: list[Watched] = []
        anchor, operator = now, "GT"
        seen: set[str] = set()  # ids taken whose not_before equals `anchor`
        while True:
            rows = [r for r in self._search(
                [{"propertyName": nb, "operator": operator, "value": _millis(anchor)}], nb,
                [base], properties=props, what=what) if r.get(nb)]
            fresh = [watched(r) for r in rows if r["id"] not in seen]
            if not fresh and len(rows) == size:
                # a full page of one instant already taken: read that instant by id
                out += self._watch_instant(anchor, seen, base, props, what, watched)
                anchor, operator, seen = anchor + timedelta(milliseconds=1), "GTE", set()
                continue
            out += fresh
            if fresh:
                last = fresh[-1].not_before
                if last != anchor:
                    anchor, seen = last, set()
                operator = "GTE"
                seen.update(w.record_id for w in fresh if w.not_before == last)
            if len(rows) < size:
                return out

    def _watch_instant(self, instant: datetime, seen: set[str], base: list[dict[str, Any]],
                       props: list[str], what: str,
                       watched: Callable[[dict[str, Any]], Watched]) -> list[Watched]:
        nb = self.config.writeback.not_before
        out: list[Watched] = []
        after_id = "0"
        while True:
            rows = self._search([
                {"propertyName": nb, "operator": "EQ", "value": _millis(instant)},
                {"propertyName": OBJECT_ID, "operator": "GT", "value": after_id}], OBJECT_ID,
                [base], properties=props, what=what)
            out += [watched(r) for r in rows if r["id"] not in seen and r.get(nb)]
            if len(rows) < self.config.search_page_size:
                return out
            after_id = rows[-1]["id"]

    # ------------------------------------------------------------ write-back

    def _batch_read(self, what: str, ids: list[str], properties: list[str]
                    ) -> list[dict[str, Any]]:
        """One batch read (up to BATCH_READ_LIMIT ids): a row of `properties` and "id" per
        contact found."""
        body = {"inputs": [{"id": i} for i in ids], "properties": properties}
        data, _ = self.call(what, lambda: self.api(
            "batch").read_with_http_info(body, _request_timeout=self.timeout))
        found = data.to_dict().get("results") if data is not None else None
        if found is None:
            raise CallFailed("batch read answered without results", where=self.where,
                             retryable=True)
        return [{**(r.get("properties") or {}), "id": str(r["id"])} for r in found]

    def _current(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self._batch_read("re-read owners before writing", ids,
                                [OWNER, self.config.writeback.decision_id, MODIFIED])
        return {row["id"]: row for row in rows}

    def read(self, record_ids: Sequence[str]) -> list[PulledRecord]:
        """These contacts as pull maps them: one batch read per BATCH_READ_LIMIT ids."""
        return [self._pulled(row) for chunk in chunked(list(record_ids), BATCH_READ_LIMIT)
                for row in self._batch_read("read contacts", chunk, self._properties())]

    def _properties_for(self, outcome: Outcome, owner: str) -> dict[str, str]:
        wb = self.config.writeback
        values = writeback.fields(outcome)
        props = {OWNER: owner}
        for key in ("status", "decision_id", "reason", "policy_version", "outreach",
                    "not_before"):
            value = values[key]
            props[getattr(wb, key)] = "" if value is None else str(value)  # "" clears it
        if outcome.modified_at_read is not None:  # an approval keeps the read it answers
            props[wb.read_at] = iso_z(outcome.modified_at_read)
        return props

    def write_back(self, outcomes: Sequence[Outcome]) -> list[WriteResult]:
        """Batch updates of up to 100; 207 multi-status errors become per-record results."""
        results: dict[str, WriteResult] = {}
        for chunk in chunked(list(outcomes), self.config.write_batch_size):
            try:
                self._ensure_run()
                results.update(self._write_chunk(chunk))
            except (CallFailed, BudgetExhausted) as exc:
                for record_id, result in _failed([o.record_id for o in chunk], exc).items():
                    results.setdefault(record_id, result)
        return [results[o.record_id] for o in outcomes]

    def _owner_for(self, outcome: Outcome) -> tuple[str | None, str | None]:
        if outcome.owner_crm_id is None or outcome.outcome == "refused":
            return self.config.review_owner_id, None
        if self.owners is not None and str(outcome.owner_crm_id) not in self.owners:
            return None, (f"owner {outcome.owner_crm_id} is not a HubSpot owner in this portal "
                          "(fix: correct the rep's crm.hubspot id in the policy)")
        return str(outcome.owner_crm_id), None

    def _write_chunk(self, chunk: list[Outcome]) -> dict[str, WriteResult]:
        results: dict[str, WriteResult] = {}
        current = self._current([o.record_id for o in chunk]) if self.config.conflict_check \
            else None
        inputs: list[dict[str, Any]] = []
        for outcome in chunk:
            owner, problem = self._owner_for(outcome)
            if owner is None:
                results[outcome.record_id] = WriteResult(outcome.record_id, "error",
                                                         problem or "no owner")
                continue
            if current is not None:
                props = current.get(outcome.record_id)
                verdict = writeback.judge(
                    outcome, exists=props is not None,
                    owner_now=(props or {}).get(OWNER) or None,
                    decision_now=(props or {}).get(self.config.writeback.decision_id) or None,
                    review_owner=self.config.review_owner_id,
                    modified_now=(props or {}).get(MODIFIED))
                if verdict is not None:
                    results[outcome.record_id] = verdict
                    continue
            # a trace id per input asks HubSpot for a per-record (207) answer
            inputs.append({"id": outcome.record_id, "objectWriteTraceId": outcome.record_id,
                           "properties": self._properties_for(outcome, owner)})
        if inputs:
            results.update(self._update(inputs))
        return results

    def _update(self, inputs: list[dict[str, Any]], splits: list[int] | None = None
                ) -> dict[str, WriteResult]:
        """One batch update; a batch refused whole (a 4xx naming no record) is split in halves
        until the records it refuses stand alone, so one bad record cannot fail the other 99.
        `splits` holds the halvings this batch may still make: a refusal that is not about one
        record (every half refused alike) costs a few calls, not one per record."""
        if splits is None:
            splits = [MAX_SPLITS]
        try:
            data, status = self.call("update contacts (batch)", lambda: self.api(
                "batch").update_with_http_info({"inputs": inputs},
                                               _request_timeout=self.timeout))
        except CallFailed as exc:
            if exc.retryable or exc.status not in SPLIT_ON:
                raise
            if len(inputs) == 1 or splits[0] <= 0:
                return {i["id"]: WriteResult(i["id"], "error", str(exc),
                                             retryable=exc.status in (409, 423))
                        for i in inputs}
            splits[0] -= 1
            half = len(inputs) // 2
            results: dict[str, WriteResult] = {}
            for part in (inputs[:half], inputs[half:]):
                try:
                    results.update(self._update(part, splits))
                except (CallFailed, BudgetExhausted) as failed:  # the other half is written
                    results.update(_failed([i["id"] for i in part], failed))
            return results
        if data is None:
            raise CallFailed(f"batch update answered HTTP {status} without a readable body",
                             where=self.where, retryable=True)
        results = {}
        answer = data.to_dict()
        for item in answer.get("results") or []:
            results[str(item["id"])] = WriteResult(str(item["id"]), "ok")
        for error in answer.get("errors") or []:
            message = f"{error.get('category') or ''}: {error.get('message') or ''}".strip(": ")
            retryable = error.get("category") in RETRYABLE_CATEGORIES
            gone = error.get("category") == "OBJECT_NOT_FOUND"
            for key, ids in (error.get("context") or {}).items():
                if key not in ERROR_ID_KEYS:  # other keys name properties, not records
                    continue
                for record_id in ids or []:
                    results[str(record_id)] = (
                        WriteResult(str(record_id), "gone", writeback.GONE) if gone else
                        WriteResult(str(record_id), "error", message, retryable))
        for item in inputs:
            results.setdefault(item["id"], WriteResult(
                item["id"], "error", f"HubSpot's answer (HTTP {status}) did not mention this "
                                     "contact", retryable=True))
        return results

    # ------------------------------------------------------------ connect / install

    def check(self) -> CheckReport:
        from connectors.hubspot.install import check

        return check(self)

    def install(self, dry_run: bool = False) -> InstallReport:
        from connectors.hubspot.install import install

        return install(self, dry_run=dry_run)
