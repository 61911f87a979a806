"""Files leadgate writes whole or not at all (configs, officer keys, digests in an outbox)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk and rename it over
    `path`: a full disk or a crash leaves the old file or none, never half of one (a mail relay
    watching an outbox, or the next `leadgate` command, would read the half). `private`: mode
    0600 from the first byte (secrets, officer keys); otherwise 0644. An OSError names `path`."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        if not private:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
