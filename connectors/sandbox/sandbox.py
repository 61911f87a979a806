"""`Sandbox`: both emulated CRMs on loopback, for tests, benchmarks and `leadgate demo`."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from routing_core.errors import LeadgateError

from .accounting import Accounting
from .faults import Faults
from .hubspot import HubSpotApp, RateLimits
from .reps import Rep, coerce, default_reps
from .salesforce import SalesforceApp
from .server import HttpServer
from .store import DEFAULT_ANCHOR_MS, Store
from .tls import make_ca_and_server, make_jwt_keypair, server_context

# Fake credentials of the sandbox org and portal; they open nothing anywhere else.
SF_USERNAME = "leadgate.integration@northwind.example.sandbox"
SF_PASSWORD = "sandbox-password"
SF_SECURITY_TOKEN = "SANDBOXTOKEN0000"
SF_CLIENT_ID = "3MVG9LeadgateSandboxConsumerKey"
SF_CLIENT_SECRET = "sandbox-consumer-secret"
HUBSPOT_TOKEN = "pat-na1-00000000-sand-box0-0000-leadgatesandbox"
API_VERSION = "59.0"


class Sandbox:
    """A Salesforce org (HTTPS, generated CA) and a HubSpot portal on 127.0.0.1.

    >>> with Sandbox(seed=1, leads=1000) as sb:
    ...     sf = Salesforce(instance_url=sb.salesforce_instance_url,
    ...                     session_id=sb.salesforce_session_id, session=sb.requests_session())

    Arguments: `seed` (reproducible data and faults), `leads` (Salesforce leads; HubSpot gets
    `contacts` or as many), `faults` (spec string, see connectors.sandbox.faults), `persist`
    (JSON file: loaded at start if present, written at stop), `reps` (users/owners to create:
    Rep, (sf id, hubspot id, name, email) tuples or dicts; default: examples/policy's reps),
    `install_leadgate_fields` (start with leadgate's fields/properties already created, as
    after `leadgate install`), `api_limit` (Salesforce daily API requests),
    `enforce_rate_limits` (HubSpot 429s when its limits are exceeded; off by default so
    benchmarks measure leadgate), `salesforce_port`/`hubspot_port` (0 = ephemeral),
    `hubspot_tls` (serve HubSpot over HTTPS too), `anchor` (generated records were created
    in the 90 days before it; default 2026-01-01T00:00Z).
    """

    def __init__(self, seed: int = 1, leads: int = 1000, faults: str | None = None,
                 persist: str | Path | None = None, *, contacts: int | None = None,
                 reps: Iterable[Any] | None = None, install_leadgate_fields: bool = False,
                 api_limit: int = 100_000, enforce_rate_limits: bool = False,
                 salesforce_port: int = 0, hubspot_port: int = 0, hubspot_tls: bool = False,
                 anchor: datetime | None = None) -> None:
        if leads < 0 or (contacts is not None and contacts < 0):
            raise LeadgateError("the number of leads cannot be negative", where="--leads",
                                fix="pass 0 or more")
        self.seed = seed
        self.persist = Path(persist) if persist else None
        self.reps: list[Rep] = coerce(reps) if reps is not None else default_reps()
        anchor_ms = int(anchor.timestamp() * 1000) if anchor else DEFAULT_ANCHOR_MS
        saved = self._read_persisted()
        if saved:
            seed, leads = int(saved["seed"]), int(saved["leads"])
            contacts, anchor_ms = int(saved["contacts"]), int(saved["anchor_ms"])
            self.seed = seed
        self.store = Store(seed=seed, leads=leads, contacts=contacts, reps=self.reps,
                           anchor_ms=anchor_ms)
        if saved:
            self.store.load(saved)
        if install_leadgate_fields:
            self.store.install_leadgate_fields()
        self._faults = Faults(faults, seed)
        self.accounting = Accounting()
        self._dir = Path(tempfile.mkdtemp(prefix="leadgate-sandbox-"))
        self.ca_file, cert, key = make_ca_and_server(self._dir)
        self.jwt_private_key_file, jwt_public = make_jwt_keypair(self._dir)
        self.salesforce_credentials: dict[str, str] = {
            "username": SF_USERNAME, "password": SF_PASSWORD,
            "security_token": SF_SECURITY_TOKEN, "client_id": SF_CLIENT_ID,
            "client_secret": SF_CLIENT_SECRET,
        }
        self.rate_limits = RateLimits(enforce=enforce_rate_limits)
        self.salesforce = SalesforceApp(
            self.store, lambda: self._faults, self.accounting,
            credentials=dict(self.salesforce_credentials), jwt_public_keys=[jwt_public],
            api_limit=api_limit, instance_url=lambda: self.salesforce_instance_url)
        self.hubspot = HubSpotApp(self.store, lambda: self._faults, self.accounting,
                                  token=HUBSPOT_TOKEN, rate_limits=self.rate_limits)
        tls = server_context(cert, key)
        self._sf_server = HttpServer(self.salesforce, salesforce_port, tls)
        self._hs_server = HttpServer(self.hubspot, hubspot_port, tls if hubspot_tls else None)
        self.salesforce_instance_url = self._sf_server.url
        self.hubspot_base_url = self._hs_server.url
        self.hubspot_token = HUBSPOT_TOKEN
        self.salesforce_session_id = self.salesforce.issue_token()
        port = self._sf_server.port
        self.salesforce_credentials.update({
            "login_url": self.salesforce_instance_url,
            "token_url": f"{self.salesforce_instance_url}/services/oauth2/token",
            # simple-salesforce builds https://{domain}.salesforce.com/<path>; this domain
            # makes that URL land on the sandbox's login endpoint.
            "domain": f"127.0.0.1:{port}/_sfdomain?tail=",
            "private_key_file": str(self.jwt_private_key_file),
            "api_version": API_VERSION,
        })
        self._started = False

    # -- lifecycle
    def start(self) -> Sandbox:
        if not self._started:
            self._sf_server.start()
            self._hs_server.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._sf_server.stop()
            self._hs_server.stop()
            self._started = False
            if self.persist:
                self.store.save(self.persist)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_persisted(self) -> dict[str, Any] | None:
        if not self.persist or not self.persist.exists():
            return None
        try:
            data = json.loads(self.persist.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise LeadgateError(f"cannot read the sandbox state file: {e}",
                                where=str(self.persist),
                                fix="delete it to start from fresh seeded data") from None
        if not isinstance(data, dict) or data.get("format") != "leadgate-sandbox/1":
            raise LeadgateError("not a leadgate sandbox state file", where=str(self.persist),
                                fix="pass another --persist path or delete this file")
        return data

    # -- faults and accounting
    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, spec: str | Faults | None) -> None:
        self._faults = spec if isinstance(spec, Faults) else Faults(spec, self.seed)

    def counts(self) -> dict[str, dict[str, int]]:
        """Calls by endpoint and kind; see connectors.sandbox.accounting.Accounting."""
        return self.accounting.counts()

    def calls(self, prefix: str = "") -> int:
        """Number of calls to endpoints starting with `prefix` ("salesforce.query", "hubspot")."""
        return self.accounting.calls(prefix)

    # -- handy ids
    @property
    def salesforce_intake_queue_id(self) -> str:
        return self.store.intake_queue_id

    @property
    def salesforce_review_queue_id(self) -> str:
        return self.store.review_queue_id

    @property
    def hubspot_review_owner_id(self) -> str:
        return self.store.review_owner_id

    def install_leadgate_fields(self) -> None:
        """Create leadgate's fields (Salesforce) and properties (HubSpot) directly."""
        self.store.install_leadgate_fields()

    def expire_sessions(self) -> None:
        """Expire every Salesforce session now (tokens from the token endpoint and
        `salesforce_session_id`)."""
        self.salesforce.expire_sessions()

    # -- clients
    def requests_session(self) -> Any:
        """A requests.Session that trusts the sandbox CA whatever the environment says
        (REQUESTS_CA_BUNDLE would otherwise override Session.verify)."""
        import requests

        s = requests.Session()
        s.verify = str(self.ca_file)
        s.trust_env = False
        return s

    def salesforce_client(self, **kwargs: Any) -> Any:
        """A simple_salesforce.Salesforce on the pre-issued session."""
        from simple_salesforce import Salesforce

        return Salesforce(instance_url=self.salesforce_instance_url,
                          session_id=self.salesforce_session_id,
                          session=kwargs.pop("session", None) or self.requests_session(),
                          version=kwargs.pop("version", API_VERSION), **kwargs)

    def hubspot_client(self, **kwargs: Any) -> Any:
        """A hubspot.HubSpot pointed at the sandbox portal."""
        from hubspot import HubSpot

        extra: dict[str, Any] = {}
        if self.hubspot_base_url.startswith("https"):
            extra["ssl_ca_cert"] = str(self.ca_file)
        return HubSpot(access_token=self.hubspot_token, host=self.hubspot_base_url,
                       **extra, **kwargs)

    def describe(self) -> str:
        """Human-readable lines: where to point leadgate (fake credentials only)."""
        c = self.salesforce_credentials
        return "\n".join([
            f"Salesforce instance URL : {self.salesforce_instance_url}",
            f"  token URL             : {c['token_url']}",
            f"  username              : {c['username']}",
            f"  password              : {c['password']}",
            f"  security token        : {c['security_token']}",
            f"  client id             : {c['client_id']}",
            f"  client secret         : {c['client_secret']}",
            f"  JWT private key       : {c['private_key_file']}",
            f"  session id            : {self.salesforce_session_id}",
            f"  CA certificate        : {self.ca_file}",
            f"  intake queue          : {self.salesforce_intake_queue_id} (Lead Intake)",
            f"  review queue          : {self.salesforce_review_queue_id} (Compliance Review)",
            f"HubSpot base URL        : {self.hubspot_base_url}",
            f"  private app token     : {self.hubspot_token}",
            f"  review owner id       : {self.hubspot_review_owner_id}",
            f"Leads                   : {self.store.leads.n} Salesforce, "
            f"{self.store.contacts.n} HubSpot (seed {self.seed})",
        ])
