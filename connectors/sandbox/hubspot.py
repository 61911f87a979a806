"""The HubSpot CRM v3 API, as much of it as leadgate uses.

Shapes follow the CRM API v3 references: errors {status, message, correlationId, category};
search pages with an `after` offset and stops at 10,000 results; batch read/update take at
most 100 inputs and answer 200, or 207 with `errors` when some inputs failed (the SDK picks
its response model by that exact code); rate limits answer 429 with errorType RATE_LIMIT and
policyName, and every endpoint but search sends X-HubSpot-RateLimit-* headers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .accounting import Accounting
from .faults import Faults, Rule
from .schema import HS_READ_ONLY, HsProperty
from .server import Drop, Request, Response
from .store import Store
from .wire import correlation_id, ms_to_iso, parse_datetime_ms

SEARCH_CAP = 10_000
DEFAULT_SEARCH_PROPERTIES = ("createdate", "email", "firstname", "hs_object_id",
                             "lastmodifieddate", "lastname")
ALWAYS = ("createdate", "hs_object_id", "lastmodifieddate")
_OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
              "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}


def hs_error(status: int, message: str, category: str, **extra: Any) -> Response:
    body: dict[str, Any] = {"status": "error", "message": message,
                            "correlationId": correlation_id(), "category": category}
    body.update(extra)
    return Response.json(status, body)


class _Reply(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class RateLimits:
    """HubSpot's private-app limits: a 10-second burst window and a daily count per token,
    and the search API's own per-second limit. Enforced only when asked, so that benchmarks
    measure leadgate, not the throttle. The headers always state the limits in force: a
    Professional portal's (190 per 10 s, 1,000,000 a day, search 5/s) when enforced, and
    generous ones otherwise (so that a client pacing itself by the headers is not slowed by
    limits nobody applies)."""

    def __init__(self, *, enforce: bool, burst: int | None = None, daily: int | None = None,
                 search_per_second: int = 5) -> None:
        self.enforce = enforce
        self.burst = burst or (190 if enforce else 100_000)
        self.daily = daily or (1_000_000 if enforce else 100_000_000)
        self.search_per_second = search_per_second
        self._lock = threading.Lock()
        self._window = (0, 0)  # (10-second window number, calls in it)
        self._second = (0, 0)
        self._search_second = (0, 0)
        self.used_today = 0

    def take(self, search: bool) -> tuple[str | None, dict[str, int]]:
        """Count one call; return (policy name if over a limit, numbers for headers)."""
        now = time.time()
        with self._lock:
            self.used_today += 1
            w = int(now // 10)
            self._window = (w, self._window[1] + 1 if self._window[0] == w else 1)
            s = int(now)
            self._second = (s, self._second[1] + 1 if self._second[0] == s else 1)
            over = None
            if search:
                self._search_second = (s, self._search_second[1] + 1
                                       if self._search_second[0] == s else 1)
                if self.enforce and self._search_second[1] > self.search_per_second:
                    over = "SECONDLY"
            elif self.enforce and self._window[1] > self.burst:
                over = "TEN_SECONDLY_ROLLING"
            if self.enforce and self.used_today > self.daily:
                over = "DAILY"
            numbers = {"daily_remaining": max(0, self.daily - self.used_today),
                       "remaining": max(0, self.burst - self._window[1]),
                       "secondly_remaining": max(0, self.burst // 10 - self._second[1])}
        return over, numbers

    def headers(self, n: dict[str, int]) -> list[tuple[str, str]]:
        return [
            ("X-HubSpot-RateLimit-Daily", str(self.daily)),
            ("X-HubSpot-RateLimit-Daily-Remaining", str(n["daily_remaining"])),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
            ("X-HubSpot-RateLimit-Max", str(self.burst)),
            ("X-HubSpot-RateLimit-Remaining", str(n["remaining"])),
            ("X-HubSpot-RateLimit-Secondly", str(self.burst // 10)),
            ("X-HubSpot-RateLimit-Secondly-Remaining", str(n["secondly_remaining"])),
        ]


_RATE_MESSAGES = {"SECONDLY": "You have reached your secondly limit.",
                  "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
                  "DAILY": "You have reached your daily limit."}


def rate_limited(policy: str) -> Response:
    return Response.json(429, {"status": "error", "message": _RATE_MESSAGES[policy],
                               "errorType": "RATE_LIMIT", "correlationId": correlation_id(),
                               "policyName": policy, "requestId": correlation_id()})


class HubSpotApp:
    def __init__(self, store: Store, faults: Callable[[], Faults], accounting: Accounting, *,
                 token: str, rate_limits: RateLimits) -> None:
        self.store = store
        self.faults = faults
        self.accounting = accounting
        self.token = token
        self.limits = rate_limits

    def handle(self, req: Request) -> Response:
        req.started = time.perf_counter()
        endpoint, handler = self._route(req)
        name = f"hubspot.{endpoint}"
        search = endpoint == "search"
        delay = 0.0
        fault: Response | None = None
        for rule in self.faults().call_faults(name):
            self.accounting.add(name, f"fault.{rule.kind}")
            if rule.kind == "drop":
                self.accounting.add(name, "calls")
                raise Drop()
            if rule.kind == "slow":
                delay = max(delay, rule.arg if rule.arg is not None else 5.0)
            elif fault is None:
                fault = self._fault_response(rule)
        if fault is None and _bearer(req) != self.token:
            fault = hs_error(401, "Authentication credentials not found. This API supports "
                             "OAuth 2.0 authentication and you can find more details at "
                             "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                             "INVALID_AUTHENTICATION")
        over, numbers = self.limits.take(search)
        if fault is None and over:
            fault = rate_limited(over)
        if fault is not None:
            resp = fault
        else:
            try:
                resp = handler(req, name)
            except _Reply as r:
                resp = r.response
        if not search:
            resp.headers.extend(self.limits.headers(numbers))
        resp.delay = delay
        self.accounting.status(name, resp.status, _elapsed_us(req))
        return resp

    def _fault_response(self, rule: Rule) -> Response:
        if rule.kind in ("rate_limit", "429"):
            return rate_limited("TEN_SECONDLY_ROLLING")
        if rule.kind == "expire_session":
            return hs_error(401, "The OAuth token used to make this call expired 0 second(s) "
                            "ago.", "EXPIRED_AUTHENTICATION")
        status = int(rule.kind)
        if status >= 500:
            return hs_error(status, "internal error" if status == 500 else
                            "Service Unavailable", "INTERNAL_ERROR" if status == 500
                            else "SERVICE_UNAVAILABLE")
        return hs_error(status, "The request was refused (injected fault)", "VALIDATION_ERROR")

    def _route(self, req: Request) -> tuple[str, Callable[[Request, str], Response]]:
        path = req.path.rstrip("/")
        m = req.method
        parts = path.split("/")[1:]
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4 and parts[3] == "contacts":
            rest = parts[4:]
            if m == "POST" and not rest:
                return "contact_create", self.contact_create
            if m == "POST" and rest == ["search"]:
                return "search", self.search
            if m == "POST" and rest == ["batch", "read"]:
                return "batch_read", self.batch_read
            if m == "POST" and rest == ["batch", "update"]:
                return "batch_update", self.batch_update
            if m == "GET" and len(rest) == 1:
                return "contact_get", self.contact_get
            if m == "PATCH" and len(rest) == 1:
                return "contact_update", self.contact_update
        if parts[:3] == ["crm", "v3", "owners"] and m == "GET":
            return "owners", self.owners
        if parts[:3] == ["crm", "v3", "properties"] and len(parts) >= 4:
            if parts[3] != "contacts":
                return "not_found", _not_found
            rest = parts[4:]
            if rest[:1] == ["groups"]:
                if m == "GET" and len(rest) <= 2:
                    return "property_groups", self.groups
                if m == "POST" and len(rest) == 1:
                    return "property_groups_create", self.create_group
            elif m == "GET" and len(rest) <= 1:
                return "properties", self.properties
            elif m == "POST" and not rest:
                return "properties_create", self.create_property
        return "not_found", _not_found

    # -- formatting
    def _props(self, i: int, names: list[str]) -> dict[str, Any]:
        raw = self.store.contacts.record(i, names)
        types = self.store.hs_properties
        return {n: _to_wire(raw[n], types[n].type) for n in names}

    def _object(self, i: int, names: list[str]) -> dict[str, Any]:
        t = self.store.contacts
        created = t.get(i, "createdate")
        updated = t.get(i, "lastmodifieddate")
        return {"id": t.id_of(i), "properties": self._props(i, names),
                "createdAt": ms_to_iso(created), "updatedAt": ms_to_iso(updated),
                "archived": False}

    def _names(self, requested: Any, default: tuple[str, ...]) -> list[str]:
        known = self.store.hs_properties
        if not requested:
            names = list(default)
        else:
            if isinstance(requested, str):
                requested = requested.split(",")
            names = [n for n in requested if isinstance(n, str) and n in known]
        for n in ALWAYS:
            if n not in names:
                names.append(n)
        return names

    # -- search
    def search(self, req: Request, name: str) -> Response:
        body = _body(req)
        limit = body.get("limit", 10)
        after_raw = body.get("after") or "0"
        if not isinstance(limit, int) or limit < 0 or limit > 200:
            return hs_error(400, f"limit must be between 0 and 200 (got {limit!r})",
                            "VALIDATION_ERROR")
        if not str(after_raw).isdigit():
            return hs_error(400, f"after must be a non-negative integer (got {after_raw!r})",
                            "VALIDATION_ERROR")
        after = int(after_raw)
        if after + limit > SEARCH_CAP:
            return hs_error(400, "There was a problem with the request.", "VALIDATION_ERROR",
                            errors=[{"message": "The search API returns at most 10,000 results "
                                     f"per query; after={after} with limit={limit} is past "
                                     "the end. Narrow the query (for example by "
                                     "lastmodifieddate) instead of paging further.",
                                     "code": "INVALID_PAGING"}])
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups) \
                or sum(len(g.get("filters") or []) for g in groups) > 18:
            return hs_error(400, "Too many filters: at most 5 filterGroups with 6 filters each "
                            "and 18 filters in all.", "VALIDATION_ERROR")
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            return hs_error(400, "Only one sort is supported.", "VALIDATION_ERROR")
        names = self._names(body.get("properties"), DEFAULT_SEARCH_PROPERTIES)
        table = self.store.contacts
        with self.store.lock:
            select = self._compile(groups)
            floor = self._floor(groups)
            text = str(body.get("query") or "").strip().lower()
            cands = table.candidates(("lastmodifieddate", floor) if floor is not None else None)
            keys = select(cands)
            if text:
                keys = [i for i in keys if self._matches_text(i, text)]
            if sorts:
                prop, desc = _sort_spec(sorts[0])
                if prop not in self.store.hs_properties:
                    return hs_error(400, f"Unknown sort property {prop!r}", "VALIDATION_ERROR")
                ptype = self.store.hs_properties[prop].type
                col = table.cols.get(prop)
                if prop == "hs_object_id":
                    keys.sort(reverse=desc)  # ids grow with the index
                elif col is not None and ptype in ("datetime", "number"):
                    # hot numeric column: C-speed key, ties stay in id order
                    present = [i for i in keys if col[i] is not None]
                    absent = [i for i in keys if col[i] is None]
                    present.sort(key=col.__getitem__, reverse=desc)
                    keys = present + absent
                else:
                    get = table.accessor(prop)
                    norm = _norm(ptype)
                    pairs = [(get(i), i) for i in keys]
                    ordered = [(norm(v), i) for v, i in pairs if v is not None]
                    ordered.sort(key=lambda vi: vi[0], reverse=desc)
                    keys = [i for _, i in ordered] + [i for v, i in pairs if v is None]
            total = len(keys)
            page = keys[after:after + limit]
            results = [self._object(i, names) for i in page]
        out: dict[str, Any] = {"total": total, "results": results}
        if after + len(page) < total:
            nxt = str(after + len(page))
            out["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        self.accounting.add(name, "records_read", len(results))
        for pos in sorted(self.faults().record_faults(name, len(page), "owner_change")):
            self.store.person_changes_owner("hubspot", page[pos])
            self.accounting.add(name, "fault.owner_change")
        return Response.json(200, out)

    def _matches_text(self, i: int, text: str) -> bool:
        rec = self.store.contacts.record(i, ["firstname", "lastname", "email", "phone",
                                             "company"])
        return any(isinstance(v, str) and text in v.lower() for v in rec.values())

    def _floor(self, groups: list[dict[str, Any]]) -> int | None:
        """A lower bound on lastmodifieddate every group imposes (lets the table skip
        records generated before it), or None."""
        floors = []
        for g in groups:
            best = None
            for f in g.get("filters") or []:
                if f.get("propertyName") == "lastmodifieddate" and f.get("operator") in (
                        "GT", "GTE", "EQ", "BETWEEN"):
                    best = _ms(f.get("value"))
            if best is None:
                return None
            floors.append(best)
        return min(floors) if floors else None

    def _compile(self, groups: list[dict[str, Any]]) -> Callable[[Any], list[int]]:
        """One list comprehension for all filter groups (OR of ANDs). Filters on the table's
        hot columns become inline column lookups; others call their predicate. Only fixed
        code fragments are generated: every value is passed in as a variable."""
        env: dict[str, Any] = {}
        ors = []
        for g in groups:
            ands = []
            for f in g.get("filters") or []:
                k = len(env)
                pred = self._filter(f)
                inline = self._inline(f, k, env)
                if inline is None:
                    env[f"p{k}"] = pred
                    inline = f"p{k}(i)"
                ands.append(inline)
            ors.append("(" + (" and ".join(ands) or "True") + ")")
        cond = " or ".join(ors) or "True"
        code = f"lambda cands: [i for i in cands if {cond}]"
        # env as globals: the comprehension inside the lambda cannot see eval's locals
        select: Callable[[Any], list[int]] = eval(  # noqa: S307 - fixed fragments only
            code, {"__builtins__": {}, **env})
        return select

    def _inline(self, f: dict[str, Any], k: int, env: dict[str, Any]) -> str | None:
        p = self.store.hs_properties.get(str(f.get("propertyName")))
        col = self.store.contacts.cols.get(p.name) if p else None
        op = f.get("operator")
        if p is None or col is None:
            return None
        c = f"c{k}"
        env[c] = col
        if op == "HAS_PROPERTY":
            return f"{c}[i] is not None"
        if op == "NOT_HAS_PROPERTY":
            return f"{c}[i] is None"
        if op in ("EQ", "NEQ") and p.type in ("datetime", "number"):
            env[f"v{k}"] = _from_filter(f.get("value"), p.type)
            return f"{c}[i] {'==' if op == 'EQ' else '!='} v{k}"
        if op in ("GT", "GTE", "LT", "LTE") and p.type in ("datetime", "number"):
            env[f"v{k}"] = _from_filter(f.get("value"), p.type)
            sym = {"GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}[op]
            return f"({c}[i] is not None and {c}[i] {sym} v{k})"
        if op == "EQ" and p.type in ("string", "enumeration"):
            env[f"v{k}"] = str(f.get("value")).lower()
            # exact match first (values are usually stored lower-case), then case-insensitive
            return f"({c}[i] == v{k} or ({c}[i] is not None and {c}[i].lower() == v{k}))"
        return None

    def _filter(self, f: dict[str, Any]) -> Callable[[int], bool]:
        prop = f.get("propertyName")
        op = f.get("operator")
        if op not in _OPERATORS:
            raise _Reply(hs_error(400, f"Unknown filter operator {op!r}", "VALIDATION_ERROR"))
        p = self.store.hs_properties.get(str(prop))
        if p is None:
            raise _Reply(hs_error(400, f"There was a problem with the request: property "
                                  f"{prop!r} does not exist", "VALIDATION_ERROR"))
        get = self.store.contacts.accessor(p.name)
        norm = _norm(p.type)

        def val(v: Any) -> Any:
            try:
                return _from_filter(v, p.type)
            except (TypeError, ValueError):
                raise _Reply(hs_error(400, f"Invalid filter value {v!r} for property "
                                      f"{p.name} of type {p.type}", "VALIDATION_ERROR")) from None

        if op == "HAS_PROPERTY":
            return lambda i: get(i) not in (None, "")
        if op == "NOT_HAS_PROPERTY":
            return lambda i: get(i) in (None, "")
        if op in ("IN", "NOT_IN"):
            wanted = {val(v) for v in f.get("values") or []}
            if op == "IN":
                return lambda i: norm(get(i)) in wanted
            return lambda i: norm(get(i)) not in wanted
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(f.get("value", "")).lower().strip("*")

            def has(i: int) -> bool:
                v = get(i)
                return isinstance(v, str) and token in v.lower()

            return has if op == "CONTAINS_TOKEN" else (lambda i: not has(i))
        if op == "BETWEEN":
            lo, hi = val(f.get("value")), val(f.get("highValue"))
            return lambda i: (v := norm(get(i))) is not None and lo <= v <= hi
        target = val(f.get("value"))
        if op == "EQ":
            return lambda i: norm(get(i)) == target
        if op == "NEQ":
            return lambda i: norm(get(i)) != target
        import operator

        cmp = {"LT": operator.lt, "LTE": operator.le, "GT": operator.gt, "GTE": operator.ge}[op]
        return lambda i: (v := norm(get(i))) is not None and cmp(v, target)

    # -- batch
    def batch_read(self, req: Request, name: str) -> Response:
        body = _body(req)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            return hs_error(400, "inputs must be a list", "VALIDATION_ERROR")
        if len(inputs) > 100:
            return hs_error(400, f"Batch input size {len(inputs)} is greater than the limit "
                            "of 100", "VALIDATION_ERROR")
        if body.get("idProperty") not in (None, "", "hs_object_id"):
            return hs_error(400, "The leadgate sandbox reads contacts by hs_object_id only",
                            "VALIDATION_ERROR")
        names = self._names(body.get("properties"), DEFAULT_SEARCH_PROPERTIES)
        started = ms_to_iso(int(time.time() * 1000))
        results, missing = [], []
        with self.store.lock:
            for inp in inputs:
                rid = str((inp or {}).get("id", ""))
                i = self.store.contacts.index_of(rid)
                if i is None:
                    missing.append(rid)
                else:
                    results.append(self._object(i, names))
        self.accounting.add(name, "records_read", len(results))
        errors = []
        if missing:
            errors.append(_batch_error("OBJECT_NOT_FOUND", "Could not get some CONTACT objects, "
                                       "they may be deleted or not exist. Check that ids are "
                                       "valid.", {"ids": missing}))
        return _batch_response(results, errors, started)

    def batch_update(self, req: Request, name: str) -> Response:
        body = _body(req)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            return hs_error(400, "inputs must be a list", "VALIDATION_ERROR")
        if len(inputs) > 100:
            return hs_error(400, f"Batch input size {len(inputs)} is greater than the limit "
                            "of 100", "VALIDATION_ERROR")
        ids = [str((inp or {}).get("id", "")) for inp in inputs]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            return hs_error(400, f"Duplicate IDs found in batch input: {dupes}. IDs must be "
                            "unique", "VALIDATION_ERROR")
        started = ms_to_iso(int(time.time() * 1000))
        origin = "api"
        table = self.store.contacts
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.store.lock:
            # A bad property value fails the whole batch, as HubSpot validates before writing.
            coerced = [self._coerce(inp.get("properties") or {}) for inp in inputs]
            idx = [table.index_of(x) for x in ids]
            for pos in sorted(self.faults().record_faults(name, len(ids), "owner_change")):
                hit = idx[pos]
                if hit is not None:
                    self.store.person_changes_owner("hubspot", hit)
            conflicts = self.faults().record_faults(name, len(ids), "record_error")
            missing = [ids[p] for p, i in enumerate(idx) if i is None]
            busy = [ids[p] for p, i in enumerate(idx) if i is not None and p in conflicts]
            # Per-record answers (207) only when every input carries an objectWriteTraceId;
            # without them a record that cannot be written refuses the whole batch.
            multi_status = all((inp or {}).get("objectWriteTraceId") for inp in inputs)
            if (missing or busy) and not multi_status:
                self.accounting.add(name, "record_errors", len(missing) + len(busy))
                if missing:
                    return hs_error(404, "Could not get some CONTACT objects, they may be "
                                    f"deleted or not exist: {missing}", "OBJECT_NOT_FOUND")
                return hs_error(409, "Some CONTACT objects were being modified concurrently: "
                                f"{busy}", "CONFLICT")
            for pos, (i, values) in enumerate(zip(idx, coerced, strict=True)):
                if i is None or pos in conflicts:
                    continue
                t = self.store.stamp(seconds=False)
                table.set(i, {**values, "lastmodifieddate": t})
                self.store.note_email(i, values.get("email"))
                self.store.record_change("hubspot", ids[pos], origin, list(values))
                results.append(self._object(i, [*values, *(n for n in ALWAYS if n not in values)]))
        if missing:
            errors.append(_batch_error("OBJECT_NOT_FOUND", "Could not get some CONTACT objects, "
                                       "they may be deleted or not exist. Check that ids are "
                                       "valid.", {"ids": missing}))
        if busy:
            errors.append(_batch_error("CONFLICT", "Some CONTACT objects could not be updated "
                                       "because they were being modified concurrently; retry "
                                       "them.", {"ids": busy}))
        self.accounting.add(name, "records_written", len(results))
        if missing or busy:
            self.accounting.add(name, "record_errors", len(missing) + len(busy))
        return _batch_response(results, errors, started)

    def _coerce(self, props: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        problems: list[dict[str, Any]] = []
        for n, v in props.items():
            p = self.store.hs_properties.get(n)
            if p is None:
                problems.append({"isValid": False, "message": f'Property "{n}" does not exist',
                                 "error": "PROPERTY_DOESNT_EXIST", "name": n})
                continue
            if n in HS_READ_ONLY:
                problems.append({"isValid": False, "message": f"{n} is a read only property; "
                                 "its value cannot be set.", "error": "READ_ONLY_VALUE",
                                 "name": n})
                continue
            try:
                out[n] = _from_input(v, p, self.store)
            except ValueError as e:
                problems.append({"isValid": False, "message": str(e), "error": "INVALID_OPTION"
                                 if p.type == "enumeration" else f"INVALID_{p.type.upper()}",
                                 "name": n})
        if problems:
            import json

            raise _Reply(hs_error(400, f"Property values were not valid: {json.dumps(problems)}",
                                  "VALIDATION_ERROR", errors=[
                                      {"message": pr["message"], "code": pr["error"],
                                       "context": {"propertyName": [pr["name"]]}}
                                      for pr in problems]))
        return out

    def contact_create(self, req: Request, name: str) -> Response:
        body = _body(req)
        props = body.get("properties")
        if not isinstance(props, dict):
            return hs_error(400, "properties must be an object", "VALIDATION_ERROR")
        with self.store.lock:
            values = self._coerce(props)
            email = values.get("email")
            if isinstance(email, str):
                existing = self.store.contact_by_email(email)
                if existing is not None:
                    # HubSpot deduplicates contacts by email
                    return hs_error(409, "Contact already exists. Existing ID: "
                                    f"{self.store.contacts.id_of(existing)}", "CONFLICT")
            i = self.store.new_contact(values)
            result = self._object(i, [*values, *(n for n in ALWAYS if n not in values)])
        self.accounting.add(name, "records_written")
        return Response.json(201, result)

    # -- single contact, owners, properties
    def contact_get(self, req: Request, name: str) -> Response:
        rid = req.path.rstrip("/").rsplit("/", 1)[1]
        with self.store.lock:
            i = self.store.contacts.index_of(rid)
            if i is None:
                return hs_error(404, "Object not found.  objectId are usually numeric.",
                                "OBJECT_NOT_FOUND")
            props = req.query.get("properties")
            names = self._names(",".join(props) if props else None, DEFAULT_SEARCH_PROPERTIES)
            return Response.json(200, self._object(i, names))

    def contact_update(self, req: Request, name: str) -> Response:
        rid = req.path.rstrip("/").rsplit("/", 1)[1]
        body = _body(req)
        props = body.get("properties")
        if not isinstance(props, dict):
            return hs_error(400, "properties must be an object", "VALIDATION_ERROR")
        with self.store.lock:
            i = self.store.contacts.index_of(rid)
            if i is None:
                return hs_error(404, "Object not found.  objectId are usually numeric.",
                                "OBJECT_NOT_FOUND")
            if self.faults().record_faults(name, 1, "owner_change"):
                self.store.person_changes_owner("hubspot", i)
            values = self._coerce(props)
            self.store.contacts.set(i, {**values,
                                        "lastmodifieddate": self.store.stamp(seconds=False)})
            self.store.note_email(i, values.get("email"))
            self.store.record_change("hubspot", rid, "api", list(values))
            result = self._object(i, [*values, *(n for n in ALWAYS if n not in values)])
        self.accounting.add(name, "records_written")
        return Response.json(200, result)

    def owners(self, req: Request, name: str) -> Response:
        parts = req.path.rstrip("/").split("/")
        owners = self.store.owners
        if len(parts) == 5:
            oid = parts[4]
            match = [o for o in owners if o["id"] == oid]
            if not match:
                return hs_error(404, f"No owner found with ID {oid}", "OBJECT_NOT_FOUND")
            return Response.json(200, match[0])
        email = req.param("email")
        archived = (req.param("archived") or "false").lower() == "true"
        rows = [o for o in owners if o["archived"] == archived
                and (not email or o["email"].lower() == email.lower())]
        limit = int(req.param("limit") or 100)
        after = int(req.param("after") or 0)
        if limit > 500:
            return hs_error(400, "limit must be at most 500", "VALIDATION_ERROR")
        page = rows[after:after + limit]
        out: dict[str, Any] = {"results": page}
        if after + limit < len(rows):
            out["paging"] = {"next": {"after": str(after + limit),
                                      "link": f"?after={after + limit}"}}
        return Response.json(200, out)

    def properties(self, req: Request, name: str) -> Response:
        parts = req.path.rstrip("/").split("/")
        s = self.store
        if len(parts) == 6:
            p = s.hs_properties.get(parts[5])
            if p is None:
                return hs_error(404, f"Unable to find property {parts[5]} of object type "
                                "CONTACT", "OBJECT_NOT_FOUND")
            return Response.json(200, p.to_json(s.hs_property_created[p.name]))
        return Response.json(200, {"results": [p.to_json(s.hs_property_created[p.name])
                                               for p in s.hs_properties.values()]})

    def create_property(self, req: Request, name: str) -> Response:
        body = _body(req)
        s = self.store
        pname = str(body.get("name") or "")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName")
                   if not body.get(k)]
        if missing:
            return hs_error(400, f"Missing required fields: {missing}", "VALIDATION_ERROR")
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            return hs_error(400, f"Unknown property type {body['type']!r}", "VALIDATION_ERROR")
        with s.lock:
            if pname in s.hs_properties:
                return hs_error(409, f"Property named '{pname}' already exists.",
                                "OBJECT_ALREADY_EXISTS")
            if body["groupName"] not in s.hs_groups:
                return hs_error(400, f"Property group {body['groupName']!r} does not exist",
                                "VALIDATION_ERROR")
            p = HsProperty(pname, str(body["label"]), str(body["type"]), str(body["fieldType"]),
                           str(body["groupName"]), list(body.get("options") or []),
                           hubspot_defined=False, description=str(body.get("description") or ""))
            s.add_hs_property(p)
            return Response.json(201, p.to_json(s.hs_property_created[pname]))

    def groups(self, req: Request, name: str) -> Response:
        parts = req.path.rstrip("/").split("/")
        groups = self.store.hs_groups
        if len(parts) == 7:
            label = groups.get(parts[6])
            if label is None:
                return hs_error(404, f"Unable to find property group {parts[6]}",
                                "OBJECT_NOT_FOUND")
            return Response.json(200, _group_json(parts[6], label, 0))
        return Response.json(200, {"results": [_group_json(n, lbl, k)
                                               for k, (n, lbl) in enumerate(groups.items())]})

    def create_group(self, req: Request, name: str) -> Response:
        body = _body(req)
        gname, label = body.get("name"), body.get("label")
        if not gname or not label:
            return hs_error(400, "name and label are required", "VALIDATION_ERROR")
        with self.store.lock:
            if gname in self.store.hs_groups:
                return hs_error(409, f"Property group named '{gname}' already exists.",
                                "OBJECT_ALREADY_EXISTS")
            self.store.hs_groups[str(gname)] = str(label)
        return Response.json(201, _group_json(str(gname), str(label),
                                              int(body.get("displayOrder") or -1)))


def _group_json(name: str, label: str, order: int) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}


def _batch_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    # As sparse as HubSpot's: the SDK does not validate its models, so a 207 without links or
    # errors parses, and a client must not count on them.
    return {"status": "error", "category": category, "message": message, "context": context}


def _batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
                    ) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results,
                            "startedAt": started,
                            "completedAt": ms_to_iso(int(time.time() * 1000))}
    if errors:
        body["numErrors"] = sum(len(e["context"].get("ids", [])) or 1 for e in errors)
        body["errors"] = errors
        return Response.json(207, body)
    return Response.json(200, body)


def _sort_spec(s: Any) -> tuple[str, bool]:
    if isinstance(s, dict):
        return str(s.get("propertyName")), str(s.get("direction", "ASCENDING")).upper() \
            == "DESCENDING"
    text = str(s)
    return (text[1:], True) if text.startswith("-") else (text, False)


def _norm(ptype: str) -> Callable[[Any], Any]:
    if ptype in ("string", "enumeration"):
        return lambda v: v.lower() if isinstance(v, str) else v
    if ptype == "number":  # stored as text (hs_object_id) or numbers; compared as numbers
        return _number
    return lambda v: v


def _number(v: Any) -> float | None:
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def _ms(v: Any) -> int:
    text = str(v).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return parse_datetime_ms(text)


def _from_filter(v: Any, ptype: str) -> Any:
    if ptype == "datetime":
        return _ms(v)
    if ptype == "number":
        return float(v)
    if ptype == "bool":
        return str(v).lower() == "true"
    if ptype == "date":
        text = str(v)
        return ms_to_iso(int(text))[:10] if text.isdigit() else text[:10]
    return str(v).lower()


def _from_input(v: Any, p: HsProperty, store: Store) -> Any:
    if v is None or v == "":
        return None
    if p.type == "datetime":
        try:
            return _ms(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a valid datetime for {p.name}: use epoch "
                             "milliseconds or ISO 8601") from None
    if p.type == "number":
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{v!r} is not a valid number for {p.name}") from None
    if p.type == "bool":
        if str(v).lower() not in ("true", "false"):
            raise ValueError(f"{v!r} is not a valid boolean for {p.name}")
        return str(v).lower() == "true"
    if p.name == "hubspot_owner_id":
        if not any(o["id"] == str(v) for o in store.owners):
            raise ValueError(f"{v} is not a valid owner id")
        return str(v)
    if p.type == "enumeration" and p.options:
        if str(v) not in {str(o["value"]) for o in p.options}:
            raise ValueError(f"{v} was not one of the allowed options: "
                             f"{[o['value'] for o in p.options]}")
    return str(v)


def _to_wire(v: Any, ptype: str) -> Any:
    if v is None:
        return None
    if ptype == "datetime":
        return ms_to_iso(v)
    if ptype == "bool":
        return "true" if v else "false"
    if ptype == "number":
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def _bearer(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else None


def _body(req: Request) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise _Reply(hs_error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")) from None
    if not isinstance(body, dict):
        raise _Reply(hs_error(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR"))
    return body


def _not_found(req: Request, name: str) -> Response:
    return hs_error(404, f"No route for {req.method} {req.path}", "OBJECT_NOT_FOUND")


def _elapsed_us(req: Request) -> int:
    return int((time.perf_counter() - req.started) * 1e6)
