"""`leadgate audit export`: a self-verifying bundle for a regulator (see audit/README.md).

The export first signs a fresh checkpoint (every export does, also when nothing was appended),
verifies the whole ledger up to it, then writes the selected entries as their stored canonical
bytes, every checkpoint up to it, inclusion proofs when the selection is partial, consistency
proofs from every earlier checkpoint, the key announcements, and a signed manifest.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit import schema
from audit.canonical import canonical, rfc3339
from audit.crypto import b64
from audit.db import require_schema, snapshot
from audit.errors import LedgerError
from audit.files import staged_folder
from audit.keys import load_signing_key, public_bytes
from audit.ledger import Ledger
from audit.merkle import Tree
from audit.signing import SignedCheckpoint
from audit.verify import ChainVerifier, read_checkpoints, stream_entries

FORMAT = "leadgate-export/v1"
ENTRIES_JSONL = "entries.jsonl"
ENTRIES_CSV = "entries.csv"
CSV_COLUMNS = ["seq", "entry_id", "kind", "subject", "time", "entry_hash", "canonical"]


@dataclass
class ExportResult:
    out: Path
    entries: int
    first_seq: int | None
    last_seq: int | None
    checkpoint_number: int
    tree_size: int
    complete: bool


def parse_day(text: str, *, end: bool = False) -> str:
    """A day, or an RFC 3339 time with its offset, as the ledger's time string. The end bound
    is exclusive, so that both are inclusive as given: --to 2026-11-30 takes the whole day,
    --to a time takes an entry made at that very microsecond."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return rfc3339(datetime.combine(day + timedelta(days=1) if end else day, time(),
                                            UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise LedgerError(f"not a day or a time: {text!r}",
                          fix="use YYYY-MM-DD, or a time with its offset such as "
                              "2026-11-30T17:00:00Z") from exc
    if moment.tzinfo is None:
        raise LedgerError(f"{text!r} has no time zone", fix="add Z or an offset such as +01:00")
    return rfc3339(moment + timedelta(microseconds=1) if end else moment)


def export(ledger: Ledger, out: Path, *, start: str | None = None, end: str | None = None,
           subject: str | None = None, fmt: str = "jsonl") -> ExportResult:
    if fmt not in ("jsonl", "csv"):
        raise LedgerError(f"unknown export format {fmt!r}", fix="use --format jsonl or csv")
    require_schema(ledger.engine)
    lo = parse_day(start) if start else None
    hi = parse_day(end, end=True) if end else None
    if lo is not None and hi is not None and lo >= hi:
        raise LedgerError(f"--from {start} is after --to {end}: nothing would be exported",
                          fix="swap them")
    if out.exists() and any(out.iterdir()):
        raise LedgerError("the export folder is not empty", where=str(out),
                          fix="name a new or empty folder")
    signed = ledger.checkpoint()
    key = load_signing_key(ledger.key_file())
    final = signed.statement
    size = int(final["size"])
    with snapshot(ledger.engine) as conn:
        ledger_id = conn.execute(sa.select(schema.head.c.ledger_id)).scalar_one()
        cps = read_checkpoints(conn, up_to=final["number"])
        # Verify everything up to the checkpoint while collecting the leaves for proofs.
        verifier = ChainVerifier(ledger_id, cps, keep_leaves=True)
        selected: list[tuple[Any, ...]] = []
        key_entries: list[tuple[Any, ...]] = []
        rows = stream_entries(conn)
        try:
            verifier.feed(_select(rows, size, lo, hi, subject, selected, key_entries))
        finally:
            rows.close()
        verifier.finish()
    # the keys as the chain announced them (verified above), not the key table's copy
    public_keys = [{"key": fp, "public_key": b64(public), "announced_seq": verifier.announced[fp]}
                   for fp, public in sorted(verifier.keys.items(),
                                            key=lambda item: verifier.announced[item[0]])]
    assert verifier.leaves is not None
    tree = Tree(verifier.leaves)
    complete = len(selected) == size
    with staged_folder(out, "the export") as folder:  # `out` appears once it is whole
        files: list[str] = []

        if fmt == "jsonl":
            with open(folder / ENTRIES_JSONL, "wb") as handle:
                for row in selected:
                    handle.write(bytes(row[5]) + b"\n")  # the stored bytes, exactly
            files.append(ENTRIES_JSONL)
        else:
            with open(folder / ENTRIES_CSV, "w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(CSV_COLUMNS)
                for row in selected:
                    writer.writerow([row[0], row[1], row[2], row[3] or "", row[4],
                                     bytes(row[6]).hex(), bytes(row[5]).decode("utf-8")])
            files.append(ENTRIES_CSV)

        _write_lines(folder / "checkpoints.jsonl",
                     (cp.to_file(_key_of(cp, public_keys)) for cp in cps))
        files.append("checkpoints.jsonl")
        (folder / "checkpoint.json").write_bytes(signed.to_file(public_bytes(key)))
        files.append("checkpoint.json")
        (folder / "public_keys.json").write_bytes(canonical(public_keys) + b"\n")
        files.append("public_keys.json")
        _write_lines(folder / "key_entries.jsonl", (bytes(r[5]) + b"\n" for r in key_entries))
        files.append("key_entries.jsonl")
        proof_rows = [] if complete else [
            {"seq": int(r[0]), "size": size,
             "path": [h.hex() for h in tree.inclusion_proof(int(r[0]) - 1, size)]}
            for r in _unique(selected + key_entries)]
        _write_lines(folder / "inclusion_proofs.jsonl", (canonical(p) + b"\n" for p in proof_rows))
        files.append("inclusion_proofs.jsonl")
        consistency = [
            {"from": int(cp.statement["size"]), "to": size,
             "path": [h.hex() for h in tree.consistency_proof(int(cp.statement["size"]), size)]}
            for cp in cps if 0 < int(cp.statement["size"]) < size]
        _write_lines(folder / "consistency_proofs.jsonl",
                     (canonical(p) + b"\n" for p in consistency))
        files.append("consistency_proofs.jsonl")

        first = selected[0] if selected else None
        last = selected[-1] if selected else None
        manifest = {
            "format": FORMAT, "ledger": ledger_id, "created": rfc3339(ledger.clock()),
            "selection": {"from": lo, "to": hi, "subject": subject, "format": fmt},
            "complete": complete, "entries": len(selected),
            "first": None if first is None else {"seq": int(first[0]),
                                                 "hash": bytes(first[6]).hex()},
            "last": None if last is None else {"seq": int(last[0]), "hash": bytes(last[6]).hex()},
            "checkpoint": {"number": final["number"], "size": size, "root": final["root"],
                           "digest": signed.digest.hex(), "key": final["key"]},
            "files": {name: _digest(folder / name) for name in sorted(files)},
        }
        body = canonical(manifest)
        (folder / "manifest.json").write_bytes(body + b"\n")
        # The manifest is signed too, so a regulator can trust its counts and file list.
        (folder / "manifest.sig").write_text(b64(key.sign(body)) + "\n", encoding="ascii")
    return ExportResult(out, len(selected), None if first is None else int(first[0]),
                        None if last is None else int(last[0]), int(final["number"]), size,
                        complete)


def _select(rows: Iterable[Any], size: int, lo: str | None, hi: str | None,
            subject: str | None, selected: list[tuple[Any, ...]],
            key_entries: list[tuple[Any, ...]]) -> Iterable[Any]:
    """Pass rows up to `size` to the verifier, keeping the ones the export selected."""
    for row in rows:
        if row[0] > size:
            break
        if row[2] == "key_rotation":
            key_entries.append(tuple(row))
        if ((lo is None or row[4] >= lo) and (hi is None or row[4] < hi)
                and (subject is None or row[3] == subject)):
            selected.append(tuple(row))
        yield row


def _unique(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    seen: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        seen.setdefault(int(row[0]), row)
    return [seen[k] for k in sorted(seen)]


def _key_of(cp: SignedCheckpoint, public_keys: list[dict[str, Any]]) -> bytes:
    from audit.crypto import unb64

    fp = cp.statement["key"]
    for entry in public_keys:
        if entry["key"] == fp:
            return unb64(entry["public_key"])
    raise LedgerError(f"checkpoint {cp.statement['number']} names unknown key {fp}")


def _write_lines(path: Path, lines: Iterable[bytes]) -> None:
    with open(path, "wb") as handle:
        for line in lines:
            handle.write(line)


def _digest(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def manifest_of(out: Path) -> dict[str, Any]:
    value = json.loads((out / "manifest.json").read_bytes())
    assert isinstance(value, dict)
    return value
