"""Deterministic crash points for the crash-safety tests.

`LEADGATE_CRASH_AT="crm:12"` makes the job SIGKILL itself right after its 12th CRM call returns
(the CRM did the work, nothing recorded yet); `ledger:7` right before the 7th ledger-writing
transaction commits; `committed:7` right after it commits. `LEADGATE_STOP_AT`, in the same
form, SIGSTOPs it there instead (a stalled run, stopped where it holds no transaction, for the
lease tests to take over and SIGCONT). Unset (always, outside tests) this costs one dictionary
look-up per event.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _point(variable: str) -> tuple[str, int] | None:
    spec = os.environ.get(variable)
    if not spec:
        return None
    kind, _, n = spec.partition(":")
    return kind, int(n)


_targets = {point: sig for point, sig in ((_point("LEADGATE_CRASH_AT"), signal.SIGKILL),
                                           (_point("LEADGATE_STOP_AT"), signal.SIGSTOP))
            if point is not None}


def reached(kind: str) -> None:
    if not _targets:
        return
    _counts[kind] = _counts.get(kind, 0) + 1
    sig = _targets.get((kind, _counts[kind]))
    if sig is not None:
        os.kill(os.getpid(), sig)
