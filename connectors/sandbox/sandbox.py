"""`Sandbox`: both emulated CRMs on loopback, for tests, benchmarks and `leadgate demo`."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from routing_core.errors import LeadgateError

from .accounting import Accounting
from .faults import Faults
from .hubspot import HubSpotApp, RateLimits
from .reps import Rep, coerce, default_reps, default_review_owner
from .salesforce import SalesforceApp
from .server import HttpServer, Request, Response
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


class SandboxClients:
    """What both `Sandbox` and `SandboxProcess` offer: where the CRMs are and ready clients."""

    salesforce_instance_url: str
    salesforce_session_id: str
    salesforce_credentials: dict[str, str]
    ca_file: Path
    hubspot_base_url: str
    hubspot_token: str
    salesforce_intake_queue_id: str
    salesforce_review_queue_id: str
    hubspot_review_owner_id: str
    seed: int
    sizes: tuple[int, int]  # (Salesforce leads, HubSpot contacts) at start

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
        from simple_salesforce.api import Salesforce

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
            f"  simple-salesforce domain: {c['domain']}",
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
            f"Leads                   : {self.sizes[0]} Salesforce, "
            f"{self.sizes[1]} HubSpot (seed {self.seed})",
        ])

    def info(self) -> dict[str, Any]:
        """Everything a client needs, as JSON-safe data (what `--json` prints)."""
        return {
            "salesforce_instance_url": self.salesforce_instance_url,
            "salesforce_session_id": self.salesforce_session_id,
            "salesforce_credentials": dict(self.salesforce_credentials),
            "ca_file": str(self.ca_file),
            "hubspot_base_url": self.hubspot_base_url,
            "hubspot_token": self.hubspot_token,
            "salesforce_intake_queue_id": self.salesforce_intake_queue_id,
            "salesforce_review_queue_id": self.salesforce_review_queue_id,
            "hubspot_review_owner_id": self.hubspot_review_owner_id,
            "seed": self.seed, "sizes": list(self.sizes),
        }


class Sandbox(SandboxClients):
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
    in the 90 days before it; default 2026-01-01T00:00Z), `latency_ms` (milliseconds added to
    every answer of both APIs, for benchmarks that model a CRM across the internet; default 0:
    loopback speed).
    """

    def __init__(self, seed: int = 1, leads: int = 1000, faults: str | None = None,
                 persist: str | Path | None = None, *, contacts: int | None = None,
                 reps: Iterable[Any] | None = None, install_leadgate_fields: bool = False,
                 api_limit: int = 100_000, enforce_rate_limits: bool = False,
                 salesforce_port: int = 0, hubspot_port: int = 0, hubspot_tls: bool = False,
                 anchor: datetime | None = None,
                 hubspot_review_owner_id: str | None = None, latency_ms: float = 0.0) -> None:
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
                           anchor_ms=anchor_ms, review_owner_id=hubspot_review_owner_id
                           or (default_review_owner() if reps is None else None))
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
        self.salesforce_intake_queue_id = self.store.intake_queue_id
        self.salesforce_review_queue_id = self.store.review_queue_id
        self.hubspot_review_owner_id = self.store.review_owner_id
        self.sizes = (self.store.leads.n, self.store.contacts.n)
        self.admin_token = secrets.token_urlsafe(16)
        try:
            latency = max(0.0, latency_ms) / 1000
            self._sf_server = HttpServer(_Admin(self.salesforce, self), salesforce_port, tls,
                                         latency)
            try:
                self._hs_server = HttpServer(self.hubspot, hubspot_port,
                                             tls if hubspot_tls else None, latency)
            except OSError:
                self._sf_server.close()
                raise
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise LeadgateError(f"cannot listen on 127.0.0.1: {e.strerror or e}",
                                where="--port", fix="pick other ports, or 0 for free ones"
                                ) from None
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
            # stop both at once: each waits up to one poll interval for its loop to notice
            other = threading.Thread(target=self._hs_server.stop)
            other.start()
            self._sf_server.stop()
            other.join()
            self.salesforce.close()
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

    def install_leadgate_fields(self) -> None:
        """Create leadgate's fields (Salesforce) and properties (HubSpot) directly."""
        self.store.install_leadgate_fields()

    def register_jwt_certificate(self, pem: str | bytes) -> None:
        """Trust another key for the JWT bearer flow, as uploading a certificate to a
        connected app does: an X.509 certificate or a public key, in PEM."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        data = pem.encode() if isinstance(pem, str) else pem
        key: Any = (x509.load_pem_x509_certificate(data).public_key()
                    if b"BEGIN CERTIFICATE" in data else serialization.load_pem_public_key(data))
        self.salesforce.jwt_public_keys.append(key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def add_lead(self, **fields: Any) -> str:
        """A new Salesforce lead arrives (web-to-lead): in the intake queue unless `fields`
        say otherwise. Field values as stored (datetimes in epoch ms). Returns its Id."""
        fields.setdefault("Company", "[not provided]")
        return self.store.leads.id_of(self.store.new_lead(fields, origin="web-to-lead"))

    def enquire(self, **properties: Any) -> tuple[str, bool]:
        """A HubSpot form submission. HubSpot merges by email: a returning client's enquiry
        updates the existing contact (recent_conversion_date and num_conversion_events move;
        the lifecycle stage and leadgate's stamp stay). Returns (contact id, created?)."""
        i, created = self.store.enquire(properties)
        return self.store.contacts.id_of(i), created

    def expire_sessions(self) -> None:
        """Expire every Salesforce session now (tokens from the token endpoint and
        `salesforce_session_id`)."""
        self.salesforce.expire_sessions()


class _Admin:
    """Loopback-only control of a running sandbox for another process (SandboxProcess):
    /_sandbox/counts, /_sandbox/faults, /_sandbox/expire_sessions. Not counted as API calls."""

    def __init__(self, app: SalesforceApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    def handle(self, req: Request) -> Response:
        if not req.path.startswith("/_sandbox/"):
            return self.app.handle(req)
        if req.headers.get("authorization") != f"Bearer {self.sandbox.admin_token}":
            return Response.json(401, {"error": "admin token required"})
        what = req.path.removeprefix("/_sandbox/").rstrip("/")
        if what == "counts" and req.method == "GET":
            return Response.json(200, self.sandbox.counts())
        if what == "counts" and req.method == "DELETE":
            self.sandbox.accounting.reset()
            return Response(204)
        if what == "faults" and req.method == "PUT":
            try:
                self.sandbox.faults = req.body.decode("utf-8") or None
            except LeadgateError as e:
                return Response.json(400, {"error": str(e)})
            return Response(204)
        if what == "expire_sessions" and req.method == "POST":
            self.sandbox.expire_sessions()
            return Response(204)
        return Response.json(404, {"error": f"no admin resource {what!r}"})


def serve_until_signalled(sandbox: Sandbox, on_started: Any = None) -> None:
    """Run `sandbox` until SIGINT or SIGTERM (main thread only)."""
    import signal

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                       signal.SIGTERM)}
    try:
        with sandbox:
            if on_started:
                on_started(sandbox)
            while not stop.wait(0.2):
                pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
