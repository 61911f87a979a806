"""Salesforce adapter request/response mapping and error handling, against `responses` mocks.

The mocks answer in the REST API's documented shapes (REST API Developer Guide: query with
nextRecordsUrl, sObject Collections update answering 200 with per-record {id, success, errors},
errors as a JSON list of {message, errorCode}, Sforce-Limit-Info; Composite answering 200 with
compositeResponse [{body, httpHeaders, httpStatusCode, referenceId}], one per subrequest).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses

from connectors import open_connector
from connectors.base import BudgetExhausted, Cursor, Outcome
from connectors.calls import CallFailed
from connectors.config import parse_config
from connectors.salesforce import soql
from connectors.salesforce.session import PinnedCASession, make_session
from routing_core.errors import LeadgateError

LOGIN = "https://login.example.test"
ORG = "https://org.example.test"
API = f"{ORG}/services/data/v59.0"
INTAKE_Q, REVIEW_Q = "00G000000000001AAA", "00G000000000002AAA"
USERS = ["005000000000001AAA", "005000000000002AAA"]


def make_config(**overrides: Any) -> Any:
    source = {
        "kind": "salesforce",
        "connection": {"login_url": LOGIN, "auth": "password", "username": "int@example.test",
                       "client_id": "cid", "client_secret": {"env": "LG_SF_SECRET"},
                       "password": {"env": "LG_SF_PASSWORD"},
                       "security_token": {"env": "LG_SF_TOKEN"}},
        "retry": {"attempts": 4, "initial_wait": 0, "max_wait": 0},
        **overrides,
    }
    return parse_config({"sources": {"sf": source}}).sources["sf"]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_SF_SECRET", "s3cret")
    monkeypatch.setenv("LG_SF_PASSWORD", "pw")
    monkeypatch.setenv("LG_SF_TOKEN", "tok")


def lead(i: int, stamp: str = "2026-11-20T10:00:00.000+0000", **extra: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "Id": f"00Q{i:012d}AAA", "OwnerId": INTAKE_Q,
            "SystemModstamp": stamp, "LeadGate_Decision_Id__c": None, "FirstName": "Ada",
            "LastName": f"L{i}", "Country": "UK", "Customer_Type__c": "Retail Customer",
            "Product_Interest__c": "Easy Saver", **extra}


class FakeOrg:
    """Routes mocked calls: login, limits, queries (by what they select), collections, and
    Composite, whose subrequests go to the same query and collection handlers."""

    def __init__(self, rsps: responses.RequestsMock, api: str = API) -> None:
        self.queries: list[str] = []
        self.updates: list[dict[str, Any]] = []
        self.composites: list[dict[str, Any]] = []
        self.logins = 0
        self.lead_pages: list[list[dict[str, Any]]] = [[lead(1), lead(2)]]
        self.current: dict[str, dict[str, Any]] = {}
        self.update_answer: Any = None
        self.sub_answer: Any = None  # (subrequest) -> a compositeResponse item, or None
        self.more: dict[str, Any] = {}  # query_more url -> answer (re-read batches)
        self.sleeps: list[float] = []
        self.api = api
        rsps.add_callback(responses.POST, f"{LOGIN}/services/oauth2/token", self._login)
        rsps.add(responses.GET, f"{api}/limits/",
                 json={"DailyApiRequests": {"Max": 15000, "Remaining": 14000}})
        rsps.add_callback(responses.GET, f"{api}/query/", self._query)
        rsps.add_callback(responses.GET, f"{api}/query/01gMORE-2000", self._more)
        rsps.add_callback(responses.PATCH, f"{api}/composite/sobjects", self._update)
        rsps.add_callback(responses.POST, f"{api}/composite", self._composite)

    def _login(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.logins += 1
        form = parse_qs(str(request.body))
        assert form["password"] == ["pwtok"] and form["grant_type"] == ["password"]
        return 200, {}, json.dumps({"access_token": f"00D!session{self.logins}",
                                    "instance_url": ORG})

    def _query(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlparse(str(request.url)).query)["q"][0]
        self.queries.append(q)
        if "FROM Group" in q:
            records = [{"Id": INTAKE_Q, "Name": "Lead Intake", "DeveloperName": "Lead_Intake"},
                       {"Id": REVIEW_Q, "Name": "Compliance Review",
                        "DeveloperName": "Compliance_Review"}]
        elif "FROM User" in q:
            records = [{"Id": u} for u in USERS]
        elif "WHERE Id IN" in q:
            records = [row for rid, row in self.current.items() if f"'{rid}'" in q]
            for url, rest in self.more.items():  # a re-read answered in two batches
                if any(r["Id"] in q for r in rest["records"]):
                    records = [r for r in records if r not in rest["records"]]
                    return 200, {}, json.dumps({"totalSize": len(records), "done": False,
                                                "nextRecordsUrl": url, "records": records})
        else:
            pages = self.lead_pages
            body = {"totalSize": sum(map(len, pages)), "done": len(pages) == 1,
                    "records": pages[0]}
            if len(pages) > 1:
                body["nextRecordsUrl"] = "/services/data/v59.0/query/01gMORE-2000"
            return 200, {"Sforce-Limit-Info": "api-usage=1000/15000"}, json.dumps(body)
        return 200, {}, json.dumps({"totalSize": len(records), "done": True, "records": records})

    def _more(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"totalSize": 0, "done": True, "records": self.lead_pages[1]})

    def _composite(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        self.composites.append(body)
        out = []
        for sub in body["compositeRequest"]:
            item = self.sub_answer(sub) if self.sub_answer else None
            if item is None:
                fake = SimpleNamespace(url=ORG + sub["url"],
                                       body=json.dumps(sub["body"]) if "body" in sub else None)
                handler = self._update if sub["method"] == "PATCH" else self._query
                status, _, text = handler(fake)  # type: ignore[arg-type]
                item = {"body": json.loads(text), "httpHeaders": {}, "httpStatusCode": status}
            out.append({**item, "referenceId": sub["referenceId"]})
        return 200, {"Sforce-Limit-Info": "api-usage=1000/15000"}, json.dumps(
            {"compositeResponse": out})

    def _update(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        self.updates.append(body)
        if self.update_answer is not None:
            return 200, {}, json.dumps(self.update_answer(body))
        return 200, {}, json.dumps([{"id": r["id"], "success": True, "errors": []}
                                    for r in body["records"]])


@pytest.fixture
def org() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeOrg(rsps)
        fake.rsps = rsps  # type: ignore[attr-defined]
        yield fake


def connect(org: FakeOrg, **overrides: Any) -> Any:
    return open_connector(make_config(**overrides), source="sf", sleep=org.sleeps.append)


def outcome(i: int, *, owner: str | None = USERS[0], expected: str | None = INTAKE_Q,
            decision: str | None = None) -> Outcome:
    return Outcome(record_id=f"00Q{i:012d}AAA", decision_id=decision or f"01JD{i:022d}",
                   outcome="assigned" if owner else "refused", owner_crm_id=owner,
                   reason=None if owner else "no_rule_matched", policy_version="2026.11.2",
                   outreach={"allowed_channels": ["email"]},
                   not_before=datetime(2026, 12, 1, tzinfo=UTC), expected_owner=expected)


# ---------------------------------------------------------------- pull


def test_pull_pages_through_next_records_url_and_maps(org: FakeOrg) -> None:
    org.lead_pages = [[lead(1), lead(2, Customer_Type__c="Gold")],
                      [lead(3, "2026-11-20T10:00:01.000+0000")]]
    crm = connect(org)
    pages = list(crm.pull(None))
    assert [len(p.records) for p in pages] == [2, 1]
    first = pages[0].records[0]
    assert first.lead_input is not None and first.lead_input["customer_type"] == "retail"
    assert first.lead_input["country"] == "GB" and first.owner_at_read == INTAKE_Q
    assert first.episode == ""
    bad = pages[0].records[1]
    assert bad.lead_input is None and "'Gold' is not mapped" in bad.problems[0]
    assert pages[1].cursor == Cursor(datetime(2026, 11, 20, 10, 0, 1, tzinfo=UTC),
                                     "00Q000000000003AAA")
    pull_q = org.queries[-1]
    assert f"OwnerId = '{INTAKE_Q}'" in pull_q and "LeadGate_Status__c = null" in pull_q
    assert pull_q.endswith("ORDER BY SystemModstamp ASC, Id ASC")
    # begin_run: login + limits + queues + users, then query + query_more
    assert crm.api_calls == 6 and org.logins == 1


def test_cursor_is_tie_safe_and_overlap_moves_it_back(org: FakeOrg) -> None:
    at = Cursor(datetime(2026, 11, 20, 10, 0, tzinfo=UTC), "00Q000000000002AAA")
    list(connect(org, overlap_seconds=0).pull(at))
    assert ("(SystemModstamp > 2026-11-20T10:00:00.000Z OR (SystemModstamp = "
            "2026-11-20T10:00:00.000Z AND Id > '00Q000000000002AAA'))") in org.queries[-1]
    list(connect(org, overlap_seconds=90).pull(at))
    assert "SystemModstamp >= 2026-11-20T09:58:30.000Z" in org.queries[-1]


def test_soql_injection_through_config_and_record_values_is_inert(org: FakeOrg) -> None:
    evil = "Lead Intake' OR Name != 'x"
    text = soql.queues_query([evil])
    assert "'Lead Intake\\' OR Name != \\'x'" in text
    at = Cursor(datetime(2026, 11, 20, tzinfo=UTC), "x' OR Id != '")
    q = soql.pull_query(fields=["Id"], sobject="Lead", intake_queue_id="q\\' OR 1=1",
                        unstamped_field="LeadGate_Status__c", after=at, overlap=timedelta(0))
    assert "Id > 'x\\' OR Id != \\''" in q and "OwnerId = 'q\\\\\\' OR 1=1'" in q
    # every quote inside a literal is escaped: stripping escapes leaves balanced literals only
    assert q.replace("\\\\", "").replace("\\'", "").count("'") % 2 == 0
    assert soql.literal("a\nb\\") == "'a\\nb\\\\'"
    with pytest.raises(soql.UnsafeName):
        soql.select(["Id FROM User --"], "Lead")
    with pytest.raises(soql.UnsafeName):
        soql.select(["Id"], "Lead WHERE Name != null")
    with pytest.raises(soql.UnsafeName):  # `$` would match before a trailing newline
        soql.select(["Id\n"], "Lead")
    # a mapping naming an unsafe field fails before anything is sent
    crm = connect(org, mapping={"id": "Id", "email": "Email, (SELECT Id FROM Users)"})
    with pytest.raises(soql.UnsafeName):
        next(iter(crm.pull(None)))
    assert not any("SELECT Id FROM Users" in q for q in org.queries)


def test_converted_leads_are_left_out_of_every_lead_read() -> None:
    # a converted Lead is read-only (CANNOT_UPDATE_CONVERTED_LEAD): not intake, and gone to the
    # re-reads; a custom object has no IsConverted field to name
    for sobject, expected in (("Lead", True), ("lead", True), ("Enquiry__c", False)):
        pull = soql.pull_query(fields=["Id"], sobject=sobject, intake_queue_id="00G",
                               unstamped_field="LeadGate_Status__c", after=None,
                               overlap=timedelta(0))
        by_ids = soql.by_ids_query(fields=["Id"], sobject=sobject, ids=["00Q1"])
        assert ("AND IsConverted = false" in pull) is expected, pull
        assert ("AND IsConverted = false" in by_ids) is expected, by_ids


# ---------------------------------------------------------------- write-back


def test_write_back_in_collections_of_200_with_conflicts_and_mixed_results(
        org: FakeOrg) -> None:
    outcomes = [outcome(i) for i in range(250)]
    outcomes[5] = outcome(5, owner=None)  # refusal -> review queue
    for o in outcomes:
        org.current[o.record_id] = {"Id": o.record_id, "OwnerId": INTAKE_Q,
                                    "LeadGate_Decision_Id__c": None}
    org.current[outcomes[7].record_id]["OwnerId"] = USERS[1]  # a person took it meanwhile
    org.current[outcomes[8].record_id]["LeadGate_Decision_Id__c"] = outcomes[8].decision_id
    del org.current[outcomes[9].record_id]  # deleted meanwhile

    def answer(body: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for r in body["records"]:
            if r["id"] == outcomes[10].record_id:
                out.append({"success": False, "errors": [{
                    "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "message": "Phone required", "fields": ["Phone"]}]})
            elif r["id"] == outcomes[11].record_id:
                out.append({"success": False, "errors": [
                    {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]})
            else:
                out.append({"id": r["id"], "success": True, "errors": []})
        return out

    org.update_answer = answer
    crm = connect(org)
    results = crm.write_back(outcomes)
    assert [r.record_id for r in results] == [o.record_id for o in outcomes]
    status = {f"{i:02d}": r for i, r in enumerate(results)}
    assert status["07"].status == "conflict" and USERS[1] in status["07"].message
    assert status["08"].status == "ok" and "already written" in status["08"].message
    assert status["09"].status == "gone" and not status["09"].retryable  # final
    assert status["10"].status == "error" and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in \
        status["10"].message and not status["10"].retryable
    assert status["11"].status == "error" and status["11"].retryable
    assert sum(r.status == "ok" for r in results) == 250 - 4  # 07 conflict, 09 gone, 10-11
    # skipped records do not leave holes: collections are filled to 200
    assert [len(u["records"]) for u in org.updates] == [200, 47]
    assert all(u["allOrNone"] is False for u in org.updates)
    # one Composite call re-reads the owners, then one carries both collections
    reread, write = org.composites
    assert reread["allOrNone"] is False and write["allOrNone"] is False
    # the org's lead assignment rules must not run on leadgate's updates (they would move the
    # owner just written): Sforce-Auto-Assign FALSE on each update subrequest
    assert all(sub["httpHeaders"] == {"Sforce-Auto-Assign": "FALSE"}
               for sub in write["compositeRequest"])
    [query] = reread["compositeRequest"]
    assert query["method"] == "GET" and query["url"].startswith("/services/data/v59.0/query/?q=")
    assert query["httpHeaders"] == {"Sforce-Query-Options": "batchSize=2000"}
    assert [(w["method"], w["url"], w["referenceId"]) for w in write["compositeRequest"]] == [
        ("PATCH", "/services/data/v59.0/composite/sobjects", "r0"),
        ("PATCH", "/services/data/v59.0/composite/sobjects", "r1")]
    assert crm.api_calls == 4 + 2  # login, limits, queues, users; re-read, write
    sent = {r["id"]: r for u in org.updates for r in u["records"]}
    assert outcomes[7].record_id not in sent
    refused = sent[outcomes[5].record_id]
    assert refused["OwnerId"] == REVIEW_Q and refused["LeadGate_Status__c"] == "refused"
    assert refused["LeadGate_Reason__c"] == "no_rule_matched"
    assigned = sent[outcomes[0].record_id]
    assert assigned == {
        "attributes": {"type": "Lead"}, "id": outcomes[0].record_id, "OwnerId": USERS[0],
        "LeadGate_Status__c": "assigned", "LeadGate_Decision_Id__c": outcomes[0].decision_id,
        "LeadGate_Reason__c": None, "LeadGate_Policy_Version__c": "2026.11.2",
        "LeadGate_Outreach__c": '{"allowed_channels":["email"]}',
        "LeadGate_Not_Before__c": "2026-12-01T00:00:00.000Z"}
    # one owner re-read per 400 records (two collections)
    assert sum("WHERE Id IN" in q for q in org.queries) == 1


def test_unknown_owner_is_a_result_not_a_call(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    [result] = crm.write_back([outcome(1, owner="005999999999999ZZZ")])
    assert result.status == "error" and "not an active Salesforce user" in result.message
    assert org.updates == []


def _owners_unchanged(org: FakeOrg, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        org.current[o.record_id] = {"Id": o.record_id, "OwnerId": INTAKE_Q,
                                    "LeadGate_Decision_Id__c": None}


@pytest.mark.parametrize(("check", "n", "calls"), [
    # re-read: one call per 2,000 (5 queries of 400); writes: one call per 1,000 (5 of 200)
    (True, 2500, 2 + 3), (True, 2000, 1 + 2), (False, 2500, 3), (False, 1000, 1),
])
def test_composite_carries_five_collections_and_five_rereads_per_call(
        org: FakeOrg, check: bool, n: int, calls: int) -> None:
    outcomes = [outcome(i) for i in range(n)]
    _owners_unchanged(org, outcomes)
    crm = connect(org, conflict_check=check)
    crm.begin_run()
    before = crm.api_calls
    results = crm.write_back(outcomes)
    assert [r.record_id for r in results] == [o.record_id for o in outcomes]
    assert {r.status for r in results} == {"ok"}
    assert crm.api_calls - before == calls == len(org.composites)
    kinds = [[sub["method"] for sub in c["compositeRequest"]] for c in org.composites]
    assert all(len(k) <= 5 for k in kinds)
    writes = [sub for c in org.composites for sub in c["compositeRequest"]
              if sub["method"] == "PATCH"]
    assert sum(len(w["body"]["records"]) for w in writes) == n
    assert all(len(w["body"]["records"]) == 200 for w in writes[:-1])
    assert all(w["body"]["allOrNone"] is False for w in writes)
    if check:  # every re-read call comes right before the writes of the same records
        reads = [c for c in org.composites if c["compositeRequest"][0]["method"] == "GET"]
        assert [len(c["compositeRequest"]) for c in reads] == [5] * (n // 2000) + (
            [-(-(n % 2000) // 400)] if n % 2000 else [])
        assert [k[0] for k in kinds] == (["GET", "PATCH", "PATCH"] * (n // 2000)
                                         + (["GET", "PATCH"] if n % 2000 else []))


def test_a_failed_subrequest_fails_its_records_only(org: FakeOrg) -> None:
    outcomes = [outcome(i) for i in range(1000)]
    _owners_unchanged(org, outcomes)
    second_read = outcomes[400].record_id
    third_write = outcomes[400].record_id

    def answer(sub: dict[str, Any]) -> dict[str, Any] | None:
        body = sub.get("body") or {}
        ids = [r["id"] for r in body.get("records", [])]
        if sub["method"] == "GET" and second_read in sub["url"]:
            return {"body": [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}],
                    "httpHeaders": {}, "httpStatusCode": 503}
        if third_write in ids:
            return {"body": [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}],
                    "httpHeaders": {}, "httpStatusCode": 500}
        if outcomes[800].record_id in ids:
            return {"body": [{"errorCode": "INVALID_FIELD", "message": "No such column "
                              "'LeadGate_Reason__c' on sobject of type Lead"}],
                    "httpHeaders": {}, "httpStatusCode": 400}
        return None

    org.sub_answer = answer
    crm = connect(org)
    results = crm.write_back(outcomes)
    by = [r.status for r in results]
    # records 400-799: their re-read failed (503): retryable, not written
    assert set(by[400:800]) == {"error"} and all(r.retryable for r in results[400:800])
    assert "re-read owners before writing: HTTP 503 SERVER_UNAVAILABLE: down" in \
        results[400].message and "the next run retries" in results[400].message
    written = {r["id"] for u in org.updates for r in u["records"]}
    assert not written & {o.record_id for o in outcomes[400:800]}
    # records 800-999: their collection answered 400 INVALID_FIELD: not retryable, with the fix
    assert set(by[800:]) == {"error"} and not any(r.retryable for r in results[800:])
    assert "INVALID_FIELD" in results[800].message and "leadgate connect" in results[800].message
    assert set(by[:400]) == {"ok"}
    # the 500 fell on no collection here (its re-read failed first); now without the re-read
    org.updates.clear()
    again = connect(org, conflict_check=False).write_back(outcomes[:600])
    assert {r.status for r in again[:400]} == {"ok"}
    assert set(r.status for r in again[400:600]) == {"error"}
    assert all(r.retryable and "HTTP 500 UNKNOWN_EXCEPTION: boom" in r.message
               for r in again[400:600])


def test_subrequest_limits_exceeded_fail_the_calls_records(org: FakeOrg) -> None:
    org.sub_answer = None
    outcomes = [outcome(i) for i in range(3)]
    org.rsps.remove(responses.POST, f"{API}/composite")  # type: ignore[attr-defined]
    org.rsps.add(responses.POST, f"{API}/composite",  # type: ignore[attr-defined]
                 json={"compositeResponse": [{
                     "body": [{"errorCode": "LIMIT_EXCEEDED",
                               "message": "The request can’t contain more than 25 operations."}],
                     "httpHeaders": {}, "httpStatusCode": 400, "referenceId": None}]})
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    before = crm.api_calls
    results = crm.write_back(outcomes)
    assert {r.status for r in results} == {"error"} and not any(r.retryable for r in results)
    assert "LIMIT_EXCEEDED" in results[0].message and crm.api_calls == before + 1


def test_an_answer_without_one_result_per_subrequest_is_retryable(org: FakeOrg) -> None:
    org.rsps.remove(responses.POST, f"{API}/composite")  # type: ignore[attr-defined]
    org.rsps.add(responses.POST, f"{API}/composite",  # type: ignore[attr-defined]
                 json={"compositeResponse": []})
    results = connect(org, conflict_check=False).write_back([outcome(1), outcome(2)])
    assert {r.status for r in results} == {"error"} and all(r.retryable for r in results)
    assert "one result per subrequest" in results[0].message


def test_expired_session_on_the_composite_call_logs_in_again(org: FakeOrg) -> None:
    outcomes = [outcome(i) for i in range(3)]
    _owners_unchanged(org, outcomes)
    crm = connect(org)
    crm.begin_run()
    _fail_then(org, 401, [{"errorCode": "INVALID_SESSION_ID",
                           "message": "Session expired or invalid"}])
    results = crm.write_back(outcomes)
    assert {r.status for r in results} == {"ok"} and org.logins == 2
    assert len(org.composites) == 2  # the re-read after logging in again, then the write


def test_a_reread_answered_in_batches_is_followed(org: FakeOrg) -> None:
    outcomes = [outcome(i) for i in range(3)]
    _owners_unchanged(org, outcomes)
    late = dict(org.current.pop(outcomes[2].record_id), OwnerId=USERS[1])  # a person took it
    url = "/services/data/v59.0/query/01gREREAD-2000"
    org.more[url] = {"totalSize": 3, "done": True, "records": [late]}
    org.rsps.add(responses.GET, ORG + url, json=org.more[url])  # type: ignore[attr-defined]
    results = connect(org).write_back(outcomes)
    assert [r.status for r in results] == ["ok", "ok", "conflict"]
    assert USERS[1] in results[2].message
    assert [len(u["records"]) for u in org.updates] == [2]


def test_below_api_43_each_collection_and_reread_is_its_own_call() -> None:
    api = f"{ORG}/services/data/v42.0"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        old = FakeOrg(rsps, api=api)
        old.rsps = rsps  # type: ignore[attr-defined]
        outcomes = [outcome(i) for i in range(450)]
        _owners_unchanged(old, outcomes)
        crm = open_connector(make_config(connection={
            "login_url": LOGIN, "auth": "password", "username": "int@example.test",
            "client_id": "cid", "client_secret": {"env": "LG_SF_SECRET"},
            "password": {"env": "LG_SF_PASSWORD"}, "security_token": {"env": "LG_SF_TOKEN"},
            "api_version": "42.0"}), source="sf", sleep=old.sleeps.append)
        assert not crm.composite
        crm.begin_run()
        before = crm.api_calls
        results = crm.write_back(outcomes)
        assert {r.status for r in results} == {"ok"} and old.composites == []
        assert [len(u["records"]) for u in old.updates] == [200, 200, 50]
        assert sum("WHERE Id IN" in q for q in old.queries) == 2  # one per 400
        assert crm.api_calls - before == 3 + 2
        _fail_then(old, 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
        assert crm.write_back([outcome(1)])[0].status == "ok"  # retried by the gate


# ---------------------------------------------------------------- errors, retries, limits


def _fail_then(org: FakeOrg, status: int, body: Any, headers: dict[str, str] | None = None,
               times: int = 1) -> None:
    """The write call (Composite, or the collection itself below API 43.0) fails `times`."""
    state = {"n": 0}
    method, url, original = ((responses.POST, f"{org.api}/composite", org._composite)
                             if org.api == API else
                             (responses.PATCH, f"{org.api}/composite/sobjects", org._update))

    def flaky(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if state["n"] < times:
            state["n"] += 1
            return status, headers or {}, json.dumps(body)
        return original(request)

    org.rsps.remove(method, url)  # type: ignore[attr-defined]
    org.rsps.add_callback(method, url, flaky)  # type: ignore[attr-defined]


def test_503_and_429_are_retried_honouring_retry_after(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    _fail_then(org, 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
    assert crm.write_back([outcome(1)])[0].status == "ok"
    _fail_then(org, 429, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow"}],
               headers={"Retry-After": "7"})
    assert crm.write_back([outcome(2)])[0].status == "ok"
    assert org.sleeps == [7.0]  # backoff is 0 here: the wait is the Retry-After
    assert len(org.updates) == 2


def test_expired_session_logs_in_again(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    _fail_then(org, 401, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
    assert crm.write_back([outcome(1)])[0].status == "ok"
    assert org.logins == 2


def test_4xx_that_cannot_succeed_is_not_retried(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    before = crm.api_calls
    _fail_then(org, 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad"}], times=5)
    [result] = crm.write_back([outcome(1)])
    assert result.status == "error" and "JSON_PARSER_ERROR" in result.message
    assert not result.retryable and crm.api_calls == before + 1


def test_persistent_5xx_gives_retryable_results_not_exceptions(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    _fail_then(org, 500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "x"}], times=99)
    results = crm.write_back([outcome(1), outcome(2)])
    assert {r.status for r in results} == {"error"} and all(r.retryable for r in results)
    assert "gave up after 4 attempts" in results[0].message


def test_dropped_connection_is_retried(org: FakeOrg) -> None:
    crm = connect(org, conflict_check=False)
    crm.begin_run()
    calls = {"n": 0}
    original = org._composite

    def drop(request: requests.PreparedRequest) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise requests.ConnectionError("connection reset by peer")
        return original(request)

    org.rsps.remove(responses.POST, f"{API}/composite")  # type: ignore[attr-defined]
    org.rsps.add_callback(responses.POST, f"{API}/composite", drop)  # type: ignore
    assert crm.write_back([outcome(1)])[0].status == "ok" and calls["n"] == 2


def test_malformed_query_fails_at_once_naming_the_fix(org: FakeOrg) -> None:
    org.rsps.replace(responses.GET, f"{API}/limits/", status=400,  # type: ignore[attr-defined]
                     json=[{"errorCode": "INVALID_FIELD", "message": "No such column"}])
    crm = connect(org)
    with pytest.raises(CallFailed) as err:
        crm.begin_run()
    assert "INVALID_FIELD" in str(err.value) and "leadgate connect" in str(err.value)
    assert crm.api_calls == 2  # login + one attempt


def test_api_budget_stops_pull_cleanly(org: FakeOrg) -> None:
    org.lead_pages = [[lead(1)], [lead(2)]]
    crm = connect(org, limits={"api_budget": 5})
    pages = crm.pull(None)
    assert len(next(pages).records) == 1  # calls 1-5: login, limits, queues, users, query
    with pytest.raises(BudgetExhausted) as err:
        next(pages)
    assert "limits.api_budget" in str(err.value) and crm.api_calls == 5


def test_org_daily_limit_reserve_from_sforce_limit_info(org: FakeOrg) -> None:
    org.rsps.replace(responses.GET, f"{API}/limits/",  # type: ignore[attr-defined]
                     json={"DailyApiRequests": {"Max": 15000, "Remaining": 1502}})
    crm = connect(org, limits={"org_reserve_percent": 10})
    with pytest.raises(BudgetExhausted, match="reserve"):
        list(crm.pull(None))
    results = crm.write_back([outcome(1)])
    assert results[0].status == "error" and results[0].retryable


def test_request_limit_exceeded_stops_the_run(org: FakeOrg) -> None:
    org.rsps.replace(responses.GET, f"{API}/limits/", status=403,  # type: ignore[attr-defined]
                     json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED",
                            "message": "TotalRequests Limit exceeded."}])
    with pytest.raises(BudgetExhausted):
        connect(org).begin_run()


def test_bad_credentials_name_the_setting_not_the_secret(org: FakeOrg) -> None:
    org.rsps.replace(responses.POST, f"{LOGIN}/services/oauth2/token",  # type: ignore
                     status=400, json={"error": "invalid_grant",
                                       "error_description": "authentication failure"})
    with pytest.raises(LeadgateError) as err:
        connect(org).begin_run()
    text = str(err.value)
    assert "invalid_grant" in text and "sources.sf.connection.auth" in text
    assert "pw" not in text.replace("password", "") and "s3cret" not in text


# ---------------------------------------------------------------- TLS trust


class _Capture(requests.adapters.HTTPAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.verify: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.verify.append(kwargs.get("verify"))
        response = requests.Response()
        response.status_code, response._content = 200, b"{}"
        return response


def test_custom_ca_wins_over_requests_ca_bundle(tmp_path: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/env-bundle.pem")
    pinned = make_session(ca)
    assert isinstance(pinned, PinnedCASession)
    plain = make_session(None)
    for session in (pinned, plain):
        session.mount("https://", capture := _Capture())
        session.get("https://org.example.test/")
        session.capture = capture  # type: ignore[attr-defined]
    assert pinned.capture.verify == [str(ca)]  # type: ignore[attr-defined]
    # production: no custom CA, the environment's bundle is honoured
    assert plain.capture.verify == ["/etc/ssl/env-bundle.pem"]  # type: ignore[attr-defined]
    with pytest.raises(LeadgateError, match="ca_file"):
        make_session(tmp_path / "missing.pem")


def test_install_creates_fields_and_the_review_queue_through_rest(org: FakeOrg) -> None:
    created: list[tuple[str, dict[str, Any]]] = []

    def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        created.append((str(request.url).split("/v59.0/")[1], body))
        return 201, {}, json.dumps({"id": "00G000000000009AAA", "success": True, "errors": []})

    org.rsps.add(responses.GET, f"{API}/sobjects/Lead/describe/",  # type: ignore[attr-defined]
                 json={"fields": [{"name": "Id"}, {"name": "LeadGate_Status__c"}]})
    for path in ("tooling/sobjects/CustomField/", "sobjects/Group/", "sobjects/QueueSobject/"):
        org.rsps.add_callback(responses.POST, f"{API}/{path}", record)  # type: ignore
    crm = connect(org, review_queue="LeadGate_Review")  # not a queue in this org yet
    report = crm.install()
    assert "field Lead.LeadGate_Status__c" in report.existing
    assert len(report.created) == 6  # five fields and the queue
    paths = [p for p, _ in created]
    assert paths.count("tooling/sobjects/CustomField/") == 5
    assert paths[-2:] == ["sobjects/Group/", "sobjects/QueueSobject/"]
    assert created[-2][1] == {"Name": "LeadGate_Review", "DeveloperName": "LeadGate_Review",
                              "Type": "Queue"}
    assert created[-1][1] == {"QueueId": "00G000000000009AAA", "SobjectType": "Lead"}
    field = dict(created[0][1])
    assert field["FullName"] == "Lead.LeadGate_Decision_Id__c"
    assert field["Metadata"]["type"] == "Text" and field["Metadata"]["externalId"] is True
