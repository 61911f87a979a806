"""The Salesforce adapter end to end against the sandbox org, over HTTPS, with simple-salesforce.

Wire behaviour covered (Salesforce REST API Developer Guide): query batches with nextRecordsUrl
("Execute a SOQL Query", batch size via Sforce-Query-Options), sObject Collections update with
allOrNone=false answering 200 with per-record results ("Update Multiple Records with Fewer
Round-Trips"), Composite carrying up to 5 collections or queries as one API call ("Send
Multiple Requests Using Composite", https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html;
"Composite Subrequest Result", .../resources-composite-subrequest-result.html), errors as a
list of {message, errorCode}, the Sforce-Limit-Info header and /limits ("Limits"), OAuth 2.0
username-password flow.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from conn_sources import sf_source

from connectors import open_connector
from connectors.base import BudgetExhausted, Cursor, Outcome
from connectors.calls import CallFailed
from routing_core.errors import LeadgateError


def pull_all(crm: Any, cursor: Cursor | None = None) -> list[Any]:
    return [r for page in crm.pull(cursor) for r in page.records]


def rep(sb: Any) -> str:
    return str(sb.reps[0].salesforce_id)


def outcomes_for(records: list[Any], owner: str | None) -> list[Outcome]:
    return [Outcome(r.record_id, f"01JDTEST{n:018d}", "assigned" if owner else "refused",
                    owner, None if owner else "no_rule_matched", "2026.11.2",
                    {"allowed_channels": ["email"]}, None, r.owner_at_read)
            for n, r in enumerate(records)]


def test_pull_pages_by_2000_and_writes_in_collections_of_200(sandbox: Any) -> None:
    sb = sandbox(leads=2600)
    crm = open_connector(sf_source(sb), source="sf")
    crm.begin_run()
    pages = list(crm.pull(None))
    records = [r for p in pages for r in p.records]
    n = len(records)
    assert n > 2000 and len({r.record_id for r in records}) == n
    assert [len(p.records) for p in pages] == [2000, n - 2000]
    assert sb.counts()["salesforce.query_more"]["calls"] == 1
    assert all(r.lead_input is not None or r.problems for r in records)
    before = sb.calls("salesforce")
    results = crm.write_back(outcomes_for(records, rep(sb)))
    assert {r.status for r in results} == {"ok"}
    c = sb.counts()
    # one collection per 200 and one owner re-read per 400, as Composite subrequests...
    assert c["salesforce.collections_update"]["subrequests"] == math.ceil(n / 200)
    assert c["salesforce.collections_update"]["records_written"] == n
    assert c["salesforce.query"]["subrequests"] == math.ceil(n / 400)
    assert "calls" not in c["salesforce.collections_update"]
    # ...5 a call: one re-read call per 2,000 records, then their writes in calls of 1,000
    calls = math.ceil(n / 2000) + 2 * (n // 2000) + math.ceil(n % 2000 / 1000)
    assert sb.calls("salesforce") - before == c["salesforce.composite"]["calls"] == calls
    assert crm.api_calls == sb.calls("salesforce")
    assert pull_all(open_connector(sf_source(sb), source="sf")) == []  # stamped: not intake


def test_below_api_43_write_back_makes_a_call_per_collection(sandbox: Any) -> None:
    sb = sandbox(leads=1200)
    source = sf_source(sb, connection={"api_version": "42.0"})
    report = open_connector(source, source="sf").check()
    assert report.ok, report.problems
    assert any("below 43.0" in f and "one call per collection" in f for f in report.facts)
    crm = open_connector(source, source="sf")
    records = pull_all(crm)
    n = len(records)
    before = sb.calls("salesforce")
    results = crm.write_back(outcomes_for(records, rep(sb)))
    assert {r.status for r in results} == {"ok"}
    c = sb.counts()
    assert "salesforce.composite" not in c
    assert c["salesforce.collections_update"]["calls"] == math.ceil(n / 200)
    assert sb.calls("salesforce") - before == math.ceil(n / 200) + math.ceil(n / 400)
    assert any("up to 5 sObject Collections" in f
               for f in open_connector(sf_source(sb), source="sf").check().facts)


def test_conflicts_are_found_in_reread_batches_after_the_first(sandbox: Any) -> None:
    # the re-read's own batches of 200 (of 400 ids per query) are followed with query_more
    sb = sandbox(leads=1500, faults="salesforce.query*:owner_change@0.05")
    crm = open_connector(sf_source(sb, query_page_size=200), source="sf")
    records = pull_all(crm)
    changed = {rid for _crm, rid, _old, _new in sb.store.owner_changes}
    sb.faults = None
    results = crm.write_back(outcomes_for(records, rep(sb)))
    assert {r.record_id for r in results if r.status == "conflict"} == changed
    assert sum(r.status == "ok" for r in results) == len(records) - len(changed)
    c = sb.counts()
    assert c["salesforce.query_more"]["calls"] >= math.ceil(len(records) / 400)
    position = {r.record_id: k for k, r in enumerate(records)}
    assert any(position[rid] % 400 >= 200 for rid in changed)  # in a second batch


def test_a_failed_subrequest_fails_its_records_and_a_later_run_writes_them(
        sandbox: Any) -> None:
    sb = sandbox(leads=1200, faults=None)
    crm = open_connector(sf_source(sb), source="sf")
    records = pull_all(crm)
    sb.faults = "salesforce.collections_update:500@call=2"
    results = crm.write_back(outcomes_for(records, rep(sb)))
    failed = [r for r in results if r.status == "error"]
    assert len(failed) == 200 and [r.record_id for r in failed] == [
        r.record_id for r in records[200:400]]
    assert all(r.retryable and "HTTP 500 UNKNOWN_EXCEPTION" in r.message for r in failed)
    assert sum(r.status == "ok" for r in results) == len(records) - 200
    again = crm.write_back(outcomes_for(records, rep(sb)))  # the next run, same decisions
    assert {r.status for r in again} == {"ok"}
    assert sb.counts()["salesforce.collections_update"]["records_written"] == len(records)


def test_cursor_resumes_exactly_at_timestamp_ties(sandbox: Any) -> None:
    sb = sandbox(leads=700)
    leads = sb.store.leads
    stamp = leads.get(50, "SystemModstamp")
    for i in range(50, 650):  # some 500 intake records share one SystemModstamp
        leads.set(i, {"SystemModstamp": stamp})
    everything = pull_all(open_connector(sf_source(sb, overlap_seconds=0), source="sf"))
    crm = open_connector(sf_source(sb, overlap_seconds=0, query_page_size=200), source="sf")
    pages = crm.pull(None)
    first = [next(pages) for _ in range(2)]
    # the cut falls inside the tie: both sides share the timestamp
    cut = first[-1].cursor
    assert cut.modstamp == first[0].records[-1].modstamp == first[1].records[0].modstamp
    stored = Cursor.loads(cut.dumps())  # as the sync job stores it
    rest = pull_all(open_connector(sf_source(sb, overlap_seconds=0), source="sf"), stored)
    head = [r.record_id for p in first for r in p.records]
    assert rest[0].modstamp == cut.modstamp  # the rest of the tie comes first
    assert not set(head) & {r.record_id for r in rest}
    assert head + [r.record_id for r in rest] == [r.record_id for r in everything]
    # with an overlap window the cursor moves back and re-reads (never loses) records
    again = pull_all(open_connector(sf_source(sb, overlap_seconds=3600), source="sf"), stored)
    assert {r.record_id for r in rest} <= {r.record_id for r in again}


def test_mixed_collection_results_and_conflicts(sandbox: Any) -> None:
    # a person reassigns some leads right after leadgate's query read them
    sb = sandbox(leads=400, faults="salesforce.query:owner_change@0.05")
    crm = open_connector(sf_source(sb), source="sf")
    records = pull_all(crm)
    person = {rid: new for _crm, rid, _old, new in sb.store.owner_changes}
    changed = set(person)
    assert changed and changed <= {r.record_id for r in records}
    sb.faults = "salesforce.collections_update:record_error@0.1"
    results = crm.write_back(outcomes_for(records, rep(sb)))
    by = {r.record_id: r for r in results}
    conflicts = {r.record_id for r in results if r.status == "conflict"}
    assert conflicts == changed
    errors = [r for r in results if r.status == "error"]
    assert errors and all(r.retryable and "UNABLE_TO_LOCK_ROW" in r.message for r in errors)
    assert sum(r.status == "ok" for r in results) == len(records) - len(changed) - len(errors)
    for rid in conflicts:  # the person's owner stays
        i = sb.store.leads.index_of(rid)
        assert sb.store.leads.get(i, "OwnerId") == person[rid]
        assert by[rid].message.startswith("owner changed to")
    # a retry of the same decisions: already-written records report ok without a write
    sb.faults = None
    before = sb.counts()["salesforce.collections_update"]["records_written"]
    again = crm.write_back(outcomes_for(records, rep(sb)))
    assert sum(r.status == "ok" for r in again) == len(records) - len(changed)
    written = sb.counts()["salesforce.collections_update"]["records_written"] - before
    assert written == len(errors)  # only the ones that failed the first time
    c = sb.counts()  # all of it through Composite: collections and re-reads as subrequests
    assert c["salesforce.composite"]["calls"] == 4 and "calls" not in c[
        "salesforce.collections_update"]


@pytest.mark.parametrize("fault", [
    "salesforce.query:429@call=1", "salesforce.query:500@call=1", "salesforce.query:503@call=1",
    "salesforce.query:drop@call=1", "salesforce.query:slow=1.5@call=1",
    "salesforce.collections_update:503@first=2", "salesforce.collections_update:drop@call=1",
    "salesforce.query:expire_session@call=2", "salesforce.collections_update:401@call=1",
    "salesforce.composite:503@first=2", "salesforce.composite:429@call=1",
    "salesforce.composite:drop@call=2", "salesforce.composite:slow=1.5@call=1",
    "salesforce.composite:401@call=2", "salesforce.composite:expire_session@call=1",
    "salesforce.query:503@first=3", "salesforce.query:drop@call=3",
])
def test_each_injected_fault_is_survived(sandbox: Any, fault: str) -> None:
    sb = sandbox(leads=150, faults=fault)
    source = sf_source(sb, retry={"attempts": 4, "initial_wait": 0.01, "max_wait": 0.05,
                                  "timeout_seconds": 1.0})
    crm = open_connector(source, source="sf")
    records = pull_all(crm)
    assert records
    results = crm.write_back(outcomes_for(records, rep(sb)))
    assert {r.status for r in results} == {"ok"}, results[0]
    fired = {k: v for c in sb.counts().values() for k, v in c.items()
             if k.startswith("fault.")}
    assert fired, "the fault never fired: the test would prove nothing"
    assert crm.gate.retries >= 1 or "expire" in fault or "401" in fault


def test_org_limit_stops_cleanly(sandbox: Any) -> None:
    sb = sandbox(leads=100, faults="salesforce.query:rate_limit@call=2")
    crm = open_connector(sf_source(sb), source="sf")
    with pytest.raises(BudgetExhausted, match="REQUEST_LIMIT_EXCEEDED"):
        crm.begin_run()
    sb2 = sandbox(leads=100, api_limit=60)  # the org's daily allowance is nearly spent
    crm2 = open_connector(sf_source(sb2), source="sf")
    with pytest.raises(BudgetExhausted, match="reserve"):
        for _ in range(200):
            crm2.read_limits()
    # 10% of 60 is kept in reserve: leadgate stops at 54 calls, the org never answers 403
    assert sb2.salesforce.api_used <= 54
    assert "fault" not in str(sb2.counts())


def test_api_budget_is_per_run(sandbox: Any) -> None:
    sb = sandbox(leads=2500)
    crm = open_connector(sf_source(sb, limits={"api_budget": 5}), source="sf")
    pages = crm.pull(None)
    assert len(next(pages).records) == 2000  # login, limits, queues, users, query
    with pytest.raises(BudgetExhausted, match="api_budget"):
        next(pages)
    results = crm.write_back(outcomes_for([], rep(sb)))
    assert results == []


def test_soql_values_cannot_inject(sandbox: Any) -> None:
    sb = sandbox(leads=50)
    i = 3
    rid = sb.store.leads.id_of(i)
    sb.store.leads.set(i, {"LastName": "O'Brien' OR LastName != '", "Company": "\\' OR 1=1"})
    records = pull_all(open_connector(sf_source(sb), source="sf"))
    hit = [r for r in records if r.record_id == rid]
    assert hit and hit[0].lead_input["last_name"] == "O'Brien' OR LastName != '"
    # a config value crafted to widen the intake filter matches no queue instead of all
    evil = open_connector(sf_source(sb, intake={"owner_queue": "x' OR Name != 'y"}),
                          source="sf")
    with pytest.raises(LeadgateError, match="intake queue \"x' OR Name != 'y\" is not a queue"):
        evil.begin_run()
    # a record id crafted to widen the owner re-read matches nothing: the write reports it
    crm = open_connector(sf_source(sb), source="sf")
    [result] = crm.write_back([Outcome("x' OR Id != '", "d", "assigned", rep(sb), None, "1",
                                       expected_owner=sb.salesforce_intake_queue_id)])
    assert result.status == "gone" and "no longer an open lead" in result.message


def test_install_is_idempotent_and_connect_reports_mismatches(sandbox: Any) -> None:
    sb = sandbox(leads=20, install_leadgate_fields=False)
    crm = open_connector(sf_source(sb), source="sf")
    report = crm.check()
    assert not report.ok and any("leadgate install salesforce" in p for p in report.problems)
    dry = crm.install(dry_run=True)
    assert len(dry.created) == 6 and dry.dry_run
    assert sb.counts().get("salesforce.tooling_create") is None
    first = crm.install()
    assert len(first.created) == 6 and "queue Compliance_Review (for Lead)" in first.existing
    second = open_connector(sf_source(sb), source="sf").install()
    assert second.created == [] and len(second.existing) == 7
    assert open_connector(sf_source(sb), source="sf").check().ok
    bad = sf_source(sb, mapping={
        "id": "Id", "email": "Emial",
        "customer_type": {"field": "Customer_Type__c", "values": {"Retail Customer": "retail",
                                                                  "Retail": "retail"}}})
    problems = open_connector(bad, source="sf").check().problems
    assert any("Emial does not exist" in p for p in problems)
    assert any("'High Net Worth' of Customer_Type__c is not mapped" in p for p in problems)
    assert any("'Retail' is not a value of the picklist" in p for p in problems)


def test_custom_ca_wins_and_production_honours_the_environment(sandbox: Any, monkeypatch: Any
                                                                ) -> None:
    import certifi

    sb = sandbox(leads=10)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # trusts public CAs only
    assert pull_all(open_connector(sf_source(sb), source="sf"))  # ca_file wins
    no_ca = sf_source(sb, connection={"ca_file": None})
    with pytest.raises(CallFailed, match="TLS verification failed"):
        open_connector(no_ca, source="sf").begin_run()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sb.ca_file))  # the environment's bundle
    assert pull_all(open_connector(no_ca, source="sf"))


def test_overlap_window_moves_the_lower_bound_back(sandbox: Any) -> None:
    sb = sandbox(leads=300)
    everything = pull_all(open_connector(sf_source(sb), source="sf"))
    mid = everything[len(everything) // 2]
    at = Cursor(mid.modstamp, mid.record_id)
    strict = pull_all(open_connector(sf_source(sb, overlap_seconds=0), source="sf"), at)
    window = pull_all(open_connector(sf_source(sb, overlap_seconds=86400), source="sf"), at)
    assert len(window) > len(strict)
    assert all(r.modstamp >= mid.modstamp - timedelta(days=1) for r in window)


@pytest.mark.parametrize("auth", ["jwt", "client_credentials", "password"])
def test_each_auth_flow_logs_in(sandbox: Any, auth: str) -> None:
    sb = sandbox(leads=5)
    creds = sb.salesforce_credentials
    connection: dict[str, Any] = {"auth": auth}
    if auth == "jwt":
        connection.update(private_key={"file": str(sb.jwt_private_key_file)},
                          client_secret=None, password=None, security_token=None)
    elif auth == "client_credentials":
        connection.update(username=None, password=None, security_token=None)
    crm = open_connector(sf_source(sb, connection=connection), source="sf")
    report = crm.check()
    assert report.ok and any(f"({auth})" in fact for fact in report.facts)
    assert creds["client_secret"] not in " ".join(report.facts)


def test_wrong_password_is_one_clear_error(sandbox: Any, monkeypatch: Any) -> None:
    sb = sandbox(leads=5)
    monkeypatch.setenv("LG_T_SF_PASSWORD", "not-the-password")
    with pytest.raises(LeadgateError) as err:
        open_connector(sf_source(sb), source="sf").begin_run()
    text = str(err.value)
    assert "invalid_grant" in text and "not-the-password" not in text


def test_a_lead_sent_back_to_intake_starts_a_new_episode(sandbox: Any) -> None:
    sb = sandbox(leads=30)
    crm = open_connector(sf_source(sb), source="sf")
    first = pull_all(crm)[0]
    assert first.episode == ""
    [done] = crm.write_back(outcomes_for([first], rep(sb)))
    assert done.status == "ok"
    # RevOps flags it for re-routing: back to the intake queue, leadgate's status cleared
    i = sb.store.leads.index_of(first.record_id)
    sb.store.leads.set(i, {"OwnerId": sb.salesforce_intake_queue_id,
                           "LeadGate_Status__c": None,
                           "SystemModstamp": sb.store.stamp(seconds=True)})
    again = [r for r in pull_all(open_connector(sf_source(sb), source="sf"))
             if r.record_id == first.record_id]
    assert again and again[0].episode == outcomes_for([first], rep(sb))[0].decision_id


def test_read_maps_records_as_pull_does_whatever_their_status(sandbox: Any) -> None:
    sb = sandbox(leads=900)
    crm = open_connector(sf_source(sb, write_batch_size=100), source="sf")
    pulled = pull_all(crm)
    crm.write_back(outcomes_for(pulled[:3], rep(sb)))  # no longer intake
    ids = [r.record_id for r in pulled[:450]]
    read = crm.read([*ids, "00Q000000000000AAA"])  # one unknown id: absent, not an error
    assert [r.record_id for r in read] == ids  # in two queries of up to 200 ids
    assert [r.lead_input for r in read[3:]] == [r.lead_input for r in pulled[3:450]]
    assert read[0].lead_input is not None and read[0].owner_at_read == rep(sb)


def test_answers_parse_to_plain_dicts_with_exact_money(sandbox: Any) -> None:
    """The client parses JSON without the SDK's OrderedDict hook (the C scanner builds dicts),
    and keeps amounts as Decimals: a float would round an investable-assets figure."""
    sb = sandbox(leads=5)
    crm = open_connector(sf_source(sb), source="sf")
    crm.begin_run()
    answer = crm.query("test read", "SELECT Id, Investable_Assets__c FROM Lead "
                                    "WHERE Investable_Assets__c != null LIMIT 1")
    record = answer["records"][0]
    assert type(answer) is dict and type(record) is dict and type(record["attributes"]) is dict
    assert isinstance(record["Investable_Assets__c"], Decimal)


def test_a_misspelt_mapped_field_is_one_line_naming_the_column(sandbox: Any) -> None:
    # Salesforce answers INVALID_FIELD with the statement, a caret, "ERROR at Row:1:Column:N"
    # and the explanation on five lines; a person (and a cron mail) gets the explanation
    from connectors.mapping import default_mapping

    mapping = {key: {"field": spec.field} for key, spec in default_mapping("salesforce").items()}
    mapping["email"] = {"field": "Emial"}
    crm = open_connector(sf_source(sandbox(leads=5), mapping=mapping), source="sf")
    crm.begin_run()
    with pytest.raises(CallFailed) as err:
        pull_all(crm)
    message = str(err.value)
    assert "\n" not in message, message
    assert "INVALID_FIELD: No such column 'Emial' on entity 'Lead'." in message, message
    assert "leadgate connect salesforce" in message
