"""Throughput of the sandbox CRM with the bare SDKs (no leadgate code in the loop).

    python benchmarks/sandbox.py [--leads 20000] [--json]

Measures, on one client thread: Salesforce query pages (2,000 records, the 25 fields a
connector reads) and sObject Collections updates (200 records), HubSpot search pages
(200 contacts) and batch updates (100 contacts), plus sandbox start-up for 500,000 leads.
The sandbox must never be the bottleneck of leadgate's own benchmarks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from connectors.sandbox import Sandbox, SandboxProcess  # noqa: E402

SF_FIELDS = ("Id, FirstName, LastName, Email, Phone, Company, Street, City, State, PostalCode, "
             "Country, LeadSource, Status, OwnerId, CreatedDate, LastModifiedDate, "
             "SystemModstamp, Customer_Type__c, Product_Interest__c, Investable_Assets__c, "
             "CurrencyIsoCode, Appropriateness__c, Phone_Consent__c, Email_Consent__c, "
             "First_Contact__c, LeadGate_Status__c")
HS_PROPS = ["firstname", "lastname", "email", "phone", "company", "country", "state", "zip",
            "lifecyclestage", "hubspot_owner_id", "customer_type", "product_interest",
            "investable_assets", "assets_currency", "appropriateness", "phone_consent",
            "email_consent", "first_contact_date", "leadgate_status"]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def workloads(sb: Any, leads: int) -> dict[str, Any]:
    """Client-side throughput of the four calls leadgate makes most, with the bare SDKs."""
    out: dict[str, Any] = {}
    sf = sb.salesforce_client()
    t0 = time.perf_counter()
    pages = 0
    res = sf.query(f"SELECT {SF_FIELDS} FROM Lead ORDER BY SystemModstamp, Id")  # noqa: S608
    n = len(res["records"])
    pages += 1
    while not res["done"]:
        res = sf.query_more(res["nextRecordsUrl"], identifier_is_url=True)
        n += len(res["records"])
        pages += 1
    dt = time.perf_counter() - t0
    out["sf_query_pages_per_s"] = round(pages / dt, 1)
    out["sf_query_records_per_s"] = round(n / dt)

    ids = _lead_ids(sf, min(leads, 20_000))
    rep = _first_user(sf)
    t0 = time.perf_counter()
    calls = 0
    for k in range(0, len(ids), 200):
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "id": rid, "OwnerId": rep,
             "LeadGate_Status__c": "assigned", "LeadGate_Reason__c": "round robin"}
            for rid in ids[k:k + 200]]})
        calls += 1
    dt = time.perf_counter() - t0
    out["sf_collections_update_calls_per_s"] = round(calls / dt, 1)
    out["sf_collections_update_records_per_s"] = round(len(ids) / dt)

    hs = sb.hubspot_client()
    t0 = time.perf_counter()
    pages = n = 0
    after = None
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [
            {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"},
            {"propertyName": "leadgate_status", "operator": "NOT_HAS_PROPERTY"}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": HS_PROPS, "limit": 200}
    cids: list[str] = []
    while pages < 50:
        if after:
            body["after"] = after
        page = hs.crm.contacts.search_api.do_search(public_object_search_request=body)
        pages += 1
        n += len(page.results)
        cids += [r.id for r in page.results]
        if not page.paging:
            break
        after = page.paging.next.after
    dt = time.perf_counter() - t0
    out["hs_search_pages_per_s"] = round(pages / dt, 1)
    out["hs_search_records_per_s"] = round(n / dt)

    owner = hs.crm.owners.owners_api.get_page(limit=1).results[0].id
    t0 = time.perf_counter()
    calls = 0
    for k in range(0, len(cids), 100):
        hs.crm.contacts.batch_api.update(batch_input_simple_public_object_batch_input={
            "inputs": [{"id": c, "properties": {"leadgate_status": "assigned",
                                                "hubspot_owner_id": owner}}
                       for c in cids[k:k + 100]]})
        calls += 1
    dt = time.perf_counter() - t0
    out["hs_batch_update_calls_per_s"] = round(calls / dt, 1)
    out["hs_batch_update_records_per_s"] = round(len(cids) / dt)
    return out


def _lead_ids(sf: Any, n: int) -> list[str]:
    return [r["Id"] for r in sf.query_all_iter(f"SELECT Id FROM Lead LIMIT {n}")]  # noqa: S608


def _first_user(sf: Any) -> str:
    users = sf.query("SELECT Id FROM User WHERE IsActive = true ORDER BY Id LIMIT 1")
    return str(users["records"][0]["Id"])


def server_ms(counts: dict[str, dict[str, int]]) -> dict[str, float]:
    """Milliseconds the sandbox itself spent per call, by endpoint."""
    return {ep: round(c["server_us"] / c["calls"] / 1000, 2) for ep, c in counts.items()
            if "." in ep and c.get("calls") and ep.split(".")[1] in (
                "query", "query_more", "collections_update", "search", "batch_update")}


def bench(leads: int) -> dict[str, Any]:
    out: dict[str, Any] = {"leads": leads}
    # The sandbox in its own process, as leadgate's benchmarks should run it.
    with SandboxProcess(seed=1, leads=leads, install_leadgate_fields=True) as sp:
        sp.reset_counts()
        out.update(workloads(sp, leads))
        out["sandbox_ms_per_call"] = server_ms(sp.counts())
    rss = _rss_mib()
    t0 = time.perf_counter()
    with Sandbox(seed=1, leads=500_000, install_leadgate_fields=True) as big:
        out["start_500k_s"] = round(time.perf_counter() - t0, 2)
        out["start_500k_rss_mib"] = round(_rss_mib() - rss)
        sf = big.salesforce_client()
        t0 = time.perf_counter()
        r = sf.query(f"SELECT {SF_FIELDS} FROM Lead WHERE OwnerId = "  # noqa: S608
                     f"'{big.salesforce_intake_queue_id}' AND LeadGate_Status__c = null "
                     "ORDER BY SystemModstamp, Id")
        out["first_intake_page_500k_s"] = round(time.perf_counter() - t0, 2)
        out["intake_total_500k"] = r["totalSize"]
        t0 = time.perf_counter()
        r = sf.query_more(r["nextRecordsUrl"], identifier_is_url=True)
        out["next_intake_page_500k_s"] = round(time.perf_counter() - t0, 2)
    return out


def sync_like(leads: int) -> dict[str, Any]:
    """What a leadgate Salesforce sync of `leads` costs the sandbox: every intake page read,
    every record written back in collections of 200 (no leadgate code: only the SDK)."""
    with SandboxProcess(seed=1, leads=leads, install_leadgate_fields=True) as sp:
        sf = sp.salesforce_client()
        rep = _first_user(sf)
        sp.reset_counts()
        t0 = time.perf_counter()
        res = sf.query(f"SELECT {SF_FIELDS} FROM Lead WHERE OwnerId = "  # noqa: S608
                       f"'{sp.salesforce_intake_queue_id}' AND LeadGate_Status__c = null "
                       "ORDER BY SystemModstamp, Id")
        n = 0
        while True:
            ids = [r["Id"] for r in res["records"]]
            n += len(ids)
            for k in range(0, len(ids), 200):
                sf.restful("composite/sobjects", method="PATCH", json={"records": [
                    {"attributes": {"type": "Lead"}, "id": rid, "OwnerId": rep,
                     "LeadGate_Status__c": "assigned"} for rid in ids[k:k + 200]]})
            if res["done"]:
                break
            res = sf.query_more(res["nextRecordsUrl"], identifier_is_url=True)
        wall = time.perf_counter() - t0
        counts = sp.counts()
        c = counts["salesforce"]
    return {"sync_like_leads": leads, "sync_like_intake_records": n,
            "sync_like_wall_s": round(wall, 1),
            "sync_like_sandbox_s": round(c["server_us"] / 1e6, 1),
            "sync_like_sandbox_background_s": round(c.get("prefetch_us", 0) / 1e6, 1),
            "sync_like_sandbox_s_by_endpoint": {
                ep: round(v["server_us"] / 1e6, 1) for ep, v in counts.items()
                if ep.startswith("salesforce.")},
            "sync_like_calls": c["calls"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sync-like", type=int, default=0, metavar="N",
                    help="instead: the sandbox's cost of a Salesforce sync of N leads")
    args = ap.parse_args()
    result = sync_like(args.sync_like) if args.sync_like else bench(args.leads)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    print(f"{k + ' ' + kk:<60} {vv}")
            else:
                print(f"{k:<60} {v}")


if __name__ == "__main__":
    main()
