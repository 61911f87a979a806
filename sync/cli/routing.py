"""`leadgate route` and `leadgate policy validate|test|show`."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from routing_core.decision import Decision
from routing_core.engine import decide, refuse_invalid
from routing_core.errors import LeadgateError
from routing_core.explain import explain
from routing_core.lead import InvalidLead, parse_lead
from routing_core.policy import Policy, PolicyError, load_policy
from routing_core.policy_tests import run_tests
from routing_core.rotation import InMemoryRotationState
from routing_core.screening import NullScreener, Screener
from sync.screening_lists import UnavailableScreener, load_screener


@dataclass
class Row:
    """One record of a lead file: where it is, and its fields or why they could not be read."""

    label: str                     # "leads.csv row 3", "leads.jsonl line 7"
    raw: dict[str, Any] | None
    problems: list[str]


def _unflatten(row: dict[str, str | None]) -> dict[str, Any]:
    """CSV columns use dotted paths (investable_assets.amount, consent.phone); empty = absent."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value.strip() == "":
            continue
        target = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[parts[-1]] = value.strip()
    return out


def _csv_rows(text: str, name: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text))
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # the rest of the file cannot be split into rows
            yield Row(f"{name} row {reader.line_num}", None, [f"not valid CSV: {exc}"])
            return
        label = f"{name} row {reader.line_num}"
        extra = row.get(None)  # type: ignore[call-overload]
        if extra:
            yield Row(label, None, [f"{len(extra)} more value(s) than there are columns"])
            continue
        yield Row(label, _unflatten(row), [])


def _json_rows(text: str, name: str) -> Iterator[Row]:
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        yield Row(name, whole, [])
        return
    if isinstance(whole, list):
        for i, item in enumerate(whole):
            label = f"{name} item {i + 1}"
            if isinstance(item, dict):
                yield Row(label, item, [])
            else:
                yield Row(label, None, ["expected a JSON object of lead fields"])
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label = f"{name} line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(label, None, [f"not valid JSON: {exc.msg} at column {exc.colno}"])
            continue
        if isinstance(item, dict):
            yield Row(label, item, [])
        else:
            yield Row(label, None, ["expected a JSON object of lead fields"])


def read_leads(path: str) -> Iterator[Row]:
    """Leads from a .json/.jsonl/.csv file, or stdin ("-": JSON/JSONL or CSV, sniffed)."""
    if path == "-":
        text, name, suffix = sys.stdin.read(), "stdin", ""
    else:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise LeadgateError("no such lead file", where=path,
                                fix="give a .json, .jsonl or .csv file, or - for stdin") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LeadgateError(f"cannot read the lead file: {exc}", where=path,
                                fix="give a readable UTF-8 .json, .jsonl or .csv file") from None
        name, suffix = file.name, file.suffix.lower()
    if not text.strip():
        raise LeadgateError("the lead file is empty", where=name,
                            fix="put one JSON lead, JSON lines, or a CSV with a header in it")
    if suffix == ".csv" or (suffix not in (".json", ".jsonl", ".ndjson")
                            and text.lstrip()[:1] not in ("{", "[")):
        return _csv_rows(text, name)
    return _json_rows(text, name)


def _at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LeadgateError(f"--at {value!r} is not an ISO 8601 time", where="--at",
                            fix="write it like 2026-11-24T10:00:00Z") from None
    if moment.tzinfo is None:
        raise LeadgateError(f"--at {value!r} has no time zone", where="--at",
                            fix="add Z (UTC) or an offset such as +01:00")
    return moment


def _load(path: str) -> Policy:
    return load_policy(path)


def _summary(decision: Decision, label: str) -> str:
    lead = decision.lead
    if decision.outcome == "assigned":
        return (f"{lead['source']}:{lead['id']}\tassigned\t{decision.team_id}\t"
                f"{decision.rep_id}")
    detail = decision.detail or ""
    if decision.problems:
        detail = "; ".join(decision.problems)
    return f"{lead['source']}:{lead['id']}\trefused\t{decision.reason}\t{detail}"


@click.command()
@click.option("--policy", "policy_path", required=True, metavar="PATH",
              help="Policy YAML file or folder.")
@click.option("--lead", "lead_path", required=True, metavar="FILE|-",
              help="One lead as JSON, or many as JSON lines or CSV; - reads stdin.")
@click.option("--at", "at_text", metavar="ISO-TIME",
              help="Decision time (licence validity, caps, windows). Default: now.")
@click.option("--json", "as_json", is_flag=True, help="Print one decision JSON per lead.")
@click.option("--explain", "as_explain", is_flag=True,
              help="Print a readable account of each decision.")
@click.option("--no-screening", is_flag=True,
              help="Rehearse without the policy's screening lists (decisions note it).")
def route(policy_path: str, lead_path: str, at_text: str | None, as_json: bool,
          as_explain: bool, no_screening: bool) -> None:
    """Route leads through a policy and print the decisions.

    Rotation carries across the leads of one run. A row that cannot be read or normalised
    gets an invalid_lead refusal listing every problem; the other rows still route.
    """
    if as_json and as_explain:
        raise click.UsageError("choose one of --json and --explain")
    at = _at(at_text)
    policy = _load(policy_path)
    rows = read_leads(lead_path)
    screener: Screener | None = NullScreener()
    if policy.screening is not None and not no_screening:
        screener = load_screener(policy)
        if isinstance(screener, UnavailableScreener):
            click.echo(f"warning: {screener.reason}; every lead is refused "
                       "screening_unavailable (use --no-screening to rehearse the rules "
                       "without lists)", err=True)
    rotation = InMemoryRotationState()
    counts = {"assigned": 0, "refused": 0}
    for index, row in enumerate(rows):
        decision = _route_row(row, index, policy, at, rotation, screener)
        counts[decision.outcome] += 1
        if as_json:
            click.echo(json.dumps(decision.to_json(), ensure_ascii=False))
        elif as_explain:
            click.echo(explain(decision.to_json()))
            click.echo("")
        else:
            click.echo(_summary(decision, row.label))
    if not as_json:
        click.echo(f"{counts['assigned']} assigned, {counts['refused']} refused", err=True)


def _route_row(row: Row, index: int, policy: Policy, at: datetime,
               rotation: InMemoryRotationState, screener: Screener | None) -> Decision:
    raw = row.raw
    source = str((raw or {}).get("source") or "file")
    record_id = str((raw or {}).get("id") or row.label)
    if raw is None:
        return refuse_invalid(source, record_id, [f"{row.label}: {p}" for p in row.problems],
                              policy, at=at)
    try:
        lead = parse_lead({**raw, "id": record_id}, source=source)
    except InvalidLead as exc:
        decision = refuse_invalid(source, record_id, exc.problems, policy, at=at,
                                  product=raw.get("product"))
        decision.problems = [f"{row.label}: {p}" for p in decision.problems]
        return decision
    decision = decide(lead, policy, at=at, rotation=rotation, screener=screener)
    if decision.reason == "invalid_lead":  # e.g. a product code the policy does not know
        decision.problems = [f"{row.label}: {p}" for p in decision.problems]
    if policy.screening is not None and isinstance(screener, NullScreener):
        decision.notes.append("screening lists were not checked (--no-screening rehearsal)")
    return decision


@click.group()
def policy() -> None:
    """Validate, test and show a routing policy."""


@policy.command()
@click.argument("path")
def validate(path: str) -> None:
    """Check a policy: every problem is listed with file, line and YAML path."""
    try:
        loaded = _load(path)
    except PolicyError as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        click.echo(f"{len(exc.problems)} problem(s): the policy does not load and would route "
                   "nothing", err=True)
        sys.exit(exc.exit_code)
    from routing_core.licensing import licence_notices

    today = datetime.now(loaded.tz).date()
    for warning in [*loaded.warnings, *licence_notices(loaded, today)]:
        click.echo(f"warning: {warning}", err=True)
    reps = loaded.rep_ids
    click.echo(f"ok: policy {loaded.id} version {loaded.version}: {len(loaded.teams)} teams, "
               f"{len(reps)} reps, {len(loaded.rules)} rules, {len(loaded.gates)} gates, "
               f"{len(loaded.tests)} tests; digest {loaded.digest}")


def _show_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(
        value)


@policy.command()
@click.argument("path")
@click.option("--at", "at_text", metavar="ISO-TIME",
              help="Time for tests without their own `at` (default: now).")
def test(path: str, at_text: str | None) -> None:
    """Run the policy's tests; exit 1 if any fails."""
    loaded = _load(path)
    at = _at(at_text)
    results = run_tests(loaded, at)
    if not results:
        click.echo("no tests: add a tests: section to the policy", err=True)
    for result in results:
        click.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name}")
        if result.passed:
            continue
        for key, expected, actual in result.diffs:
            click.echo(f"      {key}: expected {_show_value(expected)}, got "
                       f"{_show_value(actual)}")
        decision = result.decision
        if decision is not None:
            if decision.outcome == "refused":
                click.echo(f"      decision: refused {decision.reason}: {decision.detail}")
                for problem in decision.problems:
                    click.echo(f"      problem: {problem}")
            else:
                click.echo(f"      decision: assigned {decision.team_id}/{decision.rep_id}")
            if decision.rule_id:
                click.echo(f"      rule: {decision.rule_id}")
            for team in decision.teams_considered:
                click.echo(f"      team {team['team']}: {team['why']}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@policy.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the loaded policy as JSON.")
def show(path: str, as_json: bool) -> None:
    """Show the policy as loaded, every default filled in, with its digest."""
    loaded = _load(path)
    if as_json:
        click.echo(json.dumps({"digest": loaded.digest, "policy": loaded.raw}, indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"# policy {loaded.id} version {loaded.version}")
    click.echo(f"# digest {loaded.digest}")
    click.echo(f"# files: {', '.join(loaded.files)}")
    click.echo("# teams: " + ", ".join(
        f"{t.id} ({len(t.members)} reps; licences "
        f"{', '.join(lic.id for lic in t.licenses) or 'none'})" for t in loaded.teams.values()))
    click.echo("# rules: " + ", ".join(
        f"{r.id} -> {'/'.join(r.route_to)}" for r in loaded.rules))
    click.echo(yaml.safe_dump(dict(loaded.raw), sort_keys=False, allow_unicode=True,
                              width=100).rstrip())
