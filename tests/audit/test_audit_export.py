"""Export bundles and their offline verification (no database)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from audit.bundle import verify_bundle
from audit.errors import LedgerError, VerificationFailed
from audit.export import export
from audit.ledger import EntryIn, Ledger
from tests.disks import SmallDisk


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _ledger(engine: Engine, tmp_path: Path) -> tuple[Ledger, Clock]:
    clock = Clock()
    ledger = Ledger(engine, key_path=tmp_path / "signing.key", clock=clock)
    for day in range(4):  # 20..23 November, 6 decisions and a write-back a day
        ledger.append_batch([EntryIn("decision", f"salesforce:00Q{day}{n}", {"n": n, "day": day},
                                     {"email": f"p{day}{n}@example.com"}) for n in range(6)])
        ledger.append_batch([EntryIn("writeback", f"salesforce:00Q{day}0", {"status": "ok"})])
        ledger.checkpoint()  # a sync run ends
        clock.now += timedelta(days=1)
    return ledger, clock


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_complete_export_verifies_offline(sqlite_engine: Engine, tmp_path: Path,
                                          fmt: str) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "bundle"
    result = export(ledger, out, fmt=fmt)
    assert result.complete and result.first_seq == 1 and result.last_seq == result.tree_size
    # readable by the exporting user only, the folder and every file in it
    assert out.stat().st_mode & 0o777 == 0o700
    modes = {f.name: f.stat().st_mode & 0o777 for f in out.iterdir()}
    assert len(modes) >= 8 and set(modes.values()) == {0o600}, modes
    sqlite_engine.dispose()
    shutil.move(str(Path(str(sqlite_engine.url.database))), str(tmp_path / "gone.db"))
    report = verify_bundle(out)  # the database is not there any more
    assert report.entries == result.tree_size and report.checkpoints == 5


def test_partial_exports_carry_inclusion_proofs(sqlite_engine: Engine, tmp_path: Path,
                                                leadgate) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    by_day = export(ledger, tmp_path / "day", start="2026-11-21", end="2026-11-22")
    assert not by_day.complete and by_day.entries == 16  # 2 days x (6 + write-back + checkpoint)
    report = verify_bundle(tmp_path / "day")
    assert report.entries == by_day.entries
    lines = (tmp_path / "day" / "entries.jsonl").read_bytes().splitlines()
    assert all(b'"time":"2026-11-2' in line for line in lines)
    assert not any(b'"time":"2026-11-20' in line or b'"time":"2026-11-23' in line
                   for line in lines)
    one = export(ledger, tmp_path / "one", subject="salesforce:00Q10", fmt="csv")
    assert one.entries == 2  # its decision and its write-back
    proc = leadgate("audit", "verify", "--bundle", str(tmp_path / "one"), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "ok: 2 entries" in proc.stdout


def test_edited_bundle_file_names_the_entry(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    for name, start in (("full", None), ("part", "2026-11-21")):
        out = tmp_path / name
        export(ledger, out, start=start)
        entries = out / "entries.jsonl"
        lines = entries.read_bytes().splitlines(keepends=True)
        seq = json.loads(lines[3])["chain"]["seq"]
        lines[3] = lines[3].replace(b'"n":', b'"n":1', 1)
        entries.write_bytes(b"".join(lines))
        with pytest.raises(VerificationFailed) as info:
            verify_bundle(out)
        assert info.value.seq == seq, (name, str(info.value))


def test_edited_manifest_or_proof_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "b"
    export(ledger, out, subject="salesforce:00Q20")
    manifest = out / "manifest.json"
    original = manifest.read_bytes()
    manifest.write_bytes(original.replace(b'"entries":2', b'"entries":3'))
    with pytest.raises(VerificationFailed, match="manifest"):
        verify_bundle(out)
    manifest.write_bytes(original)
    proofs = out / "inclusion_proofs.jsonl"
    rows = [json.loads(line) for line in proofs.read_bytes().splitlines()]
    rows[-1]["path"][0] = rows[-2]["path"][0] if rows[-2]["path"][0] != rows[-1]["path"][0] \
        else "00" * 32
    proofs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(VerificationFailed) as info:
        verify_bundle(out)
    assert info.value.seq == rows[-1]["seq"]


def test_bundle_missing_a_file_is_one_line(sqlite_engine: Engine, tmp_path: Path,
                                           leadgate) -> None:  # type: ignore[no-untyped-def]
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "b"
    export(ledger, out)
    (out / "checkpoints.jsonl").unlink()
    with pytest.raises(LedgerError, match="no checkpoints.jsonl"):
        verify_bundle(out)
    proc = leadgate("audit", "verify", "--bundle", str(out), cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "checkpoints.jsonl" in proc.stderr and "fix:" in proc.stderr


def test_prior_checkpoint_against_a_later_bundle(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, clock = _ledger(sqlite_engine, tmp_path)
    first = tmp_path / "march"
    export(ledger, first, subject="salesforce:00Q00")
    kept = (first / "checkpoint.json").read_bytes()
    ledger.append_batch([EntryIn("review_action", "salesforce:00Q00", {"action": "ok"})])
    later = tmp_path / "april"
    export(ledger, later, subject="salesforce:00Q00")
    assert "extends prior checkpoint" in str(verify_bundle(later, prior_checkpoint=kept).prior)
    # A bundle from another ledger (same key, rewritten history) does not extend it.
    other, _ = _ledger(_fresh_engine(tmp_path), tmp_path)
    rewritten = tmp_path / "rewritten"
    export(other, rewritten)
    with pytest.raises(VerificationFailed, match="ledger"):
        verify_bundle(rewritten, prior_checkpoint=kept)


def _fresh_engine(tmp_path: Path) -> Engine:
    from audit import db

    url = f"sqlite:///{tmp_path / 'other.db'}"
    db.upgrade(url)
    return db.make_engine(url)


def test_a_full_disk_leaves_no_partial_bundle_and_the_export_can_be_retried(
        sqlite_engine: Engine, tmp_path: Path, small_disk: Callable[[str], SmallDisk]) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    ledger.append_batch([EntryIn("decision", f"salesforce:00Qpad{n}", {"pad": "x" * 2000})
                         for n in range(40)])  # about 90 kB of entries
    disk = small_disk("32k")
    with pytest.raises(LedgerError) as err:
        export(ledger, disk.path / "bundle")
    assert str(err.value).startswith(f"{disk.path / 'bundle'}: cannot write the export (No "
                                     "space left on device)"), str(err.value)
    assert list(disk.path.iterdir()) == []  # no half-written bundle, no staging folder
    disk.grow("4M")
    result = export(ledger, disk.path / "bundle")  # the same name: nothing is in the way
    assert verify_bundle(disk.path / "bundle").entries == result.tree_size
    assert sorted(p.name for p in disk.path.iterdir()) == ["bundle"]


def test_a_folder_that_cannot_be_made_is_one_error(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    with pytest.raises(LedgerError, match=r"^/proc/leadgate-export: cannot write the export"):
        export(ledger, Path("/proc/leadgate-export"))


def test_tampered_bundles_say_what_was_done(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)

    def fresh(name: str, **kwargs: str) -> Path:
        out = tmp_path / name
        export(ledger, out, **kwargs)
        return out

    def failure(out: Path) -> VerificationFailed:
        with pytest.raises(VerificationFailed) as info:
            verify_bundle(out)
        return info.value

    # two lines swapped in a complete bundle: reordered, not "missing"
    out = fresh("swapped")
    lines = (out / "entries.jsonl").read_bytes().splitlines(keepends=True)
    lines[9], lines[10] = lines[10], lines[9]
    (out / "entries.jsonl").write_bytes(b"".join(lines))
    err = failure(out)
    assert "reordered or swapped" in str(err) and err.seq == 10, str(err)

    # an entry removed from a one-subject bundle: counted against the signed manifest
    out = fresh("subject", subject="salesforce:00Q20")
    lines = (out / "entries.jsonl").read_bytes().splitlines(keepends=True)
    (out / "entries.jsonl").write_bytes(b"".join(lines[1:]))
    assert "the bundle holds 1 entries but its signed manifest lists 2: entries were removed" \
        in str(failure(out))

    # another public key put into checkpoint.json: that file is named, not the manifest
    out = fresh("key")
    from audit.crypto import b64
    from audit.keys import ensure_signing_key, load_signing_key, public_bytes

    cp = json.loads((out / "checkpoint.json").read_bytes())
    cp["public_key"] = b64(public_bytes(load_signing_key(ensure_signing_key(tmp_path / "o.key"))))
    forged = json.dumps(cp, separators=(",", ":")).encode()
    (out / "checkpoint.json").write_bytes(forged + b"\n")
    assert "checkpoint.json is not the last line of checkpoints.jsonl" in str(failure(out))
    lines = (out / "checkpoints.jsonl").read_bytes().splitlines()
    (out / "checkpoints.jsonl").write_bytes(b"\n".join([*lines[:-1], forged]) + b"\n")
    assert "checkpoints.jsonl: checkpoint 7 carries a public key that is not the one the " \
        "ledger announced" in str(failure(out))

    # public_keys.json listing another key
    out = fresh("keys")
    listed = json.loads((out / "public_keys.json").read_bytes())
    listed[0]["public_key"] = cp["public_key"]
    (out / "public_keys.json").write_text(json.dumps(listed))
    assert "public_keys.json does not list the keys the ledger announced" in str(failure(out))


@pytest.mark.parametrize(("column", "name"), [(0, "seq"), (1, "entry_id"), (2, "kind"),
                                              (3, "subject"), (4, "time"), (6, "canonical")])
def test_an_edited_csv_column_names_the_column_and_the_entry(
        sqlite_engine: Engine, tmp_path: Path, column: int, name: str) -> None:
    import csv
    import io

    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "csv"
    export(ledger, out, fmt="csv")
    rows = list(csv.reader(io.StringIO((out / "entries.csv").read_text(), newline="")))
    row = rows[5]  # entry 5
    row[column] = row[column].replace('"n":', '"n":1', 1) if column == 6 else (
        row[column][:-1] + ("x" if not row[column].endswith("x") else "y"))
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    (out / "entries.csv").write_text(text.getvalue(), newline="")
    with pytest.raises(VerificationFailed) as info:
        verify_bundle(out)
    assert info.value.seq == 5, str(info.value)
    expected = "no longer hash to the entry_hash column" if column == 6 else \
        f"the {name} column of entry 5 disagrees with its hashed bytes"
    assert expected in str(info.value)


@pytest.mark.parametrize(("name", "garbage", "named"), [
    # each of these was a Python traceback
    ("manifest.json", b"{not json", "manifest.json"),
    ("manifest.json", b"[1]", "manifest.json"),
    ("checkpoint.json", b"garbage\n", "checkpoint.json"),
    ("checkpoints.jsonl", b"garbage\n", "checkpoints.jsonl"),
    ("consistency_proofs.jsonl", b"garbage\n", "consistency_proofs.jsonl"),
    ("public_keys.json", b"garbage", "public_keys.json"),
    ("manifest.sig", "\u00e9t\u00e9".encode(), None),
    ("entries.jsonl", b'{"chain":{"prev":"00","seq":1}}\n', "entries.jsonl"),
])
def test_a_corrupt_bundle_file_is_one_line_naming_it(
        sqlite_engine: Engine, tmp_path: Path, leadgate,  # type: ignore[no-untyped-def]
        name: str, garbage: bytes, named: str | None) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "b"
    export(ledger, out)
    (out / name).write_bytes(garbage)
    with pytest.raises(VerificationFailed) as info:
        verify_bundle(out)
    if named is not None:
        assert named in str(info.value), str(info.value)
    proc = leadgate("audit", "verify", "--bundle", str(out), cwd=str(tmp_path))
    assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_time_as_the_end_is_inclusive_and_a_range_backwards_is_refused(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    at = "2026-11-21T09:00:00Z"  # every entry of the second day was made at this instant
    day = export(ledger, tmp_path / "day", start="2026-11-21", end="2026-11-21")
    instant = export(ledger, tmp_path / "instant", start=at, end=at)
    assert instant.entries == day.entries > 0  # --to a time took nothing: it was exclusive
    verify_bundle(tmp_path / "instant")
    with pytest.raises(LedgerError, match="is after --to"):
        export(ledger, tmp_path / "backwards", start="2026-11-22", end="2026-11-21")
    with pytest.raises(LedgerError, match="has no time zone"):
        export(ledger, tmp_path / "naive", start="2026-11-21T09:00:00")


def test_a_manifest_that_misstates_its_selection_does_not_verify(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    """Signed by the key holder, but not true of the bundle: its entries are another subject's,
    or its first entry is not the one it names."""
    from audit.canonical import canonical
    from audit.crypto import b64
    from audit.keys import load_signing_key

    ledger, _ = _ledger(sqlite_engine, tmp_path)
    out = tmp_path / "b"
    export(ledger, out, subject="salesforce:00Q20")
    original = json.loads((out / "manifest.json").read_bytes())
    key = load_signing_key(ledger.key_file())

    def resign(manifest: dict[str, object]) -> None:
        body = canonical(manifest)
        (out / "manifest.json").write_bytes(body + b"\n")
        (out / "manifest.sig").write_text(b64(key.sign(body)) + "\n", encoding="ascii")

    resign(original)
    verify_bundle(out)  # re-signing the same manifest changes nothing
    resign({**original, "selection": {**original["selection"], "subject": "salesforce:00Q21"}})
    with pytest.raises(VerificationFailed, match="outside the selection"):
        verify_bundle(out)
    resign({**original, "first": original["last"]})
    with pytest.raises(VerificationFailed, match="first or last entry"):
        verify_bundle(out)


@pytest.mark.parametrize(("edit", "said"), [
    (lambda lines: lines[:99] + lines[100:], "entry 100 is missing from the bundle"),
    (lambda lines: lines[:100] + [lines[99]] + lines[100:], "entry 100 appears twice"),
    (lambda lines: [line.replace(b"\n", b"\r\n") for line in lines], "Windows line ends"),
])
def test_a_removed_duplicated_or_converted_line_is_said_as_such(
        sqlite_engine: Engine, tmp_path: Path, edit: Callable[[list[bytes]], list[bytes]],
        said: str) -> None:
    # They read "reordered or swapped", "inserted" and "columns disagree" (a JSONL file).
    ledger, _ = _ledger(sqlite_engine, tmp_path)
    for _ in range(10):
        ledger.append_batch([EntryIn("decision", f"salesforce:00X{n}", {"n": n})
                             for n in range(10)])
    ledger.checkpoint()
    out = tmp_path / "b"
    export(ledger, out)
    path = out / "entries.jsonl"
    path.write_bytes(b"".join(edit(path.read_bytes().splitlines(keepends=True))))
    with pytest.raises(VerificationFailed, match=said):
        verify_bundle(out)
