"""Composite (POST /services/data/vXX.X/composite), driven through simple-salesforce over HTTPS.

Docs followed (REST API Developer Guide), cited again at each test:
[C]   https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html
      (up to 25 subrequests, at most 5 sObject Collections or query operations; the whole series
      counts as a single call toward the API limits; sObject Collections inside from 43.0)
[REQ] https://developer.salesforce.com/docs/platform/api-rest/guide/requests-composite.html
      (allOrNone, collateSubrequests, compositeRequest of {method, url, referenceId, body,
      httpHeaders}; subrequests inherit the top-level request's headers)
[RES] https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-subrequest-result.html
      (compositeResponse: {body, httpHeaders, httpStatusCode, referenceId} per subrequest, in
      order; an error body is the usual list of {message, errorCode}; with allOrNone every
      other subrequest answers 400)
[AON] https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-allornone.html
      (the Composite's allOrNone=true overrides that of its sObject Collections)
[ERR] https://developer.salesforce.com/blogs/2017/02/handle-errors-with-composite-resources
      (a malformed body is a 400 JSON_PARSER_ERROR before any subrequest runs)
Error bodies the guide does not spell out (PROCESSING_HALTED for a rolled-back subrequest and an
unresolved reference, LIMIT_EXCEEDED over 25 operations) are those Salesforce answers, as quoted
from real responses in public issues and test fixtures; the wording for more than 5 queries or
collections is ours (LIMIT_EXCEEDED, same shape).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from connectors.sandbox import Sandbox

V = "/services/data/v59.0"


def q(soql: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {"method": "GET", "url": f"{V}/query/?{urlencode({'q': soql})}", "referenceId": ref,
            **extra}


def patch(records: list[dict[str, Any]], ref: str, *, version: str = "59.0",
          all_or_none: bool = False) -> dict[str, Any]:
    return {"method": "PATCH", "url": f"/services/data/v{version}/composite/sobjects",
            "referenceId": ref, "body": {"allOrNone": all_or_none, "records": records}}


def rec(rid: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "id": rid, **fields}


def composite(sf: Any, subrequests: list[dict[str, Any]], **top: Any) -> Any:
    return sf.restful("composite", method="POST",
                      json={"allOrNone": False, **top, "compositeRequest": subrequests},
                      headers={"Sforce-Call-Options": "client=leadgate"})


def test_one_call_runs_queries_and_collections_in_order(sb: Sandbox, sf: Any) -> None:
    """[C] one call toward the limits; [RES] the result shape, in order; [REQ] headers."""
    t = sb.store.leads
    ids = [t.id_of(i) for i in range(400)]
    in_list = ", ".join(f"'{i}'" for i in ids)
    before = sf.limits()["DailyApiRequests"]["Remaining"]
    used = sb.salesforce.api_used
    res = composite(sf, [
        q(f"SELECT Id, OwnerId FROM Lead WHERE Id IN ({in_list})", "owners"),  # noqa: S608
        patch([rec(i, LeadGate_Status__c="assigned") for i in ids[:200]], "w0"),
        patch([rec(i, LeadGate_Status__c="assigned") for i in ids[200:]], "w1"),
    ])
    assert sb.salesforce.api_used == used + 1  # the whole series is one call
    assert sf.api_usage["api-usage"].used == used + 1  # Sforce-Limit-Info, once
    assert sf.limits()["DailyApiRequests"]["Remaining"] == before - 2  # composite + /limits
    items = res["compositeResponse"]
    assert [i["referenceId"] for i in items] == ["owners", "w0", "w1"]
    assert all(list(i) == ["body", "httpHeaders", "httpStatusCode", "referenceId"]
               for i in items)
    assert [i["httpStatusCode"] for i in items] == [200, 200, 200]
    c = sb.counts()
    assert c["salesforce.composite"]["calls"] == 1 and c["salesforce.composite"]["ok"] == 1
    assert c["salesforce.composite"]["server_us"] > 0  # the server time of the whole call
    assert c["salesforce.collections_update"] == {"subrequests": 2, "records_written": 400}
    assert c["salesforce.query"] == {"subrequests": 1, "records_read": 400}
    assert sb.calls("salesforce") == 3  # two /limits reads and one Composite call
    alone = sf.query(f"SELECT Id, OwnerId FROM Lead WHERE Id IN ({in_list})")  # noqa: S608
    assert items[0]["body"]["totalSize"] == 400 and items[0]["body"]["done"] is True
    assert [r["Id"] for r in items[0]["body"]["records"]] == [r["Id"] for r in alone["records"]]
    assert items[1]["body"][0] == {"id": ids[0], "success": True, "errors": []}
    assert all(t.get(i, "LeadGate_Status__c") == "assigned" for i in range(400))
    assert sb.store.origins["salesforce:leadgate"] == 400  # the call's own headers apply


def test_a_failed_subrequest_leaves_the_others(sb: Sandbox, sf: Any) -> None:
    """[REQ] allOrNone=false: the other subrequests run; [RES] the error body is a list."""
    t = sb.store.leads
    res = composite(sf, [
        patch([rec(t.id_of(0), LeadGate_Status__c="a")], "good"),
        q("SELECT Id, Nope__c FROM Lead", "bad"),
        patch([rec(t.id_of(1), Nope__c="x")], "badfield"),
        patch([rec(t.id_of(2), LeadGate_Status__c="a"), rec("00Q5g0000009999AAA")], "mixed"),
    ])["compositeResponse"]
    assert [i["httpStatusCode"] for i in res] == [200, 400, 400, 200]
    assert res[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert res[2]["body"] == [{"message": "No such column 'Nope__c' on sobject of type Lead",
                               "errorCode": "INVALID_FIELD"}]
    assert [r["success"] for r in res[3]["body"]] == [True, False]  # per-record, still 200
    assert t.get(0, "LeadGate_Status__c") == "a" and t.get(2, "LeadGate_Status__c") == "a"


def test_all_or_none_rolls_every_write_back(sb: Sandbox, sf: Any) -> None:
    """[REQ]/[RES] allOrNone=true: one failure undoes the rest, which answer 400; [AON] the
    collections inside become all-or-none too."""
    t = sb.store.leads
    stamp, owner = t.get(5, "SystemModstamp"), t.get(5, "OwnerId")
    origins = dict(sb.store.origins)
    n = t.n
    res = composite(sf, [
        patch([rec(t.id_of(5), LeadGate_Status__c="assigned", OwnerId=sb.reps[0].salesforce_id)],
              "w"),
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "made",
         "body": {"LastName": "Okafor", "Company": "Self-employed"}},
        {"method": "PATCH", "url": f"{V}/sobjects/Lead/{t.id_of(6)}", "referenceId": "one",
         "body": {"LeadGate_Reason__c": "x"}},
        patch([rec(t.id_of(7), LeadGate_Status__c="x"),
               rec(t.id_of(8), OwnerId=sb.store.inactive_user_id)], "fails"),
        q("SELECT Id FROM Lead LIMIT 1", "after"),
    ], allOrNone=True)["compositeResponse"]
    assert [i["httpStatusCode"] for i in res] == [400, 400, 400, 200, 400]
    halted = {"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back "
              "since another operation in the same transaction failed."}
    assert [i["body"] for k, i in enumerate(res) if k != 3] == [[halted]] * 4
    codes = [r["errors"][0]["statusCode"] for r in res[3]["body"]]
    assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INACTIVE_OWNER_OR_USER"]
    assert (t.get(5, "SystemModstamp"), t.get(5, "OwnerId")) == (stamp, owner)
    assert t.get(5, "LeadGate_Status__c") is None and t.get(6, "LeadGate_Reason__c") is None
    assert t.n == n and dict(sb.store.origins) == origins  # the created lead is gone too
    again = composite(sf, [patch([rec(t.id_of(5), LeadGate_Status__c="assigned")], "w")],
                      allOrNone=True)["compositeResponse"]
    assert again[0]["httpStatusCode"] == 200 and t.get(5, "LeadGate_Status__c") == "assigned"


def test_subrequest_limits_refuse_the_body(sb: Sandbox, sf: Any) -> None:
    """[C] more than 25 subrequests, or more than 5 collections/queries: refused, nothing
    runs, and the refusal is still one call."""
    t = sb.store.leads
    many = [{"method": "GET", "url": f"{V}/sobjects/Lead/{t.id_of(i)}", "referenceId": f"g{i}"}
            for i in range(26)]
    res = composite(sf, many)["compositeResponse"]
    assert res == [{"body": [{"errorCode": "LIMIT_EXCEEDED", "message": "The request can’t "
                              "contain more than 25 operations."}],
                    "httpHeaders": {}, "httpStatusCode": 400, "referenceId": None}]
    assert len(composite(sf, many[:25])["compositeResponse"]) == 25  # 25 is allowed
    six = [patch([rec(t.id_of(i), LeadGate_Status__c="x")], f"p{i}") for i in range(4)] + [
        q("SELECT Id FROM Lead LIMIT 1", "q1"), q("SELECT Id FROM Lead LIMIT 1", "q2")]
    res = composite(sf, six)["compositeResponse"]
    assert len(res) == 1 and res[0]["body"][0]["errorCode"] == "LIMIT_EXCEEDED"
    assert "more than 5" in res[0]["body"][0]["message"]
    assert all(t.get(i, "LeadGate_Status__c") is None for i in range(4))
    assert len(composite(sf, six[:5])["compositeResponse"]) == 5
    assert sb.counts()["salesforce.composite"]["calls"] == 4


def test_malformed_bodies_are_400_before_anything_runs(sb: Sandbox, sf: Any) -> None:
    """[ERR] body errors: 400 JSON_PARSER_ERROR, a list; [REQ] method is one of five."""
    t = sb.store.leads
    with pytest.raises(SalesforceMalformedRequest) as e:
        composite(sf, [{"method": "PATCH", "url": f"{V}/composite/sobjects",
                        "body": {"records": [rec(t.id_of(0), LeadGate_Status__c="x")]}}])
    assert e.value.content == [{"message": "'referenceId' is a required field.",
                                "errorCode": "JSON_PARSER_ERROR"}]
    assert t.get(0, "LeadGate_Status__c") is None
    with pytest.raises(SalesforceMalformedRequest) as e:
        composite(sf, [{"method": "get", "url": f"{V}/limits", "referenceId": "x"}])
    assert e.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"allOrNone": False})


def test_references_are_refused_not_passed_through(sb: Sandbox, sf: Any) -> None:
    """[REQ] @{referenceId.field} references: the sandbox does not resolve them and answers
    as Salesforce does for a reference it cannot resolve (PROCESSING_HALTED, 400)."""
    t = sb.store.leads
    res = composite(sf, [
        q(f"SELECT Id FROM Lead WHERE Id = '{t.id_of(3)}'", "found"),  # noqa: S608
        {"method": "PATCH", "url": f"{V}/sobjects/Lead/@{{found.records[0].Id}}",
         "referenceId": "upd", "body": {"LeadGate_Status__c": "x"}},
        {"method": "POST", "url": f"{V}/sobjects/Lead", "referenceId": "made",
         "body": {"LastName": "@{found.records[0].Id}", "Company": "x"}},
    ])["compositeResponse"]
    assert [i["httpStatusCode"] for i in res] == [200, 400, 400]
    assert res[1]["body"] == [{"message": "Invalid reference specified. No value for "
                               "found.records[0].Id found in found",
                               "errorCode": "PROCESSING_HALTED"}]
    assert t.get(3, "LeadGate_Status__c") is None
    assert not any(t.get(i, "LastName") == "@{found.records[0].Id}" for i in range(t.n))


def test_sobject_resources_inside_and_collections_from_43(sb: Sandbox, sf: Any) -> None:
    """[C] sObject resources, Query and sObject Collections (API 43.0 and later) inside;
    anything else is not a resource of a Composite call."""
    t = sb.store.leads
    res = composite(sf, [
        {"method": "GET", "url": f"{V}/sobjects/Lead/{t.id_of(4)}?fields=Id,OwnerId",
         "referenceId": "get"},
        {"method": "PATCH", "url": f"{V}/sobjects/Lead/{t.id_of(4)}", "referenceId": "upd",
         "body": {"LeadGate_Status__c": "review"}},
        patch([rec(t.id_of(9), LeadGate_Status__c="x")], "old", version="42.0"),
        {"method": "GET", "url": f"{V}/limits", "referenceId": "limits"},
        {"method": "GET", "url": f"{V}/sobjects/Lead/describe", "referenceId": "describe"},
    ])["compositeResponse"]
    assert [i["httpStatusCode"] for i in res] == [200, 204, 404, 404, 200]
    assert res[0]["body"]["Id"] == t.id_of(4) and res[1]["body"] is None
    assert res[2]["body"][0]["errorCode"] == "NOT_FOUND"
    assert t.get(4, "LeadGate_Status__c") == "review" and t.get(9, "LeadGate_Status__c") is None
    versions = requests.get(f"{sb.salesforce_instance_url}/services/data/",
                            verify=str(sb.ca_file)).json()
    assert {"31.0", "42.0", "43.0", "59.0"} <= {v["version"] for v in versions}


def test_query_batches_and_query_more_inside(sb: Sandbox, sf: Any) -> None:
    """[REQ] httpHeaders per subrequest (Sforce-Query-Options batchSize); [C] Query More is a
    query operation inside a Composite call."""
    first = composite(sf, [q("SELECT Id FROM Lead", "q",
                             httpHeaders={"Sforce-Query-Options": "batchSize=200"})])
    body = first["compositeResponse"][0]["body"]
    assert len(body["records"]) == 200 and body["done"] is False
    more = composite(sf, [{"method": "GET", "url": body["nextRecordsUrl"], "referenceId": "m"}])
    page = more["compositeResponse"][0]["body"]
    assert len(page["records"]) == 200 and page["records"][0]["Id"] != body["records"][0]["Id"]
    # the same locator serves a plain query_more call
    assert len(sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)["records"]) == 200
    assert sb.counts()["salesforce.query_more"]["subrequests"] == 1


def test_record_faults_reach_the_work_inside(sb: Sandbox, sf: Any) -> None:
    """Fault injection: per-record errors and a person's owner change act on the subrequests
    of the resource they name, as on a call of it."""
    t = sb.store.leads
    sb.faults = ("salesforce.collections_update:record_error@0.25,"
                 "salesforce.query:owner_change@call=1")
    res = composite(sf, [
        q("SELECT Id, OwnerId FROM Lead WHERE OwnerId = "  # noqa: S608
          f"'{sb.salesforce_intake_queue_id}' LIMIT 50", "read"),
        patch([rec(t.id_of(i), LeadGate_Status__c="x") for i in range(200, 400)], "w"),
    ])["compositeResponse"]
    [(_crm, rid, old, new)] = sb.store.owner_changes
    assert {r["Id"]: r["OwnerId"] for r in res[0]["body"]["records"]}[rid] == old != new
    failed = [r for r in res[1]["body"] if not r["success"]]
    assert 20 < len(failed) < 90
    assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}
    c = sb.counts()
    assert c["salesforce.collections_update"]["record_errors"] == len(failed)
    assert c["salesforce.query"]["fault.owner_change"] == 1


def test_a_status_fault_answers_its_subrequest_only(sb: Sandbox, sf: Any) -> None:
    """An injected 5xx/4xx on a subrequest's resource answers that subrequest, with the API's
    own error body; the others run."""
    t = sb.store.leads
    sb.faults = "salesforce.collections_update:500@call=2"
    res = composite(sf, [patch([rec(t.id_of(i), LeadGate_Status__c="x")], f"w{i}")
                         for i in range(3)])["compositeResponse"]
    assert [i["httpStatusCode"] for i in res] == [200, 500, 200]
    assert res[1]["body"][0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert [t.get(i, "LeadGate_Status__c") for i in range(3)] == ["x", None, "x"]
    c = sb.counts()["salesforce.collections_update"]
    assert c["fault.500"] == 1 and c["subrequests.status.500"] == 1


@pytest.mark.parametrize("fault", [
    "salesforce.collections_update:401@call=1", "salesforce.query:expire_session@call=1",
    "salesforce.composite:expire_session@call=1",
])
def test_an_expired_session_is_the_whole_calls(sb: Sandbox, fault: str) -> None:
    """An expired session answers the whole call 401 INVALID_SESSION_ID (a list), and nothing
    inside runs."""
    sf = sb.salesforce_client()
    t = sb.store.leads
    used = sb.salesforce.api_used
    sb.faults = fault
    with pytest.raises(SalesforceExpiredSession) as e:
        composite(sf, [q("SELECT Id FROM Lead LIMIT 1", "q"),
                       patch([rec(t.id_of(0), LeadGate_Status__c="x")], "w")])
    assert e.value.content == [{"message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID"}]
    assert t.get(0, "LeadGate_Status__c") is None and sb.salesforce.api_used == used
    assert sb.counts()["salesforce.composite"]["status.401"] == 1


def test_call_faults_of_a_subrequest_act_on_the_call(sb: Sandbox, sf: Any) -> None:
    """A dropped connection, a slow answer or a rate limit named for a subrequest's resource
    concern the Composite call (the limits and the connection are the call's)."""
    t = sb.store.leads
    sb.faults = "salesforce.query:drop@call=1"
    with pytest.raises(requests.exceptions.ConnectionError):
        composite(sf, [patch([rec(t.id_of(0), LeadGate_Status__c="x")], "w"),
                       q("SELECT Id FROM Lead LIMIT 1", "q")])
    assert t.get(0, "LeadGate_Status__c") is None  # dropped before it ran
    sb.faults = "salesforce.collections_update:rate_limit@call=1"
    with pytest.raises(Exception) as e:
        composite(sf, [patch([rec(t.id_of(0), LeadGate_Status__c="x")], "w")])
    assert e.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"  # type: ignore
    sb.faults = "salesforce.query:503@call=1"
    with pytest.raises(Exception) as e:
        composite(sf, [q("SELECT Id FROM Lead LIMIT 1", "q")])
    assert e.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"  # type: ignore
    sb.faults = "salesforce.collections_update:slow=1.5@call=1"
    s = sb.requests_session()
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.post(f"{sb.salesforce_instance_url}{V}/composite", timeout=0.5,
               headers={"Authorization": f"Bearer {sb.salesforce_session_id}"},
               json={"compositeRequest": [patch([rec(t.id_of(1), LeadGate_Status__c="x")],
                                                "w")]})
    c = sb.counts()
    assert c["salesforce.query"]["fault.drop"] == 1
    assert c["salesforce.composite"]["status.403"] == 1
    assert c["salesforce.composite"]["status.503"] == 1
