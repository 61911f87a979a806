"""A disk of our own: a tmpfs of a given size, to fill or to make read-only (mounting needs
root; the tests skip otherwise)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def grow(self, size: str = "256M") -> None:
        """Room again, with what is on it kept."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def read_only(self) -> None:
        """Nobody may write on it any more (a backup snapshot, an evidence share)."""
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)


@contextmanager
def small_disks(folder: Path) -> Iterator[Callable[[str], SmallDisk]]:
    """mount(size) makes a tmpfs of that size under `folder`; all are unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: str) -> SmallDisk:
        path = folder / f"disk{len(mounted)}"
        path.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode != 0:
            pytest.skip("mounting a small tmpfs (a disk to fill) needs root")
        mounted.append(path)
        return SmallDisk(path)

    try:
        yield mount
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", str(path)], check=True)
