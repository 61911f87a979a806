"""Errors of the audit ledger that a person sees (one line, what/where/fix)."""

from __future__ import annotations

from routing_core.errors import LeadgateError


class LedgerError(LeadgateError):
    """The database, a key file or a bundle cannot be used as asked."""


class VerificationFailed(LeadgateError):
    """The ledger or a bundle does not verify; `seq` names the first bad entry when known."""

    exit_code = 1

    def __init__(self, message: str, *, seq: int | None = None, where: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(message, where=where, fix=fix)
        self.seq = seq
