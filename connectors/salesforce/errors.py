"""How a failed Salesforce call is judged: retry, log in again, stop, or give up."""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceError

from connectors.calls import Failure, parse_retry_after

# per-record statusCodes of sObject Collections that a later attempt may get past (not
# TOO_MANY_ENUM_VALUE: too many values for a multi-select picklist fails every time)
RETRYABLE_RECORD_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "QUERY_TIMEOUT",
})

_FIXES = {
    "INVALID_FIELD": "check the mapping with `leadgate connect salesforce`; if leadgate's own "
                     "fields are missing, run `leadgate install salesforce`",
    "INVALID_TYPE": "check `object:` and that the user can see it",
    "MALFORMED_QUERY": "report this: leadgate built a query Salesforce refused",
    "INVALID_QUERY_LOCATOR": "the query is restarted from the last cursor",
    "API_DISABLED_FOR_ORG": "enable API access for the org/edition",
    "INSUFFICIENT_ACCESS": "give the integration user access (profile or permission set)",
    "NOT_FOUND": "check login_url/instance and api_version",
}


def error_code(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error body (a JSON list of {message, errorCode})."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, dict):
        return str(first.get("errorCode") or first.get("error") or ""), \
            one_line(str(first.get("message") or first.get("error_description") or ""))
    return "", ""


def one_line(message: str) -> str:
    """A Salesforce message as one line. A query error comes as the statement, a caret under
    the fault, "ERROR at Row:1:Column:83" and the explanation, on five lines: its explanation's
    first sentence ("No such column 'Emial' on entity 'Lead'.") is what a person needs."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("ERROR at Row:") and i + 1 < len(lines):
            explanation = " ".join(lines[i + 1:])
            first, dot, _ = explanation.partition(". ")
            return first + dot.strip()
    return " ".join(lines)


def classify(exc: BaseException, last_headers: dict[str, str] | None = None) -> Failure:
    headers = last_headers or {}
    if isinstance(exc, SalesforceError):
        code, message = error_code(exc.content)
        text = f"HTTP {exc.status} {code}: {message}".strip()
        if exc.status == 401 and code in ("INVALID_SESSION_ID", ""):
            return Failure("reauth", text, exc.status)
        if exc.status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            return Failure("limit", text, exc.status,
                           fix="the org's daily API requests are used up; the next run continues")
        if exc.status == 429 or exc.status >= 500:
            return Failure("transient", text, exc.status,
                           retry_after=parse_retry_after(headers.get("Retry-After")))
        return Failure("fatal", text, exc.status, fix=_FIXES.get(code))
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure("fatal", f"TLS verification failed ({type(exc).__name__})",
                       fix="set connection.ca_file to the CA bundle that signed the org's "
                           "certificate, or fix REQUESTS_CA_BUNDLE")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return Failure("transient", f"HTTP {status}", status,
                       retry_after=parse_retry_after(exc.response.headers.get("Retry-After")))
    if isinstance(exc, requests.Timeout | requests.ConnectionError |
                  requests.exceptions.ChunkedEncodingError):
        return Failure("transient", f"{type(exc).__name__} (no response)")
    if isinstance(exc, ValueError):  # a 2xx whose body is not JSON: a proxy or a cut response
        return Failure("transient", f"unreadable response ({type(exc).__name__})")
    return Failure("fatal", f"{type(exc).__name__}: {exc}")
