"""The reason given for an erasure or a showing of personal data, checked for personal data.

That reason is stored in clear and for good: an erasure's reason must outlive the key it
destroys, or the erasure could not be accounted for. So a reason that names the person ("request
from jane@example.com") would put back, in every export, what the erasure took away. A reason
is a reference (a ticket, a request number), and one that holds an email address, a telephone
number, or any of the subject's own identifiers is refused. The error never repeats what it
found: it says which word of the reason to take out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit import crypto, schema
from audit.errors import LedgerError

# The sealed personal fields that identify the subject (a lead's entries seal its first and
# last name, email and phone; free text such as an officer's note is not an identifier).
SUBJECT_IDENTIFIERS = ("first_name", "last_name", "name", "email", "phone")

_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[a-z]{2,}", re.I)
# International (+44 20 7946 0958) or national (020 7946 0958) telephone numbers, of nine
# digits or more; a ticket number (#4711, DSAR-2026-000123) does not begin with + or a lone 0,
# and a date (01.12.2026) has eight digits.
_PHONE = re.compile(r"(?<![\w#/-])(?:\+|00|0(?=[1-9]))[\d\s().-]{7,}\d")
_WORD = re.compile(r"[^\W_]+")  # O'Brien-Smith is three words, each checked


def check_reason(conn: Connection, subject: str, reason: str, *, what: str,
                 example: str) -> None:
    """Refuse a blank `reason`, or one holding personal data (`what` names the action in the
    message; `example` is a reason that would do). Called in the transaction that records it."""
    from audit.ledger import read_head

    ledger_id = read_head(conn).ledger_id
    fix = f"give a reference instead, e.g. --reason '{example}'"
    if not reason.strip():
        raise LedgerError(f"{what} needs a reason", fix=f"pass --reason '{example}' (it is recorded)")
    words = _WORD.findall(reason)
    if _EMAIL.search(reason):
        raise LedgerError(f"the reason for {what} holds an email address; it is stored in clear "
                          "and kept for good", fix=fix)
    if any(len(re.sub(r"\D", "", m)) >= 9 for m in _PHONE.findall(reason)):
        raise LedgerError(f"the reason for {what} holds a telephone number; it is stored in "
                          "clear and kept for good", fix=fix)
    own = _own_words(conn, ledger_id, subject)
    for n, word in enumerate(words, 1):
        if word.casefold() in own:
            raise LedgerError(f"word {n} of the reason for {what} is one of the subject's own "
                              "identifiers (name, email or phone); the reason is stored in clear "
                              "and kept for good", fix=fix)
    digits = re.sub(r"\D", "", reason)
    if any(len(d) >= 7 and d in digits for d in _own_digits(conn, ledger_id, subject)):
        raise LedgerError(f"the reason for {what} holds the subject's telephone number; it is "
                          "stored in clear and kept for good", fix=fix)


def _identifiers(conn: Connection, ledger_id: str, subject: str) -> Iterable[str]:
    """The subject's identifiers as its sealed entries hold them (none once erased)."""
    from audit.erasure import subject_key

    key, _ = subject_key(conn, subject)
    if key is None:
        return
    e = schema.entries
    for (body,) in conn.execute(sa.select(e.c.body).where(e.c.subject == subject)):
        sealed = json.loads(bytes(body)).get("personal")
        if not (isinstance(sealed, dict) and "ct" in sealed):
            continue
        try:
            personal = crypto.unseal(key, ledger_id, subject, sealed)
        except ValueError:
            continue
        for name in SUBJECT_IDENTIFIERS:
            value = personal.get(name)
            if isinstance(value, str) and value.strip():
                yield value


def _own_words(conn: Connection, ledger_id: str, subject: str) -> set[str]:
    words: set[str] = set()
    for value in _identifiers(conn, ledger_id, subject):
        named = value.split("@", 1)[0]  # an address's domain names no one
        words.update(w.casefold() for w in _WORD.findall(named)
                     if len(w) >= 2 and not w.isdigit())  # digits are checked as a phone
    return words


def _own_digits(conn: Connection, ledger_id: str, subject: str) -> set[str]:
    out = set()
    for value in _identifiers(conn, ledger_id, subject):
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7:
            out.add(digits[-9:])  # the national part, with or without the country code
    return out
