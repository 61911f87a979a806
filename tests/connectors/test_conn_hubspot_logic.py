"""HubSpot adapter logic against an in-memory stand-in for the SDK's API objects.

The stand-in answers like CRM v3 search (filters, one sort, limit up to 200, offsets that stop at
10,000 results) and batch read/update (200 or 207 with errors naming ids). The same behaviour is
tested end to end over HTTP against the sandbox CRM in test_conn_sandbox_*.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors import open_connector
from connectors.base import Cursor, Outcome
from connectors.config import parse_config

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class Obj:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class SearchCapError(Exception):
    pass


class FakePortal:
    """contacts: id -> properties (strings, like HubSpot)."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, str]] = {}
        self.searches: list[dict[str, Any]] = []
        self.updates: list[list[dict[str, Any]]] = []
        self.reads = 0
        self.fail_ids: set[str] = set()
        self.refuse_whole_batch = False  # one bad input fails the batch (no 207)

    def add(self, n: int, *, at: datetime = T0, step_ms: int = 1, start: int = 1) -> None:
        for i in range(start, start + n):
            stamp = at + timedelta(milliseconds=step_ms * (i - start))
            self.contacts[str(i)] = {
                "hs_object_id": str(i), "lastmodifieddate": stamp.isoformat().replace(
                    "+00:00", "Z"), "lifecyclestage": "lead", "firstname": "A",
                "lastname": f"L{i}", "country": "GB", "customer_type": "Retail Customer",
                "product_interest": "Easy Saver", "hubspot_owner_id": ""}

    # --- search
    @staticmethod
    def _value(prop: str, raw: str) -> Any:
        if prop in ("lastmodifieddate", "recent_conversion_date"):
            return int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * 1000)
        if prop == "hs_object_id":
            return int(raw)
        return raw

    def _match(self, props: dict[str, str], f: dict[str, Any]) -> bool:
        name, op = f["propertyName"], f["operator"]
        have = props.get(name) or ""
        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            return (have != "") == (op == "HAS_PROPERTY")
        if have == "":
            return False
        left, right = self._value(name, have), self._value(name, f["value"]) \
            if name not in ("lastmodifieddate", "recent_conversion_date") else int(f["value"])
        return {"EQ": left == right, "GT": left > right, "GTE": left >= right}[op]

    def do_search_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.searches.append(body)
        after, limit = int(body.get("after") or 0), body["limit"]
        assert limit <= 200
        if after + limit > 10_000:
            raise SearchCapError("search cannot page past 10,000 results")
        found = [p for p in self.contacts.values()
                 if any(all(self._match(p, f) for f in g["filters"])
                        for g in body["filterGroups"])]
        [sort] = body["sorts"]  # HubSpot honours a single sort
        found.sort(key=lambda p: self._value(sort["propertyName"], p[sort["propertyName"]]))
        page = found[after:after + limit]
        data = {"total": len(found), "results": [
            {"id": p["hs_object_id"], "properties": {k: p.get(k) for k in body["properties"]}}
            for p in page]}
        return Obj(data), 200, {}

    # --- batch
    def read_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.reads += 1
        results = [{"id": i["id"], "properties": {k: self.contacts[i["id"]].get(k)
                                                  for k in body["properties"]}}
                   for i in body["inputs"] if i["id"] in self.contacts]
        return Obj({"results": results}), 200, {}

    def update_with_http_info(self, body: dict[str, Any], **_: Any) -> Any:
        self.updates.append(body["inputs"])
        if self.refuse_whole_batch and self.fail_ids & {i["id"] for i in body["inputs"]}:
            raise _api_error(400, {"status": "error", "category": "VALIDATION_ERROR",
                                   "message": "Property values were not valid"})
        ok, errors = [], []
        for item in body["inputs"]:
            if item["id"] in self.fail_ids:
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": "Property values were not valid",
                               "context": {"ids": [item["id"]]}})
                continue
            self.contacts[item["id"]].update(item["properties"])
            self.contacts[item["id"]]["lastmodifieddate"] = "2026-11-25T00:00:00Z"
            ok.append({"id": item["id"], "properties": item["properties"]})
        return Obj({"results": ok, "errors": errors}), 207 if errors else 200, {
            "X-HubSpot-RateLimit-Remaining": "50",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}

    def get_all_with_http_info(self, object_type: str, **_: Any) -> Any:
        from connectors.config import HubSpotWriteback
        from connectors.mapping import default_mapping

        names = [v for k, v in HubSpotWriteback().model_dump().items() if k != "group"]
        names += [spec.field for spec in default_mapping("hubspot").values()]  # a portal has them
        return Obj({"results": [{"name": n} for n in names]}), 200, {}

    def get_page_with_http_info(self, **_: Any) -> Any:
        return Obj({"results": [{"id": "71001"}, {"id": "90001"}]}), 200, {}


@pytest.fixture
def portal() -> FakePortal:
    return FakePortal()


def connect(portal: FakePortal, **overrides: Any) -> Any:
    source = {"kind": "hubspot", "connection": {"token": {"env": "UNUSED"}},
              "retry": {"initial_wait": 0, "max_wait": 0}, "search_per_second": 1000,
              **overrides}
    crm = open_connector(parse_config({"sources": {"hs": source}}).sources["hs"], source="hs")
    for name in ("search", "batch", "owners", "properties"):
        crm._apis[name] = portal
    return crm


def ids(pages: list[Any]) -> list[str]:
    return [r.record_id for p in pages for r in p.records]


def test_backlog_beyond_the_search_cap_is_read_completely(portal: FakePortal) -> None:
    portal.add(10_250)
    crm = connect(portal)
    got = ids(list(crm.pull(None)))
    assert len(got) == 10_250 and len(set(got)) == 10_250
    assert all(int(s["after"]) == 0 for s in portal.searches)
    # one search per page, plus the final short page
    assert len(portal.searches) <= 10_250 // 199 + 2


def test_writes_between_pages_do_not_shift_paging(portal: FakePortal) -> None:
    portal.add(1000)
    crm = connect(portal, conflict_check=False)
    seen: list[str] = []
    for page in crm.pull(None):
        seen += [r.record_id for r in page.records]
        crm.write_back([Outcome(r.record_id, f"d{r.record_id}", "assigned", "71001", None,
                                "1") for r in page.records])
    assert sorted(seen, key=int) == [str(i) for i in range(1, 1001)]


def test_timestamp_ties_larger_than_a_page_are_read_by_id(portal: FakePortal) -> None:
    portal.add(50)
    portal.add(450, at=T0 + timedelta(seconds=5), step_ms=0, start=51)  # 450 at one instant
    portal.add(30, at=T0 + timedelta(seconds=6), start=501)
    got = ids(list(connect(portal).pull(None)))
    assert sorted(got, key=int) == [str(i) for i in range(1, 531)]
    assert len(got) == 530  # nothing twice within a run


def test_cursor_resumes_inclusive_of_its_instant(portal: FakePortal) -> None:
    portal.add(10)
    portal.add(5, at=T0 + timedelta(seconds=1), step_ms=0, start=11)
    crm = connect(portal, overlap_seconds=0)
    cursor = Cursor(T0 + timedelta(seconds=1), "12")
    got = ids(list(crm.pull(cursor)))
    assert sorted(got, key=int) == ["11", "12", "13", "14", "15"]  # the tie re-read, not lost


def test_207_errors_and_conflicts_are_per_record_results(portal: FakePortal) -> None:
    portal.add(5)
    portal.contacts["3"]["hubspot_owner_id"] = "71001"  # a person assigned it meanwhile
    portal.fail_ids = {"4"}
    crm = connect(portal)
    outcomes = [Outcome(str(i), f"d{i}", "assigned", "71001", None, "1", expected_owner=None)
                for i in (1, 2)]
    outcomes += [Outcome("3", "d3", "assigned", "71001", None, "1", expected_owner=None),
                 Outcome("4", "d4", "refused", None, "no_rule_matched", "1"),
                 Outcome("5", "d5", "assigned", "99999", None, "1"),
                 Outcome("404", "d404", "assigned", "71001", None, "1")]
    results = {r.record_id: r for r in crm.write_back(outcomes)}
    assert results["1"].status == results["2"].status == "ok"
    assert results["3"].status == "conflict"
    assert results["4"].status == "error" and "VALIDATION_ERROR" in results["4"].message
    assert results["5"].status == "error" and "not a HubSpot owner" in results["5"].message
    assert results["404"].status == "gone" and "no longer an open lead" in results["404"].message
    assert portal.reads == 1 and len(portal.updates) == 1
    assert {i["id"] for i in portal.updates[0]} == {"1", "2", "4"}
    assert portal.contacts["1"]["leadgate_status"] == "assigned"
    assert portal.contacts["1"]["leadgate_reason"] == ""


def test_a_stamped_contact_is_intake_again_only_after_a_later_form_submission(
        portal: FakePortal) -> None:
    from routing_core.ids import new_ulid

    def iso(at: datetime) -> str:
        return at.isoformat().replace("+00:00", "Z")

    def ulid(at: datetime) -> str:
        return new_ulid(int(at.timestamp() * 1000))

    portal.add(6)
    enquired = T0 + timedelta(minutes=5)
    stamps = {  # id: (decision id, leadgate_read_at); each submitted a form at `enquired`
        "1": (ulid(T0), iso(T0)),  # read before the submission: enquired again
        # leadgate's clock behind HubSpot's: its decision id looks older than the submission,
        # but it read the contact after it, by HubSpot's clock: not again
        "2": (ulid(T0), iso(enquired + timedelta(seconds=1))),
        "3": (ulid(T0), None),  # stamped without read_at: dated by its decision id
        "4": (ulid(enquired + timedelta(minutes=1)), None),
        "5": ("typed-by-hand", None),  # cannot be dated: decided again, not left unrouted
    }
    for cid, (decision, read_at) in stamps.items():
        portal.contacts[cid].update({
            "leadgate_status": "assigned", "leadgate_decision_id": decision,
            "leadgate_read_at": read_at or "", "lifecyclestage": "customer",
            "recent_conversion_date": iso(enquired),
            "lastmodifieddate": iso(enquired + timedelta(seconds=2))})
    pulled = list(connect(portal).pull(None))
    assert sorted(ids(pulled), key=int) == ["1", "3", "5", "6"]  # 6: never stamped
    episodes = {r.record_id: r.episode for p in pulled for r in p.records}
    assert episodes["1"] == stamps["1"][0] and episodes["6"] == ""


def test_a_batch_refused_whole_is_split_until_the_bad_records_stand_alone(
        portal: FakePortal) -> None:
    portal.add(100)
    portal.fail_ids, portal.refuse_whole_batch = {"17", "64"}, True
    crm = connect(portal, conflict_check=False)
    results = {r.record_id: r for r in crm.write_back([
        Outcome(str(i), f"d{i}", "assigned", "71001", None, "1") for i in range(1, 101)])}
    bad = {rid: r for rid, r in results.items() if r.status != "ok"}
    assert set(bad) == {"17", "64"}  # the other 98 are written, not failed with them
    assert all(not r.retryable and "VALIDATION_ERROR" in r.message for r in bad.values())
    assert portal.contacts["17"].get("leadgate_status") is None
    assert portal.contacts["18"]["leadgate_status"] == "assigned"
    # every input asked for per-record answers, and halving costs a few calls, not 100
    assert all(i["objectWriteTraceId"] == i["id"] for batch in portal.updates for i in batch)
    assert len(portal.updates) <= 1 + 2 * 2 * 7

    # a refusal that is not about one record (every half refused alike) spends a few calls
    portal.updates.clear()
    portal.fail_ids = {str(i) for i in range(1, 101)}
    results = {r.record_id: r for r in crm.write_back([
        Outcome(str(i), f"e{i}", "assigned", "71001", None, "1") for i in range(1, 101)])}
    assert {r.status for r in results.values()} == {"error"} and len(results) == 100
    assert len(portal.updates) == 1 + 2 * 16


class _Resp:
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        import json

        self.status, self.reason = status, "x"
        self.data = json.dumps(body).encode()
        self._headers = headers

    def getheaders(self) -> dict[str, str]:
        return self._headers


def _api_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from hubspot.crm.contacts.exceptions import ApiException

    return ApiException(http_resp=_Resp(status, body, headers or {}))


def test_rate_limits_retries_and_fatal_errors(portal: FakePortal,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3

    from connectors.base import BudgetExhausted
    from connectors.calls import CallFailed

    portal.add(3)
    sleeps: list[float] = []
    crm = connect(portal, conflict_check=False)
    crm.gate.sleep = sleeps.append
    failures = [
        _api_error(429, {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
                   {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}),
        urllib3.exceptions.ProtocolError("Connection aborted."),
        _api_error(502, {"message": "bad gateway"}, {"Retry-After": "3"}),
    ]
    real = portal.update_with_http_info

    def flaky(body: dict[str, Any], **kw: Any) -> Any:
        if failures:
            raise failures.pop(0)
        return real(body, **kw)

    monkeypatch.setattr(portal, "update_with_http_info", flaky)
    [result] = crm.write_back([Outcome("1", "d1", "assigned", "71001", None, "1")])
    assert result.status == "ok" and sleeps == [10.0, 3.0]  # interval, then Retry-After

    def daily(body: dict[str, Any], **kw: Any) -> Any:
        raise _api_error(429, {"errorType": "RATE_LIMIT", "policyName": "DAILY"})

    monkeypatch.setattr(portal, "update_with_http_info", daily)
    [result] = crm.write_back([Outcome("2", "d2", "assigned", "71001", None, "1")])
    assert result.status == "error" and result.retryable and "daily" in result.message.lower()

    def unauthorized(body: dict[str, Any], **kw: Any) -> Any:
        raise _api_error(401, {"category": "INVALID_AUTHENTICATION", "message": "expired",
                               "correlationId": "c"})

    monkeypatch.setattr(portal, "do_search_with_http_info", unauthorized)
    calls = crm.api_calls
    with pytest.raises(CallFailed) as err:
        list(crm.pull(None))
    assert "INVALID_AUTHENTICATION" in str(err.value) and "connection.token" in str(err.value)
    assert crm.api_calls == calls + 1  # not retried
    crm2 = connect(portal, limits={"api_budget": 2})
    monkeypatch.setattr(portal, "do_search_with_http_info", FakePortal.do_search_with_http_info
                        .__get__(portal))
    portal.add(400, start=10)
    with pytest.raises(BudgetExhausted):
        list(crm2.pull(None))  # owners + one search, then the budget stops it
    assert crm2.api_calls == 2


def test_review_action_on_a_record_in_the_review_queue_is_not_a_conflict(
        portal: FakePortal) -> None:
    portal.add(2)
    portal.contacts["1"]["hubspot_owner_id"] = "90001"  # refused earlier: with compliance
    portal.contacts["2"]["hubspot_owner_id"] = "71001"  # taken by a person
    crm = connect(portal)
    results = crm.write_back([Outcome(i, f"review-{i}", "assigned", "71001", None, "1",
                                      expected_owner=None) for i in ("1", "2")])
    assert [r.status for r in results] == ["ok", "conflict"]
