"""The Salesforce REST API, as much of it as leadgate uses.

Shapes follow the REST API Developer Guide: errors are a JSON list of {message, errorCode};
query results page at 2,000 with nextRecordsUrl; sObject Collections answer 200 with one
{id, success, errors} per record, in request order; every response carries Sforce-Limit-Info;
Composite runs up to 25 subrequests through the same handlers as one call.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from . import soql
from .accounting import Accounting
from .faults import Faults, Rule
from .schema import TOOLING_TYPES, SfField
from .server import Drop, Request, Response
from .store import Store
from .tables import LazyTable, RowTable
from .wire import dumps, looks_like_sf_id, ms_to_sf, parse_datetime_ms

# what an org lists at /services/data/ (versions 21.0-30.0 were retired in Summer '25)
API_VERSIONS = tuple(f"{v}.0" for v in range(31, 63))
_DATA = re.compile(r"^/services/data/v(?P<ver>\d+\.\d)(?P<rest>/.*)?$")
_MAX_LOCATORS = 64

# Composite (REST API Developer Guide, "Composite", "Composite Request Body", "Composite
# Response Body"): up to 25 subrequests, at most 5 of them sObject Collections or queries
# (Query, QueryAll, Query More); sObject Collections inside from API version 43.0.
COMPOSITE_MAX = 25
COMPOSITE_MAX_HEAVY = 5
_HEAVY = {"query", "query_more", "collections_update"}
_IN_COMPOSITE = {"query", "query_more", "describe", "sobject_get", "sobject_create",
                 "sobject_update", "collections_update"}
# fault kinds of a subrequest's resource that act on the whole call (the others, 500 and the
# 4xx of a request refused as sent, answer that subrequest only): the connection, the session,
# the API limits and the server's availability are the call's, not a subrequest's
_WHOLE_CALL = {"drop", "slow", "expire_session", "rate_limit", "401", "403", "429", "502",
               "503", "504"}
_METHODS = {"DELETE", "GET", "PATCH", "POST", "PUT"}
_REFERENCE = re.compile(r"@\{([^}]*)\}")
ROLLED_BACK = ("The transaction was rolled back since another operation in the same "
               "transaction failed.")


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None,
             ) -> Response:
    err: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        err["fields"] = fields
    return Response.json(status, [err])


class SalesforceApp:
    """Handles requests for one sandbox org."""

    def __init__(self, store: Store, faults: Callable[[], Faults], accounting: Accounting, *,
                 credentials: dict[str, str], jwt_public_keys: list[bytes],
                 api_limit: int, instance_url: Callable[[], str]) -> None:
        self.store = store
        self.faults = faults
        self.accounting = accounting
        self.credentials = credentials
        self.jwt_public_keys = jwt_public_keys
        self.api_limit = api_limit
        self.api_used = 0
        self.instance_url = instance_url
        self.tokens: set[str] = set()
        self.locators: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._locator_seq = 0
        self.prefetch = True  # render the next query page ahead (see _page)
        self._executor: Any = None
        self._local = threading.local()  # the undo journal of an allOrNone Composite call

    # -- sessions
    def issue_token(self) -> str:
        token = f"{self.store.org_id[:15]}!{secrets.token_urlsafe(24)}"
        self.tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        self.tokens.clear()

    # -- dispatch
    def handle(self, req: Request) -> Response:
        req.started = time.perf_counter()
        endpoint, handler = self._route(req)
        name = f"salesforce.{endpoint}"
        rules = [(name, rule) for rule in self.faults().call_faults(name)]
        if endpoint == "composite":
            # a fault of a subrequest's resource that concerns the call (a dropped connection,
            # a slow answer, an expired session, a rate limit) acts on the whole Composite call
            plan = self._plan(req)
            if isinstance(plan, _Plan):
                rules += plan.whole_call
            handler = partial(self.composite, plan=plan)
        delay = 0.0
        for where, rule in rules:
            self.accounting.add(where, f"fault.{rule.kind}")
            if rule.kind == "drop":
                self.accounting.add(name, "calls")
                raise Drop()
            if rule.kind == "slow":
                delay = max(delay, rule.arg if rule.arg is not None else 5.0)
            elif rule.kind == "expire_session":
                self.expire_sessions()
            else:
                resp = self._fault_response(rule)
                resp.delay = delay
                return self._finish(name, req, resp)
        is_api = endpoint not in ("token", "soap_login", "sf_domain")
        if is_api and endpoint != "versions":
            token = _bearer(req)
            if token is None or token not in self.tokens:
                resp = sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
                resp.delay = delay
                return self._finish(name, req, resp)
        if is_api:
            with self.store.lock:
                self.api_used += 1
                over = self.api_used > self.api_limit
            if over:
                resp = sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                resp.delay = delay
                return self._finish(name, req, resp)
        try:
            resp = handler(req, name)
        except _Reply as r:
            resp = r.response
        resp.delay = delay
        return self._finish(name, req, resp)

    def _finish(self, name: str, req: Request, resp: Response) -> Response:
        if req.path.startswith("/services/data"):
            resp.headers.append(("Sforce-Limit-Info",
                                 f"api-usage={self.api_used}/{self.api_limit}"))
        self.accounting.status(name, resp.status, _elapsed_us(req))
        return resp

    def _fault_response(self, rule: Rule) -> Response:
        status = 403 if rule.kind == "rate_limit" else int(rule.kind)
        if status in (403, 429):
            return sf_error(status, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if status == 503:
            return sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        if status == 401:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if status >= 500:
            return sf_error(status, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please "
                            "include this ErrorId if you contact support: 1431851394-30862 "
                            "(-1161209296)")
        return sf_error(status, "INVALID_REQUEST", "The request was refused (injected fault)")

    def _route(self, req: Request) -> tuple[str, Callable[[Request, str], Response]]:
        path = req.path.rstrip("/") or "/"
        m = req.method
        if path == "/services/oauth2/token" and m == "POST":
            return "token", self.token
        if path == "/_sfdomain":
            return "sf_domain", self.sf_domain
        if path.startswith("/services/Soap/u/") and m == "POST":
            return "soap_login", self.soap_login
        if path == "/services/data" and m == "GET":
            return "versions", self.versions
        d = _DATA.match(path)
        if not d:
            return "not_found", _not_found
        rest = d["rest"] or ""
        parts = [p for p in rest.split("/") if p]
        if m == "GET" and parts in (["query"], ["queryAll"]):
            return "query", self.query
        if m == "GET" and len(parts) == 2 and parts[0] == "query":
            return "query_more", self.query_more
        if m == "GET" and parts == ["tooling", "query"]:
            return "tooling_query", self.tooling_query
        if m == "POST" and parts == ["tooling", "sobjects", "CustomField"]:
            return "tooling_create", self.tooling_create
        if m == "GET" and parts == ["limits"]:
            return "limits", self.limits
        if m == "PATCH" and parts == ["composite", "sobjects"]:
            return "collections_update", self.collections_update
        if m == "POST" and parts == ["composite"]:
            return "composite", self.composite
        if m == "POST" and len(parts) == 2 and parts[0] == "sobjects":
            return "sobject_create", self.sobject_create
        if len(parts) >= 2 and parts[0] == "sobjects":
            if m == "GET" and len(parts) == 3 and parts[2] == "describe":
                return "describe", self.describe
            if m == "GET" and len(parts) == 3:
                return "sobject_get", self.sobject_get
            if m == "PATCH" and len(parts) == 3:
                return "sobject_update", self.sobject_update
        return "not_found", _not_found

    # -- OAuth 2.0 and SOAP login
    def _login_ok(self) -> Response:
        token = self.issue_token()
        issued = str(int(time.time() * 1000))
        return Response.json(200, {
            "access_token": token, "instance_url": self.instance_url(),
            "id": f"https://login.salesforce.com/id/{self.store.org_id}/"
                  f"{self.store.integration_user_id}",
            "token_type": "Bearer", "issued_at": issued,
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            "scope": "api",
        })

    def token(self, req: Request, name: str) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8")).items()}
        grant = form.get("grant_type", "")
        c = self.credentials
        bad_client = Response.json(400, {"error": "invalid_client_id",
                                         "error_description": "client identifier invalid"})
        if grant == "password":
            if form.get("client_id") != c["client_id"]:
                return bad_client
            if form.get("client_secret") != c["client_secret"]:
                return Response.json(400, {"error": "invalid_client",
                                           "error_description": "invalid client credentials"})
            pw = form.get("password", "")
            if form.get("username") != c["username"] or pw not in (
                    c["password"], c["password"] + c["security_token"]):
                return Response.json(400, {"error": "invalid_grant",
                                           "error_description": "authentication failure"})
            return self._login_ok()
        if grant == "client_credentials":
            cid, secret = form.get("client_id"), form.get("client_secret")
            auth = req.headers.get("authorization", "")
            if auth.startswith("Basic "):
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            if cid != c["client_id"] or secret != c["client_secret"]:
                return Response.json(400, {"error": "invalid_client",
                                           "error_description": "invalid client credentials"})
            return self._login_ok()
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt(form.get("assertion", ""))
        return Response.json(400, {"error": "unsupported_grant_type",
                                   "error_description": "grant type not supported"})

    def _jwt(self, assertion: str) -> Response:
        import jwt

        invalid = Response.json(400, {"error": "invalid_grant",
                                      "error_description": "invalid assertion"})
        claims = None
        for key in self.jwt_public_keys:
            try:
                claims = jwt.decode(assertion, key, algorithms=["RS256"],
                                    options={"verify_aud": False, "require": ["exp"]})
                break
            except jwt.ExpiredSignatureError:
                return Response.json(400, {"error": "invalid_grant",
                                           "error_description": "expired authorization code"})
            except jwt.PyJWTError:
                continue
        if claims is None:
            return invalid
        if claims.get("iss") != self.credentials["client_id"]:
            return Response.json(400, {"error": "invalid_client_id",
                                       "error_description": "client identifier invalid"})
        aud = str(claims.get("aud", ""))
        if not (aud.startswith(("https://login.salesforce.com", "https://test.salesforce.com",
                                "https://127.0.0.1"))):
            return Response.json(400, {"error": "invalid_grant",
                                       "error_description": "audience is invalid"})
        if claims.get("sub") != self.credentials["username"]:
            return Response.json(400, {"error": "invalid_grant",
                                       "error_description": "user hasn't approved this consumer"})
        return self._login_ok()

    def sf_domain(self, req: Request, name: str) -> Response:
        """simple-salesforce builds https://{domain}.salesforce.com/...; the sandbox's
        `domain` credential turns that into this path, with the real tail as a parameter."""
        tail = req.param("tail", "") or ""
        if tail.endswith("/services/oauth2/token"):
            return self.token(req, name)
        if "/services/Soap/u/" in tail:
            return self.soap_login(req, name)
        return _not_found(req, name)

    def soap_login(self, req: Request, name: str) -> Response:
        text = req.body.decode("utf-8", "replace")
        user = re.search(r"<n1:username>(.*?)</n1:username>|<urn:username>(.*?)</urn:username>",
                         text)
        pw = re.search(r"<n1:password>(.*?)</n1:password>|<urn:password>(.*?)</urn:password>",
                       text)
        c = self.credentials
        from xml.sax.saxutils import unescape

        u = unescape((user.group(1) or user.group(2)) if user else "")
        p = unescape((pw.group(1) or pw.group(2)) if pw else "")
        if u != c["username"] or p not in (c["password"], c["password"] + c["security_token"]):
            body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv='
                    '"http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.'
                    'soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN'
                    '</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, '
                    'security token; or user locked out.</faultstring><detail><sf:'
                    'LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:'
                    'exceptionMessage>Invalid username, password, security token; or user '
                    'locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>'
                    '</soapenv:Body></soapenv:Envelope>')
            return Response(500, body.encode(), content_type="text/xml;charset=UTF-8")
        token = self.issue_token()
        base = self.instance_url()
        body = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http:'
                '//schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
                '<soapenv:Body><loginResponse><result>'
                f"<metadataServerUrl>{base}/services/Soap/m/59.0/{self.store.org_id}"
                "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true"
                f"</sandbox><serverUrl>{base}/services/Soap/u/59.0/{self.store.org_id}"
                f"</serverUrl><sessionId>{escape(token)}</sessionId>"
                f"<userId>{self.store.integration_user_id}</userId>"
                "</result></loginResponse></soapenv:Body></soapenv:Envelope>")
        return Response(200, body.encode(), content_type="text/xml;charset=UTF-8")

    # -- REST resources
    def versions(self, req: Request, name: str) -> Response:
        return Response.json(200, [{"label": f"v{v}", "url": f"/services/data/v{v}",
                                    "version": v} for v in API_VERSIONS])

    def limits(self, req: Request, name: str) -> Response:
        used = self.api_used
        return Response.json(200, {
            "DailyApiRequests": {"Max": self.api_limit, "Remaining": max(0, self.api_limit - used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            "SingleEmail": {"Max": 5000, "Remaining": 5000},
        })

    def _sources(self) -> dict[str, soql.Source]:
        s = self.store
        return {"lead": s.leads, "user": s.users, "group": s.groups,
                "queuesobject": s.queue_sobjects, "organization": s.organization}

    def query(self, req: Request, name: str) -> Response:
        return self._query(req, name, self._sources())

    def tooling_query(self, req: Request, name: str) -> Response:
        return self._query(req, name, {"customfield": self.store.custom_fields})

    def _query(self, req: Request, name: str, sources: dict[str, soql.Source]) -> Response:
        q = req.param("q")
        ver = _version(req)
        try:
            with self.store.lock:
                query = soql.parse(q or "", sources)
                src = sources[query.sobject.lower()]
                assert isinstance(src, LazyTable | RowTable)
                floor = None
                if isinstance(src, LazyTable) and src.modstamp_field in query.floors:
                    floor = (src.modstamp_field, query.floors[src.modstamp_field])
                keys = soql.run(query, src, src.candidates(floor, query.ids))
        except soql.SoqlError as e:
            return sf_error(400, e.code, e.message)
        if query.count_only:
            return Response.json(200, {"totalSize": len(keys), "done": True, "records": []})
        batch = _batch_size(req)
        locator = None
        if len(keys) > batch:
            with self.store.lock:
                self._locator_seq += 1
                from .wire import sf_id

                locator = sf_id("01g", self._locator_seq)
                cur = self.locators[locator] = {
                    "source": src, "keys": array("q", keys), "fields": query.fields,
                    "sobject": query.sobject, "batch": batch}
                while len(self.locators) > _MAX_LOCATORS:
                    self.locators.popitem(last=False)
            return self._page(name, ver, src, query.sobject, query.fields, cur["keys"], 0,
                              batch, locator, cur)
        return self._page(name, ver, src, query.sobject, query.fields, keys, 0, batch, locator)

    def query_more(self, req: Request, name: str) -> Response:
        ident = req.path.rstrip("/").rsplit("/", 1)[1]
        locator, _, offset_text = ident.partition("-")
        with self.store.lock:
            cur = self.locators.get(locator)
            if cur is not None:
                self.locators.move_to_end(locator)
        if cur is None or not offset_text.isdigit() or int(offset_text) > len(cur["keys"]):
            return sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(name, _version(req), cur["source"], cur["sobject"], cur["fields"],
                          cur["keys"], int(offset_text), cur["batch"], locator, cur)

    def _page(self, name: str, ver: str, src: LazyTable | RowTable, sobject: str,
              fields: list[str], keys: Any, start: int, batch: int, locator: str | None,
              cur: dict[str, Any] | None = None) -> Response:
        end = min(start + batch, len(keys))
        page = keys[start:end]
        records = None
        ahead = cur.pop("prefetch", None) if cur is not None else None
        if ahead is not None and ahead[0] == start:
            records = self._prefetched(src, page, ahead)
        if records is None:
            records = self._records(src, sobject, ver, page, fields)[1]
        head: dict[str, Any] = {"totalSize": len(keys), "done": end >= len(keys)}
        if end < len(keys):
            head["nextRecordsUrl"] = f"/services/data/v{ver}/query/{locator}-{end}"
            if cur is not None and self.prefetch and isinstance(src, LazyTable):
                # render the next page while the client digests this one (its own process)
                nxt = keys[end:min(end + batch, len(keys))]
                cur["prefetch"] = (end, self._pool().submit(
                    self._records_ahead, src, sobject, ver, nxt, fields))
        body = dumps(head)[:-1] + b',"records":' + records + b"}"
        self.accounting.add(name, "records_read", len(page))
        if isinstance(src, LazyTable) and len(page):
            hits = self.faults().record_faults(name, len(page), "owner_change")
            for pos in sorted(hits):
                self.store.person_changes_owner("salesforce", page[pos])
                self.accounting.add(name, "fault.owner_change")
        return Response(200, body)

    def _records(self, src: LazyTable | RowTable, sobject: str, ver: str, page: Any,
                 fields: list[str]) -> tuple[int, bytes]:
        """(table version before reading, the page's records as JSON). Generated records are
        read in chunks, releasing the store lock between them so that writes are not held up;
        a record written meanwhile has a later version, which `_prefetched` detects."""
        if isinstance(src, LazyTable):
            with self.store.lock:
                version = src.version
            records: list[dict[str, Any]] = []
            for k in range(0, len(page), 100):
                with self.store.lock:
                    records += _render_lazy(src, sobject, ver, page[k:k + 100], fields)
            return version, dumps(records)
        with self.store.lock:
            types = {f: src.fields[f.lower()].type for f in fields}
            return 0, dumps([self._render(src, sobject, ver, k, fields, types) for k in page])

    def _records_ahead(self, src: LazyTable | RowTable, sobject: str, ver: str, page: Any,
                       fields: list[str]) -> tuple[int, bytes]:
        t0 = time.perf_counter()
        out = self._records(src, sobject, ver, page, fields)
        # counted apart from server_us: done while the client was busy with the last page
        self.accounting.add("salesforce.query_more", "prefetch_us",
                            int((time.perf_counter() - t0) * 1e6))
        return out

    def _prefetched(self, src: LazyTable | RowTable, page: Any, ahead: Any) -> bytes | None:
        """A page rendered ahead, if none of its records was written since."""
        try:
            version, records = ahead[1].result(timeout=60)
        except Exception:  # noqa: BLE001 - a failed prefetch is simply redone
            return None
        if not isinstance(src, LazyTable):
            return None
        with self.store.lock:
            if src.version != version and any(src.last_write.get(k, 0) > version
                                              for k in page):
                return None
        return records  # type: ignore[no-any-return]

    def _pool(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="sandbox-prefetch")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _render(self, src: LazyTable | RowTable, sobject: str, ver: str, key: int,
                fields: list[str], types: dict[str, str]) -> dict[str, Any]:
        raw = src.record(key, fields if "Id" in fields else ["Id", *fields])
        rec: dict[str, Any] = {"attributes": {"type": sobject,
                                              "url": f"/services/data/v{ver}/sobjects/"
                                                     f"{sobject}/{raw['Id']}"}}
        for f in fields:
            v = raw[f]
            if v is not None and types[f] == "datetime":
                v = ms_to_sf(v)
            rec[f] = v
        return rec

    def describe(self, req: Request, name: str) -> Response:
        sobject = req.path.rstrip("/").split("/")[-2]
        src = self._sources().get(sobject.lower())
        if src is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        ver = _version(req)
        with self.store.lock:
            fields = [_describe_field(f) for f in src.fields.values()]
        prefix = {"Lead": "00Q", "User": "005", "Group": "00G"}.get(src.name)
        return Response.json(200, {
            "name": src.name, "label": src.name, "labelPlural": src.name + "s",
            "keyPrefix": prefix, "custom": False, "queryable": True, "updateable": True,
            "createable": src.name == "Lead", "deletable": src.name == "Lead",
            "fields": fields,
            "urls": {"sobject": f"/services/data/v{ver}/sobjects/{src.name}",
                     "describe": f"/services/data/v{ver}/sobjects/{src.name}/describe",
                     "rowTemplate": f"/services/data/v{ver}/sobjects/{src.name}/{{ID}}"},
        })

    def sobject_get(self, req: Request, name: str) -> Response:
        _, _, sobject, rid = req.path.rstrip("/").rsplit("/", 3)
        src = self._sources().get(sobject.lower())
        if src is None:
            return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        ver = _version(req)
        with self.store.lock:
            if isinstance(src, LazyTable):
                key = src.index_of(rid)
            else:
                assert isinstance(src, RowTable)
                row = src.find(rid)
                key = None if row is None else src.rows.index(row)
            if key is None:
                return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            wanted = req.param("fields")
            fields = [src.fields[f.strip().lower()].name for f in wanted.split(",")
                      if f.strip().lower() in src.fields] if wanted else \
                [f.name for f in src.fields.values()]
            types = {f: src.fields[f.lower()].type for f in fields}
            assert isinstance(src, LazyTable | RowTable)
            return Response.json(200, self._render(src, src.name, ver, key, fields, types))

    # -- writes
    def sobject_update(self, req: Request, name: str) -> Response:
        _, _, sobject, rid = req.path.rstrip("/").rsplit("/", 3)
        if sobject.lower() != "lead":
            return sf_error(400, "INVALID_TYPE", f"The leadgate sandbox updates Lead only, "
                                                 f"not {sobject}")
        body = _json_body(req)
        if not isinstance(body, dict):
            return sf_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        origin = _origin(req)
        with self.store.lock:
            fields = self._check_fields(body)
            i = self.store.leads.index_of(rid)
            if i is None:
                return sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            if self.faults().record_faults(name, 1, "owner_change"):
                self.store.person_changes_owner("salesforce", i)
            errors = self._validate(i, fields, locked=bool(
                self.faults().record_faults(name, 1, "record_error")))
            if errors:
                self.accounting.add(name, "record_errors")
                return Response.json(400, [{"message": e["message"], "errorCode": e["statusCode"],
                                            "fields": e["fields"]} for e in errors])
            self._apply(i, fields, origin, req)
        self.accounting.add(name, "records_written")
        return Response(204)

    def sobject_create(self, req: Request, name: str) -> Response:
        sobject = req.path.rstrip("/").rsplit("/", 1)[1]
        if sobject.lower() != "lead":
            return sf_error(400, "INVALID_TYPE", f"The leadgate sandbox creates Lead records "
                                                 f"only, not {sobject}")
        body = _json_body(req)
        if not isinstance(body, dict):
            return sf_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with self.store.lock:
            fields = self._check_fields(body)
            missing = [f for f in ("LastName", "Company") if not fields.get(f)]
            if missing:
                return Response.json(400, [{"message": "Required fields are missing: "
                                            f"[{', '.join(missing)}]",
                                            "errorCode": "REQUIRED_FIELD_MISSING",
                                            "fields": missing}])
            errors = self._validate(-1, {k: v for k, v in fields.items()}, locked=False)
            if errors:
                return Response.json(400, [{"message": e["message"], "errorCode":
                                            e["statusCode"], "fields": e["fields"]}
                                           for e in errors])
            i = self.store.new_lead(fields, _origin(req))
            self._journal(lambda: self._uncreate(i, _origin(req)))
        self.accounting.add(name, "records_written")
        return Response.json(201, {"id": self.store.leads.id_of(i), "success": True,
                                   "errors": []})

    def _uncreate(self, i: int, origin: str) -> None:
        rid = self.store.leads.id_of(i)
        self.store.leads.pop_last()
        self.store.forget_change("salesforce", rid, origin)

    def collections_update(self, req: Request, name: str) -> Response:
        body = _json_body(req)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return sf_error(400, "JSON_PARSER_ERROR", "The request body must be an object with "
                                                      "a records list")
        records = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        if len(records) > 200:
            return sf_error(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                                                      "than 200 records into this call")
        origin = _origin(req)
        leads = self.store.leads
        results: list[dict[str, Any]] = []
        with self.store.lock:
            parsed: list[tuple[int | None, str, dict[str, Any]]] = []
            for rec in records:
                if not isinstance(rec, dict) or not isinstance(rec.get("attributes"), dict) \
                        or not rec["attributes"].get("type"):
                    return sf_error(400, "INVALID_FIELD", "When updating records with sObject "
                                    "collections, each record needs attributes with a type.")
                if rec["attributes"]["type"].lower() != "lead":
                    return sf_error(400, "INVALID_TYPE", "The leadgate sandbox updates Lead "
                                                         "records only")
                rid = str(rec.get("id") or rec.get("Id") or "")
                fields = self._check_fields(rec)
                parsed.append((leads.index_of(rid) if rid else None, rid, fields))
            for pos in sorted(self.faults().record_faults(name, len(parsed), "owner_change")):
                hit = parsed[pos][0]
                if hit is not None:
                    self.store.person_changes_owner("salesforce", hit)
            locked = self.faults().record_faults(name, len(parsed), "record_error")
            outcome: list[list[dict[str, Any]]] = []
            for pos, (i, rid, fields) in enumerate(parsed):
                if not rid:
                    outcome.append([_rec_err("MISSING_ARGUMENT", "Id not specified in an update "
                                                                 "call", [])])
                elif i is None:
                    code, msg = (("ENTITY_IS_DELETED", "entity is deleted")
                                 if looks_like_sf_id(rid) and rid.startswith("00Q")
                                 else ("MALFORMED_ID", f"Lead ID: id value of incorrect type: "
                                                       f"{rid}"))
                    outcome.append([_rec_err(code, msg, [] if code != "MALFORMED_ID" else ["Id"])])
                else:
                    outcome.append(self._validate(i, fields, locked=pos in locked))
            failed = any(outcome)
            for (i, _rid, fields), errs in zip(parsed, outcome, strict=True):
                if errs:
                    results.append({"success": False, "errors": errs})
                elif all_or_none and failed:
                    results.append({"success": False, "errors": [_rec_err(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not "
                        "all records were valid and the request was using AllOrNone header",
                        [])]})
                else:
                    assert i is not None
                    results.append({"id": self._apply(i, fields, origin, req), "success": True,
                                    "errors": []})
        n_err = sum(1 for r in results if not r["success"])
        self.accounting.add(name, "records_written", len(results) - n_err)
        if n_err:
            self.accounting.add(name, "record_errors", n_err)
        return Response.json(200, results)

    def _check_fields(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Field names resolved to canonical ones; an unknown name fails the whole request,
        as Salesforce's deserialiser does."""
        out: dict[str, Any] = {}
        fields = self.store.leads.fields
        for k, v in rec.items():
            if k in ("attributes", "id") or (k == "Id"):
                continue
            f = fields.get(k.lower())
            if f is None:
                raise _Reply(sf_error(400, "INVALID_FIELD",
                                      f"No such column '{k}' on sobject of type Lead"))
            out[f.name] = self._coerce(f, v)
        return out

    def _coerce(self, f: SfField, v: Any) -> Any:
        if v is None or v == "":
            return None
        ok = True
        if f.type == "datetime":
            try:
                ms = parse_datetime_ms(str(v))
                return ms - ms % 1000
            except ValueError:
                ok = False
        elif f.type == "boolean":
            ok = isinstance(v, bool)
        elif f.type in ("currency", "double"):
            ok = isinstance(v, int | float) and not isinstance(v, bool)
            if ok:
                return float(v)
        else:
            ok = isinstance(v, str)
        if not ok:
            raise _Reply(sf_error(400, "JSON_PARSER_ERROR",
                                  f"Cannot deserialize instance of {f.type} from "
                                  f"{type(v).__name__} value {v!r} or request may be missing a "
                                  "required field"))
        return v

    def _validate(self, i: int, fields: dict[str, Any], *, locked: bool) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        if locked:
            return [_rec_err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this "
                             f"record or 1 records: {self.store.leads.id_of(i)}", [])]
        if i >= 0 and self.store.leads.get(i, "IsConverted"):
            return [_rec_err("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead",
                             [])]
        lead_fields = self.store.leads.fields
        ro = [n for n in fields if not lead_fields[n.lower()].updateable]
        if ro:
            errors.append(_rec_err("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update "
                          f"fields: {', '.join(ro)}. Please check the security settings of "
                          "this field and verify that it is read/write for your profile or "
                          "permission set.", ro))
        for n, v in fields.items():
            f = lead_fields[n.lower()]
            if v is None and not f.nillable and f.updateable:
                errors.append(_rec_err("REQUIRED_FIELD_MISSING",
                                       f"Required fields are missing: [{n}]", [n]))
            elif isinstance(v, str) and f.length and len(v) > f.length:
                errors.append(_rec_err("STRING_TOO_LONG", f"{f.label}: data value too large: "
                                       f"{v[:60]} (max length={f.length})", [n]))
            elif f.type == "picklist" and f.restricted and v is not None and v not in f.picklist:
                errors.append(_rec_err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                       f"{f.label}: bad value for restricted picklist field: {v}",
                                       [n]))
        owner = fields.get("OwnerId")
        if owner:
            problem = self.store.owner_ok(owner)
            if problem == "INACTIVE_OWNER_OR_USER":
                errors.append(_rec_err(problem, "operation performed with inactive user "
                                       f"[{owner}] as owner of lead", []))
            elif problem:
                errors.append(_rec_err(problem, f"Owner ID: id value of incorrect type: {owner}",
                                       ["OwnerId"]))
        return errors

    def _apply(self, i: int, fields: dict[str, Any], origin: str, req: Request) -> str:
        leads = self.store.leads
        rule = self.store.lead_assignment_rule
        if rule is not None and req.headers.get("sforce-auto-assign", "true").strip().lower() \
                != "false":  # as Salesforce does when the header is absent: the rule decides
            fields = {**fields, "OwnerId": rule}
        rid = leads.id_of(i)
        if self._undo() is not None:
            old = {f: leads.get(i, f) for f in (*fields, "SystemModstamp", "LastModifiedDate")}

            def revert() -> None:
                leads.set(i, old)
                self.store.forget_change("salesforce", rid, origin)

            self._journal(revert)
        t = self.store.stamp(seconds=True)
        leads.set(i, {**fields, "SystemModstamp": t, "LastModifiedDate": t})
        self.store.record_change("salesforce", rid, origin, list(fields))
        return rid

    # -- Composite: up to 25 subrequests in one call, dispatched to the handlers above
    def _undo(self) -> list[Callable[[], Any]] | None:
        """The undo journal of the allOrNone Composite request this thread is running."""
        return getattr(self._local, "undo", None)

    def _journal(self, step: Callable[[], Any]) -> None:
        undo = self._undo()
        if undo is not None:
            undo.append(step)

    def _plan(self, req: Request) -> _Plan | Response:
        """The subrequests of a Composite body, routed, with the faults that fire on them; or
        the answer refusing the body."""
        try:
            body = _json_body(req)
        except _Reply as r:
            return r.response
        items = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return sf_error(400, "JSON_PARSER_ERROR", "'compositeRequest' is a required field.")
        for item in items:
            if not isinstance(item, dict):
                return sf_error(400, "JSON_PARSER_ERROR", "Each subrequest must be a JSON object.")
            for key in ("method", "url", "referenceId"):
                if not isinstance(item.get(key), str) or not item[key]:
                    return sf_error(400, "JSON_PARSER_ERROR", f"'{key}' is a required field.")
            if item["method"] not in _METHODS:
                return sf_error(400, "JSON_PARSER_ERROR", f"Invalid HTTP method: {item['method']}. "
                                "Use one of DELETE, GET, PATCH, POST, PUT.")
        all_or_none = bool(body.get("allOrNone", False))
        plan = _Plan(all_or_none=all_or_none)
        for item in items:
            url = urlsplit(item["url"])
            sub_body = item.get("body")
            headers = {**req.headers, **{str(k).lower(): str(v)
                                         for k, v in (item.get("httpHeaders") or {}).items()}}
            sub = Request(item["method"], url.path, parse_qs(url.query, keep_blank_values=True),
                          headers, b"" if sub_body is None else dumps(sub_body))
            endpoint, handler = self._route(sub)
            if endpoint not in _IN_COMPOSITE or (
                    endpoint == "collections_update" and float(_version(sub)) < 43.0):
                endpoint, handler = "not_found", _not_found
            if endpoint == "collections_update" and all_or_none and isinstance(sub_body, dict):
                # the Composite's allOrNone overrides that of its sObject Collections
                sub.body = dumps({**sub_body, "allOrNone": True})
            ref = _REFERENCE.search(item["url"] + sub.body.decode("utf-8"))
            plan.subs.append(_Sub(item["referenceId"], sub, endpoint, handler,
                                  reference=ref[1] if ref else None))
        if len(plan.subs) > COMPOSITE_MAX:
            return _refused(f"The request can’t contain more than {COMPOSITE_MAX} operations.")
        if sum(s.endpoint in _HEAVY for s in plan.subs) > COMPOSITE_MAX_HEAVY:
            return _refused(f"The request can’t contain more than {COMPOSITE_MAX_HEAVY} "
                            "sObject Collections or query operations.")
        for step in plan.subs:
            where = f"salesforce.{step.endpoint}"
            for rule in self.faults().call_faults(where):
                if rule.kind in _WHOLE_CALL:
                    plan.whole_call.append((where, rule))
                elif step.fault is None:
                    step.fault = rule
        return plan

    def composite(self, req: Request, name: str, *, plan: _Plan | Response | None = None
                  ) -> Response:
        """Run the subrequests in order; with allOrNone, stop at the first failure and undo
        the writes made before it (other requests may have seen them meanwhile: the store is
        not held for the whole call, so that query pages rendered ahead never wait on it)."""
        if plan is None:  # handle() plans before the faults and the session check
            plan = self._plan(req)
        if isinstance(plan, Response):
            return plan
        answers: list[Response] = []
        undo: list[Callable[[], Any]] | None = [] if plan.all_or_none else None
        self._local.undo = undo
        try:
            for sub in plan.subs:
                answers.append(self._subrequest(sub))
                if undo is not None and _failed(sub, answers[-1]):
                    break
        finally:
            self._local.undo = None
        if undo is not None and answers and _failed(plan.subs[len(answers) - 1], answers[-1]):
            with self.store.lock:
                for step in reversed(undo):
                    step()
            halted = sf_error(400, "PROCESSING_HALTED", ROLLED_BACK)
            failed = len(answers) - 1
            answers = [a if k == failed else halted for k, a in enumerate(answers)]
            answers += [halted] * (len(plan.subs) - len(answers))
        return Response(200, b'{"compositeResponse":[' + b",".join(
            _sub_result(sub.ref, answer) for sub, answer in zip(plan.subs, answers, strict=True)
        ) + b"]}")

    def _subrequest(self, sub: _Sub) -> Response:
        """One subrequest, answered by the resource's own handler (its record faults, its
        accounting of records), counted as a subrequest and not as a call."""
        name = f"salesforce.{sub.endpoint}"
        self.accounting.add(name, "subrequests")
        if sub.fault is not None:
            self.accounting.add(name, f"fault.{sub.fault.kind}")
            resp = self._fault_response(sub.fault)
        elif sub.reference is not None:
            # references are not resolved here: refused as Salesforce refuses one it cannot
            resp = sf_error(400, "PROCESSING_HALTED", "Invalid reference specified. No value "
                            f"for {sub.reference} found in {re.split(r'[.[]', sub.reference)[0]}")
        else:
            try:
                resp = sub.handler(sub.req, name)
            except _Reply as r:
                resp = r.response
        if resp.status >= 300:
            self.accounting.add(name, f"subrequests.status.{resp.status}")
        return resp

    def tooling_create(self, req: Request, name: str) -> Response:
        body = _json_body(req)
        if not isinstance(body, dict):
            return sf_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        full = str(body.get("FullName") or "")
        meta = body.get("Metadata") or {}
        obj, _, fname = full.partition(".")
        if obj != "Lead" or not fname.endswith("__c") or not isinstance(meta, dict):
            return sf_error(400, "FIELD_INTEGRITY_EXCEPTION", "The leadgate sandbox creates "
                            "custom fields on Lead only: FullName 'Lead.Name__c' and Metadata")
        ftype = TOOLING_TYPES.get(str(meta.get("type")))
        if ftype is None:
            return sf_error(400, "FIELD_INTEGRITY_EXCEPTION",
                            f"Unsupported field type: {meta.get('type')}")
        with self.store.lock:
            if fname.lower() in self.store.leads.fields:
                return sf_error(400, "DUPLICATE_DEVELOPER_NAME", "There is already a field "
                                f"named {fname[:-3]} on Lead.", [])
            known = self.store.lead_extra_fields.get(fname)
            length = int(meta.get("length") or (32768 if meta.get("type") == "LongTextArea"
                                                else 255 if ftype == "string" else 0))
            field = SfField(fname, ftype, str(meta.get("label") or fname), length=length,
                            custom=True, picklist=tuple(
                                v.get("fullName", "") for v in
                                (meta.get("valueSet") or {}).get("valueSetDefinition", {})
                                .get("value", [])) if ftype == "picklist" else ())
            if known is not None and known.type == ftype:
                field = known  # leadgate's own field: keep the column the sandbox indexes
            fid = self.store.install_salesforce_field(field)
        return Response.json(201, {"id": fid, "success": True, "errors": [], "warnings": [],
                                   "infos": []})


def _render_lazy(t: LazyTable, sobject: str, ver: str, page: Any, fields: list[str]
                 ) -> list[dict[str, Any]]:
    """A query page of a generated table: per-field readers decided once per page, the cold
    (generated) part of each record built only if a field asks for it, datetimes formatted on
    the way."""
    url = f"/services/data/v{ver}/sobjects/{sobject}/"
    # (field, source, column, is datetime); source 0 a hot column, 1 the id, 2 generated,
    # 3 written only
    plan: list[tuple[str, int, Any, bool]] = []
    for f in fields:
        is_dt = t.fields[f.lower()].type == "datetime"
        if f in t.cols:
            plan.append((f, 0, t.cols[f], is_dt))
        elif f == t.id_field:
            plan.append((f, 1, None, False))
        else:
            plan.append((f, 2 if f in t.generated else 3, None, is_dt))
    need_cold = any(src == 2 for _, src, _, _ in plan)
    out = []
    for i in page:
        rid = t.id_of(i)
        cold = t.cold(i) if need_cold else None
        rec: dict[str, Any] = {"attributes": {"type": sobject, "url": url + rid}}
        for f, src, col, is_dt in plan:
            v: Any = (col[i] if src == 0 else rid if src == 1 else
                      cold.get(f) if src == 2 else t.written(i, f))  # type: ignore[union-attr]
            if is_dt and v is not None:
                v = ms_to_sf(v)
            rec[f] = v
        out.append(rec)
    return out


class _Reply(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class _Sub:
    ref: str
    req: Request
    endpoint: str
    handler: Callable[[Request, str], Response]
    reference: str | None = None  # the first @{...} in its url or body
    fault: Rule | None = None     # an injected status answering this subrequest only


@dataclass
class _Plan:
    all_or_none: bool
    subs: list[_Sub] = field(default_factory=list)
    whole_call: list[tuple[str, Rule]] = field(default_factory=list)


def _refused(message: str) -> Response:
    """A Composite body over the subrequest limits: 200 with one error result, no reference
    id (the shape Salesforce answers, as seen in a production log quoted in a public issue)."""
    return Response.json(200, {"compositeResponse": [{
        "body": [{"errorCode": "LIMIT_EXCEEDED", "message": message}], "httpHeaders": {},
        "httpStatusCode": 400, "referenceId": None}]})


def _failed(sub: _Sub, resp: Response) -> bool:
    """Whether a subrequest failed, for allOrNone (a collection fails with any of its records)."""
    if resp.status >= 400:
        return True
    return sub.endpoint == "collections_update" and any(
        not r.get("success") for r in json.loads(resp.body or b"[]"))


def _sub_result(ref: str, resp: Response) -> bytes:
    """One entry of compositeResponse, the handler's JSON body embedded as it is."""
    return (b'{"body":' + (resp.body or b"null") + b',"httpHeaders":'
            + dumps(dict(resp.headers)) + b',"httpStatusCode":' + str(resp.status).encode()
            + b',"referenceId":' + dumps(ref) + b"}")


def _rec_err(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields}


def _describe_field(f: SfField) -> dict[str, Any]:
    return {
        "name": f.name, "label": f.label, "type": f.type, "length": f.length,
        "custom": f.custom, "nillable": f.nillable, "updateable": f.updateable,
        "createable": f.updateable, "calculated": False, "defaultValue": None,
        "filterable": not (f.type == "textarea" and f.length > 255),
        "sortable": not (f.type == "textarea" and f.length > 255),
        "precision": 18 if f.type == "currency" else 0, "scale": 2 if f.type == "currency" else 0,
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "validFor": None,
                            "value": v} for v in f.picklist],
        "restrictedPicklist": f.restricted, "referenceTo": list(f.reference_to),
        "soapType": {"id": "tns:ID", "reference": "tns:ID", "datetime": "xsd:dateTime",
                     "boolean": "xsd:boolean", "currency": "xsd:double",
                     "double": "xsd:double", "date": "xsd:date"}.get(f.type, "xsd:string"),
    }


def _bearer(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    for scheme in ("Bearer ", "OAuth "):
        if auth.startswith(scheme):
            return auth[len(scheme):].strip()
    return None


def _version(req: Request) -> str:
    m = _DATA.match(req.path)
    return m["ver"] if m else "59.0"


def _batch_size(req: Request) -> int:
    opts = req.headers.get("sforce-query-options", "")
    m = re.search(r"batchSize=(\d+)", opts)
    return min(2000, max(200, int(m.group(1)))) if m else 2000


def _origin(req: Request) -> str:
    opts = req.headers.get("sforce-call-options", "")
    m = re.search(r"client=([^,;\s]+)", opts)
    return m.group(1) if m else "api"


def _json_body(req: Request) -> Any:
    try:
        return req.json()
    except ValueError as e:
        raise _Reply(sf_error(400, "JSON_PARSER_ERROR", f"Unexpected character: {e}")) from e


def _not_found(req: Request, name: str) -> Response:
    return sf_error(404, "NOT_FOUND", "The requested resource does not exist")


def _elapsed_us(req: Request) -> int:
    return int((time.perf_counter() - req.started) * 1e6)
