"""An auditor reads a copy of the SQLite ledger on a read-only disk (a backup snapshot, an
evidence share): `audit verify` and `audit explain` work as on the live file; a command that
writes is one line saying the database can only be read there."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from audit import db
from audit.db import sqlite_read_only_uri
from audit.ledger import EntryIn, Ledger
from tests.disks import SmallDisk


def _ledger_copy(tmp_path: Path, disk: SmallDisk) -> str:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    ledger = Ledger(engine, key_path=tmp_path / "key")
    ledger.append_batch([EntryIn("decision", f"salesforce:00Q{n}", {"n": n},
                                 {"email": f"p{n}@example.com"}) for n in range(30)])
    ledger.checkpoint()
    engine.dispose()  # the last connection folds the write-ahead log into the file
    assert not Path(f"{tmp_path / 'live.db'}-wal").exists()
    shutil.copy(tmp_path / "live.db", disk.path / "leadgate.db")
    return f"sqlite:///{disk.path / 'leadgate.db'}"


def test_verify_and_explain_read_a_ledger_on_a_read_only_disk(
        leadgate, tmp_path: Path,  # type: ignore[no-untyped-def]
        small_disk: Callable[[str], SmallDisk]) -> None:
    disk = small_disk("4M")
    url = _ledger_copy(tmp_path, disk)
    disk.read_only()
    verified = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: 32 entries")
    explained = leadgate("audit", "explain", "salesforce:00Q7", "--database-url", url,
                         cwd=str(tmp_path))
    assert explained.returncode == 0, explained.stderr
    assert "Chain: ok: 32 entries" in explained.stdout

    wrote = leadgate("audit", "checkpoint", "--database-url", url, "--key",
                     str(tmp_path / "key"), cwd=str(tmp_path))
    assert wrote.returncode == 2 and wrote.stderr.count("\n") == 1, wrote.stderr
    assert "attempt to write a readonly database" in wrote.stderr
    assert "this database can only be read here" in wrote.stderr


def test_a_read_only_copy_with_its_write_ahead_log_is_refused_not_read_in_part(
        leadgate, tmp_path: Path,  # type: ignore[no-untyped-def]
        small_disk: Callable[[str], SmallDisk]) -> None:
    disk = small_disk("4M")
    url = _ledger_copy(tmp_path, disk)
    (disk.path / "leadgate.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(60))
    disk.read_only()
    proc = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "read-only disk with a write-ahead log (-wal) beside it" in proc.stderr
    assert "copy the database and its -wal file" in proc.stderr


def test_the_read_only_uri_is_immutable_only_on_a_read_only_disk(
        tmp_path: Path, small_disk: Callable[[str], SmallDisk]) -> None:
    odd = tmp_path / "a #b?c%.db"
    odd.write_bytes(b"")
    assert sqlite_read_only_uri(str(odd)) == f"file:{tmp_path}/a%20%23b%3Fc%25.db?mode=ro"
    disk = small_disk("1M")
    (disk.path / "l.db").write_bytes(b"")
    disk.read_only()
    assert sqlite_read_only_uri(str(disk.path / "l.db")).endswith("?mode=ro&immutable=1")
