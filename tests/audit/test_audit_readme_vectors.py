"""The test vectors in audit/README.md are generated here, and checked on every run.

Regenerate after a deliberate format change with LEADGATE_REGEN_VECTORS=1.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import db
from audit.keys import fingerprint, public_bytes
from audit.ledger import EntryIn, Ledger
from audit.merkle import Tree, verify_consistency, verify_inclusion
from audit.signing import verify_signature
from audit.verify import verify_database

README = Path(__file__).resolve().parents[2] / "audit" / "README.md"
BEGIN, END = "<!-- test-vectors:begin -->", "<!-- test-vectors:end -->"


def generate(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'vectors.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_head SET ledger_id = 'test-vectors-ledger'"))
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    key_file = tmp_path / "vectors.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    ids = (f"01JD000000000000000000000{n}" for n in itertools.count(1))
    times = (datetime(2026, 11, 24, 10, 15, tzinfo=UTC) + timedelta(seconds=n)
             for n in itertools.count())
    ledger = Ledger(engine, key_path=key_file, clock=times.__next__, new_id=ids.__next__)
    ledger.append_batch([
        EntryIn("policy_loaded", None, {"policy": {"id": "northwind-routing",
                                                   "version": "2026.11.2"}}),
        EntryIn("decision", "salesforce:00Q1", {"outcome": "assigned", "rep": {"id": "alice"},
                                                "best_score": 0.41}),
        EntryIn("writeback", "salesforce:00Q1", {"status": "ok"}),
    ])
    signed = ledger.checkpoint()
    report = verify_database(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT seq, body, entry_hash FROM ledger_entries "
                                    "ORDER BY seq")).all()
    engine.dispose()
    leaves = [bytes(r[2]) for r in rows]
    tree = Tree(leaves)
    public = public_bytes(key)
    inclusion = tree.inclusion_proof(1, 4)
    consistency = tree.consistency_proof(3, 5)
    assert verify_inclusion(leaves[1], 1, 4, inclusion, tree.root(4))
    assert verify_consistency(3, 5, tree.root(3), tree.root(5), consistency)
    assert verify_signature(public, signed.body, signed.signature)
    lines = [
        "Ed25519 private key (seed): `000102...1f` (bytes 0..31); public key "
        f"`{public.hex()}`, fingerprint `{fingerprint(public)}`.",
        "Ledger id `test-vectors-ledger`; times from 2026-11-24T10:15:00Z, one second apart.",
        "",
    ]
    for seq, body, digest in rows:
        lines += [f"Entry {seq}: hash `{bytes(digest).hex()}`", "", "```json",
                  bytes(body).decode(), "```", ""]
    assert tree.root(5).hex() == report.root
    lines += [
        f"Merkle roots: size 3 `{tree.root(3).hex()}`, size 4 `{tree.root(4).hex()}`, "
        f"size 5 `{tree.root(5).hex()}` (the root `audit verify` reports for this ledger).",
        "",
        "Inclusion proof of entry 2 (index 1) in the tree of size 4: "
        + ", ".join(f"`{h.hex()}`" for h in inclusion) + ".",
        "",
        "Consistency proof from size 3 to size 5: "
        + ", ".join(f"`{h.hex()}`" for h in consistency) + ".",
        "",
        "Checkpoint 1 statement (signed bytes):",
        "", "```json", signed.body.decode(), "```", "",
        f"Its SHA-256 digest `{signed.digest.hex()}`; Ed25519 signature "
        f"`{signed.signature.hex()}`.",
    ]
    return "\n".join(lines)


def test_readme_vectors_are_current(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    vectors = generate(tmp_path)
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    if os.environ.get("LEADGATE_REGEN_VECTORS"):
        README.write_text(text[:start] + "\n" + vectors + "\n" + text[end:], encoding="utf-8")
        text = README.read_text(encoding="utf-8")
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    assert text[start:end].strip() == vectors.strip(), \
        "audit/README.md test vectors are stale: run with LEADGATE_REGEN_VECTORS=1"
