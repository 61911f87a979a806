"""Where a URL sends what it carries: an http(s) URL with a host, and whether it crosses the
network in clear (credentials to a CRM, a digest and its webhook's secret)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_http_url(url: str) -> bool:
    """An http:// or https:// URL with a host (what a webhook must be)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


#: said wherever a plain http:// URL is refused
LOOPBACK_ONLY = "use https://; plain http:// is accepted only for 127.0.0.1, ::1 or localhost"


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def is_cleartext_remote(url: str) -> bool:
    """An http:// URL to a host that is not loopback: whatever it carries (a bearer token, a
    client secret, a webhook's own secret) crosses the network unencrypted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False  # not a URL at all: is_http_url reports it
    return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname)
