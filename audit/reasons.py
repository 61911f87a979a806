"""The reason given for an erasure or a showing of personal data: a reference, not a story.

That reason is stored in clear and for good: an erasure's reason must outlive the key it
destroys, or the erasure could not be accounted for. So a reason that names the person ("request
from Zoë Müller, tel 030/98765432") would put back, in every export, what the erasure took away.
Looking for names is a game that is always lost (accents, initials, transliterations, a name
after the erasure has destroyed the copy to compare with), so the reason must be made of
references and of the words of a small vocabulary that names no one: every word either holds
a digit (DSR-2026-0412, #4711, 17(1)(a), 05.11.2026) or is one of `VOCABULARY`, and one at
least holds a digit (a reason that names no request is a story). Besides, no
address (`@`) and no run of nine digits or more that is not glued to letters (a telephone
number; a reference such as DSR-0412-3301-7788 is glued to its prefix). The error never repeats
what it refused: it says which word to take out.
"""

from __future__ import annotations

import re
import unicodedata

from audit.errors import LedgerError

VOCABULARY = frozenset("""
a an the of on by per from to for and or in under with via at as re see after before following
his her their its own be is was were has had been not no new first second third last again
asks asked wants wanted wished wishes requested requests request req ref reference references
ticket tickets case cases incident inc complaint complaints letter email mail call phone
telephone form portal web online chat post postal written verbal received dated date sent
submitted signed confirmed verified identity id subject subjects data personal access erasure
erase erased deletion delete deleted right rights rectification restriction objection object
portability consent withdrawn withdrawal opt out unsubscribe marketing retention period expired
legal basis obligation hold lifted court order regulator regulatory supervisory authority fca
ico cnil bafin dpc aepd garante finma audit auditor internal external investigation inquiry
enquiry police law enforcement fraud aml kyc sanctions review officer dpo compliance team
customer client prospect lead contact record records duplicate merged test error mistake wrong
incorrect closed account number nr num sar dsar dsr rtbf gdpr rgpd dsgvo avg uk eu eea ccpa
cpra lgpd pipeda art arts article articles recital para paragraph section sec schedule annex
act dpa regulation directive clause forgotten removed remove removal copy export extract
provide provided show shown check checked verify escalated escalation approved approval urgent
follow up reminder privacy protection information notice jira zendesk servicenow freshdesk
fos ombudsman mapping quality correction
january february march april may june july august september october november december jan
feb mar apr jun jul aug sep sept oct nov dec
""".split())

_WORD = re.compile(r"[^\W\d_]+")  # letters only: what is left of a token once digits go
# Dates and times first: 05.11.2026, 2026-11-05, 05/11/2026, 10:42, 09:30:15.
_DATE_OR_TIME = re.compile(r"\b(\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}:\d{2}(:\d{2})?)\b")
# Digits run together with spaces, dots, dashes, slashes or brackets, not glued to a letter.
_DIGIT_RUN = re.compile(r"(?<!\w)(?<![^\W\d_][-/.#])[+(]?\d[\d\s()./-]*\d")
PHONE_DIGITS = 9


def _folded(word: str) -> str:
    """`word` in lower case without accents, as the vocabulary is written."""
    plain = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in plain if not unicodedata.combining(c))


def check_reason(reason: str, *, what: str, example: str) -> None:
    """Refuse a blank `reason`, or one that could name a person (`what` names the action in
    the message; `example` is a reason that would do)."""
    fix = (f"give the request's reference and its legal basis, e.g. --reason '{example}'; "
           "anything else about the person belongs in the ticket, not in the ledger; the words "
           "a reason may use besides references are listed in audit/reasons.py, VOCABULARY")
    kept = "it is stored in clear and kept for good"
    if not reason.strip():
        raise LedgerError(f"{what} needs a reason", fix=f"pass --reason '{example}' (it is recorded)")
    tokens = reason.split()
    for n, token in enumerate(tokens, 1):
        if "@" in token:
            raise LedgerError(f"word {n} of the reason for {what} is an email address; {kept}",
                              fix=fix)
        if any(c.isdigit() for c in token):
            continue  # a reference, a number, a date
        for word in _WORD.findall(token):
            if _folded(word) not in VOCABULARY:
                raise LedgerError(
                    f"word {n} of the reason for {what} is neither a reference (it has no "
                    f"digit) nor a word of the reasons' vocabulary, and could be a name; {kept}",
                    fix=fix)
    if not any(c.isdigit() for c in reason):
        raise LedgerError(f"the reason for {what} names no request: it holds no reference (a "
                          f"ticket or request number); {kept}", fix=fix)
    for run in _DIGIT_RUN.findall(_DATE_OR_TIME.sub(" ", reason)):
        if sum(c.isdigit() for c in run) >= PHONE_DIGITS:
            raise LedgerError(
                f"the reason for {what} holds a run of {PHONE_DIGITS} digits or more, which "
                f"could be a telephone number; {kept}",
                fix=fix + " (a reference begins with its prefix: DSR-0412-3301-7788)")
