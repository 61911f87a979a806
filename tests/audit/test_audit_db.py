"""Storage: URLs, migrations, append-only triggers, atomic batches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit import db, schema
from audit.errors import LedgerError
from audit.ledger import EntryIn, Ledger
from sync.state import sync_review_queue


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADGATE_DATABASE_URL", raising=False)
    assert db.database_url(None) == "sqlite:///leadgate.db"
    assert db.database_url("sqlite:///from-config.db") == "sqlite:///from-config.db"
    monkeypatch.setenv("LEADGATE_DATABASE_URL", "sqlite:///from-env.db")
    assert db.database_url("sqlite:///from-config.db") == "sqlite:///from-env.db"


def test_wrong_url_is_one_line_without_the_password() -> None:
    with pytest.raises(LedgerError) as info:
        db.make_engine("mysql://admin:hunter2@db/x")
    assert "hunter2" not in str(info.value) and "fix:" in str(info.value)


@pytest.mark.parametrize("url, secret", [
    ("postgresql+psycopg://leaduser@127.0.0.1:1/prod?password=QuerySecret1", "QuerySecret1"),
    ("postgresql+psycopg:///prod?host=127.0.0.1&port=1&user=x&password=HostSecret3",
     "HostSecret3"),
    ("postgresql+psycopg://leaduser:Pw@Secret2@127.0.0.1:1/prod", "Secret2"),
    ("postgresql+psycopg://bob@127.0.0.1:1/x?sslpassword=KeySecret4", "KeySecret4"),
])
def test_a_password_anywhere_in_the_url_is_never_shown(leadgate, tmp_path, url: str,  # type: ignore[no-untyped-def]
                                                        secret: str) -> None:
    proc = leadgate("db", "upgrade", "--database-url", url, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert secret not in proc.stderr and "Pw" not in proc.stderr, proc.stderr
    if "Secret2" in url:  # hosts have no "@": the password has one, unescaped
        assert "the database URL's password holds an '@' that is not escaped (fix: write " \
            "each '@' of the password as %40" in proc.stderr
    else:
        assert "password=***" in proc.stderr and "cannot connect" in proc.stderr, proc.stderr


def test_a_new_sqlite_database_is_readable_by_its_owner_only(leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """It holds every data subject's personal-data key: another local user who could read it
    could decrypt every sealed name. SQLite would create it with the umask's mode (0644);
    its -wal and -shm files take the database's."""
    path = tmp_path / "leadgate.db"
    proc = leadgate("db", "upgrade", "--database-url", f"sqlite:///{path}", cwd=str(tmp_path),
                    umask=0o022)
    assert proc.returncode == 0, proc.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with db.write_transaction(engine) as conn:  # a writer: -wal and -shm exist now
            Ledger(engine).append(conn, [EntryIn("policy_loaded", None, {"id": "p"})])
            sidecars = [tmp_path / "leadgate.db-wal", tmp_path / "leadgate.db-shm"]
            assert all(p.exists() for p in sidecars)
            assert [p.stat().st_mode & 0o777 for p in sidecars] == [0o600, 0o600]
    finally:
        engine.dispose()
    # a URI filename (sqlite:///file:...?uri=true) is the same file
    by_uri = tmp_path / "by-uri.db"
    proc = leadgate("db", "upgrade", "--database-url", f"sqlite:///file:{by_uri}?uri=true",
                    cwd=str(tmp_path), umask=0o022)
    assert proc.returncode == 0, proc.stderr
    assert by_uri.stat().st_mode & 0o777 == 0o600
    # an existing database keeps the mode its owner gave it
    path.chmod(0o640)
    assert leadgate("db", "upgrade", "--database-url", f"sqlite:///{path}",
                    cwd=str(tmp_path)).returncode == 0
    assert path.stat().st_mode & 0o777 == 0o640


def test_unreachable_database_is_one_line(leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = leadgate("db", "upgrade", "--database-url",
                    "postgresql+psycopg://u:hunter2@127.0.0.1:1/x", cwd=str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "hunter2" not in proc.stderr and "Traceback" not in proc.stderr


def test_the_database_failing_is_told_apart_from_a_statement_gone_wrong(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from audit.errors import DatabaseFailed
    from sync.cli import _database_failure

    gone = db.make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")
    with pytest.raises(DatabaseFailed) as info, db.database_failures(gone), gone.connect():
        pass
    assert str(info.value).startswith(f"sqlite:///{tmp_path}/no-such-folder/x.db: the database "
                                      "failed (unable to open database file) (fix: ")
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    assert _database_failure(info.value.__cause__) is not None  # the CLI's last resort too

    engine = db.make_engine(f"sqlite:///{tmp_path / 'ok.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    # A statement leadgate got wrong keeps its own error (and traceback): it is a bug.
    with pytest.raises(sa.exc.IntegrityError) as wrong, db.database_failures(engine), \
            engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    assert _database_failure(wrong.value) is None
    assert _database_failure(ValueError("x")) is None
    engine.dispose()


def test_migration_up_and_down_on_an_empty_database(any_url: str, leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = leadgate("db", "upgrade", "--database-url", any_url, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    engine = db.make_engine(any_url)
    try:
        names = set(sa.inspect(engine).get_table_names())
        assert {"ledger_entries", "ledger_head", "ledger_checkpoints", "ledger_subject_keys",
                "ledger_signing_keys"} <= names
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(str(db.MIGRATIONS))
        assert db.current_revision(engine) == script.get_current_head()
        assert "0001_ledger" in {r.revision for r in script.walk_revisions()}
        proc = leadgate("db", "upgrade", "--database-url", any_url, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr  # running it again is harmless
        proc = leadgate("db", "downgrade", "base", "--database-url", any_url, cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr
        engine.dispose()
        names = set(sa.inspect(engine).get_table_names())
        assert not {n for n in names if n.startswith("ledger_")}
        assert db.current_revision(engine) is None
    finally:
        engine.dispose()


def test_triggers_refuse_update_and_delete(engine: Engine) -> None:
    Ledger(engine).append_batch([EntryIn("decision", "s:1", {"n": 1})])
    statements = ["UPDATE ledger_entries SET kind = 'x'", "DELETE FROM ledger_entries"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE ledger_entries")
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar() == 1


def test_a_failed_batch_appends_nothing(engine: Engine) -> None:
    ledger = Ledger(engine)
    ledger.append_batch([EntryIn("decision", "s:1", {"n": 1})])
    with pytest.raises(LedgerError):
        ledger.append_batch([EntryIn("decision", "s:2", {"n": 2}),
                             EntryIn("decision", "s:3", {"bad": object()})])
    with pytest.raises(RuntimeError):
        with db.write_transaction(engine) as conn:
            ledger.append(conn, [EntryIn("decision", "s:4", {"n": 4})])
            raise RuntimeError("crash after the append, before commit")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT max(seq) FROM ledger_entries")).scalar() == 1
        assert conn.execute(sa.text("SELECT size FROM ledger_head")).scalar() == 1
    appended = ledger.append_batch([EntryIn("decision", "s:5", {"n": 5})])
    assert appended[0].seq == 2


def test_append_chains_entries(engine: Engine) -> None:
    ledger = Ledger(engine)
    first = ledger.append_batch([EntryIn("decision", "s:1", {"n": 1}),
                                 EntryIn("writeback", "s:1", {"status": "ok"})])
    second = ledger.append_batch([EntryIn("review_action", "s:1", {"by": "cco"})])
    assert [a.seq for a in first + second] == [1, 2, 3]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT body, prev_hash, entry_hash FROM ledger_entries "
                                    "ORDER BY seq")).all()
    assert bytes(rows[0].prev_hash) == bytes(32)
    assert bytes(rows[1].prev_hash) == bytes(rows[0].entry_hash)
    assert bytes(rows[2].prev_hash) == bytes(rows[1].entry_hash)
    assert bytes(rows[2].body).startswith(
        b'{"chain":{"prev":"' + bytes(rows[1].entry_hash).hex().encode() + b'","seq":3}')


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(LedgerError, match="unknown ledger entry kind"):
        EntryIn("gossip", None, {})


def test_postgres_never_prepares_a_key_look_up(pg_engine: Engine) -> None:
    # A single execute (the `subject IN (...)` key look-up) is never prepared, so it never
    # gets a generic plan that scans the key table. The appends themselves are COPYs
    # (test_postgres_inserts_rows_with_one_binary_copy), which prepare nothing.
    ledger = Ledger(pg_engine)
    for n in range(8):  # more than psycopg's default threshold of 5 executions
        ledger.append_batch([EntryIn("decision", f"s:{n}", {"n": n}, {"name": "A"}),
                             EntryIn("decision", f"t:{n}", {"n": n}, {"name": "B"})])
    with pg_engine.connect() as conn:
        prepared = [s for (s,) in conn.execute(sa.text(
            "SELECT statement FROM pg_prepared_statements WHERE from_sql IS FALSE"))]
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_subject_keys")).scalar() == 16
    assert not [s for s in prepared if "ledger_subject_keys" in s or "INSERT" in s], prepared
    assert ledger.verify().entries == 16


def test_postgres_inserts_rows_with_one_binary_copy(pg_engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # libpq's own trace of the protocol: the rows go as COPY data, not as a Bind and Execute
    # per row.
    trace = tmp_path / "libpq.trace"
    rows = [(f"s:{n}", bytes([n]) * 32, "2026-12-03T00:00:00Z") for n in range(50)]
    with db.write_transaction(pg_engine) as conn, trace.open("w") as out:
        pgconn = conn.connection.driver_connection.pgconn  # type: ignore[union-attr]
        pgconn.trace(out.fileno())
        try:
            db.insert_rows(conn, schema.subject_keys, ("subject", "key", "created_at"), rows)
        finally:
            pgconn.untrace()
    text = trace.read_text()
    assert "FROM STDIN (FORMAT BINARY)" in text and "CopyInResponse" in text, text[:2000]
    assert "\tBind\t" not in text and text.count("CopyData") >= 1
    with pg_engine.connect() as conn:
        stored = conn.execute(sa.select(schema.subject_keys.c.subject, schema.subject_keys.c.key,
                                        schema.subject_keys.c.created_at)
                              .order_by(schema.subject_keys.c.subject)).all()
    assert [(s, bytes(k), t) for s, k, t in stored] == sorted(rows)


def test_inserted_rows_read_back_as_a_core_insert_would_store_them(engine: Engine) -> None:
    # Datetimes, booleans, NULLs and server defaults, on both databases: SQLite gets the
    # columns' own conversions, PostgreSQL's binary COPY the declared types.
    at = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)
    columns = ("source", "record_id", "episode", "decision_id", "reason", "transient", "status",
               "lead_input", "created_at", "last_evaluated_at")
    copied = ("sf", "00Q1", "e1", "d-copied", "no_team", True, "open", None, at, at)
    core = dict(zip(columns, copied, strict=True)) | {"decision_id": "d-core"}
    with db.write_transaction(engine) as conn:
        db.insert_rows(conn, sync_review_queue, columns, [copied])
        conn.execute(sa.insert(sync_review_queue), [core])
    with engine.connect() as conn:
        read = conn.execute(sa.select(sync_review_queue).order_by(sync_review_queue.c.id)).all()
    first, second = (row._asdict() for row in read)
    assert first["decision_id"] == "d-copied" and first["transient"] is True
    assert first["lead_input"] is None and first["evaluations"] == 0 and not first["notified"]
    assert first["created_at"].replace(tzinfo=first["created_at"].tzinfo or UTC) == at
    for name in first:
        if name not in ("id", "decision_id"):
            assert first[name] == second[name], name


def test_postgres_prepares_nothing_when_the_url_says_off(pg_url: str) -> None:
    # For PgBouncer in transaction mode (a later batch may run on another server connection).
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url + "?prepared_statements=off")
    try:
        ledger = Ledger(engine)
        for n in range(8):
            ledger.append_batch([EntryIn("decision", f"s:{n}", {"n": n}, {"name": "A"}),
                                 EntryIn("decision", f"t:{n}", {"n": n}, {"name": "B"})])
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")
                                ).scalar() == 0
        assert ledger.verify().entries == 16
    finally:
        engine.dispose()


def test_an_unknown_prepared_statements_choice_is_one_line_without_the_password() -> None:
    with pytest.raises(LedgerError) as info:
        db.make_engine("postgresql+psycopg://u:hunter2@db/x?prepared_statements=sometimes")
    text = str(info.value)
    assert "prepared_statements='sometimes'" in text and "fix:" in text
    assert "hunter2" not in text and "\n" not in text


def _large_entry(subject: str) -> EntryIn:
    """A decision-sized body (several kB of JSON): PostgreSQL compresses it."""
    return EntryIn("decision", subject, {"rules": [f"rule-{i}" for i in range(600)]})


def test_postgres_compresses_ledger_bodies_with_lz4(pg_url: str) -> None:
    db.upgrade(pg_url, "0003_review_record")  # a ledger written before migration 0004
    engine = db.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                        "WHERE name = 'default_toast_compression'")).scalar():
                pytest.skip("this PostgreSQL server was built without lz4")
        ledger = Ledger(engine)
        ledger.append_batch([_large_entry("s:1")])
        db.upgrade(engine)
        ledger.append_batch([_large_entry("s:2"), EntryIn("writeback", "s:2", {"status": "ok"})])
        with engine.connect() as conn:
            methods = conn.execute(sa.text("SELECT pg_column_compression(body) "
                                           "FROM ledger_entries ORDER BY seq")).scalars().all()
        # Bodies stored before keep pglz, new large ones are lz4, a small one is not compressed;
        # all read back as the bytes that were hashed.
        assert methods == ["pglz", "lz4", None]
        assert ledger.verify().entries == 3
    finally:
        engine.dispose()


def test_an_action_that_cannot_be_signed_says_it_is_recorded_and_how_to_sign(
        engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from audit.errors import NotSigned

    Ledger(engine, key_path=tmp_path / "signing.key").checkpoint()
    ledger = Ledger(engine, key_path=tmp_path / "gone.key")
    ledger.append_batch([EntryIn("review_action", "salesforce:00Q1", {"action": "reject"})])
    with pytest.raises(NotSigned) as info:
        ledger.checkpoint_recorded("rejected: salesforce:00Q1")
    err = info.value
    assert err.exit_code == 1 and err.where == str(tmp_path / "gone.key")
    assert err.message.startswith("rejected: salesforce:00Q1; but no checkpoint was signed over "
                                  "it (signing key file not found")
    assert err.fix is not None and "`leadgate audit checkpoint`" in err.fix
    assert "do not repeat it" in err.fix
    assert not (tmp_path / "gone.key").exists()  # a lost key is never replaced
