"""Errors of the audit ledger that a person sees (one line, what/where/fix)."""

from __future__ import annotations

from routing_core.errors import LeadgateError


class LedgerError(LeadgateError):
    """The database, a key file or a bundle cannot be used as asked."""


class KeyRotated(LedgerError):
    """The key file holds an earlier signing key of this ledger: `audit rotate-key` replaced it
    (perhaps while a sync run was working)."""


class NotSigned(LedgerError):
    """An action's entries are committed, but no checkpoint could be signed over them (exit 1):
    until one is, only the head row, which anyone who can write the database can recompute,
    stands between them and a silent deletion."""

    exit_code = 1


class DatabaseFailed(LedgerError):
    """The database stopped answering part-way: the server went down, the connection was cut,
    the disk is full, a lock was held too long."""


class VerificationFailed(LeadgateError):
    """The ledger or a bundle does not verify; `seq` names the first bad entry when known."""

    exit_code = 1

    def __init__(self, message: str, *, seq: int | None = None, where: str | None = None,
                 fix: str | None = None) -> None:
        super().__init__(message, where=where, fix=fix)
        self.seq = seq
