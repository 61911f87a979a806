"""Bad input gives one line naming the thing and the fix, and a non-zero exit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from audit import db
from sync.cli import main


def cli(*args: str, cwd: Path) -> Any:
    """The CLI in this process (quicker than a subprocess); same exit codes and messages."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


def _one_line(proc, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert getattr(proc, "returncode", getattr(proc, "exit_code", None)) == code, \
        (proc.stdout, proc.stderr)
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


def test_missing_or_wrong_signing_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    db.upgrade(url)
    key = tmp_path / "signing.key"
    first = cli("audit", "checkpoint", "--database-url", url, "--key", str(key),
                     cwd=tmp_path)
    assert first.exit_code == 0, first.stderr  # first use creates the key, 0600
    assert key.stat().st_mode & 0o777 == 0o600
    err = _one_line(cli("audit", "checkpoint", "--database-url", url, "--key",
                             str(tmp_path / "gone.key"), cwd=tmp_path))
    assert "signing key file not found" in err and "gone.key" in err
    other = tmp_path / "other.key"
    from audit.keys import ensure_signing_key

    ensure_signing_key(other)
    err = _one_line(cli("audit", "checkpoint", "--database-url", url, "--key", str(other),
                             cwd=tmp_path))
    assert "rotate-key" in err
    key.chmod(0o644)
    err = _one_line(cli("audit", "checkpoint", "--database-url", url, "--key", str(key),
                             cwd=tmp_path))
    assert "chmod 600" in err


def test_key_rotation_then_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    db.upgrade(url)
    key, new = tmp_path / "a.key", tmp_path / "b.key"
    args = ("--database-url", url)
    assert cli("audit", "checkpoint", *args, "--key", str(key), cwd=tmp_path).exit_code == 0
    proc = cli("audit", "rotate-key", *args, "--key", str(key), "--new-key", str(new),
                    cwd=tmp_path)
    assert proc.exit_code == 0, proc.stderr
    # The old key may no longer sign; the new one does; the chain of keys verifies.
    assert cli("audit", "checkpoint", *args, "--key", str(key),
                    cwd=tmp_path).exit_code == 2
    assert cli("audit", "checkpoint", *args, "--key", str(new),
                    cwd=tmp_path).exit_code == 0
    proc = cli("audit", "verify", *args, cwd=tmp_path)
    assert proc.exit_code == 0 and "2 signing key(s)" in proc.stdout, proc.stderr


def test_config_names_the_database_and_the_key(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("LEADGATE_SIGNING_KEY", raising=False)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "leadgate.yaml").write_text(
        f"database_url: sqlite:///{tmp_path / 'from-config.db'}\nsigning_key: keys/ledger.key\n")
    result = cli("db", "upgrade", "--config", str(conf / "leadgate.yaml"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-config.db").exists()
    result = cli("audit", "checkpoint", "--config", str(conf / "leadgate.yaml"), cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert (conf / "keys" / "ledger.key").exists()  # relative to the config file's folder


def test_db_and_audit_commands_read_the_config_leadgate_config_names(leadgate, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                      ) -> None:
    """As `sync run` and `sync status` do: the ledger of the config LEADGATE_CONFIG names, not a
    leadgate.db of the current folder (created there by `db upgrade`, found by nothing else);
    a config named that does not exist is an error, not a silent fall-back."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    config = work / "leadgate.yaml"
    config.write_text(f"database_url: sqlite:///{work / 'ledger.db'}\n")
    env = {"LEADGATE_CONFIG": str(config)}
    assert leadgate("db", "upgrade", cwd=str(elsewhere), env=env).returncode == 0
    assert (work / "ledger.db").is_file() and not list(elsewhere.iterdir())
    verify = leadgate("audit", "verify", cwd=str(elsewhere), env=env)
    assert verify.returncode == 0 and verify.stdout.startswith("ok: 0 entries"), verify.stderr
    for named in ({"LEADGATE_CONFIG": str(work / "missing.yaml")}, None):
        args = ("audit", "verify") if named else ("audit", "verify", "--config",
                                                  str(work / "missing.yaml"))
        proc = leadgate(*args, cwd=str(elsewhere), env=named)
        _one_line(proc)
        assert proc.stderr.startswith(f"error: {work / 'missing.yaml'}: cannot read"), proc.stderr
