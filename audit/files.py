"""Files leadgate writes whole or not at all (the signing key, configs, officer keys, digests in
an outbox): written to a temporary file beside the target, flushed to disk, then put in place
by one rename or link. A full disk or a crash leaves the old file or none, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def temporary_beside(path: Path, body: bytes) -> Iterator[str]:
    """A temporary file in `path`'s folder holding `body`, on disk, mode 0600; rename or link
    it into place inside the block. It is removed afterwards if it is still there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomically(path: Path, data: str | bytes, *, private: bool = False) -> None:
    """Replace `path` with `data`, whole (a mail relay watching an outbox, or the next
    `leadgate` command, never reads half a file). `private`: mode 0600 from the first byte
    (secrets, officer keys, a page about one person); otherwise 0644. An OSError names `path`."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with temporary_beside(path, body) as tmp:
            if not private:
                os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
