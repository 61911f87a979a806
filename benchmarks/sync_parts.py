"""CPU per lead of the sync job's own work, without a CRM: what `leadgate sync run` does in its
job thread for every lead once a page is pulled.

    python benchmarks/sync_parts.py [--leads 10000] [--page 2000] [--runs 5]

For each page of leads (benchmarks/routing_parts.py's named leads, as the connector's mapping
hands them over): `write_ahead` (parse, screen, decide, the decision's rows and its ledger entry,
committed in one transaction) and `writeback.record` (every write-back answered ok: the status
rows and the `writeback` ledger entries). A fresh SQLite database in a temporary folder per run;
CPU seconds of this process (the commits' fsync waits are not CPU), median of --runs.
`--profile` prints a cProfile of one run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from routing_parts import EXAMPLE_POLICY, named_leads  # noqa: E402

from audit.db import make_engine, upgrade  # noqa: E402
from audit.ledger import Ledger  # noqa: E402
from connectors.base import WriteResult  # noqa: E402
from routing_core.policy import load_policy  # noqa: E402
from sync import writeback  # noqa: E402
from sync.run import few_collections  # noqa: E402
from sync.screening_lists import load_screener  # noqa: E402
from sync.writeahead import Candidate, Decider, write_ahead  # noqa: E402


def one_run(decider: Decider, raws: list[dict[str, Any]], page: int,
            run: int) -> tuple[float, float]:
    """CPU seconds of (write_ahead, record) over every page, on a fresh database, with the
    garbage collector set as a sync run sets it."""
    with tempfile.TemporaryDirectory(prefix="leadgate-bench-sync-parts-") as tmp, \
            few_collections():
        url = f"sqlite:///{Path(tmp) / 'leadgate.db'}"
        upgrade(url)
        engine = make_engine(url)
        ledger = Ledger(engine, key_path=Path(tmp) / "key")
        ahead = recorded = 0.0
        for start in range(0, len(raws), page):
            cands = [Candidate(f"00Q{run}{start + i:09d}", "", "intake", raw, [], "005QUEUE")
                     for i, raw in enumerate(raws[start:start + page])]
            t0 = time.process_time()
            result = write_ahead(engine, ledger, decider, cands, run_id=f"bench{run}")
            t1 = time.process_time()
            writeback.record(engine, ledger, decider.source, decider.crm, f"bench{run}",
                             result.to_write,
                             [WriteResult(w.record_id, "ok") for w in result.to_write])
            t2 = time.process_time()
            ahead += t1 - t0
            recorded += t2 - t1
        engine.dispose()
    return ahead, recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    policy = load_policy(EXAMPLE_POLICY)
    decider = Decider(source="salesforce", crm="salesforce", policy=policy,
                      screener=load_screener(policy))
    raws = named_leads(policy, args.leads)
    for raw in raws:  # as the connector hands records over: the id is the CRM's
        raw.pop("id", None)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(one_run, decider, raws, args.page, 0)
        pstats.Stats(profile).strip_dirs().sort_stats("tottime").print_stats(30)
        return
    one_run(decider, raws[:args.page], args.page, -1)  # warm caches and imports
    results = [one_run(decider, raws, args.page, run) for run in range(args.runs)]
    ahead = statistics.median(r[0] for r in results) / len(raws) * 1e6
    recorded = statistics.median(r[1] for r in results) / len(raws) * 1e6
    total = statistics.median(r[0] + r[1] for r in results) / len(raws) * 1e6
    print(f"{len(raws)} leads, pages of {args.page}, median CPU of {args.runs} runs")
    print(f"  write_ahead        {ahead:8.1f} us/lead")
    print(f"  writeback.record   {recorded:8.1f} us/lead")
    print(f"  both               {total:8.1f} us/lead")


if __name__ == "__main__":
    main()
