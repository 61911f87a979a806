"""The one exception family a person sees: what went wrong, where, and how to fix it."""

from __future__ import annotations


class LeadgateError(Exception):
    """An error shown to a person as one or two lines, never as a traceback.

    ``where`` names the thing (a file and line, a config key, a URL without secrets);
    ``fix`` says what to do about it.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text
