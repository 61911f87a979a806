"""The HTTP session handed to simple-salesforce, and OAuth login against the token endpoint.

A custom CA (connection.ca_file) must win over REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE: requests merges
those environment variables over `Session.verify` for every request, but never over a `verify`
passed with the request itself. So the pinned session passes `verify=ca_file` per request and
keeps `trust_env` (proxies from the environment still apply). Without ca_file the session is a
plain one and the environment's CA bundle is honoured, as production needs.

Login goes to `{login_url}/services/oauth2/token` (JWT bearer, client credentials or the
username-password flow) and yields an access token and the instance URL; simple-salesforce then
uses them as a direct session, and leadgate logs in again itself when the session expires.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from connectors.config import SalesforceConnection
from routing_core.errors import LeadgateError


class PinnedCASession(requests.Session):
    """A session whose CA bundle cannot be overridden by the environment."""

    def __init__(self, ca_file: Path) -> None:
        super().__init__()
        self.ca_file = str(ca_file)
        self.verify = self.ca_file

    def request(self, method: str | bytes, url: str | bytes,
                *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("verify") in (None, True):
            kwargs["verify"] = self.ca_file
        return super().request(method, url, *args, **kwargs)


def make_session(ca_file: Path | None) -> requests.Session:
    if ca_file is None:
        return requests.Session()
    if not Path(ca_file).is_file():
        raise LeadgateError(f"CA file {ca_file} does not exist", where="connection.ca_file",
                            fix="point ca_file at the PEM bundle that signed the org's certificate")
    return PinnedCASession(Path(ca_file))


@dataclass(frozen=True)
class Login:
    access_token: str
    instance_url: str

    def __repr__(self) -> str:  # never show the token
        return f"Login(instance_url={self.instance_url!r})"


def _value(conn: SalesforceConnection, key: str, where: str) -> str:
    raw = getattr(conn, key)
    if raw is None:
        raise LeadgateError(f"{key} is required for auth {conn.auth}", where=f"{where}.{key}",
                            fix=f"add {key} to the connection settings")
    if isinstance(raw, str):
        return raw
    return str(raw.resolve(f"{where}.{key}").get_secret_value())


def jwt_audience(conn: SalesforceConnection) -> str:
    """The JWT `aud`: Salesforce wants login/test.salesforce.com, even behind My Domain."""
    if conn.jwt_audience:
        return conn.jwt_audience
    sandbox_org = "test.salesforce.com" in conn.login_url or ".sandbox.my." in conn.login_url
    return "https://test.salesforce.com" if sandbox_org else "https://login.salesforce.com"


def token_request(conn: SalesforceConnection, where: str) -> dict[str, str]:
    """The form body of the OAuth token request for the configured flow."""
    if conn.auth == "password":
        return {
            "grant_type": "password",
            "client_id": _value(conn, "client_id", where),
            "client_secret": _value(conn, "client_secret", where),
            "username": _value(conn, "username", where),
            "password": _value(conn, "password", where) + (
                _value(conn, "security_token", where) if conn.security_token else ""),
        }
    if conn.auth == "client_credentials":
        return {"grant_type": "client_credentials",
                "client_id": _value(conn, "client_id", where),
                "client_secret": _value(conn, "client_secret", where)}
    import jwt  # PyJWT, a dependency of simple-salesforce

    claims = {"iss": _value(conn, "client_id", where), "sub": _value(conn, "username", where),
              "aud": jwt_audience(conn), "exp": int(time.time()) + 180}
    assertion = jwt.encode(claims, _value(conn, "private_key", where), algorithm="RS256")
    return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}


def login(session: requests.Session, conn: SalesforceConnection, *, where: str,
          timeout: float) -> Login:
    """Log in; raises requests errors (retried by the gate) or LeadgateError (bad credentials)."""
    url = conn.login_url.rstrip("/") + "/services/oauth2/token"
    response = session.post(url, data=token_request(conn, where), timeout=timeout,
                            headers={"Accept": "application/json"})
    if response.status_code >= 500 or response.status_code == 429:
        response.raise_for_status()  # transient: the gate retries it
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        error = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) \
            else f"HTTP {response.status_code}"
        description = body.get("error_description", "") if isinstance(body, dict) else ""
        raise LeadgateError(
            f"Salesforce login failed at {url}: {error} {description}".strip(),
            where=f"{where}.auth",
            fix=f"check the {conn.auth} credentials and that the connected app allows this flow",
        )
    return Login(body["access_token"], body.get("instance_url") or conn.login_url)
