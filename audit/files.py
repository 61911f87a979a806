"""Files and folders leadgate writes whole or not at all (the signing key, configs, officer keys,
digests in an outbox, export bundles): written beside the target, flushed to disk, then put in
place by one rename or link. A full disk or a crash leaves the old file or none, never half."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from audit.errors import LedgerError


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


@contextmanager
def staged_folder(out: Path, what: str) -> Iterator[Path]:
    """A hidden folder beside `out` to write `what` in, renamed to `out` once the block ends: a
    folder that could not be written whole (a full disk, no permission) never appears, and the
    same name can be used again. `out` must be missing or empty; the folder is mode 0700 and
    the files written in it 0600, so that a copy of one, or the folder moved, is no wider
    readable than the folder was."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise _unwritable(what, out, exc) from exc
    try:
        yield staging
        for written in staging.iterdir():
            written.chmod(0o600)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _unwritable(what, out, exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _unwritable(what: str, out: Path, exc: OSError) -> LedgerError:
    return LedgerError(f"cannot write {what} ({exc.strerror or exc})", where=str(out),
                       fix="free space on that disk, or name a folder where you may write; "
                           "nothing was left behind")
