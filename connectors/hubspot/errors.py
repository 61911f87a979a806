"""How a failed HubSpot call is judged, and what its rate-limit headers say."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from connectors.calls import Failure, parse_retry_after


def _body(exc: Any) -> dict[str, Any]:
    try:
        data = json.loads(exc.body or b"{}")
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _interval(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    millis = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        return int(millis) / 1000 if millis else None
    except ValueError:
        return None


def classify(exc: BaseException) -> Failure:
    from hubspot.crm.contacts.exceptions import ApiException as ContactsError
    from hubspot.crm.owners.exceptions import ApiException as OwnersError
    from hubspot.crm.properties.exceptions import ApiException as PropertiesError

    errors = (ContactsError, OwnersError, PropertiesError)
    if isinstance(exc, AttributeError) and isinstance(exc.__context__, errors):
        # hubspot-api-client 12 fails on `e.body.decode()` of its own status-0 (TLS) error
        exc = exc.__context__
    if isinstance(exc, errors):
        status = int(exc.status or 0)
        body = _body(exc)
        headers = exc.headers or {}
        kind = body.get("category") or body.get("errorType") or ""
        policy = f" ({body['policyName']})" if body.get("policyName") else ""
        text = f"HTTP {status} {kind}{policy}: {body.get('message', '')}".strip(" :")
        if status == 0:
            return Failure("fatal", f"TLS or connection set-up failed ({exc.reason})",
                           fix="check connection.base_url, and connection.ca_file for a "
                               "private CA")
        if status == 429:
            if str(body.get("policyName", "")).upper() == "DAILY":
                return Failure("limit", text, status,
                               fix="the portal's daily API limit is spent; the next run "
                                   "continues")
            wait = parse_retry_after(headers.get("Retry-After")) or _interval(headers)
            return Failure("transient", text, status, retry_after=wait)
        if status >= 500:
            return Failure("transient", text, status,
                           retry_after=parse_retry_after(headers.get("Retry-After")))
        if status == 401:
            # an expired token may have been rotated in the env/file: read it again, once
            fix = "check the private app token named by connection.token"
            if body.get("category") == "EXPIRED_AUTHENTICATION":
                return Failure("reauth", text, status, fix=fix)
            return Failure("fatal", text, status, fix=fix)
        if status == 403:
            return Failure("fatal", text, status,
                           fix="give the private app the crm.objects.contacts.read/write, "
                               "crm.schemas.contacts.read/write and crm.objects.owners.read "
                               "scopes")
        return Failure("fatal", text, status)
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return Failure("transient", f"{type(exc).__name__} (no response)")
    return Failure("fatal", f"{type(exc).__name__}: {exc}")


def rate_headers(headers: Mapping[str, str] | None) -> tuple[float | None, int | None,
                                                              int | None]:
    """(seconds to wait before the next call, daily used, daily max) from a response's headers.

    Search responses carry none of these; the other endpoints do.
    """
    if not headers:
        return None, None, None
    wait = None
    remaining = headers.get("X-HubSpot-RateLimit-Remaining")
    if remaining is not None and remaining.strip() in ("0", "1"):
        wait = _interval(headers)
    used = total = None
    daily, daily_left = (headers.get("X-HubSpot-RateLimit-Daily"),
                         headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
    if daily and daily_left and daily.isdigit() and daily_left.isdigit():
        total, used = int(daily), int(daily) - int(daily_left)
    return wait, used, total
