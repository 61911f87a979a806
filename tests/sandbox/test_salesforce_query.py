"""SOQL query and paging, driven through simple-salesforce over HTTPS.

Docs: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md
(batches of up to 2,000 records, totalSize/done/nextRecordsUrl/records) and
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
(SOQL syntax: quoting and escapes, null semantics, AND/OR needing parentheses).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.sandbox import Sandbox
from connectors.sandbox.wire import ms_to_sf

FIELDS = "Id, FirstName, LastName, Email, Country, OwnerId, Status, SystemModstamp"


def _error(exc: SalesforceMalformedRequest) -> dict[str, Any]:
    content = exc.content
    assert isinstance(content, list) and len(content) == 1  # Salesforce: a LIST of errors
    return content[0]


def test_paging_2000_with_next_records_url_and_all_records_once(sb: Sandbox, sf: Any) -> None:
    first = sf.query(f"SELECT {FIELDS} FROM Lead")  # noqa: S608
    assert first["totalSize"] == 2500 and first["done"] is False
    assert len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-2000", first["nextRecordsUrl"])
    rec = first["records"][0]
    assert rec["attributes"] == {"type": "Lead",
                                 "url": f"/services/data/v59.0/sobjects/Lead/{rec['Id']}"}
    assert list(rec)[1:] == [f.strip() for f in FIELDS.split(",")]  # SELECT order kept
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", rec["SystemModstamp"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert len(second["records"]) == 500
    ids = [r["Id"] for r in first["records"] + second["records"]]
    assert len(set(ids)) == 2500
    assert sum(1 for _ in sf.query_all_iter("SELECT Id FROM Lead")) == 2500
    c = sb.counts()
    assert c["salesforce.query_more"]["calls"] == 2 and c["salesforce.query"]["calls"] == 2


def test_query_options_batch_size(sb: Sandbox, sf: Any) -> None:
    r = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"})
    assert len(r["records"]) == 200 and r["nextRecordsUrl"].endswith("-200")


def test_unknown_query_locator(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query_more("/services/data/v59.0/query/01g5g0000000999AAA-2000",
                      identifier_is_url=True)
    assert _error(e.value)["errorCode"] == "INVALID_QUERY_LOCATOR"


def _brute(sb: Sandbox, pred: Any) -> list[str]:
    t = sb.store.leads
    return [t.id_of(i) for i in range(t.n) if pred(t.record(i, [*t.cols, "Country", "FirstName",
                                                                  "LastName", "Email",
                                                                  "Investable_Assets__c",
                                                                  "Phone_Consent__c"]))]


def test_intake_query_matches_brute_force(sb: Sandbox, sf: Any) -> None:
    queue = sb.salesforce_intake_queue_id
    # leadgate's intake: owned by the Lead Intake queue and not yet routed
    got = [r["Id"] for r in sf.query_all_iter(
        f"SELECT Id FROM Lead WHERE OwnerId = '{queue}' AND LeadGate_Status__c = null "  # noqa: S608
        "ORDER BY SystemModstamp, Id")]
    want = _brute(sb, lambda r: r["OwnerId"] == queue and r["LeadGate_Status__c"] is None)
    assert got == want and 0 < len(got) < 2500


def test_datetime_bound_or_in_like_not(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    cut = t.get(1200, "SystemModstamp")
    q = (f"SELECT Id FROM Lead WHERE SystemModstamp >= {ms_to_sf(cut).replace('.000+0000', 'Z')} "  # noqa: S608
         "AND (Country IN ('united kingdom', 'UK') OR Country LIKE 'Germ%') "
         "AND (NOT Phone_Consent__c = true) ORDER BY SystemModstamp DESC, Id DESC")
    got = [r["Id"] for r in sf.query_all(q)["records"]]
    want = _brute(sb, lambda r: r["SystemModstamp"] >= cut
                  and (r["Country"] or "").lower() in ("united kingdom", "uk", "germany")
                  and r["Phone_Consent__c"] is not True)
    assert sorted(got) == sorted(want) and got == sorted(got, key=lambda i: (
        t.get(t.index_of(i), "SystemModstamp"), i), reverse=True)
    assert got


def test_not_equal_matches_null_as_in_soql(sb: Sandbox, sf: Any) -> None:
    got = sf.query("SELECT COUNT() FROM Lead WHERE Appropriateness__c != 'Passed'")["totalSize"]
    want = len(_brute_field(sb, "Appropriateness__c", lambda v: v != "Passed"))
    nulls = len(_brute_field(sb, "Appropriateness__c", lambda v: v is None))
    assert got == want and nulls > 0  # nulls included


def _brute_field(sb: Sandbox, field: str, pred: Any) -> list[int]:
    t = sb.store.leads
    return [i for i in range(t.n) if pred(t.get(i, field))]


def test_string_escapes_and_case_insensitive_equality(sb: Sandbox, sf: Any) -> None:
    i = 17
    sf.Lead.update(sb.store.leads.id_of(i), {"LastName": "O'Brien \\ Søn"})
    r = sf.query("SELECT Id, LastName FROM Lead WHERE LastName = 'o\\'brien \\\\ SØN'")
    assert [x["Id"] for x in r["records"]] == [sb.store.leads.id_of(i)]
    assert r["records"][0]["LastName"] == "O'Brien \\ Søn"


def test_limit_offset_and_order_nulls(sb: Sandbox, sf: Any) -> None:
    r = sf.query("SELECT Id, Appropriateness__c FROM Lead ORDER BY Appropriateness__c DESC "
                 "NULLS LAST, Id LIMIT 5 OFFSET 3")
    assert r["totalSize"] == 5 and r["done"] is True
    assert all(x["Appropriateness__c"] == "Passed" for x in r["records"])
    r = sf.query("SELECT Id, Appropriateness__c FROM Lead ORDER BY Appropriateness__c LIMIT 3")
    assert [x["Appropriateness__c"] for x in r["records"]] == [None, None, None]


def test_users_groups_queues(sb: Sandbox, sf: Any) -> None:
    q = sf.query("SELECT Id, Name, DeveloperName FROM Group WHERE Type = 'Queue' "
                 "ORDER BY DeveloperName")["records"]
    assert [(x["Name"], x["DeveloperName"]) for x in q] == [
        ("Compliance Review", "Compliance_Review"), ("Lead Intake", "Lead_Intake")]
    qs = sf.query("SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Lead'")["records"]
    assert {x["QueueId"] for x in qs} == {x["Id"] for x in q}
    users = sf.query("SELECT Id, Name, Email, IsActive FROM User WHERE IsActive = true")
    rep_ids = {r.salesforce_id for r in sb.reps}
    assert rep_ids <= {u["Id"] for u in users["records"]}


@pytest.mark.parametrize(("soql", "code", "message"), [
    ("SELECT Id, Nope__c FROM Lead", "INVALID_FIELD", "No such column 'Nope__c' on entity 'Lead'"),
    ("SELECT Id FROM Leed", "INVALID_TYPE", "sObject type 'Leed' is not supported"),
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE Status = 'a' AND Status = 'b' OR Status = 'c'",
     "MALFORMED_QUERY", "unexpected token: 'OR'"),
    ("SELECT Id FROM Lead WHERE SystemModstamp > '2026-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE LastName = O'Brien", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:3", "MALFORMED_QUERY",
     "unexpected token"),
    ("SELECT Owner.Name FROM Lead", "INVALID_FIELD", "Didn't understand relationship 'Owner'"),
    ("SELECT Id FROM Lead GROUP BY Status", "MALFORMED_QUERY", "unexpected token: 'GROUP'"),
    ("SELECT Id FROM Lead WHERE LeadGate_Outreach__c = 'x'", "INVALID_FIELD",
     "can not be filtered"),
])
def test_unsupported_or_wrong_queries_get_salesforce_errors(sf: Any, soql: str, code: str,
                                                            message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query(soql)
    err = _error(e.value)
    assert err["errorCode"] == code
    assert message in err["message"]
    assert "ERROR at Row:1:Column:" in err["message"] or code == "MALFORMED_QUERY"


def test_leadgate_fields_do_not_exist_before_install() -> None:
    with Sandbox(seed=1, leads=10) as box:
        sf = box.salesforce_client()
        with pytest.raises(SalesforceMalformedRequest) as e:
            sf.query("SELECT Id FROM Lead WHERE LeadGate_Status__c = null")
        assert _error(e.value)["errorCode"] == "INVALID_FIELD"


def test_id_in_and_keyset_cursor_shapes_match_brute_force(sb: Sandbox, sf: Any) -> None:
    t = sb.store.leads
    wanted = [t.id_of(i) for i in (5, 77, 1999, 2400)] + ["00Q5g0000099999AAA"]
    ids15 = ", ".join(f"'{x[:15]}'" for x in wanted)
    got = sf.query(f"SELECT Id, OwnerId FROM Lead WHERE Id IN ({ids15})")  # noqa: S608
    assert [r["Id"] for r in got["records"]] == wanted[:4]
    # the connector's keyset cursor: (SystemModstamp, Id) strictly after a position
    cut_i = 1500
    stamp = ms_to_sf(t.get(cut_i, "SystemModstamp")).replace(".000+0000", "Z")
    q = (f"SELECT Id FROM Lead WHERE OwnerId = '{sb.salesforce_intake_queue_id}' AND "  # noqa: S608
         f"(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > '{t.id_of(cut_i)}'))"
         " ORDER BY SystemModstamp ASC, Id ASC")
    got_ids = [r["Id"] for r in sf.query_all(q)["records"]]
    want = [t.id_of(i) for i in range(cut_i + 1, t.n)
            if t.get(i, "OwnerId") == sb.salesforce_intake_queue_id]
    assert got_ids == want and want


def test_id_lookups_do_not_scan_a_big_table() -> None:
    import time

    with Sandbox(seed=1, leads=200_000) as box:
        sf = box.salesforce_client()
        t = box.store.leads
        ids = ", ".join(f"'{t.id_of(i)}'" for i in range(0, 200_000, 1000))
        t0 = time.perf_counter()
        for _ in range(5):
            r = sf.query(f"SELECT Id, OwnerId FROM Lead WHERE Id IN ({ids})")  # noqa: S608
        assert r["totalSize"] == 200
        assert (time.perf_counter() - t0) / 5 < 0.5  # a scan of 200,000 ids takes seconds


def test_next_page_shows_writes_made_after_the_previous_page(sb: Sandbox, sf: Any) -> None:
    """The sandbox renders page 2 ahead while the client reads page 1; a write in between
    must still show (Salesforce returns current values on queryMore)."""
    first = sf.query("SELECT Id, City FROM Lead ORDER BY Id")
    t = sb.store.leads
    target = t.id_of(2100)
    sf.Lead.update(target, {"City": "Written Between Pages"})
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    got = {r["Id"]: r["City"] for r in second["records"]}
    assert got[target] == "Written Between Pages"
    untouched = t.id_of(2200)
    assert got[untouched] == t.get(2200, "City")


def test_installed_field_reads_what_was_written_without_generating_the_record(
        sb: Sandbox, sf: Any) -> None:
    """The owner re-read (Id, OwnerId, the decision id field) must not regenerate each lead:
    leadgate's installed fields hold only what writes set."""
    leads = sb.store.leads
    assert "LeadGate_Decision_Id__c" not in leads.generated and "FirstName" in leads.generated
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 3")["records"]]
    res = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "id": ids[0], "LeadGate_Decision_Id__c": "dec-1"}]})
    assert res[0]["success"] is True
    generated = 0
    make = leads._cold

    def counting(i: int) -> dict[str, Any]:
        nonlocal generated
        generated += 1
        return make(i)

    leads._cold = counting
    leads._cache_i = -1
    in_ids = ", ".join(f"'{i}'" for i in ids)
    rows = sf.query(f"SELECT Id, OwnerId, LeadGate_Decision_Id__c FROM Lead "  # noqa: S608
                    f"WHERE Id IN ({in_ids})")["records"]
    assert [r["LeadGate_Decision_Id__c"] for r in rows] == ["dec-1", None, None]
    assert generated == 0
    # with a generated field beside it, each record is generated once and both parts agree
    rows = sf.query(f"SELECT Id, FirstName, LeadGate_Decision_Id__c FROM Lead "  # noqa: S608
                    f"WHERE Id IN ({in_ids})")["records"]
    assert [r["LeadGate_Decision_Id__c"] for r in rows] == ["dec-1", None, None]
    assert [r["FirstName"] for r in rows] == [make(leads.index_of(i))["FirstName"] for i in ids]
    assert generated == 3
    assert leads.get(leads.index_of(ids[0]), "LeadGate_Decision_Id__c") == "dec-1"
    assert leads.record(leads.index_of(ids[1]), ["LeadGate_Decision_Id__c"]) == {
        "LeadGate_Decision_Id__c": None}
