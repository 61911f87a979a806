"""Connector settings pointing at a running sandbox (fake credentials come from env vars the
`sandbox` fixture sets, as a deployment's would)."""

from __future__ import annotations

from typing import Any

from connectors.config import HubSpotSource, SalesforceSource, parse_config

FAST_RETRY = {"attempts": 5, "initial_wait": 0.01, "max_wait": 0.05, "retry_after_cap": 0.05,
              "timeout_seconds": 5}


def sf_source(sb: Any, **overrides: Any) -> SalesforceSource:
    creds = sb.salesforce_credentials
    connection = {"login_url": sb.salesforce_instance_url, "auth": "password",
                  "username": creds["username"], "client_id": creds["client_id"],
                  "client_secret": {"env": "LG_T_SF_SECRET"},
                  "password": {"env": "LG_T_SF_PASSWORD"},
                  "security_token": {"env": "LG_T_SF_TOKEN"}, "ca_file": str(sb.ca_file),
                  **overrides.pop("connection", {})}
    data = {"kind": "salesforce", "connection": connection, "retry": FAST_RETRY, **overrides}
    source = parse_config({"sources": {"sf": data}}).sources["sf"]
    assert isinstance(source, SalesforceSource)
    return source


def hs_source(sb: Any, **overrides: Any) -> HubSpotSource:
    connection = {"base_url": sb.hubspot_base_url, "token": {"env": "LG_T_HS_TOKEN"},
                  **overrides.pop("connection", {})}
    data = {"kind": "hubspot", "connection": connection, "retry": FAST_RETRY,
            "review_owner_id": sb.hubspot_review_owner_id, "search_per_second": 1000,
            **overrides}
    source = parse_config({"sources": {"hs": data}}).sources["hs"]
    assert isinstance(source, HubSpotSource)
    return source
