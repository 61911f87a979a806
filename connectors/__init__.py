"""CRM connectors: one adapter per CRM behind `connectors.base.Connector`.

    from connectors import open_connector
    from connectors.config import load_config

    config = load_config("leadgate.yaml")
    crm = open_connector(config.sources["crm"], source="crm")
    crm.begin_run()
    for page in crm.pull(cursor):
        ...
        results = crm.write_back(outcomes)

The SDK of a CRM is imported only when a connector of that kind is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Connector
    from connectors.config import HubSpotSource, SalesforceSource


def open_connector(source_config: SalesforceSource | HubSpotSource, *, source: str | None = None,
                   sleep: Callable[[float], None] | None = None,
                   **options: Any) -> Connector:
    """Open the adapter for one configured source (nothing is sent until the first call).

    `source` is the source's name in leadgate.yaml (recorded in leads and errors; defaults to its
    kind). `sleep` is used for retry waits (tests pass a recorder). Salesforce accepts
    `session_factory` (returns the requests.Session handed to simple-salesforce).
    """
    name = source or source_config.kind
    if source_config.kind == "salesforce":
        from connectors.salesforce.adapter import SalesforceConnector

        return SalesforceConnector(source_config, source=name, sleep=sleep, **options)
    if source_config.kind == "hubspot":
        from connectors.hubspot.adapter import HubSpotConnector

        return HubSpotConnector(source_config, source=name, sleep=sleep, **options)
    raise ValueError(f"unknown CRM kind {source_config.kind!r}")  # pragma: no cover


__all__ = ["open_connector"]
