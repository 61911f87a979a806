"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.disks import SmallDisk, small_disks

PG_ENV = "LEADGATE_TEST_DATABASE_URL"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Reads LEADGATE_TEST_DATABASE_URL (a server and a database we may connect to in order to
    create others). Skips, saying why, where it is unset; CI sets LEADGATE_REQUIRE_POSTGRES so
    that a missing server fails instead of skipping.
    """
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("LEADGATE_REQUIRE_POSTGRES"):
            pytest.fail(f"{PG_ENV} is unset but LEADGATE_REQUIRE_POSTGRES is set")
        pytest.skip(f"{PG_ENV} is unset: no PostgreSQL to test against")
    import sqlalchemy as sa

    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(base).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def _upgraded_engine(url: str) -> Iterator[Engine]:
    from audit import db

    db.upgrade(url)
    eng = db.make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def engine(any_url: str) -> Iterator[Engine]:
    """An engine on a migrated database: once SQLite, once PostgreSQL."""
    yield from _upgraded_engine(any_url)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    yield from _upgraded_engine(sqlite_url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    yield from _upgraded_engine(pg_url)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def leadgate():  # type: ignore[no-untyped-def]
    """Run the real `leadgate` command in a subprocess: leadgate("route", "--policy", p, cwd=d)."""
    import subprocess
    import sys

    def run(*args: str, cwd: str | None = None, input: str | None = None,
            timeout: float = 120, env: dict[str, str] | None = None, umask: int = -1,
            ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = REPO_ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "sync.cli", *args], cwd=cwd, input=input, env=full_env,
            capture_output=True, text=True, timeout=timeout, umask=umask,
        )

    return run



@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], SmallDisk]]:
    """small_disk("32k"): a fresh tmpfs of that size under tmp_path (skips unless root)."""
    with small_disks(tmp_path) as mount:
        yield mount
