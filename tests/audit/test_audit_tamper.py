"""Tamper tests: an attacker with DBA rights edits the ledger below the triggers; verification
must fail and name the right entry. Run on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from audit import schema
from audit.errors import VerificationFailed
from audit.keys import load_signing_key, public_bytes
from audit.ledger import EntryIn, Ledger
from audit.merkle import Accumulator
from audit.verify import verify_database


def decision(n: int) -> EntryIn:
    return EntryIn("decision", f"salesforce:00Q{n:012d}",
                   {"decision_id": f"D{n}", "outcome": "assigned", "team": {"id": "uk_retail"}},
                   {"name": f"Lead {n}", "email": f"lead{n}@example.com"})


@pytest.fixture
def built(engine: Engine, tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    yield build(engine, tmp_path)


def build(engine: Engine, tmp_path: Path) -> tuple[Ledger, Path]:
    """28 entries: decisions 1-10, key 11, checkpoint 12 (size 11), decisions 13-22,
    checkpoint 23 (size 22), decisions 24-28. Returns the ledger and checkpoint 2's file."""
    ledger = Ledger(engine, key_path=tmp_path / "signing.key")
    ledger.append_batch([decision(n) for n in range(1, 11)])
    ledger.checkpoint()
    ledger.append_batch([decision(n) for n in range(13, 23)])
    signed = ledger.checkpoint()
    ledger.append_batch([decision(n) for n in range(24, 29)])
    saved = tmp_path / "checkpoint-2.json"
    saved.write_bytes(signed.to_file(public_bytes(load_signing_key(ledger.key_path))))
    assert verify_database(engine).entries == 28
    return ledger, saved


def below_triggers(engine: Engine) -> Connection:
    """A connection that can change ledger rows, as a DBA could."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn.execute(sa.text("SET session_replication_role = replica"))  # triggers off
    else:
        for table in ("ledger_entries", "ledger_checkpoints"):
            for action in ("update", "delete"):
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))
    conn.commit()
    return conn


def failure(engine: Engine, **kwargs: bytes) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verify_database(engine, **kwargs)  # type: ignore[arg-type]
    return info.value


def body_of(conn: Connection, seq: int) -> bytes:
    return bytes(conn.execute(sa.text("SELECT body FROM ledger_entries WHERE seq = :s"),
                              {"s": seq}).scalar_one())


def test_alter_a_payload_byte(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        body = body_of(conn, 15).replace(b'"assigned"', b'"assignee"')
        conn.execute(sa.text("UPDATE ledger_entries SET body = :b WHERE seq = 15"), {"b": body})
        conn.commit()
    err = failure(engine)
    assert err.seq == 15 and "hash does not match" in str(err)


def test_alter_a_payload_byte_and_recompute_its_hash(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        body = body_of(conn, 15).replace(b'"assigned"', b'"assignee"')
        digest = hashlib.sha256(b"\x00" + body).digest()
        conn.execute(sa.text("UPDATE ledger_entries SET body = :b, entry_hash = :h "
                             "WHERE seq = 15"), {"b": body, "h": digest})
        conn.commit()
    err = failure(engine)
    assert err.seq == 15 and "altered" in str(err)


def test_alter_a_hash(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET entry_hash = :h WHERE seq = 7"),
                     {"h": bytes(32)})
        conn.commit()
    assert failure(engine).seq == 7


@pytest.mark.parametrize("seq", [1, 10])
def test_alter_a_prev_hash_column(built: tuple[Ledger, Path], seq: int) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET prev_hash = :h WHERE seq = :s"),
                     {"h": hashlib.sha256(b"x").digest(), "s": seq})
        conn.commit()
    err = failure(engine)
    assert err.seq == seq and "prev_hash column" in str(err)


def test_delete_an_entry(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq = 15"))
        conn.commit()
    err = failure(engine)
    assert err.seq == 15 and "missing" in str(err)


def _rows(conn: Connection, from_seq: int) -> list[dict[str, object]]:
    return [dict(r._mapping) for r in conn.execute(
        sa.select(schema.entries).where(schema.entries.c.seq >= from_seq)
        .order_by(schema.entries.c.seq))]


def test_insert_an_entry(built: tuple[Ledger, Path]) -> None:
    """A well-formed forged entry at 15 that links to 14; the rest shifted up by one."""
    engine = built[0].engine
    with below_triggers(engine) as conn:
        later = _rows(conn, 15)
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= 15"))
        for row in later:
            row["seq"] = int(row["seq"]) + 1  # type: ignore[call-overload]
        forged = dict(later[0])
        prev = bytes(conn.execute(sa.text("SELECT entry_hash FROM ledger_entries "
                                          "WHERE seq = 14")).scalar_one())
        old_prefix = bytes(forged["body"]).split(b',"id"', 1)  # type: ignore[call-overload]
        body = (b'{"chain":{"prev":"' + prev.hex().encode() + b'","seq":15}'
                + b',"id"' + old_prefix[1].replace(b"Lead", b"Forg"))
        forged.update(seq=15, body=body, prev_hash=prev, entry_id="01FORGED0000000000000000000",
                      entry_hash=hashlib.sha256(b"\x00" + body).digest())
        conn.execute(schema.entries.insert(), [forged, *later])
        conn.commit()
    err = failure(engine)
    assert err.seq == 15


def test_swap_two_entries(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET seq = -1 WHERE seq = 15"))
        conn.execute(sa.text("UPDATE ledger_entries SET seq = 15 WHERE seq = 16"))
        conn.execute(sa.text("UPDATE ledger_entries SET seq = 16 WHERE seq = -1"))
        conn.commit()
    err = failure(engine)
    assert err.seq == 15 and "reordered" in str(err)


def test_truncate_the_tail(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= 20"))
        conn.commit()
    err = failure(engine)
    assert err.seq == 20 and "truncated" in str(err)


def test_truncate_after_the_last_checkpoint(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= 25"))
        conn.commit()
    err = failure(engine)
    assert err.seq == 25 and "truncated" in str(err)


def test_remove_the_entry_that_records_the_last_checkpoint(built: tuple[Ledger, Path]) -> None:
    # Entries 23.. cut and the head moved back to 22: the ledger now ends exactly where
    # checkpoint 2 does, and only its missing `checkpoint` entry (23) tells, with or without
    # a prior checkpoint that the cut ledger still extends.
    ledger, saved = built
    engine = ledger.engine
    with below_triggers(engine) as conn:
        last = conn.execute(sa.text("SELECT entry_hash FROM ledger_entries WHERE seq = 22")
                            ).scalar_one()
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= 23"))
        conn.execute(sa.text("UPDATE ledger_head SET size = 22, last_hash = :h"), {"h": last})
        conn.commit()
    for kwargs in ({}, {"prior_checkpoint": saved.read_bytes()}):
        err = failure(engine, **kwargs)
        assert "checkpoint 2 (entries 1..22) is not recorded by the checkpoint entry " \
            "appended with it (entry 23)" in str(err)


def test_replace_a_checkpoint_signature(built: tuple[Ledger, Path]) -> None:
    ledger = built[0]
    engine = ledger.engine
    forged = load_signing_key(ledger.key_path).sign(b"something else")  # a real signature
    with below_triggers(engine) as conn:
        conn.execute(sa.text("UPDATE ledger_checkpoints SET signature = :s WHERE number = 1"),
                     {"s": forged})
        conn.commit()
    err = failure(engine)
    assert "checkpoint 1" in str(err) and "signature" in str(err)


def test_delete_the_last_checkpoint(built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_checkpoints WHERE number = 2"))
        conn.commit()
    err = failure(engine)
    assert err.seq == 23 and "checkpoint 2" in str(err)


def test_key_holder_rewriting_the_tail_is_caught_only_by_a_prior_checkpoint(
        built: tuple[Ledger, Path]) -> None:
    """An insider with the signing key rewrites entries 15.. and re-signs fresh checkpoints:
    the database alone verifies; the checkpoint file kept from an earlier export does not."""
    ledger, saved = built
    engine = ledger.engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq >= 15"))
        conn.execute(sa.text("DELETE FROM ledger_checkpoints WHERE number >= 2"))
        kept = [bytes(r[0]) for r in conn.execute(sa.text(
            "SELECT entry_hash FROM ledger_entries ORDER BY seq"))]
        acc = Accumulator()
        for leaf in kept:
            acc.add(leaf)
        cp1 = bytes(conn.execute(sa.text("SELECT body FROM ledger_checkpoints")).scalar_one())
        conn.execute(schema.head.update().values(
            size=14, last_hash=kept[-1], frontier=acc.frontier(), checkpoints=1,
            last_checkpoint_digest=hashlib.sha256(cp1).digest()))
        conn.commit()
    ledger.append_batch([EntryIn("decision", "salesforce:00Q000000000015",
                                 {"outcome": "refused", "reason": "no_rule_matched"})])
    ledger.append_batch([decision(n) for n in range(16, 30)])
    ledger.checkpoint()
    assert verify_database(engine).entries >= 28  # self-consistent, freshly signed
    err = failure(engine, prior_checkpoint=saved.read_bytes())
    assert "does not extend prior checkpoint 2" in str(err)


def test_verify_cli_names_the_entry_and_exits_1(built: tuple[Ledger, Path], leadgate,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    engine = built[0].engine
    url = engine.url.render_as_string(hide_password=False)
    ok = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "28 entries" in ok.stdout
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq = 9"))
        conn.commit()
    bad = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: entry 9: entry 9 is missing")
    # explain shows the lead's entries and says the ledger does not verify: exit 1, so that a
    # scripted audit does not read the page as sound
    subject = "salesforce:00Q000000000015"
    explained = leadgate("audit", "explain", subject, "--database-url", url, cwd=str(tmp_path))
    assert explained.returncode == 1, explained.stderr
    assert "DOES NOT VERIFY" in explained.stdout and subject in explained.stdout


def test_parallel_verification_agrees_with_sequential(sqlite_engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.verify_parallel as vp

    monkeypatch.setattr(vp, "MIN_ENTRIES", 0)
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "k.key")
    for start in range(0, 300, 50):
        ledger.append_batch([decision(n) for n in range(start, start + 50)])
        ledger.checkpoint()
    path = str(sqlite_engine.url.database)
    chunks = vp.parallel_chunks(path, _ledger_id(sqlite_engine), 307, workers=3)
    assert chunks is not None and len(chunks) == 3  # the parallel path really ran
    parallel = verify_database(sqlite_engine)
    sequential = verify_database(sqlite_engine, parallel=False)
    assert parallel == sequential and parallel.checkpoints == 6
    with below_triggers(sqlite_engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_entries WHERE seq = 200"))
        conn.commit()
    assert vp.parallel_chunks(path, _ledger_id(sqlite_engine), 307, workers=3) is None
    assert failure(sqlite_engine).seq == 200


@pytest.mark.parametrize("entries", [28, 256, 307])
@pytest.mark.parametrize("cores", [2, 3, 4])
def test_parallel_verification_agrees_on_every_core_count(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        entries: int, cores: int) -> None:
    """However the entries fall into ranges (two full ranges of 128, then a short one; four of
    8), the subtrees the workers fold join into the tree the checkpoints signed: an intact
    ledger verifies, as sequentially. (Equal neighbouring ranges once stayed side by side, so
    a 4-core host said entries were rewritten.)"""
    import audit.verify_parallel as vp

    monkeypatch.setattr(vp, "MIN_ENTRIES", 0)
    monkeypatch.setattr(vp.os, "cpu_count", lambda: cores)  # the host's cores
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "k.key")
    while _size(sqlite_engine) < entries - 2:
        batch = min(9, entries - 2 - _size(sqlite_engine))
        ledger.append_batch([decision(n) for n in range(batch)])
        ledger.checkpoint()  # a checkpoint inside most ranges, and its entry after it
    ledger.append_batch([decision(n) for n in range(entries - _size(sqlite_engine))])
    assert _size(sqlite_engine) == entries
    chunks = vp.parallel_chunks(str(sqlite_engine.url.database), _ledger_id(sqlite_engine),
                                entries)
    assert chunks is not None and len(chunks) > 1  # the parallel path really runs
    assert verify_database(sqlite_engine) == verify_database(sqlite_engine, parallel=False)


def _size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one())


def test_parallel_verification_with_unaligned_ranges(sqlite_engine: Engine, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges that do not start at a power-of-two boundary send their entry hashes back for the
    parent to fold; mixed with an aligned first range, the result is the sequential one."""
    import audit.verify_parallel as vp

    monkeypatch.setattr(vp, "MIN_ENTRIES", 0)
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "k.key")
    for start in range(0, 300, 50):
        ledger.append_batch([decision(n) for n in range(start, start + 50)])
        ledger.checkpoint()
    path = str(sqlite_engine.url.database)
    chunks = vp.parallel_chunks(path, _ledger_id(sqlite_engine), 307, workers=4)
    assert chunks is not None and [c.aligned for c in chunks] == [True, False, False, False]
    aligned = vp.parallel_chunks(path, _ledger_id(sqlite_engine), 307, workers=3,
                                 keep_leaves=False)
    assert aligned is not None and all(c.aligned and not c.leaves for c in aligned)
    monkeypatch.setattr(vp.os, "cpu_count", lambda: 4)
    parallel = verify_database(sqlite_engine)
    sequential = verify_database(sqlite_engine, parallel=False)
    assert parallel == sequential and parallel.checkpoints == 6


def _ledger_id(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT ledger_id FROM ledger_head")).scalar_one())


def test_an_unendorsed_signing_key_is_refused(built: tuple[Ledger, Path], tmp_path: Path) -> None:
    """Someone without the key empties the key table and signs with a key of their own."""
    ledger = built[0]
    engine = ledger.engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ledger_signing_keys"))
    intruder = Ledger(engine, key_path=tmp_path / "intruder.key")
    intruder.append_batch([EntryIn("decision", "salesforce:x", {"outcome": "assigned"})])
    intruder.checkpoint()
    err = failure(engine)
    assert err.seq == 30 and "not endorsed" in str(err)


def test_an_edited_signing_key_table_is_caught_and_not_signed_with(
        built: tuple[Ledger, Path], tmp_path: Path) -> None:
    """The key table is what signing and export read: a public key swapped in it must fail
    verification, and the ledger must not sign (or export) with a key the chain never
    announced."""
    from audit.errors import LedgerError
    from audit.keys import ensure_signing_key, fingerprint

    ledger = built[0]
    engine = ledger.engine
    with engine.begin() as conn:
        real = conn.execute(sa.text("SELECT fingerprint, public_key FROM ledger_signing_keys")
                            ).one()
        conn.execute(sa.text("UPDATE ledger_signing_keys SET public_key = :k"),
                     {"k": hashlib.sha256(b"not a key").digest()})
    assert "the signing-key table disagrees with the key announcements" in str(failure(engine))
    with pytest.raises(LedgerError) as info:
        ledger.checkpoint()
    assert "which entry 11 does not announce: the table was edited" in str(info.value)

    # an intruder's own key put in the table in place of the real one
    intruder = tmp_path / "intruder.key"
    public = public_bytes(load_signing_key(ensure_signing_key(intruder)))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_signing_keys SET fingerprint = :f, public_key = :k"),
                     {"f": fingerprint(public), "k": public})
    with pytest.raises(LedgerError):
        Ledger(engine, key_path=intruder).checkpoint()
    assert "signing-key table" in str(failure(engine))
    with engine.begin() as conn:  # put back: all is well again
        conn.execute(sa.text("UPDATE ledger_signing_keys SET fingerprint = :f, public_key = :k"),
                     {"f": real.fingerprint, "k": bytes(real.public_key)})
    assert verify_database(engine).entries == 28


@pytest.mark.parametrize("edit", [
    "UPDATE ledger_head SET frontier = :zeros",  # the next checkpoint: a wrong root
    "UPDATE ledger_head SET checkpoints = checkpoints + 5",  # the next: number 8, not 3
    "UPDATE ledger_head SET last_checkpoint_digest = :zeros32",  # not chained to number 2
])
def test_an_edited_head_row_fails_verification_and_is_not_signed(
        built: tuple[Ledger, Path], edit: str) -> None:
    """The head row is what the next append and checkpoint build on: verify passed an edited
    one, and the next checkpoint then signed the wrong thing into the append-only table."""
    from audit.errors import LedgerError

    ledger = built[0]
    engine = ledger.engine
    with below_triggers(engine) as conn:
        frontier = conn.execute(sa.text("SELECT frontier FROM ledger_head")).scalar_one()
        conn.execute(sa.text(edit),
                     {"zeros": bytes(len(frontier)), "zeros32": bytes(32)})
        conn.commit()
    assert "ledger head" in str(failure(engine))
    if "frontier" not in edit:  # only `audit verify` can check the frontier (every entry)
        with pytest.raises(LedgerError, match="no checkpoint was signed"):
            ledger.checkpoint()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM ledger_checkpoints")
                                ).scalar_one() == 2


def test_a_row_numbered_outside_the_ledger_fails_the_parallel_verifier_too(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The workers read entries 1..size: a copy of entry 5 inserted as entry 0 passed them.
    import audit.verify_parallel as vp

    monkeypatch.setattr(vp, "MIN_ENTRIES", 0)
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "k.key")
    ledger.append_batch([decision(n) for n in range(300)])
    ledger.checkpoint()
    with below_triggers(sqlite_engine) as conn:
        conn.execute(sa.text("INSERT INTO ledger_entries SELECT 0, entry_id || 'x', kind, subject, "
                             "time, body, prev_hash, entry_hash FROM ledger_entries "
                             "WHERE seq = 5"))
        conn.commit()
    parallel = failure(sqlite_engine)
    with pytest.raises(VerificationFailed) as sequential:
        verify_database(sqlite_engine, parallel=False)
    assert parallel.seq == sequential.value.seq == 0 and str(parallel) == str(sequential.value)


def test_a_ledger_without_its_head_row_fails_verification_in_one_line(
        built: tuple[Ledger, Path]) -> None:
    engine = built[0].engine
    with below_triggers(engine) as conn:
        conn.execute(sa.text("DELETE FROM ledger_head"))
        conn.commit()
    assert "no head row" in str(failure(engine))  # was sqlalchemy's NoResultFound


# SQLite lets a row of the BLOB body column hold any type: an UPDATE below the triggers can
# leave TEXT (CAST, replace()) or a number there. Same bytes as TEXT are the same entry;
# anything else is an altered entry, named, never a crash of verify, explain or export.
SAME_BYTES_AS_TEXT = "CAST(body AS TEXT)"
ALTERED = {
    "text, altered": "replace(body, '\"outcome\":\"assigned\"', '\"outcome\":\"refused\"')",
    "text, not utf-8": "CAST(X'7BFF7D' AS TEXT)",
    "integer": "42",
}


def set_body_15(engine: Engine, value_sql: str) -> str:
    """Entry 15's body becomes `value_sql`; returns the entry's subject."""
    with below_triggers(engine) as conn:
        # the value is one of this file's SQL expressions, not input
        conn.execute(sa.text(f"UPDATE ledger_entries SET body = {value_sql} WHERE seq = 15"))  # noqa: S608
        subject, kind = conn.execute(sa.text(
            "SELECT subject, typeof(body) FROM ledger_entries WHERE seq = 15")).one()
        assert kind != "blob"
        conn.commit()
    return str(subject)


def build_for(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              parallel: bool) -> Ledger:
    """The 28-entry ledger, or (parallel) 307 entries checked by two worker processes."""
    if not parallel:
        return build(engine, tmp_path)[0]
    import audit.verify_parallel as vp

    monkeypatch.setattr(vp, "MIN_ENTRIES", 0)
    monkeypatch.setattr(vp.os, "cpu_count", lambda: 2)
    ledger = Ledger(engine, key_path=tmp_path / "signing.key")
    for start in range(0, 300, 50):
        ledger.append_batch([decision(n) for n in range(start, start + 50)])
        ledger.checkpoint()
    return ledger


@pytest.mark.parametrize("parallel", [False, True])
def test_a_body_stored_as_text_with_unchanged_bytes_is_the_same_entry(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        parallel: bool) -> None:
    from audit.bundle import verify_bundle
    from audit.explain import explain_subject
    from audit.export import export

    ledger = build_for(sqlite_engine, tmp_path, monkeypatch, parallel)
    before = verify_database(sqlite_engine)
    subject = set_body_15(sqlite_engine, SAME_BYTES_AS_TEXT)
    if parallel:
        import audit.verify_parallel as vp

        assert vp.parallel_chunks(str(sqlite_engine.url.database), _ledger_id(sqlite_engine),
                                  before.entries) is not None  # the workers read it as bytes
    assert verify_database(sqlite_engine) == before  # the content the chain hashed is intact
    explained = explain_subject(sqlite_engine, subject)
    assert explained.chain_ok and explained.entries[0].payload["outcome"] == "assigned"
    export(ledger, tmp_path / "bundle")
    assert verify_bundle(tmp_path / "bundle").entries == before.entries


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("value_sql", ALTERED.values(), ids=ALTERED.keys())
def test_a_body_of_another_type_is_an_altered_entry_not_a_crash(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        value_sql: str, parallel: bool) -> None:
    from audit.explain import explain_subject, render_text
    from audit.export import export

    ledger = build_for(sqlite_engine, tmp_path, monkeypatch, parallel)
    subject = set_body_15(sqlite_engine, value_sql)
    err = failure(sqlite_engine)
    assert err.seq == 15 and "the entry or its hash was altered" in str(err)
    explained = explain_subject(sqlite_engine, subject)
    assert not explained.chain_ok and "entry 15:" in explained.chain_message
    assert [e.seq for e in explained.entries] == [15]
    assert "#15 decision" in render_text(explained)
    with pytest.raises(VerificationFailed) as exported:
        export(ledger, tmp_path / "bundle")
    assert exported.value.seq == 15


def test_verify_explain_and_export_name_a_text_body_that_was_altered_without_a_traceback(
        sqlite_engine: Engine, tmp_path: Path, leadgate) -> None:  # type: ignore[no-untyped-def]
    build(sqlite_engine, tmp_path)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    subject = set_body_15(sqlite_engine, ALTERED["text, altered"])
    verify = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert (verify.returncode, verify.stdout) == (1, "")
    assert verify.stderr.startswith("error: entry 15: the stored entry hash does not match")
    explained = leadgate("audit", "explain", subject, "--database-url", url,
                         cwd=str(tmp_path))
    assert explained.returncode == 1 and "DOES NOT VERIFY: entry 15:" in explained.stdout
    exported = leadgate("audit", "export", "--out", str(tmp_path / "bundle"), "--key",
                        str(tmp_path / "signing.key"), "--database-url", url, cwd=str(tmp_path))
    assert exported.returncode == 1 and exported.stderr.startswith("error: entry 15:")
    for run in (verify, explained, exported):
        assert "Traceback" not in run.stderr, run.stderr


def test_a_body_column_turned_to_text_on_postgresql_still_verifies(
        pg_engine: Engine, tmp_path: Path) -> None:
    from audit.explain import explain_subject

    build(pg_engine, tmp_path)
    before = verify_database(pg_engine)
    with pg_engine.begin() as conn:  # the driver now returns str for every body
        conn.execute(sa.text("ALTER TABLE ledger_entries ALTER COLUMN body TYPE text "
                             "USING convert_from(body, 'UTF8')"))
    assert verify_database(pg_engine) == before
    assert explain_subject(pg_engine, "salesforce:00Q000000000015").chain_ok


def test_verify_names_the_ledger_the_signing_keys_and_the_unsigned_tail(
        built: tuple[Ledger, Path], tmp_path: Path, leadgate) -> None:  # type: ignore[no-untyped-def]
    # what a regulator compares with values received over a trusted channel
    from audit.keys import fingerprint

    ledger = built[0]
    url = ledger.engine.url.render_as_string(hide_password=False)
    key = fingerprint(public_bytes(load_signing_key(ledger.key_path)))
    ledger_id = _ledger_id(ledger.engine)
    ok = leadgate("audit", "verify", "--database-url", url, cwd=str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("ok: 28 entries") and len(lines) == 3, lines
    assert lines[1] == (f"ledger {ledger_id}; signing key fingerprint(s), first to current: "
                        f"{key}")
    # checkpoint 2 covers 1..22; its own record is 23; decisions 24-28 follow
    assert lines[2] == "entries 23..28 are after the last signed checkpoint"
    exported = leadgate("audit", "export", "--out", str(tmp_path / "bundle"), "--key",
                        str(ledger.key_path), "--database-url", url, cwd=str(tmp_path))
    assert exported.returncode == 0, exported.stderr
    bundle = leadgate("audit", "verify", "--bundle", str(tmp_path / "bundle"),
                      cwd=str(tmp_path))
    assert bundle.returncode == 0, bundle.stderr
    # a bundle ends at the checkpoint the export signed: nothing is left unsigned
    assert bundle.stdout.splitlines()[1:] == [lines[1]]
    partial = leadgate("audit", "export", "--out", str(tmp_path / "one"), "--subject",
                       "salesforce:00Q000000000015", "--key", str(ledger.key_path),
                       "--database-url", url, cwd=str(tmp_path))
    assert partial.returncode == 0, partial.stderr
    one = leadgate("audit", "verify", "--bundle", str(tmp_path / "one"), cwd=str(tmp_path))
    assert one.returncode == 0 and one.stdout.splitlines()[1:] == [lines[1]], one.stderr


def test_a_ledger_with_no_checkpoint_says_none_of_it_is_signed(sqlite_engine: Engine,
                                                               tmp_path: Path) -> None:
    ledger = Ledger(sqlite_engine, key_path=tmp_path / "signing.key")
    ledger.append_batch([decision(n) for n in range(1, 4)])
    summary = verify_database(sqlite_engine).summary()
    assert summary.splitlines()[1:] == [
        f"ledger {_ledger_id(sqlite_engine)}; signing key fingerprint(s), first to current: none",
        "entries 1..3 are not covered by a signed checkpoint (there is none yet)"]
