"""Bad input gives one line naming the thing and the fix, and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

from audit import db


def _one_line(proc, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "fix:" in proc.stderr
    return str(proc.stderr)


def test_missing_database_and_missing_tables(leadgate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    err = _one_line(leadgate("audit", "verify", cwd=str(tmp_path)))
    assert "leadgate.db" in err and "db upgrade" in err
    assert not (tmp_path / "leadgate.db").exists()  # nothing created by a failed verify
    (tmp_path / "empty.db").write_bytes(b"")
    err = _one_line(leadgate("audit", "verify", "--database-url",
                             f"sqlite:///{tmp_path / 'empty.db'}", cwd=str(tmp_path)))
    assert "no ledger tables" in err


def test_wrong_url(leadgate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    err = _one_line(leadgate("audit", "verify", "--database-url", "oracle://scott:tiger@db/x",
                             cwd=str(tmp_path)))
    assert "tiger" not in err and "unsupported database driver" in err
    err = _one_line(leadgate("db", "upgrade", "--database-url", "not a url", cwd=str(tmp_path)))
    assert "not a database URL" in err


def test_missing_or_wrong_signing_key(leadgate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}"
    db.upgrade(url)
    key = tmp_path / "signing.key"
    first = leadgate("audit", "checkpoint", "--database-url", url, "--key", str(key),
                     cwd=str(tmp_path))
    assert first.returncode == 0, first.stderr  # first use creates the key, 0600
    assert key.stat().st_mode & 0o777 == 0o600
    err = _one_line(leadgate("audit", "checkpoint", "--database-url", url, "--key",
                             str(tmp_path / "gone.key"), cwd=str(tmp_path)))
    assert "signing key file not found" in err and "gone.key" in err
    other = tmp_path / "other.key"
    from audit.keys import ensure_signing_key

    ensure_signing_key(other)
    err = _one_line(leadgate("audit", "checkpoint", "--database-url", url, "--key", str(other),
                             cwd=str(tmp_path)))
    assert "rotate-key" in err
    key.chmod(0o644)
    err = _one_line(leadgate("audit", "checkpoint", "--database-url", url, "--key", str(key),
                             cwd=str(tmp_path)))
    assert "chmod 600" in err


def test_key_rotation_then_verify(leadgate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}"
    db.upgrade(url)
    key, new = tmp_path / "a.key", tmp_path / "b.key"
    args = ("--database-url", url)
    assert leadgate("audit", "checkpoint", *args, "--key", str(key), cwd=str(tmp_path)).returncode == 0
    proc = leadgate("audit", "rotate-key", *args, "--key", str(key), "--new-key", str(new),
                    cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # The old key may no longer sign; the new one does; the chain of keys verifies.
    assert leadgate("audit", "checkpoint", *args, "--key", str(key),
                    cwd=str(tmp_path)).returncode == 2
    assert leadgate("audit", "checkpoint", *args, "--key", str(new),
                    cwd=str(tmp_path)).returncode == 0
    proc = leadgate("audit", "verify", *args, cwd=str(tmp_path))
    assert proc.returncode == 0 and "2 signing key(s)" in proc.stdout, proc.stderr
