"""HubSpot CRM v3 through hubspot-api-client 12 over real HTTP.

Docs: https://developers.hubspot.com/docs/api/crm/search (filterGroups/filters/operators,
sorts, `after` paging, at most 10,000 results per query, 200 per page, no rate-limit
headers and its own lower rate limit), https://developers.hubspot.com/docs/api/crm/contacts
(batch read/update: at most 100 inputs; 207 multi-status with errors),
https://developers.hubspot.com/docs/api/crm/owners, https://developers.hubspot.com/docs/api/crm/properties,
https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (429 body with
errorType RATE_LIMIT and policyName; X-HubSpot-RateLimit-* headers).
"""

from __future__ import annotations

from typing import Any

import pytest
from hubspot.crm.contacts import BatchResponseSimplePublicObject
from hubspot.crm.contacts.exceptions import ApiException, UnauthorizedException
from hubspot.crm.contacts.models import BatchResponseSimplePublicObjectWithErrors
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from connectors.sandbox import Sandbox
from connectors.sandbox.wire import ms_to_iso


def _search(hs: Any, body: dict[str, Any], **kw: Any) -> Any:
    return hs.crm.contacts.search_api.do_search(public_object_search_request=body, **kw)


INTAKE = [{"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"},
                       {"propertyName": "leadgate_status", "operator": "NOT_HAS_PROPERTY"}]}]


def test_search_paging_matches_brute_force(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    want = [t.id_of(i) for i in range(t.n)
            if t.get(i, "lifecyclestage") == "lead" and t.get(i, "leadgate_status") is None]
    got: list[str] = []
    after = None
    while True:
        body = {"filterGroups": INTAKE, "limit": 200, "properties": ["email", "country"],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]}
        if after:
            body["after"] = after
        page = _search(hs, body)
        assert page.total == len(want)
        got += [r.id for r in page.results]
        assert all(set(r.properties) == {"email", "country", "hs_object_id", "createdate",
                                         "lastmodifieddate"} for r in page.results)
        if not page.paging:
            break
        after = page.paging.next.after
    assert got == want


def test_search_operators(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    cut = t.get(1000, "lastmodifieddate")
    body = {"filterGroups": [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(cut)},
                     {"propertyName": "country", "operator": "IN",
                      "values": ["germany", "deutschland"]}]},
        {"filters": [{"propertyName": "investable_assets", "operator": "GT",
                      "value": "5000000"},
                     {"propertyName": "appropriateness", "operator": "NEQ", "value": "Failed"},
                     {"propertyName": "hubspot_owner_id", "operator": "HAS_PROPERTY"}]}],
        "limit": 200, "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]}
    want = [t.id_of(i) for i in range(t.n)
            if (t.get(i, "lastmodifieddate") >= cut
                and (t.get(i, "country") or "").lower() in ("germany", "deutschland"))
            or ((t.get(i, "investable_assets") or 0) > 5_000_000
                and t.get(i, "appropriateness") != "Failed"
                and t.get(i, "hubspot_owner_id") is not None)]
    page = _search(hs, body)
    assert page.total == len(want) > 0
    assert [r.id for r in page.results] == sorted(want, key=int, reverse=True)[:200]


def test_search_cap_at_10000_and_no_rate_limit_headers() -> None:
    with Sandbox(seed=3, leads=10, contacts=10_050) as box:
        hs = box.hubspot_client()
        body: dict[str, Any] = {"limit": 100, "after": "9900"}
        data, status, headers = hs.crm.contacts.search_api.do_search_with_http_info(
            public_object_search_request=body)
        assert status == 200 and data.total == 10_050 and len(data.results) == 100
        assert data.paging.next.after == "10000"  # HubSpot offers it; asking for it fails
        assert not [h for h in headers if h.lower().startswith("x-hubspot-ratelimit")]
        with pytest.raises(ApiException) as e:
            _search(hs, {"limit": 100, "after": "10000"})
        assert e.value.status == 400
        import json

        err = json.loads(e.value.body)
        assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR"
        assert err["correlationId"]
        with pytest.raises(ApiException) as e:
            _search(hs, {"limit": 201})
        assert e.value.status == 400


def test_batch_read_200_and_207(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    ok = hs.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={
        "inputs": [{"id": t.id_of(1)}, {"id": t.id_of(2)}], "properties": ["email"],
        "propertiesWithHistory": []})
    assert type(ok) is BatchResponseSimplePublicObject and len(ok.results) == 2
    mixed = hs.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id={
        "inputs": [{"id": t.id_of(1)}, {"id": "1"}], "properties": ["email"],
        "propertiesWithHistory": []})
    assert type(mixed) is BatchResponseSimplePublicObjectWithErrors
    assert mixed.num_errors == 1 and mixed.errors[0].category == "OBJECT_NOT_FOUND"
    assert mixed.errors[0].context == {"ids": ["1"]}


def test_batch_update_statuses_and_validation(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    rep = sb.reps[0].hubspot_id
    before = t.get(5, "lastmodifieddate")
    ok = hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": t.id_of(5), "properties": {"hubspot_owner_id": rep,
                                                     "leadgate_status": "assigned"}}]})
    assert type(ok) is BatchResponseSimplePublicObject and ok.status == "COMPLETE"
    assert ok.results[0].properties["hubspot_owner_id"] == rep
    assert t.get(5, "leadgate_status") == "assigned" and t.get(5, "lastmodifieddate") > before
    # without a trace id per input, a contact that cannot be written refuses the whole batch
    with pytest.raises(ApiException) as e:
        hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": t.id_of(6), "properties": {"leadgate_status": "refused"}},
                       {"id": "42", "properties": {"leadgate_status": "refused"}}]})
    assert e.value.status == 404 and "OBJECT_NOT_FOUND" in e.value.body
    assert t.get(6, "leadgate_status") is None
    # with them, the answer is per record (207): what could be written is
    mixed = hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": t.id_of(6), "objectWriteTraceId": "a",
                    "properties": {"leadgate_status": "refused"}},
                   {"id": "42", "objectWriteTraceId": "b",
                    "properties": {"leadgate_status": "refused"}}]})
    assert type(mixed) is BatchResponseSimplePublicObjectWithErrors
    assert [r.id for r in mixed.results] == [t.id_of(6)] and mixed.errors[0].context == {
        "ids": ["42"]}
    assert t.get(6, "leadgate_status") == "refused"
    for props in ({"nope": "x"}, {"hubspot_owner_id": "123"}, {"customer_type": "Whale"},
                  {"createdate": "2026-01-01T00:00:00Z"}, {"investable_assets": "lots"}):
        with pytest.raises(ApiException) as e:
            hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
                "inputs": [{"id": t.id_of(7), "properties": props}]})
        assert e.value.status == 400, props
    assert t.get(7, "leadgate_status") is None  # a bad batch writes nothing
    with pytest.raises(ApiException) as e:
        hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": t.id_of(i), "properties": {"leadgate_status": "x"}}
                       for i in range(101)]})
    assert e.value.status == 400
    headers = {k.lower(): v for k, v in e.value.headers.items()}
    for name in ("daily", "daily-remaining", "interval-milliseconds", "max", "remaining",
                 "secondly", "secondly-remaining"):
        assert headers[f"x-hubspot-ratelimit-{name}"].isdigit(), name


def test_owners_paging(sb: Sandbox, hs: Any) -> None:
    first = hs.crm.owners.owners_api.get_page(limit=2)
    assert len(first.results) == 2 and first.paging.next.after == "2"
    every = hs.crm.owners.get_all()
    ids = {o.id for o in every}
    assert {r.hubspot_id for r in sb.reps} | {sb.hubspot_review_owner_id} == ids
    one = hs.crm.owners.owners_api.get_page(email=sb.reps[0].email)
    assert [o.id for o in one.results] == [sb.reps[0].hubspot_id]
    # the demo's owners are the example policy's reps, in their policy teams
    assert sb.hubspot_review_owner_id == "90001"
    first = next(o for o in every if o.id == sb.reps[0].hubspot_id)
    assert first.teams and first.teams[0].id == sb.reps[0].hubspot_teams[0][0]


def test_properties_and_groups_read_create() -> None:
    with Sandbox(seed=4, leads=3) as box:
        hs = box.hubspot_client()
        names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
        assert {"customer_type", "lifecyclestage"} <= names and "leadgate_status" not in names
        g = hs.crm.properties.groups_api.create("contacts", PropertyGroupCreate(
            name="leadgate", label="LeadGate"))
        assert g.name == "leadgate"
        p = hs.crm.properties.core_api.create("contacts", PropertyCreate(
            name="leadgate_status", label="LeadGate Status", type="string", field_type="text",
            group_name="leadgate"))
        assert p.name == "leadgate_status" and p.group_name == "leadgate"
        assert hs.crm.properties.core_api.get_by_name("contacts", "leadgate_status").label
        from hubspot.crm.properties.exceptions import ApiException as PropsApiException

        with pytest.raises(PropsApiException) as e:
            hs.crm.properties.core_api.create("contacts", PropertyCreate(
                name="leadgate_status", label="x", type="string", field_type="text",
                group_name="leadgate"))
        assert e.value.status == 409
        # the new property is searchable and writable at once
        page = _search(hs, {"filterGroups": [{"filters": [
            {"propertyName": "leadgate_status", "operator": "NOT_HAS_PROPERTY"}]}]})
        assert page.total == 3
        groups = [g.name for g in hs.crm.properties.groups_api.get_all("contacts").results]
        assert "leadgate" in groups


def test_401_body(sb: Sandbox) -> None:
    from hubspot import HubSpot

    bad = HubSpot(access_token="pat-wrong", host=sb.hubspot_base_url)
    with pytest.raises(UnauthorizedException) as e:
        _search(bad, {"limit": 1})
    import json

    body = json.loads(e.value.body)
    assert body["category"] == "INVALID_AUTHENTICATION" and body["correlationId"]
    assert body["status"] == "error"


def test_rate_limits_when_enforced() -> None:
    with Sandbox(seed=5, leads=3, enforce_rate_limits=True) as box:
        hs = box.hubspot_client()
        _, _, headers = hs.crm.owners.owners_api.get_page_with_http_info()
        assert headers["X-HubSpot-RateLimit-Max"] == "190"  # a Professional portal's limits
        assert headers["X-HubSpot-RateLimit-Daily"] == "1000000"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        box.rate_limits.search_per_second = 2
        box.rate_limits.burst = 3
        import json

        statuses = []
        for _ in range(6):
            try:
                _search(hs, {"limit": 1})
                statuses.append(200)
            except ApiException as e:
                statuses.append(e.status)
                body = json.loads(e.body)
        assert 429 in statuses
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "SECONDLY"
        assert {"status", "message", "correlationId"} <= set(body)
        from hubspot.crm.owners.exceptions import ApiException as OwnersApiException

        with pytest.raises(OwnersApiException) as e:
            for _ in range(5):
                hs.crm.owners.owners_api.get_page()
        assert e.value.status == 429
        assert json.loads(e.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
        assert e.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_datetime_output_and_filter_formats(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    ms = t.get(3, "lastmodifieddate")
    page = _search(hs, {"filterGroups": [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "EQ", "value": ms_to_iso(ms)}]}]})
    assert [r.id for r in page.results] == [t.id_of(3)]
    assert page.results[0].properties["lastmodifieddate"] == ms_to_iso(ms)


def test_create_contact_dedups_by_email_and_enquiry_merges(sb: Sandbox, hs: Any) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    made = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "email": "new.client@example.com", "firstname": "New", "lastname": "Client"}))
    assert made.properties["email"] == "new.client@example.com"
    with pytest.raises(ApiException) as e:
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={
            "email": "NEW.client@example.com"}))
    import json

    body = json.loads(e.value.body)
    assert e.value.status == 409 and body["message"] == f"Contact already exists. Existing ID: {made.id}"
    t = sb.store.contacts
    i = t.index_of(made.id)
    hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
        "inputs": [{"id": made.id, "properties": {"leadgate_status": "assigned"}}]})
    before = t.get(i, "recent_conversion_date")
    cid, created = sb.enquire(email="new.client@example.com", product_interest="Term Life")
    assert (cid, created) == (made.id, False)
    assert t.get(i, "recent_conversion_date") > before
    assert t.get(i, "num_conversion_events") == 2
    assert t.get(i, "leadgate_status") == "assigned"  # a custom property: untouched by forms
    page = hs.crm.contacts.search_api.do_search(public_object_search_request={
        "filterGroups": [{"filters": [{"propertyName": "recent_conversion_date",
                                       "operator": "GT", "value": str(before)}]}],
        "properties": ["num_conversion_events"]})
    assert [r.id for r in page.results] == [made.id]
    assert page.results[0].properties["num_conversion_events"] == "2"


def test_filter_on_record_id_compares_numbers(sb: Sandbox, hs: Any) -> None:
    t = sb.store.contacts
    page = hs.crm.contacts.search_api.do_search(public_object_search_request={
        "filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "GT",
                                       "value": t.id_of(t.n - 3)}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]})
    assert [r.id for r in page.results] == [t.id_of(t.n - 2), t.id_of(t.n - 1)]


def test_single_contact_read_and_update(sb: Sandbox, hs: Any) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInput
    from hubspot.crm.contacts.exceptions import NotFoundException

    t = sb.store.contacts
    got = hs.crm.contacts.basic_api.get_by_id(t.id_of(4), properties=["email", "country"])
    assert got.properties["email"] == t.get(4, "email")
    upd = hs.crm.contacts.basic_api.update(t.id_of(4), SimplePublicObjectInput(
        properties={"leadgate_status": "review"}))
    assert upd.properties["leadgate_status"] == "review" == t.get(4, "leadgate_status")
    with pytest.raises(NotFoundException):
        hs.crm.contacts.basic_api.get_by_id("1")
