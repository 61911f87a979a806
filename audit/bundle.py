"""Offline verification of an export bundle: no database, only the files (audit/README.md)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from audit.crypto import b64, unb64
from audit.errors import LedgerError, VerificationFailed
from audit.export import CSV_COLUMNS, ENTRIES_CSV, ENTRIES_JSONL, FORMAT
from audit.keys import fingerprint
from audit.merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from audit.signing import SignedCheckpoint, parse_checkpoint_file, verify_signature
from audit.verify import ChainVerifier, Report, fail

REQUIRED = ["manifest.json", "manifest.sig", "checkpoint.json", "checkpoints.jsonl",
            "public_keys.json", "key_entries.jsonl", "inclusion_proofs.jsonl",
            "consistency_proofs.jsonl"]


def _read(folder: Path, name: str) -> bytes:
    path = folder / name
    if not path.is_file():
        raise LedgerError(f"the bundle has no {name}", where=str(folder),
                          fix="copy the whole export folder: every file it was written with "
                              "is needed to verify it")
    return path.read_bytes()


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line]


def _entries(folder: Path, fmt: str) -> list[tuple[int, bytes, dict[str, Any]]]:
    """(seq, stored bytes, envelope) per exported entry."""
    out: list[tuple[int, bytes, dict[str, Any]]] = []
    if fmt == "csv":
        text = _read(folder, ENTRIES_CSV).decode("utf-8")
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header != CSV_COLUMNS:
            raise fail(f"{ENTRIES_CSV} does not have the columns {','.join(CSV_COLUMNS)}")
        for number, row in enumerate(reader, start=1):
            if len(row) != len(CSV_COLUMNS):
                raise VerificationFailed(f"expected {len(CSV_COLUMNS)} columns, found {len(row)}",
                                         where=f"{ENTRIES_CSV} row {number}")
            body = row[6].encode("utf-8")
            env = _envelope(body, f"{ENTRIES_CSV} row {number}")
            seq = env["chain"]["seq"]
            if hashlib.sha256(b"\x00" + body).hexdigest() != row[5]:
                raise fail(f"{ENTRIES_CSV}: the canonical bytes no longer hash to the entry_hash "
                           "column (the entry or its hash was altered)", seq)
            # the other columns are conveniences: each must say what the hashed bytes say
            said = [str(seq), env.get("id"), env.get("kind"), env.get("subject") or "",
                    env.get("time")]
            for name, column, value in zip(CSV_COLUMNS, row, said, strict=False):
                if column != value:
                    raise fail(f"{ENTRIES_CSV}: the {name} column of entry {seq} disagrees "
                               "with its hashed bytes (the column was edited)", seq)
            out.append((seq, body, env))
    else:
        data = _read(folder, ENTRIES_JSONL)
        if b"\r\n" in data:  # converted in transfer: every entry's hashed bytes changed
            raise VerificationFailed("the file has Windows line ends (\\r\\n): it was "
                                     "converted in transfer, so no entry's bytes are as signed "
                                     "(convert its line ends back to \\n and verify again)",
                                     where=ENTRIES_JSONL)
        for number, body in enumerate(_lines(data), start=1):
            env = _envelope(body, f"{ENTRIES_JSONL} line {number}")
            out.append((env["chain"]["seq"], body, env))
    return out


def _envelope(body: bytes, where: str) -> dict[str, Any]:
    try:
        env = json.loads(body)
        if not isinstance(env["chain"]["seq"], int):
            raise TypeError("seq")
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed("not a ledger entry (edited or corrupted)", where=where) from exc
    assert isinstance(env, dict)
    return env


def verify_bundle(folder: Path, *, prior_checkpoint: bytes | None = None) -> Report:
    """Verify an export bundle offline; raises VerificationFailed (or LedgerError for a folder
    that is not there or misses a file). A file that cannot be read as leadgate writes it
    (not JSON, a key missing, bytes that are not text) fails as such, naming the file whose
    digest differs from the signed manifest when one does, never with a traceback."""
    try:
        return _verify_bundle(folder, prior_checkpoint=prior_checkpoint)
    except (VerificationFailed, LedgerError):
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        listed = _listed_files(folder)
        if listed is None:
            raise VerificationFailed("not leadgate's manifest (not JSON, or no file list): it "
                                     "was corrupted or edited",
                                     where=str(folder / "manifest.json")) from exc
        changed = _changed_files(folder, listed)
        if changed:
            raise VerificationFailed("the file was changed after export (digest differs from "
                                     "the signed manifest)", where=str(folder / changed[0])
                                     ) from exc
        raise VerificationFailed(
            f"the bundle cannot be read as leadgate writes it ({type(exc).__name__}: "
            f"{str(exc)[:120]}): a file was corrupted or edited", where=str(folder)) from exc


def _file_digests(manifest: dict[str, Any]) -> dict[str, str]:
    """The manifest's {file: sha256}."""
    return {str(name): str(want["sha256"]) for name, want in manifest["files"].items()}


def _listed_files(folder: Path) -> dict[str, str] | None:
    """The manifest's {file: sha256} read from disk, or None when it cannot be read as such."""
    try:
        return _file_digests(json.loads((folder / "manifest.json").read_bytes()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _changed_files(folder: Path, listed: dict[str, str]) -> list[str]:
    """The bundle's files whose digest is not the manifest's (a missing one: LedgerError)."""
    return [name for name, digest in listed.items()
            if hashlib.sha256(_read(folder, name)).hexdigest() != digest]


def _verify_bundle(folder: Path, *, prior_checkpoint: bytes | None) -> Report:
    if not folder.is_dir():
        raise LedgerError("no such export folder", where=str(folder),
                          fix="pass the folder `leadgate audit export --out` wrote")
    blobs = {name: _read(folder, name) for name in REQUIRED}
    manifest_body = blobs["manifest.json"].rstrip(b"\n")
    manifest = json.loads(manifest_body)
    if manifest.get("format") != FORMAT:
        raise fail(f"manifest.json is not a {FORMAT} manifest")
    ledger_id = manifest["ledger"]
    fmt = manifest["selection"]["format"]
    final, final_key = parse_checkpoint_file(blobs["checkpoint.json"])
    cps: list[SignedCheckpoint] = []
    embedded: list[bytes] = []  # each checkpoint file's own copy of its public key
    lines = _lines(blobs["checkpoints.jsonl"])
    for line in lines:
        cp, public = parse_checkpoint_file(line)
        cps.append(cp)
        embedded.append(public)
    if not cps or lines[-1] != blobs["checkpoint.json"].rstrip(b"\n"):
        raise fail("checkpoint.json is not the last line of checkpoints.jsonl")
    st = final.statement
    size, root = int(st["size"]), bytes.fromhex(st["root"])
    entries = _entries(folder, fmt)

    if manifest["complete"]:
        _missing_or_repeated(entries)
        verifier = ChainVerifier(ledger_id, cps, keep_leaves=True)
        # A complete bundle holds entries 1..N in order: an entry's place in the file is its
        # seq, so a swapped pair is reported as reordered, not as one missing
        verifier.feed((position, env["id"], env["kind"], env["subject"], env["time"], body,
                       hashlib.sha256(b"\x00" + body).digest())
                      for position, (_seq, body, env) in enumerate(entries, start=1))
        report = verifier.finish()
        if report.entries != size:
            raise fail(f"the bundle holds {report.entries} entries but checkpoint "
                       f"{st['number']} covers {size}: entries were removed", report.entries + 1)
        assert verifier.leaves is not None
        tree: Tree | None = Tree(verifier.leaves)
        keys, announced = verifier.keys, verifier.announced
    else:
        tree = None
        report, keys, announced = _verify_partial(blobs, ledger_id, cps, entries, size, root)

    # Every earlier checkpoint is consistent with the final one (RFC 6962 proofs).
    proofs = {int(p["from"]): [bytes.fromhex(h) for h in p["path"]]
              for p in map(json.loads, _lines(blobs["consistency_proofs.jsonl"]))}
    for cp in cps[:-1]:
        old = cp.statement
        path = proofs.get(int(old["size"]))
        if path is None or not verify_consistency(int(old["size"]), size,
                                                  bytes.fromhex(old["root"]), root, path):
            raise fail(f"checkpoint {old['number']} is not consistent with checkpoint "
                       f"{st['number']} (consistency proof missing or wrong)")

    # every copy of a public key in the bundle must be the key the chain announced
    for cp, public in zip(cps, embedded, strict=True):
        if keys.get(str(cp.statement.get("key"))) != public:
            raise fail(f"checkpoints.jsonl: checkpoint {cp.statement.get('number')} carries a "
                       "public key that is not the one the ledger announced for it")
    listed = json.loads(blobs["public_keys.json"])
    if listed != [{"announced_seq": announced[fp], "key": fp, "public_key": b64(public)}
                  for fp, public in sorted(keys.items(), key=lambda kv: announced[kv[0]])]:
        raise fail("public_keys.json does not list the keys the ledger announced")
    if fingerprint(final_key) != st["key"] or keys.get(st["key"]) != final_key:
        raise fail(f"checkpoint.json: its public key is not the key that signed checkpoint "
                   f"{st['number']} (the file was changed after export)")
    if not verify_signature(final_key, manifest_body, unb64(_read(folder, "manifest.sig")
                                                               .decode("ascii").strip())):
        raise fail("manifest.sig does not verify: the manifest was changed after export")
    if manifest["checkpoint"]["digest"] != final.digest.hex():
        raise fail("the manifest does not describe this bundle's checkpoint")
    if manifest["entries"] != len(entries):
        raise fail(f"the bundle holds {len(entries)} entries but its signed manifest lists "
                   f"{manifest['entries']}: entries were removed or added after export")
    _check_selection(manifest, entries)
    changed = _changed_files(folder, _file_digests(manifest))
    if changed:
        raise VerificationFailed("the file was changed after export (digest differs from "
                                 "the signed manifest)", where=str(folder / changed[0]))

    if prior_checkpoint is not None:
        report.prior = _check_prior(prior_checkpoint, ledger_id, keys, size, root, proofs, tree)
    report.entries = len(entries)
    if entries:
        report.first_seq, report.last_seq = entries[0][0], entries[-1][0]
    return report


def _missing_or_repeated(entries: list[tuple[int, bytes, dict[str, Any]]]) -> None:
    """A complete bundle's line is its entry: a line removed, or the same line twice, is said
    as such (the chain walk would see the next entry in its place, "reordered")."""
    seen: dict[int, bytes] = {}
    for seq, body, _ in entries:
        if seen.get(seq) == body:
            raise fail(f"entry {seq} appears twice in the bundle (a line was duplicated)", seq)
        seen.setdefault(seq, body)
    if len(seen) == len(entries) and entries:
        missing = sorted(set(range(1, max(seen) + 1)) - set(seen))
        if missing:
            raise fail(f"entry {missing[0]} is missing from the bundle (its line was removed)",
                       missing[0])


def _check_selection(manifest: dict[str, Any],
                     entries: list[tuple[int, bytes, dict[str, Any]]]) -> None:
    """The signed manifest says what was selected (`from` inclusive, `to` exclusive, as
    ledger time strings; `subject`) and which entries come first and last: the entries must be
    those, or the bundle says something of itself that is not so."""
    selection = manifest["selection"]
    lo, hi, subject = selection["from"], selection["to"], selection["subject"]
    for seq, _, env in entries:
        time = str(env.get("time"))
        if (lo is not None and time < lo) or (hi is not None and time >= hi) or (
                subject is not None and env.get("subject") != subject):
            raise fail(f"entry {seq} is outside the selection the manifest signs "
                       f"(from {lo}, to {hi}, subject {subject})", seq)

    def end(entry: tuple[int, bytes, dict[str, Any]] | None) -> dict[str, Any] | None:
        return None if entry is None else {"hash": leaf_hash(entry[1]).hex(), "seq": entry[0]}

    if manifest["first"] != end(entries[0] if entries else None) or manifest["last"] != end(
            entries[-1] if entries else None):
        raise fail("the manifest's first or last entry is not the bundle's")


def _verify_partial(blobs: dict[str, bytes], ledger_id: str, cps: list[SignedCheckpoint],
                    entries: list[tuple[int, bytes, dict[str, Any]]], size: int,
                    root: bytes) -> tuple[Report, dict[str, bytes], dict[str, int]]:
    proofs = {int(p["seq"]): [bytes.fromhex(h) for h in p["path"]]
              for p in map(json.loads, _lines(blobs["inclusion_proofs.jsonl"]))}

    def included(seq: int, body: bytes) -> bytes:
        digest = hashlib.sha256(b"\x00" + body).digest()
        path = proofs.get(seq)
        if path is None or not verify_inclusion(digest, seq - 1, size, path, root):
            raise fail(f"entry {seq} is not in the tree checkpoint {len(cps)} signed: the entry "
                       "or its inclusion proof was altered", seq)
        return digest

    checker = ChainVerifier(ledger_id, cps)  # validates the checkpoints' own chain
    key_seqs: list[tuple[int, str]] = []
    for body in _lines(blobs["key_entries.jsonl"]):
        env = _envelope(body, "key_entries.jsonl")
        seq = env["chain"]["seq"]
        included(seq, body)
        if env.get("kind") != "key_rotation" or env.get("ledger") != ledger_id:
            raise fail("key_entries.jsonl holds an entry that is not a key rotation", seq)
        checker._key_rotation(seq, env["payload"])
        key_seqs.append((seq, str(checker.current_key)))
    for cp in cps:
        st = cp.statement
        current = [fp for seq, fp in key_seqs if seq <= int(st["size"])]
        if not current or current[-1] != st["key"]:
            raise fail(f"checkpoint {st['number']} is signed by a key that was not the ledger's "
                       "current key")
        if not verify_signature(checker.keys[st["key"]], cp.body, cp.signature):
            raise fail(f"checkpoint {st['number']}: the signature does not verify")
    previous: tuple[int, bytes] | None = None
    kinds: dict[str, int] = {}
    for seq, body, env in entries:
        digest = included(seq, body)
        if env.get("ledger") != ledger_id:
            raise fail(f"entry {seq} belongs to another ledger", seq)
        if previous is not None:
            if seq <= previous[0]:
                raise fail(f"entry {seq} comes after entry {previous[0]}: reordered", seq)
            if seq == previous[0] + 1 and env["chain"]["prev"] != previous[1].hex():
                raise fail(f"entry {seq} does not link to entry {previous[0]}", seq)
        kinds[env["kind"]] = kinds.get(env["kind"], 0) + 1
        previous = (seq, digest)
    report = Report(entries=len(entries), checkpoints=len(cps), keys=list(checker.keys),
                    kinds=kinds, root=root.hex(),
                    last_hash=previous[1].hex() if previous else "",
                    ledger_id=ledger_id, signed_size=size)
    return report, checker.keys, checker.announced


def _check_prior(data: bytes, ledger_id: str, keys: dict[str, bytes], size: int, root: bytes,
                 proofs: dict[int, list[bytes]], tree: Tree | None) -> str:
    try:
        cp, public = parse_checkpoint_file(data)
        st = cp.statement
        old_size, old_root = int(st["size"]), bytes.fromhex(st["root"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"not a leadgate checkpoint file ({exc})",
                                 where="--prior-checkpoint") from exc
    if st.get("ledger") != ledger_id:
        raise fail(f"the prior checkpoint is of ledger {st.get('ledger')}, not {ledger_id}")
    if fingerprint(public) != st.get("key") or not verify_signature(public, cp.body,
                                                                       cp.signature):
        raise fail("the prior checkpoint's signature does not verify")
    if st["key"] not in keys:
        raise fail("the prior checkpoint is signed by a key this ledger never announced: its "
                   "history was replaced")
    if old_size > size:
        raise fail(f"the bundle's ledger has {size} entries but prior checkpoint {st['number']} "
                   f"covered {old_size}: the tail was truncated", size + 1)
    if old_size == size:
        path: list[bytes] = []
    elif tree is not None:
        path = tree.consistency_proof(old_size, size)
    elif old_size in proofs:
        path = proofs[old_size]
    else:
        raise fail(f"the bundle has no consistency proof from size {old_size}")
    if not verify_consistency(old_size, size, old_root, root, path):
        raise fail(f"the ledger does not extend prior checkpoint {st['number']} (size {old_size}):"
                   " history up to it was rewritten")
    return f"extends prior checkpoint {st['number']} (size {old_size}, consistency proof verified)"
