"""Every call the sandbox answers, counted by endpoint and by kind of outcome."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict


class Accounting:
    """Counters keyed (endpoint, kind).

    Kinds: "calls" (every request), "ok" (2xx), "207" (HubSpot multi-status), "4xx"/"5xx"
    by class plus the exact status ("status.429"), "fault.<kind>" per injected fault,
    "records_read" / "records_written" / "record_errors" (records, not calls), "subrequests"
    and "subrequests.status.NNN" (subrequests of a Composite call, which counts once), "server_us"
    (microseconds the sandbox spent answering, without network and client time),
    "prefetch_us" (microseconds spent rendering the next query page ahead, in the background).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, endpoint: str, kind: str, n: int = 1) -> None:
        with self._lock:
            self._counts[endpoint][kind] += n

    def status(self, endpoint: str, status: int, server_us: int = 0) -> None:
        with self._lock:
            c = self._counts[endpoint]
            c["calls"] += 1
            c["server_us"] += server_us
            if status == 207:
                c["207"] += 1
            elif 200 <= status < 300:
                c["ok"] += 1
            else:
                c[f"{status // 100}xx"] += 1
                c[f"status.{status}"] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        """{endpoint: {kind: n}}, plus "salesforce", "hubspot" and "total" roll-ups."""
        with self._lock:
            out = {ep: dict(c) for ep, c in sorted(self._counts.items())}
        rollup: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for ep, c in out.items():
            rollup[ep.split(".", 1)[0]].update(c)
            rollup["total"].update(c)
        for name, c in rollup.items():
            out[name] = dict(c)
        return out

    def calls(self, prefix: str = "") -> int:
        with self._lock:
            return sum(c["calls"] for ep, c in self._counts.items() if ep.startswith(prefix))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def table(self) -> str:
        """The counts as a small text table, for the CLI's exit summary."""
        rows = []
        for ep, c in self.counts().items():
            if ep in ("salesforce", "hubspot"):
                continue
            extra = ", ".join(f"{k}={v}" for k, v in sorted(c.items())
                              if k not in ("calls", "ok", "server_us", "prefetch_us"))
            rows.append(f"  {ep:<34} {c.get('calls', 0):>8} calls  {c.get('ok', 0):>8} ok"
                        + (f"  {extra}" if extra else ""))
        return "\n".join(rows) if rows else "  (no calls)"
