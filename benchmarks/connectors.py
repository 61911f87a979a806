"""API calls leadgate's connectors make for N intake leads, counted by the sandbox CRM.

For each CRM and N, one run the way the sync job drives a connector (begin_run, then per page:
pull -> write_back of every record), against

  minimum  Salesforce: ceil(N/2000) query pages + ceil(N/200) collection updates
           HubSpot:    ceil(N/200) search pages + ceil(N/100) batch updates
  naive    one update call per record (what a per-record integration does), same reads

with and without the owner re-read that conflict detection costs. "minimum" is the issue's
definition, one call per collection; Salesforce's Composite resource carries up to 5 collections
(or 5 re-read queries) as one call, so leadgate's Salesforce figures fall below it (negative
"over minimum"): the floor with Composite is ceil(N/2000) query pages + ceil(N/1000) writes.
The sandbox generates more leads than N; the figures use n, the intake leads actually pulled.

    python benchmarks/connectors.py                 # N = 10,000 and 100,000, both CRMs
    python benchmarks/connectors.py --n 10000 --crm salesforce --conflict-check on
    python benchmarks/connectors.py --crm salesforce --api-version 42.0   # no Composite
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors import open_connector  # noqa: E402
from connectors.base import Outcome  # noqa: E402
from connectors.config import parse_config  # noqa: E402
from connectors.sandbox import Sandbox  # noqa: E402

INTAKE_SHARE = 0.8  # a little under the sandbox's share of intake records, to reach N


def source_config(sb: Any, crm: str, conflict_check: bool, api_version: str = "59.0") -> Any:
    if crm == "salesforce":
        creds = sb.salesforce_credentials
        os.environ.update(LG_B_SF_SECRET=creds["client_secret"],
                          LG_B_SF_PASSWORD=creds["password"],
                          LG_B_SF_TOKEN=creds["security_token"])
        data: dict[str, Any] = {
            "kind": "salesforce", "conflict_check": conflict_check,
            "limits": {"api_budget": 1_000_000, "org_reserve_percent": 0},
            "connection": {"login_url": sb.salesforce_instance_url, "auth": "password",
                           "api_version": api_version,
                           "username": creds["username"], "client_id": creds["client_id"],
                           "client_secret": {"env": "LG_B_SF_SECRET"},
                           "password": {"env": "LG_B_SF_PASSWORD"},
                           "security_token": {"env": "LG_B_SF_TOKEN"},
                           "ca_file": str(sb.ca_file)}}
    else:
        os.environ["LG_B_HS_TOKEN"] = sb.hubspot_token
        data = {"kind": "hubspot", "conflict_check": conflict_check,
                "review_owner_id": sb.hubspot_review_owner_id, "search_per_second": 1000,
                "limits": {"api_budget": 1_000_000, "org_reserve_percent": 0},
                "connection": {"base_url": sb.hubspot_base_url,
                               "token": {"env": "LG_B_HS_TOKEN"}}}
    return parse_config({"sources": {crm: data}}).sources[crm]


def run(crm: str, n: int, conflict_check: bool, api_version: str = "59.0") -> dict[str, Any]:
    total = math.ceil(n / INTAKE_SHARE)
    kwargs = {"leads": total, "contacts": 0} if crm == "salesforce" else \
        {"leads": 0, "contacts": total}
    with Sandbox(seed=7, install_leadgate_fields=True, api_limit=10_000_000, **kwargs) as sb:
        owners = [r.salesforce_id if crm == "salesforce" else r.hubspot_id
                  for r in sb.reps if r.active]
        connector = open_connector(source_config(sb, crm, conflict_check, api_version),
                                   source=crm)
        started = time.perf_counter()
        connector.begin_run()
        pulled = written = 0
        for page in connector.pull(None):
            records = page.records[: max(0, n - pulled)]
            pulled += len(records)
            outcomes = [Outcome(r.record_id, f"01JDBENCH{pulled + k:017d}", "assigned",
                                owners[(pulled + k) % len(owners)], None, "bench",
                                {"allowed_channels": ["email"]}, None, r.owner_at_read)
                        for k, r in enumerate(records)]
            results = connector.write_back(outcomes)
            written += sum(r.status == "ok" for r in results)
            if pulled >= n:
                break
        seconds = time.perf_counter() - started
        calls = sb.calls(crm)
        assert calls == connector.api_calls, (calls, connector.api_calls)
    read_pages = math.ceil(pulled / (2000 if crm == "salesforce" else 200))
    writes = math.ceil(pulled / (200 if crm == "salesforce" else 100))
    minimum = read_pages + writes
    return {"crm": crm, "n": pulled, "written": written, "conflict_check": conflict_check,
            "calls": calls, "minimum": minimum, "overhead": calls - minimum,
            "naive": read_pages + pulled, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--crm", choices=["salesforce", "hubspot", "both"], default="both")
    parser.add_argument("--conflict-check", choices=["on", "off", "both"], default="both")
    parser.add_argument("--api-version", default="59.0",
                        help="Salesforce API version (below 43.0: no Composite)")
    args = parser.parse_args()
    crms = ["salesforce", "hubspot"] if args.crm == "both" else [args.crm]
    print("| CRM | N | conflict check | API calls | minimum | over minimum | naive (1 call/record)"
          " | naive / leadgate | run time |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.n:
        for crm in crms:
            for check in {"off": [False], "on": [True], "both": [False, True]}[
                    args.conflict_check]:
                r = run(crm, n, check, args.api_version)
                print(f"| {r['crm']} | {r['n']:,} | {'on' if check else 'off'} | "
                      f"{r['calls']:,} | {r['minimum']:,} | {r['overhead']:+,} | "
                      f"{r['naive']:,} | {r['naive'] / r['calls']:.1f}x | "
                      f"{r['seconds']:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
