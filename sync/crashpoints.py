"""Deterministic crash points for the crash-safety tests.

`LEADGATE_CRASH_AT="crm:12"` makes the job SIGKILL itself right after its 12th CRM call returns
(the CRM did the work, nothing recorded yet); `ledger:7` right before the 7th ledger-writing
transaction commits; `committed:7` right after it commits. Unset (always, outside tests) this
costs one dictionary look-up per event.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}
_target: tuple[str, int] | None = None
_spec = os.environ.get("LEADGATE_CRASH_AT")
if _spec:
    _kind, _, _n = _spec.partition(":")
    _target = (_kind, int(_n))


def reached(kind: str) -> None:
    if _target is None:
        return
    _counts[kind] = _counts.get(kind, 0) + 1
    if _target[0] == kind and _counts[kind] >= _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
