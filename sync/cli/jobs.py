"""`leadgate sync run|status`, `leadgate review list|approve|reject`, `leadgate demo`.

The exit codes of `leadgate sync run`, which schedulers rely on, are RUN_EXIT_CODES (its --help
shows them; sync/README.md explains them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from routing_core.decision import REFUSAL_REASONS
from routing_core.errors import LeadgateError
from sync.cli.officer import ask_token, officer_options
from sync.state import json_default
from sync.summary import EXIT_CANNOT_START


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, _, count = value.partition("/")
        shard = (int(index), int(count))
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise LeadgateError(f"--shard {value!r} is not I/N with 0 <= I < N", where="--shard",
                            fix="e.g. --shard 0/2 and --shard 1/2 for two workers")
    return shard


CONFIG_OPTION = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                             help="leadgate.yaml (default: $LEADGATE_CONFIG or ./leadgate.yaml).")


@click.group()
def sync() -> None:
    """Run the CRM sync job, or show its status."""


RUN_EXIT_CODES = """\b
Exit codes:
  0  done (also: another run holds the lease, without --strict-lease)
  1  some write-backs failed, or the run stopped part-way (CRM or database down, API
     budget spent, SIGTERM or Ctrl-C): the next run finishes them with the same decisions
  2  the run could not start (configuration, credentials, database): one line with the fix;
     also a run stopped by a CRM refusal no retry gets past (a mapped field the CRM lacks)
  3  another run holds the lease (only with --strict-lease)"""


@sync.command("run", epilog=RUN_EXIT_CODES)
@CONFIG_OPTION
@click.option("--source", default=None, help="The source in leadgate.yaml to sync.")
@click.option("--dry-run", is_flag=True,
              help="Decide and show what would be written; write nothing, move no rotation.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Stop after this many pulled leads.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--strict-lease", is_flag=True,
              help="Exit 3 (not 0) when another run holds the source's lease.")
@click.option("--shard", default=None, metavar="I/N",
              help="Worker I of N for one source (each shard has its own lease and cursor).")
@click.option("--one-process", is_flag=True,
              help="Decide every page in this process (by default, with two or more cores, a "
                   "helper process decides pulled pages ahead).")
@click.option("-v", "--verbose", count=True,
              help="Log each page and run on stderr (-vv: also the ids of leads whose "
                   "write-back failed). CRM retries are logged in any case.")
@click.option("--lease-ttl", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="How long the lease outlives the run's last heartbeat (default 120): raise "
                   "it where a run may stall longer (a paused VM, a database failing over).")
def run_cmd(config: str | None, source: str | None, dry_run: bool, limit: int | None,
            as_json: bool, strict_lease: bool, shard: str | None, one_process: bool,
            verbose: int, lease_ttl: float | None) -> None:
    """Pull new leads, decide, write ahead to the ledger, write back to the CRM."""
    from sync.cli import log_to_stderr
    from sync.job import build_job

    if verbose:
        log_to_stderr(logging.INFO if verbose == 1 else logging.DEBUG)

    with _json_line_on_error(as_json, source):
        job, ctx = build_job(config, source, dry_run=dry_run, limit=limit, shard=_shard(shard),
                             lease_ttl=lease_ttl, decide_ahead=not one_process)
    try:
        with _json_line_on_error(as_json, job.source, job.run_id), _stop_on_signals(job):
            summary = _run_with_progress(
                job, show=sys.stderr.isatty() and not as_json and not verbose)
    finally:
        job.connector.close()
        ctx.close()
    summary.strict_lease = strict_lease
    try:
        if as_json:
            # One line: schedulers append it to a log, one run per line (JSON Lines).
            click.echo(json.dumps(summary.to_json(), sort_keys=True, default=json_default))
        else:
            click.echo(summary.render())
            if dry_run:
                for item in summary.would_write[:50]:
                    click.echo(f"  would write {item['record_id']}: {item['outcome']} "
                               f"owner={item['owner_crm_id'] or 'review queue'} "
                               f"reason={item['reason'] or '-'} decision={item['decision_id']}")
        sys.stdout.flush()
    except BrokenPipeError:
        # Read by `| head`: the run is done and recorded; its exit code says how it went, not
        # Python's for a closed pipe. Later writes at exit go nowhere instead of failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(summary.exit_code)


@contextlib.contextmanager
def _json_line_on_error(as_json: bool, source: str | None,
                        run_id: str | None = None) -> Iterator[None]:
    """With --json, a run that cannot start (or stops with an error instead of a summary)
    still prints its one JSON line, so a scheduler reading the log of runs sees it; the error
    line on stderr and the exit code are as without --json. Its status follows the exit code:
    `not_started` for 2 (configuration, credentials, the database: a person must act, even when
    it was found after the run was recorded, as a token the CRM refused), else `failed`."""
    from sync.cli import as_leadgate_error

    try:
        yield
    except Exception as exc:
        failure = as_leadgate_error(exc)
        if as_json and failure is not None:
            line = {"status": "not_started" if failure.exit_code == 2 else "failed",
                    "source": source, "run_id": run_id, "error": str(failure),
                    "exit_code": failure.exit_code}
            click.echo(json.dumps(line, sort_keys=True))
        raise


@contextlib.contextmanager
def _stop_on_signals(job: Any) -> Iterator[None]:
    """SIGTERM (a scheduler's deadline, a pod being stopped) or Ctrl-C: the run stops at the
    next page boundary with what is in flight recorded (SyncJob.request_stop). A second signal
    stops the process at once; that is safe too, as after a crash the next run finishes the
    decisions already written ahead."""
    def stop(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if job.stop_requested:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        job.request_stop(name)
        # os.write: a print here could re-enter a write to stderr the signal interrupted
        os.write(sys.stderr.fileno(), f"{name}: finishing the pages in flight, then stopping "
                 "(send it again to stop at once)\n".encode())

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _run_with_progress(job: Any, *, show: bool) -> Any:
    if not show:
        return job.run()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(f"sync {job.source}", total=None, counts="")

        def update(s: Any) -> None:
            elapsed = max(bar.tasks[0].elapsed or 0.0, 1e-6)
            bar.update(task, counts=(f"pulled {s.pulled}  assigned {s.assigned}  refused "
                                     f"{s.refused}  errors {s.write_errors}  "
                                     f"{s.decided / elapsed:.0f}/s"))

        job.progress = update
        return job.run()


@sync.command("status")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="The status as JSON.")
@click.option("--check", is_flag=True,
              help="For a monitor: exit 1 when a source has no run completed within "
                   "--max-age, or a write-back has waited longer.")
@click.option("--max-age", default="1h", show_default=True, metavar="AGE",
              help="With --check: how long without a completed run is a problem "
                   "(90s, 30m, 2h, 1d).")
def status_cmd(config: str | None, as_json: bool, check: bool, max_age: str) -> None:
    """Cursors, last runs, leases and the backlog (write-backs to retry, review queue)."""
    from sync.status import check as check_health
    from sync.status import gather, parse_age, render

    try:
        age = parse_age(max_age)
    except ValueError:
        raise LeadgateError(f"--max-age {max_age!r} is not a duration", where="--max-age",
                            fix="give a number and a unit: 90s, 30m, 2h or 1d") from None
    data = gather(config)
    problems = check_health(data, age) if check else {}
    if as_json:
        if check:
            data["check"] = {"max_age_s": age.total_seconds(), "problems": problems}
        click.echo(json.dumps(data, indent=2, default=json_default))
    elif check:
        for source, found in problems.items():
            click.echo(f"ok {source}" if not found else
                       "\n".join(f"PROBLEM {source}: {problem}" for problem in found))
    else:
        click.echo(render(data))
    if any(problems.values()):
        sys.exit(1)


@click.group()
def review() -> None:
    """Work the compliance review queue."""


@review.command("list")
@CONFIG_OPTION
@click.option("--all", "show_all", is_flag=True, help="Include resolved items.")
@click.option("--reason", "reasons", multiple=True, type=click.Choice(REFUSAL_REASONS),
              help="Only items of this reason (e.g. sanctions_hit); may be repeated.")
@click.option("--source", default=None, help="Only items of this source.")
@click.option("--json", "as_json", is_flag=True, help="The items as JSON.")
def review_list(config: str | None, show_all: bool, reasons: tuple[str, ...],
                source: str | None, as_json: bool) -> None:
    """Refused leads and cooling-off violations waiting for an officer, oldest first: id, age,
    lead, reason, status, decision id, the lead's jurisdiction / customer type / product, and
    the first approval of an item waiting for its second officer. Open the lead in the CRM."""
    from sync import review as rv

    items = rv.list_items(config, show_all=show_all, reasons=reasons, source=source)
    if as_json:
        click.echo(json.dumps(items, indent=2, default=json_default))
        return
    if not items:
        click.echo("no review items match" if reasons or source else
                   "the review queue is empty")
        return
    now = datetime.now(UTC)
    click.echo(f"{'id':>6}  {'age':>4}  {'lead':<32} {'kind':<9} {'reason':<24} "
               f"{'status':<24} {'decision':<26}  jurisdiction / customer type / product")
    for it in items:
        facts = it["lead"]
        what = " / ".join(str(facts.get(k) or "-") for k in
                          ("jurisdiction", "customer_type", "product")) if facts else "-"
        first = it["approvals"][0] if it["status"] == "awaiting_second_officer" and \
            it["approvals"] else None
        then = (f"  (first: {first['officer']} for {first['team']}/{first['rep']})"
                if first else "")
        click.echo(f"{it['id']:>6}  {_age(now, it['created_at']):>4}  "
                   f"{it['source'] + ':' + it['record_id']:<32} {it['kind']:<9} "
                   f"{it['reason']:<24} {it['status']:<24} {it['decision_id']:<26}  "
                   f"{what}{then}")
    click.echo(f"{len(items)} item(s)")


def _age(now: datetime, created: datetime) -> str:
    """How long an item has waited, as an officer reads it: 45m, 7h, 3d."""
    if created.tzinfo is None:  # SQLite gives naive UTC
        created = created.replace(tzinfo=UTC)
    minutes = max(0, int((now - created).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h" if minutes < 48 * 60 else f"{minutes // (24 * 60)}d"


def _officer_options(f: Any) -> Any:
    return CONFIG_OPTION(officer_options()(f))


@review.command("approve")
@click.argument("item")
@click.option("--team", required=True, help="Team id to assign to.")
@click.option("--rep", required=True, help="Rep id (a member of --team) to assign to.")
@click.option("--note", default="", help="Why (recorded in the ledger).")
@_officer_options
def review_approve(item: str, team: str, rep: str, note: str, officer: str,
                   token: str | None, config: str | None) -> None:
    """Approve a specific assignment for a refused lead (ITEM: queue id or source:record)."""
    from sync import review as rv

    token = token or ask_token()
    click.echo(rv.approve(config, item, team=team, rep=rep, officer=officer, token=token,
                          note=note))


@review.command("reject")
@click.argument("item")
@click.option("--note", default="", help="Why (recorded in the ledger).")
@_officer_options
def review_reject(item: str, note: str, officer: str, token: str | None,
                  config: str | None) -> None:
    """Confirm the refusal: the lead is not routed to sales (ITEM: queue id or source:record)."""
    from sync import review as rv

    token = token or ask_token()
    click.echo(rv.reject(config, item, officer=officer, token=token, note=note))


@review.command("resolve")
@click.argument("item")
@click.option("--note", required=True, help="What was done (recorded in the ledger).")
@_officer_options
def review_resolve(item: str, note: str, officer: str, token: str | None,
                   config: str | None) -> None:
    """Close a cooling-off violation item, saying what was done (ITEM: queue id or
    source:record). Nothing is written to the CRM."""
    from sync import review as rv

    token = token or ask_token()
    click.echo(rv.resolve(config, item, officer=officer, token=token, note=note))


def _authoriser_options(f: Any) -> Any:
    f = click.option("--token", envvar="LEADGATE_OFFICER_TOKEN", default=None,
                     help="Your officer token (default: $LEADGATE_OFFICER_TOKEN, else asked).")(f)
    f = click.option("--by", default=None,
                     help="Your officer id in the policy: the officer authorising this "
                          "(needed once any officer holds a token).")(f)
    return CONFIG_OPTION(f)


@review.command("add-officer")
@click.argument("officer")
@_authoriser_options
def review_add_officer(officer: str, by: str | None, token: str | None,
                       config: str | None) -> None:
    """Create a token for an officer of the policy (prints it once; store it in a vault).
    Authorised by another officer with --by; the ledger's first token needs none; an officer
    replaces their own token with --by their own id and that token."""
    from sync import review as rv

    token = token or (ask_token() if by else None)
    new, path = rv.add_officer(config, officer, by=by, token=token)
    click.echo(f"token for {officer} (shown once; stored as a hash in {path}):")
    click.echo(new)


@review.command("revoke-officer")
@click.argument("officer")
@_authoriser_options
def review_revoke_officer(officer: str, by: str | None, token: str | None,
                          config: str | None) -> None:
    """Remove an officer's token now (recorded in the ledger); add-officer gives a new one.
    Authorised by an officer with --by (the officer's own id too)."""
    from sync import review as rv

    token = token or (ask_token() if by else None)
    path = rv.revoke_officer(config, officer, by=by, token=token)
    click.echo(f"token of {officer} revoked (removed from {path}); the ledger records it")


@click.command()
@click.option("--dir", "folder", default="leadgate-demo", show_default=True,
              type=click.Path(file_okay=False), help="Working folder for the demo.")
@click.option("--leads", type=click.IntRange(min=10), default=300, show_default=True,
              help="Leads seeded in each sandbox CRM.")
def demo(folder: str, leads: int) -> None:
    """Run leadgate end to end on the sandbox CRM (no configuration needed)."""
    from sync.demo import run_demo

    code = run_demo(folder, leads=leads, echo=click.echo)
    sys.exit(code)


__all__ = ["sync", "review", "demo", "EXIT_CANNOT_START"]
