"""`load_policy`: YAML -> validated, compiled `Policy` with its canonical digest.

Every problem found is reported with file, line and YAML path; a policy with any problem does
not load (and so never routes anything). Problems are found in three passes, each reporting
all it finds: reading the YAML (syntax, duplicate keys: the first stops the read), the
document's shape (unknown keys, types, formats), then references and values across sections
(undefined teams and products, duplicate ids, conditions, jurisdiction codes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import rfc8785
from pydantic import ValidationError

from routing_core.decision import REFUSAL_REASONS
from routing_core.errors import LeadgateError
from routing_core.jurisdictions import BUILTIN_GROUPS, JurisdictionSet
from routing_core.lead import CUSTOMER_TYPES
from routing_core.policy import model, schema
from routing_core.policy.conditions import (
    Condition,
    ConditionError,
    PathCatalog,
    compile_condition,
    expand_jurisdictions,
)
from routing_core.policy.source import Located, SourceError, child_path, read_policy
from routing_core.urls import LOOPBACK_ONLY, is_cleartext_remote, is_http_url


class PolicyError(LeadgateError):
    """A policy that does not load. `problems` holds every problem, one line each."""

    def __init__(self, problems: list[str], *, first_where: str | None = None,
                 first_message: str | None = None, fix: str | None = None) -> None:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__((first_message or problems[0]) + more, where=first_where, fix=fix)
        self.problems = problems


class _Problems:
    """Collects problems as one line each: `file:line: yaml.path: message (fix: ...)`."""

    def __init__(self, located: Located) -> None:
        self.located = located
        self.items: list[tuple[str, str, str | None]] = []   # where, message, fix

    def add(self, path: str, message: str, fix: str | None = None) -> None:
        file, line = self.located.locate(path)
        where = f"{file}:{line}" if line else file
        if path:
            where += f": {path}"
        self.items.append((where, message, fix))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{w}: {m}" + (f" (fix: {f})" if f else "") for w, m, f in self.items]
        where, message, fix = self.items[0]
        raise PolicyError(lines, first_where=where, first_message=message, fix=fix)


def _error_path(data: Any, loc: Sequence[int | str]) -> str:
    """Turn a pydantic error location into a YAML path, skipping union/type tags."""
    path = ""
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            path, current = child_path(path, part), current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            path, current = child_path(path, part), current[part]
        elif i == len(loc) - 1 and isinstance(part, str) and isinstance(current, Mapping):
            path = child_path(path, part)  # a missing key: name it under its parent
    return path


_VALID = "Input should be a valid "


def _schema_problems(exc: ValidationError, data: Any, problems: _Problems) -> None:
    seen: set[tuple[str, str]] = set()
    # A value that fits none of several types gets one error per type: say it once.
    kinds: dict[str, list[str]] = {}
    for error in exc.errors():
        if error["type"].endswith("_type") and error["msg"].startswith(_VALID):
            kinds.setdefault(_error_path(data, error["loc"]), []).append(
                error["msg"][len(_VALID):].split(",")[0])
    for error in exc.errors():
        path = _error_path(data, error["loc"])
        kind = error["type"]
        key = str(error["loc"][-1]) if error["loc"] else ""
        if kind == "extra_forbidden":
            message, fix = f"unknown key {key!r}", "remove it or correct its spelling"
        elif kind == "missing":
            message, fix = f"required key {key!r} is missing", f"add {key}:"
        elif kind in ("literal_error", "enum"):
            message = f"{error['input']!r} is not allowed: {error['msg'].lower()}"
            fix = None
        else:
            given = error.get("input")
            shown = "" if isinstance(given, (dict, list)) or kind == "value_error" else (
                f" (got {given!r})")  # the schema's own checks name the value themselves
            message, fix = f"{error['msg'].removeprefix('Value error, ')}{shown}", None
            several = kinds.get(path, [])
            if len(several) > 1 and error["msg"].startswith(_VALID):
                message = (f"{_VALID}{', '.join(several[:-1])} or {several[-1]}"
                           f"{shown or ' (got a list or mapping)'}")
        if (path, message) not in seen:
            seen.add((path, message))
            problems.add(path, message, fix)


def _groups(doc: schema.Document, problems: _Problems) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {name: list(codes) for name, codes in BUILTIN_GROUPS.items()}
    pending = dict(doc.jurisdiction_groups)
    for name in pending:
        if name in BUILTIN_GROUPS:
            problems.add(f"jurisdiction_groups.{name}", f"{name} is a built-in group",
                         "choose another name")
    # Groups may use other groups; resolve in dependency order, reporting cycles.
    progress = True
    while pending and progress:
        progress = False
        for name, items in list(pending.items()):
            refs = [i[1:] for i in items if isinstance(i, str) and i.startswith("@")]
            if any(r in pending and r != name for r in refs) or name in refs:
                if name in refs:
                    problems.add(f"jurisdiction_groups.{name}", "a group cannot contain itself")
                    del pending[name]
                continue
            try:
                groups[name] = expand_jurisdictions(items, groups, "")
            except ConditionError as exc:
                problems.add(f"jurisdiction_groups.{name}{exc.path}", exc.message)
            del pending[name]
            progress = True
    for name in pending:
        problems.add(f"jurisdiction_groups.{name}", "groups refer to each other in a cycle")
    return groups


def _jurisdictions(items: list[str], groups: Mapping[str, Sequence[str]], path: str,
                   problems: _Problems) -> JurisdictionSet:
    codes: list[str] = []
    for i, item in enumerate(items):  # one at a time, so that every bad code is reported
        try:
            codes += expand_jurisdictions([item], groups, "")
        except ConditionError as exc:
            problems.add(f"{path}[{i}]", exc.message)
    return JurisdictionSet(codes)


def _license(lic: schema.License, path: str, doc: schema.Document,
             groups: Mapping[str, Sequence[str]], problems: _Problems) -> model.License:
    for i, product in enumerate(lic.products):
        if product not in doc.products:
            problems.add(f"{path}.products[{i}]", f"unknown product {product!r} (products: "
                         f"{', '.join(doc.products)})", "define it under products: or fix the id")
    for i, ctype in enumerate(lic.customer_types):
        if ctype not in CUSTOMER_TYPES:
            problems.add(f"{path}.customer_types[{i}]", f"{ctype!r} is not a customer type "
                         f"({', '.join(CUSTOMER_TYPES)})")
    if lic.valid_until is not None and lic.valid_until < lic.valid_from:
        problems.add(f"{path}.valid_until", f"valid_until {lic.valid_until} is before "
                     f"valid_from {lic.valid_from}")
    return model.License(
        id=lic.id, regulator=lic.regulator,
        jurisdictions=_jurisdictions(lic.jurisdictions, groups, f"{path}.jurisdictions",
                                     problems),
        products=frozenset(lic.products), customer_types=frozenset(lic.customer_types),
        valid_from=lic.valid_from, valid_until=lic.valid_until)


def _unique(ids: Sequence[str], section: str, what: str, problems: _Problems,
            suffix: str = ".id") -> None:
    seen: set[str] = set()
    for i, item in enumerate(ids):
        if item in seen:
            problems.add(f"{section}[{i}]{suffix}", f"duplicate {what} {item!r}",
                         "give each one its own id")
        seen.add(item)


def _teams(doc: schema.Document, groups: Mapping[str, Sequence[str]], problems: _Problems,
           regulators: set[str], warnings: list[str]) -> dict[str, model.Team]:
    teams: dict[str, model.Team] = {}
    for team_id, team in doc.teams.items():
        base = f"teams.{team_id}"
        _unique([lic.id for lic in team.licenses], f"{base}.licenses", "licence", problems)
        _unique([m.id for m in team.members], f"{base}.members", "member", problems)
        licenses = tuple(_license(lic, f"{base}.licenses[{i}]", doc, groups, problems)
                         for i, lic in enumerate(team.licenses))
        for i, lic in enumerate(team.licenses):
            if lic.regulator not in regulators:
                warnings.append(f"{base}.licenses[{i}]: regulator {lic.regulator} has no firm "
                                "authorisation, so this licence never gives authority")
        if not team.licenses:
            warnings.append(f"{base}: no licences, so this team can never be assigned a lead")
        members = []
        for j, member in enumerate(team.members):
            mbase = f"{base}.members[{j}]"
            _unique([lic.id for lic in member.licenses], f"{mbase}.licenses", "licence",
                    problems)
            members.append(model.Member(
                id=member.id, name=member.name, crm=dict(member.crm), weight=member.weight,
                max_per_day=member.max_per_day, available=member.available,
                licenses=tuple(_license(lic, f"{mbase}.licenses[{k}]", doc, groups, problems)
                               for k, lic in enumerate(member.licenses))))
        teams[team_id] = model.Team(
            id=team_id, name=team.name, crm=dict(team.crm), licenses=licenses,
            assignment=team.assignment,
            requires_individual_license=team.requires_individual_license,
            members=tuple(members))
    return teams


def _compile(spec: Any, path: str, catalog: PathCatalog, groups: Mapping[str, Sequence[str]],
             problems: _Problems) -> Condition:
    try:
        return compile_condition(spec, catalog, groups)
    except ConditionError as exc:
        full = path if not exc.path else (
            path + exc.path if exc.path.startswith("[") else f"{path}.{exc.path}")
        problems.add(full, exc.message)

        def broken(facts: Any, trace: Any) -> bool:  # never runs: the load fails
            return False
        return broken


def _time(text: str) -> time:
    return time.max if text == "24:00" else time.fromisoformat(text)


def canonical_digest(data: Any) -> str:
    """SHA-256 over RFC 8785 canonical JSON: key order, spacing and comments do not count."""
    return "sha256:" + hashlib.sha256(rfc8785.dumps(data)).hexdigest()


def load_policy(path: str | Path) -> model.Policy:
    """Load one policy file or folder; raise PolicyError naming file, line and YAML path."""
    try:
        located = read_policy(path)
    except SourceError as exc:
        where = f"{exc.file}:{exc.line}" if exc.line else exc.file
        if exc.path:
            where += f": {exc.path}"
        raise PolicyError([f"{where}: {exc.message}"], first_where=where,
                          first_message=exc.message,
                          fix="check the path and the YAML syntax there") from None
    problems = _Problems(located)
    # Top-level `x-...` keys hold YAML anchors for reuse (`<<: *defaults`); they mean nothing
    # by themselves, so they are dropped before validation and are not part of the digest.
    for key in [k for k in located.data if k.startswith("x-")]:
        del located.data[key]
    try:
        doc = schema.Document.model_validate(located.data)
    except ValidationError as exc:
        _schema_problems(exc, located.data, problems)
        problems.raise_if_any()
        raise  # pragma: no cover - every validation error adds a problem

    warnings: list[str] = []
    try:
        tz = ZoneInfo(doc.policy.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add("policy.timezone", f"{doc.policy.timezone!r} is not an IANA time zone",
                     "use a name such as Europe/London")
        tz = ZoneInfo("UTC")

    groups = _groups(doc, problems)
    authorisations = tuple(
        model.Authorisation(entity=a.entity, regulator=a.regulator,
                            jurisdictions=_jurisdictions(
                                a.jurisdictions, groups,
                                f"firm.authorisations[{i}].jurisdictions", problems))
        for i, a in enumerate(doc.firm.authorisations))
    firm_jurisdictions = JurisdictionSet(
        code for a in authorisations for code in a.jurisdictions.codes)
    regulators = {a.regulator for a in authorisations}
    regulator_jurisdictions = {
        reg: JurisdictionSet(code for a in authorisations if a.regulator == reg
                             for code in a.jurisdictions.codes) for reg in regulators}
    teams = _teams(doc, groups, problems, regulators, warnings)
    catalog = PathCatalog(doc.products)

    _unique(doc.channels, "channels", "channel", problems, suffix="")
    _unique([g.id for g in doc.gates], "gates", "gate", problems)
    gates = tuple(model.Gate(
        id=g.id, reason=g.reason,
        applies_to=_compile(g.applies_to, f"gates[{i}].applies_to", catalog, groups, problems),
        require=_compile(g.require, f"gates[{i}].require", catalog, groups, problems))
        for i, g in enumerate(doc.gates))

    _unique([r.id for r in doc.rules], "rules", "rule", problems)
    rules = []
    for i, rule in enumerate(doc.rules):
        for j, team_id in enumerate(rule.route_to):
            if team_id not in teams:
                problems.add(f"rules[{i}].route_to[{j}]", f"unknown team {team_id!r} (teams: "
                             f"{', '.join(teams)})", "define it under teams: or fix the id")
            elif team_id in rule.route_to[:j]:
                problems.add(f"rules[{i}].route_to[{j}]", f"team {team_id!r} is listed twice")
        rules.append(model.Rule(id=rule.id, route_to=tuple(rule.route_to),
                                team_choice=rule.team_choice,
                                when=_compile(rule.when, f"rules[{i}].when", catalog, groups,
                                              problems)))

    _unique([c.id for c in doc.conduct], "conduct", "conduct rule", problems)
    conduct = []
    for i, crule in enumerate(doc.conduct):
        for j, channel in enumerate(crule.prohibit_channels):
            if channel not in doc.channels:
                problems.add(f"conduct[{i}].prohibit_channels[{j}]", f"unknown channel "
                             f"{channel!r} (channels: {', '.join(doc.channels)})")
        window = None
        if crule.contact_window is not None:
            cw = crule.contact_window
            if cw.timezone != "lead_local":
                try:
                    ZoneInfo(cw.timezone)
                except (ZoneInfoNotFoundError, ValueError):
                    problems.add(f"conduct[{i}].contact_window.timezone",
                                 f"{cw.timezone!r} is neither lead_local nor an IANA time zone")
            window = model.Window(start=_time(cw.start), end=_time(cw.end), timezone=cw.timezone)
            if window.end <= window.start:
                problems.add(f"conduct[{i}].contact_window.end",
                             f"end {cw.end} is not after start {cw.start}")
        conduct.append(model.ConductRule(
            id=crule.id, when=_compile(crule.when, f"conduct[{i}].when", catalog, groups,
                                      problems),
            prohibit_channels=frozenset(crule.prohibit_channels), window=window,
            disclosures=tuple(crule.require_disclosures), reason=crule.reason))

    _unique([c.id for c in doc.cooling_off], "cooling_off", "cooling-off rule", problems)
    cooling = tuple(model.CoolingOff(
        id=c.id, when=_compile(c.when, f"cooling_off[{i}].when", catalog, groups, problems),
        hours=c.hours, anchor=c.from_, blocks_stage=c.blocks_stage, reason=c.reason)
        for i, c in enumerate(doc.cooling_off))

    if doc.screening is not None:
        # a list's id is what a decision records as the list that was checked
        _unique([lst.id for lst in doc.screening.lists], "screening.lists", "screening list",
                problems)
        for i, lst in enumerate(doc.screening.lists):
            if lst.id in ("pep", "blocklist") and getattr(doc.screening, lst.id) is not None:
                problems.add(f"screening.lists[{i}].id", f"{lst.id!r} is the id decisions "
                             f"record for screening.{lst.id}", "give the list another id")
    _unique([o.id for o in doc.review.officers], "review.officers", "officer", problems)
    for i, notify in enumerate(doc.review.notify):
        if notify.kind == "webhook" and not notify.url:
            problems.add(f"review.notify[{i}]", "a webhook needs url:")
        elif isinstance(notify.url, str) and not is_http_url(notify.url):
            # not echoed: a webhook URL may carry its own secret
            problems.add(f"review.notify[{i}].url", "not an http:// or https:// URL with a host",
                         "write the full URL, or {env: NAME} to read it from the environment")
        elif isinstance(notify.url, str) and is_cleartext_remote(notify.url):
            problems.add(f"review.notify[{i}].url", "plain http:// to a host that is not "
                         "loopback would send the notification unencrypted", LOOPBACK_ONLY)
        if notify.kind == "email" and not notify.to:
            problems.add(f"review.notify[{i}]", "an email notification needs to: [addresses]")

    _unique([t.name for t in doc.tests], "tests", "test name", problems, suffix=".name")
    rep_ids = {m.id for t in teams.values() for m in t.members}
    for i, test in enumerate(doc.tests):
        expect, base = test.expect, f"tests[{i}].expect"
        if expect.reason is not None and expect.reason not in REFUSAL_REASONS:
            problems.add(f"{base}.reason", f"{expect.reason!r} is not a refusal reason "
                         f"({', '.join(REFUSAL_REASONS)})")
        if expect.team is not None and expect.team not in teams:
            problems.add(f"{base}.team", f"unknown team {expect.team!r}")
        if expect.rep is not None and expect.rep not in rep_ids:
            problems.add(f"{base}.rep", f"unknown rep {expect.rep!r}")
        if expect.rule is not None and expect.rule not in {r.id for r in doc.rules}:
            problems.add(f"{base}.rule", f"unknown rule {expect.rule!r}")
        if expect.gate is not None and expect.gate not in {g.id for g in doc.gates}:
            problems.add(f"{base}.gate", f"unknown gate {expect.gate!r}")
        if expect.outcome == "refused" and (expect.team or expect.rep):
            problems.add(base, "a refused lead has no team or rep",
                         "drop team/rep or expect outcome: assigned")
        if expect.outcome == "assigned" and expect.reason:
            problems.add(base, "an assigned lead has no refusal reason")

    problems.raise_if_any()
    if doc.screening is None:
        warnings.append("screening: none configured; leads are not checked against sanctions, "
                        "PEP or blocklists")

    raw = doc.model_dump(mode="json", by_alias=True)
    return model.Policy(
        id=doc.policy.id, version=doc.policy.version, digest=canonical_digest(raw),
        effective_from=doc.policy.effective_from, timezone=doc.policy.timezone, tz=tz,
        firm_name=doc.firm.name, authorisations=authorisations,
        firm_jurisdictions=firm_jurisdictions, regulator_jurisdictions=regulator_jurisdictions,
        products=doc.products, teams=teams,
        channels=tuple(doc.channels),
        screening=doc.screening.model_dump(mode="json") if doc.screening else None,
        gates=gates, rules=tuple(rules), conduct=tuple(conduct), cooling_off=cooling,
        review=model.Review(queue=dict(doc.review.queue),
                            officers=tuple(o.model_dump() for o in doc.review.officers),
                            four_eyes_for_overrides=doc.review.four_eyes_for_overrides,
                            notify=tuple(n.model_dump(exclude_none=True)
                                         for n in doc.review.notify)),
        # unset keys left out: `team: null` asserts there is no team; an absent key asserts
        # nothing
        tests=tuple(t.model_dump(by_alias=True, exclude_unset=True) for t in doc.tests),
        raw=raw, files=tuple(located.files), warnings=tuple(warnings))
