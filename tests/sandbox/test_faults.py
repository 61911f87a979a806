"""Each fault mode, seen through the real SDKs; and reproducibility from the seed.

Docs: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
(503 SERVER_UNAVAILABLE, 403 REQUEST_LIMIT_EXCEEDED, UNABLE_TO_LOCK_ROW per record),
https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (429 RATE_LIMIT),
https://developers.hubspot.com/docs/api/crm/contacts (207 multi-status).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hubspot.crm.contacts.exceptions import ApiException, ServiceException
from hubspot.crm.contacts.models import BatchResponseSimplePublicObjectWithErrors
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from connectors.sandbox import Faults, Sandbox
from connectors.sandbox.faults import parse
from routing_core.errors import LeadgateError


def test_spec_parsing_and_errors() -> None:
    rules = parse("salesforce.query:429@0.1,hubspot.batch_update:503@0.05,"
                  "salesforce.*:expire_session@call=50,hubspot.*:slow=2.5@calls=3-4,"
                  "*:drop@every=7,salesforce.collections_update:record_error@first=2")
    assert [(r.target, r.kind, r.trigger) for r in rules] == [
        ("salesforce.query", "429", "rate"), ("hubspot.batch_update", "503", "rate"),
        ("salesforce.*", "expire_session", "call"), ("hubspot.*", "slow", "calls"),
        ("*", "drop", "every"), ("salesforce.collections_update", "record_error", "first")]
    assert rules[3].arg == 2.5 and (rules[3].a, rules[3].b) == (3, 4)
    for bad in ("salesforce.query", "x:explode", "x:429@2", "x:429@sometimes=3"):
        with pytest.raises(LeadgateError) as e:
            parse(bad)
        assert "fix:" in str(e.value) and "\n" not in str(e.value)


def test_same_seed_same_faults() -> None:
    def fired(seed: int) -> list[bool]:
        f = Faults("salesforce.query:503@0.3", seed)
        return [bool(f.call_faults("salesforce.query")) for _ in range(200)]

    assert fired(1) == fired(1) and fired(1) != fired(2)
    assert 30 < sum(fired(1)) < 90


def test_salesforce_status_faults(sb: Sandbox, sf: Any) -> None:
    sb.faults = "salesforce.query:503@call=1,salesforce.query:rate_limit@call=2,salesforce.query:500@call=3"
    with pytest.raises(SalesforceGeneralError) as e:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert e.value.status == 503 and e.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    with pytest.raises(SalesforceRefusedRequest) as e2:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert e2.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    with pytest.raises(SalesforceGeneralError) as e:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert e.value.status == 500 and e.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1
    c = sb.counts()["salesforce.query"]
    assert c["fault.503"] == 1 and c["status.503"] == 1 and c["ok"] == 1 and c["calls"] == 4


def test_hubspot_status_faults(sb: Sandbox, hs: Any) -> None:
    sb.faults = "hubspot.search:429@call=1,hubspot.search:503@call=2"
    with pytest.raises(ApiException) as e:
        hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1})
    body = json.loads(e.value.body)
    assert e.value.status == 429 and body["errorType"] == "RATE_LIMIT" and body["policyName"]
    with pytest.raises(ServiceException) as e3:
        hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1})
    assert e3.value.status == 503


def test_slow_response_passes_a_timeout(sb: Sandbox) -> None:
    sb.faults = "salesforce.limits:slow=1.5@call=1"
    s = sb.requests_session()
    url = f"{sb.salesforce_instance_url}/services/data/v59.0/limits/"
    auth = {"Authorization": f"Bearer {sb.salesforce_session_id}"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.get(url, headers=auth, timeout=0.5)
    assert s.get(url, headers=auth, timeout=5).status_code == 200


def test_dropped_connection(sb: Sandbox, sf: Any, hs: Any) -> None:
    sb.faults = "salesforce.query:drop@call=1,hubspot.search:drop@call=1"
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1
    import urllib3

    with pytest.raises((urllib3.exceptions.HTTPError, ApiException)):
        hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1})
    assert sb.counts()["hubspot.search"]["fault.drop"] == 1


def test_expired_session_mid_run(sb: Sandbox, sf: Any) -> None:
    sb.faults = "salesforce.*:expire_session@call=3"
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceExpiredSession) as e:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert e.value.content == [{"message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):  # stays expired: the session is gone
        sf.query("SELECT Id FROM Lead LIMIT 1")
    # a client that can log in again recovers by itself
    c = sb.salesforce_credentials
    from simple_salesforce import Salesforce

    fresh = Salesforce(username=c["username"], password=c["password"],
                       consumer_key=c["client_id"], consumer_secret=c["client_secret"],
                       domain=c["domain"], session=sb.requests_session())
    sb.faults = "salesforce.query:expire_session@call=1"
    assert fresh.query("SELECT COUNT() FROM Lead")["totalSize"] == 2500


def test_salesforce_record_errors_unable_to_lock_row(sb: Sandbox, sf: Any) -> None:
    sb.faults = "salesforce.collections_update:record_error@0.25"
    t = sb.store.leads
    res = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "id": t.id_of(i), "LeadGate_Status__c": "assigned"}
        for i in range(200)]})
    failed = [r for r in res if not r["success"]]
    assert 20 < len(failed) < 90
    assert {r["errors"][0]["statusCode"] for r in failed} == {"UNABLE_TO_LOCK_ROW"}
    assert sum(1 for i in range(200) if t.get(i, "LeadGate_Status__c")) == 200 - len(failed)


def test_hubspot_record_errors_207(sb: Sandbox, hs: Any) -> None:
    sb.faults = "hubspot.batch_update:record_error@call=1"
    t = sb.store.contacts
    res = hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": t.id_of(i), "objectWriteTraceId": str(i),
                    "properties": {"leadgate_status": "assigned"}} for i in range(10)]})
    assert type(res) is BatchResponseSimplePublicObjectWithErrors
    assert len(res.results) == 9 and len(res.errors[0].context["ids"]) == 1
    assert res.errors[0].category == "CONFLICT"
    sb.faults = "hubspot.batch_update:record_error@call=1"  # without trace ids: all or none
    with pytest.raises(ApiException) as e:
        hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": t.id_of(i), "properties": {"leadgate_status": "refused"}}
                       for i in range(10)]})
    assert e.value.status == 409
    assert sum(1 for i in range(10) if t.get(i, "leadgate_status") == "refused") == 0


def test_owner_changes_between_read_and_write(sb: Sandbox, sf: Any, hs: Any) -> None:
    sb.faults = "salesforce.query:owner_change@call=1,hubspot.search:owner_change@call=1"
    q = sf.query("SELECT Id, OwnerId FROM Lead WHERE OwnerId = "  # noqa: S608
                 f"'{sb.salesforce_intake_queue_id}' LIMIT 50")
    [(crm, rid, old, new)] = sb.store.owner_changes
    assert crm == "salesforce" and old == sb.salesforce_intake_queue_id
    read = {r["Id"]: r["OwnerId"] for r in q["records"]}
    assert read[rid] == old  # leadgate saw the old owner...
    now = sf.query(f"SELECT OwnerId FROM Lead WHERE Id = '{rid}'")["records"][0]  # noqa: S608
    assert now["OwnerId"] == new != old  # ...a person has changed it since
    hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 20})
    assert sb.store.owner_changes[1][0] == "hubspot"
    assert sb.store.origins["salesforce:person:Rita Revops"] == 1


def test_faults_switch_at_runtime_per_endpoint(sb: Sandbox, sf: Any) -> None:
    sb.faults = "salesforce.limits:503"
    with pytest.raises(SalesforceGeneralError):
        sf.limits()
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1  # other endpoints fine
    sb.faults = None
    assert sf.limits()["DailyApiRequests"]["Max"] == 100_000


def test_hubspot_slow_response_passes_a_timeout(sb: Sandbox, hs: Any) -> None:
    import urllib3

    sb.faults = "hubspot.search:slow=1.5@call=1"
    with pytest.raises(urllib3.exceptions.HTTPError):  # ReadTimeoutError
        hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1},
                                             _request_timeout=0.5)
    assert hs.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1},
                                                _request_timeout=5).total == 2500


def test_same_seed_same_failing_records_across_sandboxes() -> None:
    def failed_ids(seed: int) -> list[str]:
        with Sandbox(seed=seed, leads=300, install_leadgate_fields=True,
                     faults="salesforce.collections_update:record_error@0.2") as box:
            t = box.store.leads
            res = box.salesforce_client().restful("composite/sobjects", method="PATCH", json={
                "records": [{"attributes": {"type": "Lead"}, "id": t.id_of(i),
                             "LeadGate_Status__c": "x"} for i in range(200)]})
            return [t.id_of(i) for i, r in enumerate(res) if not r["success"]]

    first = failed_ids(11)
    assert first == failed_ids(11) and first != failed_ids(12) and first
