"""Database access for the ledger (and the operational tables that share its schema).

SQLite is the embedded default, PostgreSQL (psycopg 3) the production database. Both get one
single-writer discipline: `write_transaction` holds the ledger's write lock for the whole
transaction, so concurrent appenders from several processes produce one unbroken chain.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from audit.errors import DatabaseFailed, LedgerError

T = TypeVar("T")

DEFAULT_URL = "sqlite:///leadgate.db"
ENV_URL = "LEADGATE_DATABASE_URL"
_WRITE_OPTION = "leadgate_write"
# How long a writer waits for another writer's lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 60.0
# A PostgreSQL transaction of leadgate's left idle this long is ended by the server: its
# process has stalled (suspended, a paused VM) while holding row locks, the lease's among them,
# which would otherwise block the run taking over for as long as the stall lasts. leadgate never
# waits on anything but the database inside a transaction, so its own never come near it.
IDLE_IN_TRANSACTION_SECONDS = 30
# psycopg prepares a statement run this many times; never reached (see make_engine).
_NEVER = 2**62
# The PostgreSQL URL's query option for server-side prepared statements: batches | off.
PREPARED_OPTION = "prepared_statements"
# Bytes of the file a verifying reader maps into memory (verification streams the whole file);
# other connections read through SQLite's page cache, so that their resident memory does not
# grow with the ledger.
SQLITE_MMAP = 1 << 30


def database_url(config_value: str | None = None) -> str:
    """LEADGATE_DATABASE_URL, else the config's `database_url`, else ./leadgate.db."""
    return os.environ.get(ENV_URL) or config_value or DEFAULT_URL


def mask_url(url: str | sa.URL) -> str:
    """The URL without its password, for messages: the password of its user part, a `password`
    or `sslpassword` query parameter (libpq takes both), and all of a password with an
    unescaped "@" in it."""
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except Exception:  # noqa: BLE001 - an unparsable URL is shown only by its scheme
        text = str(url)
        return text.split("://", 1)[0] + "://..." if "://" in text else "<unparsable URL>"
    if parsed.host and "@" in parsed.host:  # the password ran on to the last "@"
        parsed = parsed.set(host=parsed.host.rpartition("@")[2], password="***")
    hidden = {key: "***" for key in parsed.query if _is_secret(key)}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


def _is_secret(query_key: str) -> bool:
    return "password" in query_key.lower()  # libpq's password and sslpassword


def _without_secrets(text: str, url: sa.URL) -> str:
    """A driver's message with the URL's password taken out, wherever the URL had it."""
    secrets = [url.password] if url.password else []
    for key, value in url.query.items():
        if _is_secret(key):
            secrets.extend([value] if isinstance(value, str) else value)
    for secret in sorted(filter(None, map(str, secrets)), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def make_engine(url: str) -> Engine:
    """An engine for a `sqlite:///...` or `postgresql+psycopg://...` URL."""
    try:
        parsed = sa.make_url(url)
    except Exception as exc:
        raise LedgerError(
            "not a database URL", where=mask_url(url),
            fix="use sqlite:///path/leadgate.db or postgresql+psycopg://user@host:5432/db",
        ) from exc
    if parsed.host and "@" in parsed.host:
        raise LedgerError(
            "the database URL's password holds an '@' that is not escaped", where=mask_url(parsed),
            fix="write each '@' of the password as %40 (and ':' as %3A, '/' as %2F)")
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        prepared = parsed.query.get(PREPARED_OPTION, "batches")
        if prepared not in ("batches", "off"):
            raise LedgerError(
                f"{PREPARED_OPTION}={prepared!r} in the database URL is not a choice",
                where=mask_url(parsed),
                fix=f"use {PREPARED_OPTION}=batches (the default) or {PREPARED_OPTION}=off "
                    "(behind a pooler that cannot keep prepared statements)")
        parsed = parsed.set(drivername="postgresql+psycopg").difference_update_query(
            [PREPARED_OPTION])
        # Server-side prepared statements for batches only. psycopg prepares an `executemany`
        # statement whatever the threshold: parsed and planned once, not for every row (the
        # server's parse and plan were 40% of its time for a page's rows). A single
        # `execute` is never prepared: once PostgreSQL switched a prepared key look-up
        # (`subject IN (500 values)`) to a generic plan after ANALYZE, it scanned the whole
        # key table on every batch and appends slowed down tenfold at about 70,000 entries.
        # `off` (None) prepares nothing: PgBouncer in transaction mode before 1.21, or without
        # max_prepared_statements, would run a later batch on a server that lacks the statement.
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={
            "prepare_threshold": None if prepared == "off" else _NEVER})
        event.listen(engine, "connect", _end_stalled_transactions)
        return engine
    raise LedgerError(
        f"unsupported database driver {parsed.drivername!r}", where=mask_url(parsed),
        fix="use sqlite:///path/leadgate.db or postgresql+psycopg://user@host:5432/db",
    )


def _end_stalled_transactions(dbapi_conn: Any, _record: Any) -> None:
    """IDLE_IN_TRANSACTION_SECONDS for every session (a setting of the session, so that a URL's
    own `options` are left as they are)."""
    with dbapi_conn.cursor() as cur:
        cur.execute(f"SET idle_in_transaction_session_timeout = "
                    f"{int(IDLE_IN_TRANSACTION_SECONDS * 1000)}")
    dbapi_conn.commit()


def sqlite_read_only_uri(path: str) -> str:
    """The `file:` URI that reads the ledger at `path` and never writes. On a read-only disk (a
    backup snapshot, an evidence share) nobody can write either, so SQLite is told the file is
    immutable: it then needs no lock and no -shm file beside it, which it could not create."""
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    return uri + "&immutable=1" if _on_read_only_disk(path) else uri


def _on_read_only_disk(path: str) -> bool:
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.exists(path) and bool(os.statvfs(folder).f_flag & os.ST_RDONLY)


def _sqlite_engine(url: sa.URL) -> Engine:
    file_db = bool(url.database) and url.database != ":memory:"
    read_only = file_db and _on_read_only_disk(str(url.database))
    if not read_only:
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        if file_db:
            path = str(url.database)
            if url.query.get("uri") == "true" and path.startswith("file:"):  # a URI filename
                path = urllib.parse.unquote(urllib.parse.urlparse(path).path)

            @event.listens_for(engine, "do_connect")
            def _private(*_: Any) -> None:  # then the driver connects as it would
                create_private(path)
    else:
        wal = Path(f"{url.database}-wal")
        if wal.exists() and wal.stat().st_size:  # an immutable read would not see its entries
            raise LedgerError(
                "the database is on a read-only disk with a write-ahead log (-wal) beside it",
                where=mask_url(url), fix="copy the database and its -wal file to a writable "
                "folder and use that copy, or verify an export bundle (`audit verify --bundle`)")
        uri = sqlite_read_only_uri(str(url.database))
        engine = sa.create_engine(url, creator=lambda: sqlite3.connect(
            uri, uri=True, check_same_thread=False))

    # pysqlite's own BEGIN handling defers locks and breaks SAVEPOINT/transactional DDL; the
    # SQLAlchemy docs' recipe turns it off and lets SQLAlchemy emit BEGIN itself.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if file_db and not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers (verify) never block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")  # erased subject keys are overwritten on disk
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes SQLite's RESERVED lock at BEGIN, not at its first write: two writers
        # can then never both read the same head and append conflicting entries.
        immediate = conn.get_execution_options().get(_WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_private(path: str) -> None:
    """Create a database file that does not exist yet with mode 0600, as SQLite would create
    it otherwise with the umask's (0644): it holds every data subject's personal-data key.
    SQLite gives its -wal and -shm files the database file's mode. An existing file is left
    as it is; a folder that does not exist is SQLite's error to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError):
        pass


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def in_lists(conn: Connection, values: Sequence[T]) -> Iterator[Sequence[T]]:
    """`values` in pieces, one per `column IN (...)` look-up. SQLite builds before 3.32 take at
    most 999 bound parameters; PostgreSQL takes 65,535, and every statement is a round trip
    (and a plan) on the job's hot path, so there a page of 2,000 ids is one look-up."""
    size = 500 if is_sqlite(conn) else 2_000
    for start in range(0, len(values), size):
        yield values[start:start + size]


def insert_rows(conn: Connection, table: sa.Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    """Insert `rows` (tuples in `columns` order) inside the caller's transaction.

    PostgreSQL: one binary COPY. For a page of ledger rows it took a quarter of the time of
    the prepared `executemany` it replaced, client and server together: no per-row Bind and
    Execute, and values go out in binary form (a 4 kB body is copied, not hex-escaped).
    Columns left out get their server default, as with INSERT. Elsewhere: `executemany`.
    """
    if not rows:
        return
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in columns)
    target = preparer.format_table(table)
    if is_sqlite(conn):
        # The columns' own conversions (a datetime is stored as SQLAlchemy's text), which a
        # Core insert would apply; none for the ledger's strings, integers and bytes. Column
        # by column, each distinct value once: a batch's rows share their times.
        processors = [table.c[c].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                      for c in columns]
        if any(processors):
            values = [list(column) for column in zip(*rows, strict=True)]
            for index, process in enumerate(processors):
                if process is not None:
                    once = {v: process(v) for v in set(values[index])}
                    values[index] = [once[v] for v in values[index]]
            rows = list(zip(*values, strict=True))
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})",  # noqa: S608
                             list(rows))
        return
    types = [_pg_type(table.c[c].type, conn.dialect) for c in columns]
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(
            f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _pg_type(column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str:
    """The type name binary COPY needs: `VARCHAR(32)` is `varchar`."""
    return re.sub(r"\(.*\)", "", column_type.compile(dialect=dialect)).strip().lower()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction holding the ledger's single-writer lock.

    SQLite: `BEGIN IMMEDIATE`. PostgreSQL: `SELECT ... FOR UPDATE` on the ledger head row. The
    transaction commits when the block ends and rolls back (appending nothing) on an exception.
    """
    with connect(engine) as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            if not is_sqlite(engine):
                row = conn.execute(
                    sa.text("SELECT id FROM ledger_head WHERE id = 1 FOR UPDATE")
                ).first()
                if row is None:
                    raise LedgerError(
                        "the ledger head row is missing", where=mask_url(engine.url),
                        fix="run `leadgate db upgrade` on an empty database",
                    )
            yield conn


_FIX = ("check that the database server runs, that this machine reaches it and its disk has "
        "room, and that the URL (LEADGATE_DATABASE_URL or database_url in leadgate.yaml) names it")


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """engine.connect(), turning an unreachable or missing database into a one-line error."""
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        if not _is_failure(exc):
            raise
        raise DatabaseFailed(
            f"cannot connect to the database "
            f"({_without_secrets(_first_line(exc.orig), engine.url)})",
            where=mask_url(engine.url),
            fix=_FIX,
        ) from exc
    with conn:
        yield conn


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose statements all see one moment of the database, for readers
    that compare what several statements return (the head against the entries, the checkpoints
    against the chain) while a sync run appends. SQLite's deferred BEGIN already reads from one
    snapshot; PostgreSQL's default, READ COMMITTED, takes a new one for every statement."""
    with connect(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                          postgresql_readonly=True)
        yield conn


def _is_failure(exc: BaseException) -> bool:
    """The database itself failing or unusable (a lost connection, a server shut down, a full
    disk, a lock timeout, a file that is not a database), as against a statement leadgate got
    wrong (IntegrityError, ProgrammingError: those keep their traceback)."""
    return (isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))
            or type(exc) is sa.exc.DatabaseError)


def database_failure(exc: BaseException, engine: Engine | None = None) -> DatabaseFailed | None:
    """The one-line error for `exc` when it is the database failing, else None."""
    if not isinstance(exc, sa.exc.DBAPIError) or not _is_failure(exc):
        return None
    detail = _first_line(exc.orig)
    if engine is not None:
        detail = _without_secrets(detail, engine.url)
    return DatabaseFailed(
        f"the database failed ({detail})",
        where=mask_url(engine.url) if engine is not None else None,
        fix=_READ_ONLY_FIX if "readonly database" in detail else _FIX)


_READ_ONLY_FIX = ("this database can only be read here (a read-only disk or file): `audit verify` "
                  "and `audit explain` work as it is; copy it to a writable folder for a command "
                  "that writes (an export signs a checkpoint first)")


@contextmanager
def database_failures(engine: Engine) -> Iterator[None]:
    """Raise the database failing inside the block as a one-line DatabaseFailed."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        failure = database_failure(exc, engine)
        if failure is None:
            raise
        raise failure from exc


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip().splitlines()
    return text[0] if text else "no detail"


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["engine"] = engine
    return cfg


def _as_engine(url_or_engine: str | Engine) -> tuple[Engine, bool]:
    if isinstance(url_or_engine, Engine):
        return url_or_engine, False
    return make_engine(url_or_engine), True


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (Alembic; migrations ship in audit/migrations)."""
    from alembic import command

    engine, owned = _as_engine(url_or_engine)
    try:
        _check_reachable(engine)
        command.upgrade(_alembic_config(engine), revision)
    finally:
        if owned:
            engine.dispose()


def downgrade(url_or_engine: str | Engine, revision: str) -> None:
    """Take the schema down to `revision` ("base" removes every table)."""
    from alembic import command

    engine, owned = _as_engine(url_or_engine)
    try:
        _check_reachable(engine)
        command.downgrade(_alembic_config(engine), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _check_reachable(engine: Engine) -> None:
    with connect(engine) as conn:
        conn.execute(sa.text("SELECT 1"))


def require_database_file(engine: Engine, fix: str) -> None:
    """A SQLite ledger a command only reads must exist already: connecting would create an
    empty file (in the wrong folder, often), which then looks like a ledger."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" \
            and not Path(database).exists():
        raise LedgerError("no database file here", where=database, fix=fix)


def require_schema(engine: Engine) -> None:
    """A one-line error, not a traceback, when the ledger tables do not exist yet."""
    with connect(engine) as conn:
        if not sa.inspect(conn).has_table("ledger_head"):
            raise LedgerError(
                "the database has no ledger tables", where=mask_url(engine.url),
                fix="run `leadgate db upgrade` first",
            )
