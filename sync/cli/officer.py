"""The officer id and token of an action a compliance officer signs: working the review queue,
erasing a subject's personal data, showing it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from routing_core.errors import LeadgateError


def ask_token() -> str:
    """The officer token from the terminal, hidden; without one (cron, a pipe) there is no one
    to ask, and typing it where it would be echoed is not offered."""
    if not sys.stdin.isatty():
        raise LeadgateError("no officer token given, and no terminal to ask for it on",
                            where="--token", fix="pass --token or set LEADGATE_OFFICER_TOKEN")
    return str(click.prompt("officer token", hide_input=True))


def officer_options(*, required: bool = True, what: str = ""
                    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--officer and --token (default $LEADGATE_OFFICER_TOKEN, else asked on a terminal)."""
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--token", envvar="LEADGATE_OFFICER_TOKEN", default=None,
            help="Your officer token (default: $LEADGATE_OFFICER_TOKEN, else asked).")(f)
        return click.option("--officer", required=required,
                            help=f"Your officer id in the policy{what}.")(f)
    return decorate
