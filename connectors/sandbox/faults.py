"""Fault injection: what goes wrong, where, and when, reproducibly from a seed.

Spec syntax (comma-separated rules):  TARGET:KIND[=ARG][@TRIGGER]

  TARGET   endpoint glob: salesforce.query, salesforce.*, hubspot.batch_update, *
  KIND     429 | 500 | 502 | 503 (any 4xx/5xx status: the API's own error body)
           rate_limit      the API's rate-limit answer (same as 429 for HubSpot; 403
                           REQUEST_LIMIT_EXCEEDED for Salesforce)
           slow[=S]        answer after S seconds (default 5): past a client's timeout
           drop            close the connection without answering
           expire_session  the session/token expires now (Salesforce: every token issued
                           so far; HubSpot: this call answers 401)
           record_error    per-record failure inside a batch (Salesforce UNABLE_TO_LOCK_ROW,
                           HubSpot 207 error) — TRIGGER rate is per record
           owner_change    a person changes the owner of a record leadgate has just read
                           (or is about to write) — TRIGGER rate is per record
  TRIGGER  0.1             probability (per call; per record for the two record kinds)
           call=N          the Nth matching call (1-based); calls=A-B a range
           every=N         every Nth matching call;  first=N  the first N;  after=N  all after N
           (omitted)       every matching call

Example: "salesforce.query:429@0.1,hubspot.batch_update:503@0.05,salesforce.*:expire_session@call=50"
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
import zlib
from dataclasses import dataclass, field

from routing_core.errors import LeadgateError

CALL_KINDS = {"rate_limit", "slow", "drop", "expire_session"}
RECORD_KINDS = {"record_error", "owner_change"}
_RULE = re.compile(
    r"^(?P<target>[A-Za-z0-9_.*?\[\]-]+):(?P<kind>[a-z_]+|[45]\d\d)(?:=(?P<arg>[0-9.]+))?"
    r"(?:@(?P<trigger>[a-z]+=[0-9-]+|[0-9.]+))?$"
)
_FIX = ("write rules as TARGET:KIND[=ARG][@TRIGGER], e.g. salesforce.query:429@0.1 or "
        "hubspot.*:drop@call=3")


@dataclass
class Rule:
    text: str
    target: str
    kind: str  # a status code as text, or one of CALL_KINDS | RECORD_KINDS
    arg: float | None
    trigger: str  # "always" | "rate" | "call" | "calls" | "every" | "first" | "after"
    a: float = 0.0
    b: float = 0.0
    calls: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, endpoint: str) -> bool:
        return fnmatch.fnmatchcase(endpoint, self.target)

    def fires_on_call(self) -> bool:
        """Count this matching call and say whether the rule fires on it."""
        self.calls += 1
        n = self.calls
        t = self.trigger
        if t == "always":
            return True
        if t == "rate":
            return self.rng.random() < self.a
        if t == "call":
            return n == self.a
        if t == "calls":
            return self.a <= n <= self.b
        if t == "every":
            return n % int(self.a) == 0
        if t == "first":
            return n <= self.a
        if t == "after":
            return n > self.a
        return False


def parse(spec: str | None, seed: int = 1) -> list[Rule]:
    """Parse a fault spec; raises LeadgateError naming the bad rule and the fix."""
    rules: list[Rule] = []
    for n, raw in enumerate(p.strip() for p in (spec or "").split(",")):
        if not raw:
            continue
        m = _RULE.match(raw)
        if not m:
            raise LeadgateError(f"cannot read fault rule {raw!r}", where="--faults", fix=_FIX)
        kind = m["kind"]
        if not (kind.isdigit() or kind in CALL_KINDS | RECORD_KINDS):
            raise LeadgateError(f"unknown fault kind {kind!r} in {raw!r}", where="--faults",
                                fix="use a 4xx/5xx status or one of "
                                    + ", ".join(sorted(CALL_KINDS | RECORD_KINDS)))
        trig = m["trigger"]
        rule = Rule(raw, m["target"], kind, float(m["arg"]) if m["arg"] else None, "always")
        if trig:
            if "=" in trig:
                name, _, val = trig.partition("=")
                if name not in ("call", "calls", "every", "first", "after"):
                    raise LeadgateError(f"unknown trigger {name!r} in {raw!r}", where="--faults",
                                        fix=_FIX)
                rule.trigger = name
                if name == "calls":
                    lo, _, hi = val.partition("-")
                    rule.a, rule.b = float(lo), float(hi or lo)
                else:
                    rule.a = float(val)
                if name == "every" and rule.a < 1:
                    raise LeadgateError(f"every=N needs N >= 1 in {raw!r}", where="--faults",
                                        fix=_FIX)
            else:
                rule.trigger, rule.a = "rate", float(trig)
                if not 0 <= rule.a <= 1:
                    raise LeadgateError(f"rate {trig} in {raw!r} is not between 0 and 1",
                                        where="--faults", fix=_FIX)
        rule.rng = random.Random(seed * 1_000_003 + n * 7919 + zlib.crc32(raw.encode()))
        rules.append(rule)
    return rules


class Faults:
    """The active rules of a sandbox; thread-safe, replaceable at runtime."""

    def __init__(self, spec: str | None = None, seed: int = 1) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self.spec = spec or ""
        self.rules = parse(spec, seed)
        self.fired: list[tuple[str, str]] = []  # (endpoint, rule text), in order

    def call_faults(self, endpoint: str) -> list[Rule]:
        """Rules (not record kinds) that fire on this call, in spec order."""
        out: list[Rule] = []
        with self._lock:
            for rule in self.rules:
                if rule.kind in RECORD_KINDS or not rule.matches(endpoint):
                    continue
                if rule.fires_on_call():
                    out.append(rule)
                    self.fired.append((endpoint, rule.text))
        return out

    def record_faults(self, endpoint: str, n_records: int, kind: str) -> set[int]:
        """Positions (0-based) of the records of this call hit by `kind`."""
        hits: set[int] = set()
        if not n_records:
            return hits
        with self._lock:
            for rule in self.rules:
                if rule.kind != kind or not rule.matches(endpoint):
                    continue
                if rule.trigger == "rate":
                    rule.calls += 1
                    for pos in range(n_records):
                        if rule.rng.random() < rule.a:
                            hits.add(pos)
                elif rule.fires_on_call():
                    hits.add(rule.rng.randrange(n_records))
                if hits:
                    self.fired.append((endpoint, rule.text))
        return hits

    def __bool__(self) -> bool:
        return bool(self.rules)
