"""Problem texts without the values a record gave.

A refusal's problems quote what the record held (`'Smith' is not an ISO 3166 country code`),
always as a Python literal (`repr`), so that a person routing their own file sees what to fix.
Stored decisions cannot keep those values in clear: a wrongly mapped field (country read from
the last name) fills them with personal data that the ledger's chain would keep for good. The
stored copy withholds every quoted value and keeps its length; the text as given is sealed with
the lead's personal data (shown by `audit explain --show-personal`, destroyed by `audit erase`).
"""

from __future__ import annotations

import ast
import re

# A str's repr: single quotes, or double quotes when it holds a ' and no ", with backslash
# escapes inside. Fixed problem texts quote nothing, so every literal is a value given.
_LITERAL = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""")


def withhold_values(text: str) -> str:
    """`text` with each quoted value replaced by how long it was."""
    return _LITERAL.sub(_withheld, text)


def _withheld(match: re.Match[str]) -> str:
    try:
        length = len(ast.literal_eval(match.group()))
    except (ValueError, SyntaxError):  # not a whole literal after all: withhold it anyway
        length = len(match.group()) - 2
    return f"[a value of {length} characters, withheld]"
