"""Every CRM call goes through one gate: call budget, org limit reserve, retries, re-auth.

Both adapters share this; they differ only in how they classify a failure (`Classifier`).
Retries use tenacity: exponential backoff with full jitter, at least the server's Retry-After
(capped by `retry.retry_after_cap`), a fixed number of attempts. Each attempt is an API call and
counts against the per-run budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from connectors.base import BudgetExhausted
from connectors.config import Limits, RetrySettings
from routing_core.errors import LeadgateError

T = TypeVar("T")
log = logging.getLogger("leadgate.crm")


@dataclass(frozen=True)
class Failure:
    """How an adapter judges one failed call.

    transient: may succeed if tried again (429, 5xx, timeout, dropped connection);
    reauth: the session expired, log in again and retry once;
    limit: the org's allowance is spent, stop the run cleanly;
    fatal: will not succeed as sent (4xx), do not retry.
    """

    kind: Literal["transient", "reauth", "limit", "fatal"]
    message: str
    status: int | None = None
    retry_after: float | None = None
    fix: str | None = None


Classifier = Callable[[BaseException], Failure]


class CallFailed(LeadgateError):
    """A CRM call failed for good (after retries, or at once for a 4xx that cannot succeed)."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None,
                 status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message, where=where, fix=fix)
        self.status = status
        self.retryable = retryable


class _Retry(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class ApiGate:
    """Counts calls, enforces the per-run budget and the org reserve, retries transient failures."""

    def __init__(self, *, source: str, limits: Limits, retry: RetrySettings,
                 classify: Classifier, reauth: Callable[[], None] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.source = source
        self.limits = limits
        self.retry = retry
        self.classify = classify
        self.reauth = reauth
        self.sleep = sleep or self._sleep_unless_stopping
        # Set by `stop` (a signal handler): no call waits any longer to be retried.
        self.stopping = False
        self.calls = 0
        self.retries = 0
        self.org_used: int | None = None
        self.org_total: int | None = None
        # The sync job reads on one thread and writes back on another: the counts are shared.
        self._lock = threading.Lock()
        self._backoff = wait_random_exponential(multiplier=retry.initial_wait,
                                                max=retry.max_wait)

    # -- limits

    def note_org_usage(self, used: int | None, total: int | None) -> None:
        """Record the org's daily API usage (from /limits, Sforce-Limit-Info, HubSpot headers)."""
        if used is not None and total:
            with self._lock:
                self.org_used, self.org_total = used, total

    def remaining(self) -> int:
        """Calls this run may still make (the smaller of budget and org allowance above reserve)."""
        left = self.limits.api_budget - self.calls
        if self.org_total:
            reserve = self.org_total * self.limits.org_reserve_percent / 100
            left = min(left, int(self.org_total - (self.org_used or 0) - reserve))
        return left

    def _spend(self, what: str) -> None:
        with self._lock:
            self._spend_one(what)

    def _spend_one(self, what: str) -> None:
        if self.calls >= self.limits.api_budget:
            raise BudgetExhausted(
                f"the API budget of {self.limits.api_budget} calls for this run is spent "
                f"before {what}",
                where=f"sources.{self.source}.limits.api_budget",
                fix="the next run continues from the stored cursor; raise api_budget to do more "
                    "per run",
            )
        if self.remaining() <= 0:
            raise BudgetExhausted(
                f"the org has {(self.org_total or 0) - (self.org_used or 0)} of {self.org_total} daily "
                f"API calls left, inside the {self.limits.org_reserve_percent:g}% reserve",
                where=f"sources.{self.source}.limits.org_reserve_percent",
                fix="the next run continues once the daily allowance recovers",
            )
        self.calls += 1
        if self.org_used is not None:
            self.org_used += 1  # until the CRM reports the exact figure again

    # -- calls

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        wait = float(self._backoff(state))
        if isinstance(exc, _Retry):
            if exc.failure.kind == "reauth":
                return 0.0
            if exc.failure.retry_after is not None:
                wait = max(wait, min(exc.failure.retry_after, self.retry.retry_after_cap))
        return wait

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one CRM call (`what` names it in errors) with budget, retries and re-auth."""
        reauthed = False
        failed: _Retry | None = None

        def attempt() -> T:
            nonlocal reauthed, failed
            if self.stopping and failed is not None:  # asked to stop during the wait
                raise failed
            self._spend(what)
            try:
                return fn()
            except LeadgateError:
                raise  # already says what and how to fix (budget, credentials, config)
            except Exception as exc:  # classified below: SDK, requests and urllib3 errors
                failure = self.classify(exc)
                if failure.kind == "reauth" and self.reauth is not None and not reauthed:
                    reauthed = True
                    self.reauth()
                    failed = _Retry(failure)
                    raise failed from exc
                if failure.kind == "transient":
                    failed = _Retry(failure)
                    raise failed from exc
                if failure.kind == "reauth":
                    failure = Failure("fatal", failure.message + " (again after logging in "
                                      "anew)", failure.status, fix=failure.fix)
                if failure.kind == "limit":
                    raise BudgetExhausted(f"{what}: {failure.message}",
                                          where=f"sources.{self.source}",
                                          fix=failure.fix or "run again when the CRM's limit "
                                                             "recovers") from exc
                raise CallFailed(f"{what}: {failure.message}", where=f"sources.{self.source}",
                                 fix=failure.fix, status=failure.status) from exc

        retrying = Retrying(stop=self._give_up, wait=self._wait,
                            retry=retry_if_exception_type(_Retry), sleep=self._sleep,
                            before_sleep=self._log_retry(what), reraise=True)
        try:
            return retrying(attempt)
        except _Retry as exc:
            tried = retrying.statistics.get("attempt_number", self.retry.attempts)
            gave_up = ("not retried: the run is stopping" if self.stopping
                       else f"gave up after {tried} attempts")
            raise CallFailed(
                f"{what}: {exc.failure.message} ({gave_up})",
                where=f"sources.{self.source}", status=exc.failure.status, retryable=True,
                fix=exc.failure.fix or self._unreachable_fix(exc.failure),
            ) from None

    def _give_up(self, state: RetryCallState) -> bool:
        return self.stopping or stop_after_attempt(self.retry.attempts)(state)

    def stop(self) -> None:
        """Retry nothing more and end any wait for a retry (the run is stopping: what failed is
        retried by the next run). Safe to call from a signal handler: it only sets a flag."""
        self.stopping = True

    def _log_retry(self, what: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            failure = exc.failure if isinstance(exc, _Retry) else None
            if failure is not None and failure.kind == "reauth":
                log.info("%s: %s: the session expired; logged in again", self.source, what)
                return
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s: %s: %s; attempt %d of %d failed, next in %.1f s", self.source,
                        what, (failure.message if failure else str(exc))[:200],
                        state.attempt_number, self.retry.attempts, wait)
        return before_sleep

    def _unreachable_fix(self, failure: Failure) -> str:
        if failure.status is None:   # nothing answered: a wrong address or a network problem
            return (f"check the address in sources.{self.source}.connection and that this "
                    "machine can reach it (network, proxy, firewall); the next run retries")
        return "the next run retries; check the CRM's status page"

    def _sleep(self, seconds: float) -> None:
        with self._lock:
            self.retries += 1
        if seconds > 0:
            self.sleep(seconds)

    def _sleep_unless_stopping(self, seconds: float) -> None:
        # In slices, checking the flag: a signal handler may set it, so no lock is taken.
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))

    def pause(self, seconds: float) -> None:
        """Wait before the next call because the CRM said its rate window is spent."""
        seconds = min(seconds, self.retry.retry_after_cap)
        if seconds > 0:
            self.sleep(seconds)


def chunked(items: list[T], size: int) -> list[list[T]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP dates are rare on these APIs and treated as absent)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
