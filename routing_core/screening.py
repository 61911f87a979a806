"""The screening hook: sanctions, PEP and blocklist checks run before any rule.

A `Screener` is given the lead and returns one `ScreeningResult` per list it checked. A hit
refuses the lead (`sanctions_hit`, `pep`, `blocklisted`). A screener that cannot do its job
(list unreadable, service down) raises `ScreeningUnavailable`; the engine then refuses the lead
with `screening_unavailable` (and treats any other exception from a screener the same way:
fail closed). Real list screeners live outside `routing_core` because they read files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from routing_core.lead import Lead

Check = Literal["sanctions", "pep", "blocklist"]

# The refusal reason of a hit, per check.
HIT_REASONS: dict[str, str] = {"sanctions": "sanctions_hit", "pep": "pep",
                               "blocklist": "blocklisted"}


class ScreeningUnavailable(Exception):
    """The screener could not screen this lead; the lead is refused, never routed."""


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """One list checked for one lead (a `screening` entry of the decision JSON)."""

    check: Check
    list: str                       # list id from the policy (ofac_sdn, uk_ofsi, ...)
    list_digest: str | None         # "sha256:..." of the list file that was read
    hit: bool
    best_score: float | None        # best name similarity found, 0..1
    matched: Mapping[str, Any] | None = None   # the matched list entry, when hit

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "list": self.list,
                               "list_digest": self.list_digest, "hit": self.hit,
                               "best_score": self.best_score}
        if self.matched is not None:
            out["matched"] = dict(self.matched)
        return out


@runtime_checkable
class Screener(Protocol):
    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        """Check the lead against every configured list; raise ScreeningUnavailable if not able."""
        ...


class NullScreener:
    """Checks nothing. For policies without a `screening` section, and for rehearsals."""

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        return ()


class StaticScreener:
    """Returns fixed results for every lead (tests, and policy tests that simulate a hit)."""

    def __init__(self, results: Sequence[ScreeningResult] = (), *,
                 unavailable: bool = False) -> None:
        self.results = tuple(results)
        self.unavailable = unavailable

    def screen(self, lead: Lead) -> Sequence[ScreeningResult]:
        if self.unavailable:
            raise ScreeningUnavailable("screening lists are unavailable")
        return self.results
