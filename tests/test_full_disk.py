"""A full disk: files are written whole or not at all, and a command that cannot write is one
line naming the file (exit 2), leaving nothing that blocks its retry."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from audit.files import write_atomically
from tests.disks import SmallDisk


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_replaced_whole_with_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "officers.json"
    write_atomically(target, "first\n", private=True)
    assert target.read_text() == "first\n" and _mode(target) == 0o600
    write_atomically(target, b"second\n", private=True)
    assert target.read_bytes() == b"second\n" and _mode(target) == 0o600
    public = tmp_path / "leadgate.yaml"
    write_atomically(public, "x: 1\n")
    assert _mode(public) == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["leadgate.yaml", "officers.json",
                                                           "sub"]  # no temporary file left


def test_a_full_disk_keeps_the_old_file_and_names_the_new_one(
        small_disk: Callable[[str], SmallDisk]) -> None:
    disk = small_disk("8k")
    target = disk.path / "officers.json"
    write_atomically(target, "old\n", private=True)
    with pytest.raises(OSError) as err:
        write_atomically(target, "x" * 64_000, private=True)
    assert err.value.filename == str(target) and "No space left" in str(err.value)
    assert target.read_text() == "old\n"
    assert os.listdir(disk.path) == ["officers.json"]


def test_init_on_a_full_disk_is_one_line_and_can_be_retried(
        leadgate, small_disk: Callable[[str], SmallDisk]) -> None:  # type: ignore[no-untyped-def]
    disk = small_disk("4k")  # room for the key, not for leadgate.yaml
    proc = leadgate("init", cwd=str(disk.path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("error: leadgate.yaml: cannot write (No space left on device) "
                           "(fix: free space on that disk, or run where there is room)\n")
    assert sorted(os.listdir(disk.path)) == ["leadgate-signing.key"]  # whole, and kept
    disk.grow("1M")
    again = leadgate("init", cwd=str(disk.path))
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(disk.path)) == ["leadgate-signing.key", "leadgate.yaml"]


def test_a_signing_key_that_cannot_be_written_leaves_no_empty_key_file(
        leadgate, small_disk: Callable[[str], SmallDisk]) -> None:  # type: ignore[no-untyped-def]
    disk = small_disk("4k")
    (disk.path / "filler").write_bytes(b"x" * 4096)  # the disk is now full
    proc = leadgate("init", cwd=str(disk.path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: leadgate-signing.key: cannot write the signing key "
                                  "file (No space left on device)"), proc.stderr
    assert sorted(os.listdir(disk.path)) == ["filler"]


def test_demo_on_a_full_disk_is_one_line(
        leadgate, small_disk: Callable[[str], SmallDisk]) -> None:  # type: ignore[no-untyped-def]
    disk = small_disk("64k")
    proc = leadgate("demo", cwd=str(disk.path), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: leadgate-demo/") and \
        "cannot write (No space left on device)" in proc.stderr


def test_init_on_a_read_only_disk_says_so(
        leadgate, small_disk: Callable[[str], SmallDisk]) -> None:  # type: ignore[no-untyped-def]
    disk = small_disk("1M")
    disk.read_only()
    proc = leadgate("init", cwd=str(disk.path))
    assert proc.returncode == 2
    assert proc.stderr == ("error: leadgate-signing.key: cannot write the signing key file "
                           "(Read-only file system) (fix: make room on that disk, or point "
                           "LEADGATE_SIGNING_KEY or signing_key in leadgate.yaml at a folder "
                           "where you may write)\n")


def test_a_file_leadgate_may_not_use_is_one_line_naming_it() -> None:
    from sync.cli import _disk_failure

    failure = _disk_failure(PermissionError(errno.EACCES, "Permission denied", "/srv/x.yaml"))
    assert failure is not None
    assert str(failure) == ("/srv/x.yaml: not permitted (Permission denied) (fix: check the "
                            "file's owner and mode, or run as a user who may use it)")
    assert _disk_failure(FileNotFoundError(errno.ENOENT, "No such file", "/x")) is None  # a bug
