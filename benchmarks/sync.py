"""End-to-end throughput and memory of `leadgate sync run` against the sandbox CRM.

    python benchmarks/sync.py [--leads 100000] [--memory 100000,500000] [--latency-ms 0,100]
                              [--modes bare,sqlite,sqlite-one,postgres] [--repeat 3]

Side by side, on the same seeded Salesforce org (the sandbox in its own process):
  bare      the same pull (intake query, 2,000-record pages) and write-back (sObject
            Collections of 200 records, five to a Composite call, as leadgate's connector
            sends them; owner + leadgate status fields) with simple-salesforce alone: no
            mapping, routing, screening, owner re-read, database or ledger. The floor.
  sqlite    `leadgate sync run` with SQLite (the embedded default).
  postgres  `leadgate sync run` with PostgreSQL (LEADGATE_BENCH_DATABASE_URL or
            LEADGATE_TEST_DATABASE_URL: a fresh database is created and dropped).
  sqlite-one, postgres-one
            the same with `--one-process`: no helper process deciding pages ahead.
Each runs in its own process; leads/s = intake leads routed and written / wall time of that
process (start-up included); leads per CPU-second = the same over the CPU time (user + system)
of that process and of its helper, the fair figure on a shared machine. Peak memory is the
sync process's max RSS (the helper's is reported beside it), at each size given to --memory
(the sandbox generates the leads lazily, in its own process).
Target: leadgate >= 50% of the bare floor; peak memory growth <= 1.2x from 100k to 500k.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 11


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _timed(cmd: list[str]) -> tuple[float, int, str, str, int]:
    """(seconds, max RSS KiB, stdout, stderr, exit code) of a child process."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate()
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN only cumulatively, so
    # the child reports its own peak (see --report-rss) where we need an exact figure.
    return time.monotonic() - start, 0, out, err, proc.returncode


def bare_worker(args: argparse.Namespace) -> None:
    """The floor: pull intake leads and write owners back with simple-salesforce only."""
    import requests
    from simple_salesforce import Salesforce, format_soql

    info = json.loads(Path(args.bare).read_text())
    session = requests.Session()
    session.verify = info["ca_file"]
    session.trust_env = False
    sf = Salesforce(instance_url=info["instance_url"], session_id=info["session_id"],
                    session=session, version="59.0")
    queue = sf.query("SELECT Id FROM Group WHERE Type = 'Queue' AND DeveloperName = "
                     "'Lead_Intake'")["records"][0]["Id"]
    reps = [r["Id"] for r in sf.query("SELECT Id FROM User WHERE IsActive = true")["records"]]
    soql = format_soql(
        "SELECT Id, OwnerId, SystemModstamp, LeadGate_Decision_Id__c, FirstName, LastName, "
        "Email, Phone, Company, Country, State, PostalCode, Customer_Type__c, "
        "Product_Interest__c, Investable_Assets__c, CurrencyIsoCode, Appropriateness__c, "
        "Phone_Consent__c, Email_Consent__c, First_Contact__c FROM Lead WHERE OwnerId = {} "
        "AND LeadGate_Status__c = null AND IsConverted = false ORDER BY SystemModstamp, Id",
        queue)
    done = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        """The records gathered so far, in collections of 200, five to a Composite call: the
        write calls leadgate's connector makes (without its owner re-read)."""
        nonlocal done
        if batch:
            path = f"/services/data/v{sf.sf_version}/composite/sobjects"
            sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
                {"method": "PATCH", "url": path, "referenceId": f"c{i}",
                 "body": {"allOrNone": False, "records": batch[i:i + 200]}}
                for i in range(0, len(batch), 200)]})
            done += len(batch)
            batch.clear()

    for n, rec in enumerate(sf.query_all_iter(soql)):
        batch.append({"attributes": {"type": "Lead"}, "id": rec["Id"],
                      "OwnerId": reps[n % len(reps)], "LeadGate_Status__c": "assigned",
                      "LeadGate_Decision_Id__c": f"bare{n}"})
        if len(batch) == 1000:
            flush()
    flush()
    print(json.dumps({"written": done, "maxrss_kib": _maxrss(), "cpu_s": _cpu()}))


def _maxrss(who: int | None = None) -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF if who is None else who).ru_maxrss)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (leadgate's helper process, see
    sync/decide_ahead.py): a fair figure when the machine is shared (wall time then measures
    the other tenants as much as the code)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return round(total, 2)


def leadgate_worker(args: argparse.Namespace) -> None:
    """`leadgate sync run` in this process, then its own peak RSS (a child reports its own)."""
    import resource

    from click.testing import CliRunner  # noqa: F401 - keeps import costs comparable

    from sync.job import build_job

    job, ctx = build_job(args.leadgate, "salesforce", notify=False,
                         decide_ahead=not args.one_process)
    try:
        summary = job.run()
    finally:
        job.connector.close()
        ctx.close()
    data = summary.to_json()
    print(json.dumps({"written": data["written"], "decided": data["decided"],
                      "assigned": data["assigned"], "refused": data["refused"],
                      "write_errors": data["write_errors"], "api_calls": data["api_calls"],
                      "pages_decided_ahead": data["pages_decided_ahead"],
                      "pages_decided_again": data["pages_decided_again"],
                      "maxrss_kib": _maxrss(), "cpu_s": _cpu(),
                      "helper_maxrss_kib": _maxrss(resource.RUSAGE_CHILDREN)}))


def _pg_database() -> tuple[str, Any] | None:
    base = os.environ.get("LEADGATE_BENCH_DATABASE_URL") or os.environ.get(
        "LEADGATE_TEST_DATABASE_URL")
    if not base:
        return None
    import sqlalchemy as sa

    name = f"lg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(base).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return url, drop


def one(mode: str, leads: int, work: Path, latency_ms: float = 0.0) -> dict[str, Any]:
    from connectors.sandbox import SandboxProcess

    database, _, variant = mode.partition("-")
    one_process = variant == "one"
    from sync.demo import copy_policy, write_sandbox_config

    drop = None
    with SandboxProcess(seed=SEED, leads=leads, contacts=0, install_leadgate_fields=True,
                        latency_ms=latency_ms) as sb:
        folder = Path(tempfile.mkdtemp(prefix=f"{mode}-{leads}-{latency_ms:g}ms-", dir=work))
        if mode == "bare":
            spec = folder / "bare.json"
            spec.write_text(json.dumps({"instance_url": sb.salesforce_instance_url,
                                        "session_id": sb.salesforce_session_id,
                                        "ca_file": str(sb.ca_file)}))
            cmd = [sys.executable, __file__, "--bare", str(spec)]
        else:
            url = None
            if database == "postgres":
                made = _pg_database()
                if made is None:
                    return {"mode": mode, "skipped": "no LEADGATE_TEST_DATABASE_URL"}
                url, drop = made
            policy = copy_policy(folder / "policy")
            config = write_sandbox_config(sb, folder, database_url=url, policy=policy,
                                          sources=("salesforce",))
            # Create the schema first: the figure is the sync, not the one-off migration.
            from audit.db import upgrade
            upgrade(url or f"sqlite:///{folder / 'leadgate.db'}")
            cmd = [sys.executable, __file__, "--leadgate", str(config)]
            if one_process:
                cmd.append("--one-process")
        try:
            seconds, _, out, err, code = _timed(cmd)
        finally:
            if drop is not None:
                drop()
    if code != 0:
        raise SystemExit(f"{mode} failed ({code}): {err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(mode=mode, leads=leads, latency_ms=latency_ms, seconds=round(seconds, 2),
                  leads_per_s=round(result["written"] / seconds, 1),
                  peak_rss_mib=round(result["maxrss_kib"] / 1024, 1),
                  leads_per_cpu_s=round(result["written"] / max(result["cpu_s"], 0.01), 1))
    return result


def _medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (mode, latency): the median leads/s, CPU ms per lead and share of the floor."""
    import statistics

    out = []
    keys = sorted({(r["latency_ms"], r["mode"]) for r in runs if "leads_per_s" in r})
    for latency, mode in keys:
        same = [r for r in runs if r["mode"] == mode and r["latency_ms"] == latency]
        row = {"mode": mode, "latency_ms": latency, "runs": len(same),
               "leads_per_s": round(statistics.median(r["leads_per_s"] for r in same), 1),
               "cpu_ms_per_lead": round(statistics.median(
                   1000 * r["cpu_s"] / r["written"] for r in same), 3)}
        if all("share_of_floor" in r for r in same):
            row["share_of_floor"] = round(statistics.median(r["share_of_floor"] for r in same), 3)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--modes", default="bare,sqlite,postgres")
    parser.add_argument("--memory", default="", help="sizes for the peak-memory run, "
                        "e.g. 100000,500000 (leadgate with SQLite)")
    parser.add_argument("--latency-ms", default="0",
                        help="milliseconds the sandbox adds to every answer, e.g. 0,100: a "
                        "CRM across the internet instead of on loopback (each value is a run "
                        "of every mode)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every mode this many times, interleaved; medians are added")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--leadgate", help=argparse.SUPPRESS)
    parser.add_argument("--one-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare_worker(args)
    if args.leadgate:
        return leadgate_worker(args)
    results: dict[str, Any] = {"throughput": [], "memory": []}
    with tempfile.TemporaryDirectory(prefix="leadgate-bench-sync-") as tmp:
        work = Path(tmp)
        for latency in [float(v) for v in args.latency_ms.split(",")]:
            for repeat in range(args.repeat):  # the modes interleaved: noise hits them alike
                for mode in [m for m in args.modes.split(",") if m]:
                    r = one(mode, args.leads, work, latency)
                    r["repeat"] = repeat
                    results["throughput"].append(r)
                    if not args.json:
                        print(json.dumps(r), flush=True)
        for size in [int(s) for s in args.memory.split(",") if s]:
            r = one("sqlite", size, work)
            results["memory"].append(r)
            if not args.json:
                print(json.dumps(r), flush=True)
    for r in results["throughput"]:
        floor = next((f for f in results["throughput"] if f["mode"] == "bare"
                      and f["latency_ms"] == r.get("latency_ms")
                      and f["repeat"] == r["repeat"]), None)
        if floor and "leads_per_s" in r:  # against the bare floor of the same repetition
            r["share_of_floor"] = round(r["leads_per_s"] / floor["leads_per_s"], 3)
            r["cpu_share_of_floor"] = round(r["leads_per_cpu_s"] / floor["leads_per_cpu_s"], 3)
    if args.repeat > 1:
        results["medians"] = _medians(results["throughput"])
    if len(results["memory"]) >= 2:
        results["memory_growth"] = round(results["memory"][-1]["peak_rss_mib"]
                                         / results["memory"][0]["peak_rss_mib"], 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
