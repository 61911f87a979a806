"""CPU per lead of the routing core's three costly parts, with screening on.

Generates N leads the way benchmarks/routing.py does (the example policy's licences), gives
each a realistic name, company, email and phone from the sandbox generator (13 cultures), and
times, in CPU seconds of this process (median of R runs):

- `parse_lead` of the raw records;
- screening alone (`ListScreener.screen`, the example policy's four lists);
- `decide` with that screener (screening included);
- `Decision.to_json()` of those decisions, and `json.dumps` of the result.

    python benchmarks/routing_parts.py [--leads 20000] [--runs 5] [--profile]

`--profile` prints a cProfile of deciding + to_json the leads (profiler overhead included).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from routing import AT, generate  # noqa: E402

from connectors.sandbox.generator import Generator  # noqa: E402
from routing_core.decision import Decision  # noqa: E402
from routing_core.engine import decide  # noqa: E402
from routing_core.lead import InvalidLead, Lead, parse_lead  # noqa: E402
from routing_core.policy import Policy, load_policy  # noqa: E402
from routing_core.rotation import InMemoryRotationState  # noqa: E402
from sync.screening_lists import load_screener  # noqa: E402

EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "policy"


def named_leads(policy: Policy, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """benchmarks/routing.py's leads, each with a generated person's name and contacts."""
    people = Generator(seed, "routing-parts")
    raws = generate(policy, n, seed)
    for i, raw in enumerate(raws):
        person = people.person(i)
        raw.update({"first_name": person.first, "last_name": person.last,
                    "company": person.company, "email": person.email, "phone": person.phone})
    return raws


def cpu_median(run: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def each(function: Callable[[Any], Any], items: list[Any]) -> None:
    """Call `function` on every item, keeping no result."""
    for item in items:
        function(item)


def _parse(raw: dict[str, Any]) -> Lead | None:
    try:
        return parse_lead(raw)
    except InvalidLead:
        return None


# The functions whose cumulative time --profile reports: (file name, function name).
PROFILED = (("lead.py", "parse_lead"), ("name_screening.py", "screen"),
            ("engine.py", "decide"), ("decision.py", "to_json"))


def profile_parts(policy: Policy, screener: Any, raws: list[dict[str, Any]]) -> None:
    """cProfile of what the sync does per lead: parse_lead, decide (screening included),
    to_json; prints each part's cumulative time per lead, then the top functions."""
    def run() -> None:
        rotation = InMemoryRotationState()
        for raw in raws:
            lead = _parse(raw)
            if lead is not None:
                decide(lead, policy, at=AT, rotation=rotation, screener=screener,
                       decision_id="bench").to_json()

    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile).strip_dirs()
    table: Any = stats.stats  # type: ignore[attr-defined]  # (file, line, name) -> timings
    print(f"cProfile of parse_lead + decide + to_json, {len(raws)} leads "
          "(profiler overhead included):")
    for file, name in PROFILED:
        for (where, _, function), (_, calls, _, cumulative, _) in table.items():
            if (where, function) == (file, name):
                print(f"  {file + ':' + name:30}{calls:>8} calls {cumulative:8.3f} s "
                      f"{cumulative * 1e6 / len(raws):8.1f} us/lead")
    stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policy", default=str(EXAMPLE_POLICY))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    policy = load_policy(args.policy)
    screener = load_screener(policy)
    raws = named_leads(policy, args.leads)
    leads = [lead for lead in map(_parse, raws) if lead is not None]

    def decide_all() -> None:
        rotation = InMemoryRotationState()
        for lead in leads:
            decide(lead, policy, at=AT, rotation=rotation, screener=screener,
                   decision_id="bench")

    rotation = InMemoryRotationState()
    decisions = [decide(lead, policy, at=AT, rotation=rotation, screener=screener,
                        decision_id="bench") for lead in leads]
    payloads = [d.to_json() for d in decisions]
    # The inputs stay alive for the whole run: keep the collector from re-scanning them, so
    # that each part is charged for its own garbage only.
    gc.collect()
    gc.freeze()

    if args.profile:
        profile_parts(policy, screener, raws)
        return

    count = len(leads)
    parts = [
        ("parse_lead", len(raws), lambda: each(_parse, raws)),
        ("screening (ListScreener.screen)", count, lambda: each(screener.screen, leads)),
        ("decide, screening included", count, decide_all),
        ("Decision.to_json()", count, lambda: each(Decision.to_json, decisions)),
        ("json.dumps of to_json()", count, lambda: each(json.dumps, payloads)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{count} leads ({len(raws) - count} invalid), median CPU of {args.runs} runs; "
          f"Python {platform.python_version()}, load average {load:.1f}")
    for label, items, run in parts:
        seconds = cpu_median(run, args.runs)
        print(f"  {label:36}{seconds * 1e6 / items:10.1f} us/lead  {items / seconds:>10,.0f}/s")


if __name__ == "__main__":
    main()
