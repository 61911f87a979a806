"""Sandbox CRM fixtures for the connector tests: a fresh org/portal per test, real SDKs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """sandbox(leads=..., contacts=..., faults=...) -> a started Sandbox, stopped afterwards."""
    from connectors.sandbox import Sandbox

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("install_leadgate_fields", True)
        kwargs.setdefault("leads", 200)
        sb = Sandbox(**kwargs).start()
        made.append(sb)
        creds = sb.salesforce_credentials
        monkeypatch.setenv("LG_T_SF_SECRET", creds["client_secret"])
        monkeypatch.setenv("LG_T_SF_PASSWORD", creds["password"])
        monkeypatch.setenv("LG_T_SF_TOKEN", creds["security_token"])
        monkeypatch.setenv("LG_T_HS_TOKEN", sb.hubspot_token)
        return sb

    yield make
    for sb in made:
        sb.stop()
