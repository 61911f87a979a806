"""Writes: sObject Collections update, single-record PATCH, describe, Tooling API fields.

Docs: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-update.html
(up to 200 records; results in request order; 200 OK even when records fail; allOrNone),
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_update_fields.htm
(PATCH a record: 204 No Content),
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_calloptions.htm
(Sforce-Call-Options client=...),
https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
(CustomField: FullName + Metadata).
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.sandbox import Sandbox


def _rec(rid: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "id": rid, **fields}


def test_collections_update_mixed_results_in_request_order(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    rep = sb.reps[0].salesforce_id
    before = t.get(0, "SystemModstamp")
    records = [
        _rec(t.id_of(0), OwnerId=rep, LeadGate_Status__c="assigned",
             LeadGate_Reason__c="round robin"),
        _rec("00Q5g0000009999AAA", LeadGate_Status__c="assigned"),           # no such lead
        _rec("not-an-id", LeadGate_Status__c="assigned"),                    # malformed
        _rec(t.id_of(2), OwnerId=sb.store.inactive_user_id),                 # inactive owner
        _rec(t.id_of(3), LeadGate_Reason__c="x" * 300),                      # too long
        _rec(t.id_of(4), CurrencyIsoCode="XYZ"),                             # restricted picklist
        _rec(t.id_of(5), SystemModstamp="2026-01-01T00:00:00Z"),             # read-only
        _rec(t.id_of(6), OwnerId=sb.salesforce_review_queue_id,
             LeadGate_Status__c="refused"),
    ]
    res = sf.restful("composite/sobjects", method="PATCH",
                     json={"allOrNone": False, "records": records},
                     headers={"Sforce-Call-Options": "client=leadgate"})
    assert [r["success"] for r in res] == [True, False, False, False, False, False, False, True]
    assert res[0] == {"id": t.id_of(0), "success": True, "errors": []}
    assert all("id" not in r for r in res if not r["success"])  # failures carry no id
    codes = [r["errors"][0]["statusCode"] for r in res if not r["success"]]
    assert codes == ["ENTITY_IS_DELETED", "MALFORMED_ID", "INACTIVE_OWNER_OR_USER",
                     "STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                     "INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert res[4]["errors"][0]["fields"] == ["LeadGate_Reason__c"]
    assert set(res[4]["errors"][0]) == {"statusCode", "message", "fields"}
    # the write landed, SystemModstamp moved, and the origin was recorded
    assert t.get(0, "OwnerId") == rep and t.get(0, "LeadGate_Status__c") == "assigned"
    assert t.get(0, "SystemModstamp") > before
    assert t.get(6, "OwnerId") == sb.salesforce_review_queue_id
    assert sb.store.origins["salesforce:leadgate"] == 2
    again = sf.query("SELECT Id FROM Lead WHERE SystemModstamp > 2026-01-01T00:00:00Z")
    assert {r["Id"] for r in again["records"]} == {t.id_of(0), t.id_of(6)}  # own writes come back
    c = sb.counts()["salesforce.collections_update"]
    assert c["records_written"] == 2 and c["record_errors"] == 6 and c["ok"] == 1


def test_collections_update_all_fail_is_still_200(sb: Sandbox, sf: Any) -> None:
    res = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        _rec("00Q5g0000009999AAA", LeadGate_Status__c="x")]})
    assert res == [{"success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED",
                                                  "message": "entity is deleted", "fields": []}]}]


def test_all_or_none_rolls_back_everything(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    res = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        _rec(t.id_of(10), LeadGate_Status__c="assigned"),
        _rec(t.id_of(11), OwnerId=sb.store.inactive_user_id)]})
    assert [r["errors"][0]["statusCode"] for r in res] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INACTIVE_OWNER_OR_USER"]
    assert t.get(10, "LeadGate_Status__c") is None


def test_collections_limits_and_unknown_fields(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.restful("composite/sobjects", method="PATCH", json={"records": [
            _rec(t.id_of(i), LeadGate_Status__c="x") for i in range(201)]})
    assert e.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.restful("composite/sobjects", method="PATCH", json={"records": [
            _rec(t.id_of(1), Nope__c="x")]})
    assert e.value.content == [{"message": "No such column 'Nope__c' on sobject of type Lead",
                                "errorCode": "INVALID_FIELD"}]
    ok = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        _rec(t.id_of(i), LeadGate_Status__c="x") for i in range(200)]})
    assert len(ok) == 200 and all(r["success"] for r in ok)


def test_single_record_patch(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    assert sf.Lead.update(t.id_of(20), {"LeadGate_Status__c": "review",
                                        "LeadGate_Not_Before__c": "2026-03-01T09:00:00Z"}) == 204
    got = sf.Lead.get(t.id_of(20))
    assert got["LeadGate_Status__c"] == "review"
    assert got["LeadGate_Not_Before__c"] == "2026-03-01T09:00:00.000+0000"
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.Lead.update(t.id_of(20), {"OwnerId": sb.store.inactive_user_id})
    assert e.value.content[0]["errorCode"] == "INACTIVE_OWNER_OR_USER"


def test_describe_lead_has_picklists_and_leadgate_fields(sf: Any) -> None:
    d = sf.Lead.describe()
    fields = {f["name"]: f for f in d["fields"]}
    assert [v["value"] for v in fields["Customer_Type__c"]["picklistValues"]] == [
        "Retail Customer", "High Net Worth", "Professional Client", "Eligible Counterparty",
        "Institutional"]
    assert "Easy Saver" in [v["label"] for v in fields["Product_Interest__c"]["picklistValues"]]
    assert fields["SystemModstamp"]["type"] == "datetime" and not fields["SystemModstamp"][
        "updateable"]
    assert fields["LeadGate_Status__c"]["custom"] is True


def test_tooling_api_creates_custom_fields_once() -> None:
    with Sandbox(seed=2, leads=5) as box:
        sf = box.salesforce_client()
        names = {f["name"] for f in sf.Lead.describe()["fields"]}
        assert "LeadGate_Status__c" not in names
        res = sf.toolingexecute("sobjects/CustomField/", method="POST", data={
            "FullName": "Lead.LeadGate_Status__c",
            "Metadata": {"label": "LeadGate Status", "type": "Text", "length": 40}})
        assert res["success"] is True and res["id"].startswith("00N")
        assert "LeadGate_Status__c" in {f["name"] for f in sf.Lead.describe()["fields"]}
        found = sf.toolingexecute("query/?q=SELECT+Id,DeveloperName+FROM+CustomField+WHERE+"
                                  "TableEnumOrId='Lead'")
        assert [r["DeveloperName"] for r in found["records"]] == ["LeadGate_Status"]
        with pytest.raises(SalesforceMalformedRequest) as e:
            sf.toolingexecute("sobjects/CustomField/", method="POST", data={
                "FullName": "Lead.LeadGate_Status__c",
                "Metadata": {"label": "LeadGate Status", "type": "Text", "length": 40}})
        assert e.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
        # the new field is queryable and writable at once
        r = sf.query("SELECT Id FROM Lead WHERE LeadGate_Status__c = null")
        assert r["totalSize"] == 5


def test_create_lead_lands_in_intake(sb: Sandbox, sf: Any) -> None:
    made = sf.Lead.create({"LastName": "Nakamura", "Company": "Self-employed",
                           "Country": "Japan", "Product_Interest__c": "Easy Saver"})
    assert made["success"] is True and made["id"].startswith("00Q")
    got = sf.query(f"SELECT Id, OwnerId, Status FROM Lead WHERE Id = '{made['id']}'")  # noqa: S608
    assert got["records"][0]["OwnerId"] == sb.salesforce_intake_queue_id
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.Lead.create({"FirstName": "No"})
    assert e.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    rid = sb.add_lead(LastName="Web", Email="web@example.com")
    n = sf.query("SELECT COUNT() FROM Lead WHERE LeadGate_Status__c = null AND "
                 "CreatedDate > 2026-01-01T00:00:00Z")["totalSize"]
    assert n == 2 and rid.startswith("00Q")


def test_an_active_assignment_rule_reassigns_an_update_unless_told_not_to(
        sb: Sandbox, sf: Any) -> None:
    """REST API Developer Guide, "Assignment Rule Header" (headers-autoassign): the active
    assignment rules run on a Lead update unless it says Sforce-Auto-Assign: FALSE (TRUE when
    the header is absent); subrequests inherit the Composite request's headers [REQ]."""
    t = sb.store.leads
    rep = sb.reps[0].salesforce_id
    sb.store.lead_assignment_rule = sb.store.intake_queue_id
    sf.Lead.update(t.id_of(30), {"OwnerId": rep})
    assert t.get(30, "OwnerId") == sb.store.intake_queue_id  # the rule moved it
    sf.Lead.update(t.id_of(31), {"OwnerId": rep}, headers={"Sforce-Auto-Assign": "false"})
    assert t.get(31, "OwnerId") == rep
    body = {"allOrNone": False, "compositeRequest": [{
        "method": "PATCH", "url": "/services/data/v59.0/composite/sobjects", "referenceId": "r",
        "body": {"allOrNone": False, "records": [_rec(t.id_of(32), OwnerId=rep)]}}]}
    sf.restful("composite", method="POST", json=body, headers={"Sforce-Auto-Assign": "FALSE"})
    assert t.get(32, "OwnerId") == rep
    sf.restful("composite", method="POST", json=body)
    assert t.get(32, "OwnerId") == sb.store.intake_queue_id
