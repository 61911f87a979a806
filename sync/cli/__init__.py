"""The `leadgate` command.

Subcommands live in their own modules and are imported only when used, so that
`leadgate route` does not pay for the CRM SDKs or the database driver.
"""

from __future__ import annotations

import errno
import importlib
import logging
import re
import shutil
import sys
import time
from typing import Any

import click

from routing_core.errors import LeadgateError

# name -> ("module:attribute", one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "route": ("sync.cli.routing:route", "Route leads through a policy and print the decisions."),
    "policy": ("sync.cli.routing:policy", "Validate, test and show a routing policy."),
    "init": ("sync.cli.connectors:init", "Create leadgate.yaml and the ledger signing key."),
    "install": ("sync.cli.connectors:install", "Create leadgate's fields and queue in a CRM."),
    "connect": ("sync.cli.connectors:connect", "Check credentials, API version and field mapping."),
    "sandbox": ("sync.cli.sandbox:sandbox", "Run the local sandbox CRM (Salesforce and HubSpot)."),
    "db": ("sync.cli.audit:db", "Create or upgrade the database schema."),
    "audit": ("sync.cli.audit:audit", "Verify, export, explain and erase in the audit ledger."),
    "sync": ("sync.cli.jobs:sync", "Run the CRM sync job, or show its status."),
    "review": ("sync.cli.jobs:review", "Work the compliance review queue."),
    "demo": ("sync.cli.jobs:demo", "Run leadgate end to end on the sandbox CRM."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target[0].split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text comes from the table so `leadgate --help` imports nothing heavy.
        rows = [(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failure = as_leadgate_error(exc)
            if failure is None:
                raise
            click.echo(f"error: {failure}", err=True)
            ctx.exit(failure.exit_code)


def as_leadgate_error(exc: Exception) -> LeadgateError | None:
    """`exc` as the one-line error the command line shows (a database or disk failure says
    what and how to fix it); None for a bug, which keeps its traceback."""
    if isinstance(exc, LeadgateError):
        return exc
    return _database_failure(exc) or _disk_failure(exc)


def _database_failure(exc: Exception) -> LeadgateError | None:
    """The database going away in the middle of a command is one line too, not a traceback
    (the commands that start from a config already report an unreachable one that way)."""
    if "sqlalchemy" not in sys.modules:  # nothing imported it: not a database error
        return None
    from audit.db import database_failure

    return database_failure(exc)


# The machine refusing a file (a full disk, a read-only one, no permission): the environment,
# not a bug, so one line; any other OSError keeps its traceback.
_DISK_ERRORS = {  # errno -> (what could not be done, the fix)
    errno.ENOSPC: ("cannot write", "free space on that disk, or run where there is room"),
    errno.EDQUOT: ("cannot write", "free space in your quota, or run where there is room"),
    errno.EROFS: ("cannot write", "run where you may write (that disk is read-only)"),
    errno.EACCES: ("not permitted", "check the file's owner and mode, or run as a user who may "
                                    "use it"),
}
_DISK_ERRORS[errno.EPERM] = _DISK_ERRORS[errno.EACCES]


def _disk_failure(exc: Exception) -> LeadgateError | None:
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        _src, where, why = exc.args[0][0]  # copytree: every file that failed; the first says it
        found = re.match(r"\[Errno (\d+)\] ([^:]+)", str(why))
        code, reason = (int(found[1]), found[2]) if found else (None, "")
    elif isinstance(exc, OSError):
        code, reason, where = exc.errno, exc.strerror or "", exc.filename
    else:
        return None
    if code not in _DISK_ERRORS:
        return None
    verb, fix = _DISK_ERRORS[code]
    return LeadgateError(f"{verb} ({reason})", where=str(where) if where else None, fix=fix)


def log_to_stderr(level: int = logging.WARNING) -> None:
    """leadgate's log lines (CRM retries from WARNING; pages and runs at INFO; lead ids of
    failed writes at DEBUG; never a name or an email) on stderr, in UTC."""
    logger = logging.getLogger("leadgate")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                      "%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadgate")
def main() -> None:
    """leadgate: compliance-aware lead routing for banks and insurers."""
    log_to_stderr()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
