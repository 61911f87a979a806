"""Fixtures: a running sandbox and the REAL SDKs pointed at it over loopback HTTP(S)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """A small sandbox (2,500 leads and contacts) with leadgate's fields installed."""
    with Sandbox(seed=7, leads=2500, install_leadgate_fields=True) as box:
        yield box


@pytest.fixture
def sf(sb: Sandbox) -> Any:
    return sb.salesforce_client()


@pytest.fixture
def hs(sb: Sandbox) -> Any:
    return sb.hubspot_client()
