"""Appending to the ledger: canonical envelopes, a hash chain, one writer at a time.

An entry is the envelope

    {"chain": {"prev": HEX, "seq": N}, "id": ULID, "kind": K, "ledger": LEDGER_ID,
     "payload": {...}, "personal": null | {"alg", "ct", "nonce"}, "subject": S | null,
     "time": RFC3339, "v": 1}

serialised once to canonical JSON (RFC 8785) and stored as exactly those bytes. Its hash is the
RFC 6962 leaf hash SHA-256(0x00 || bytes); "prev" is the previous entry's hash (32 zero bytes
before the first), so the entry hashes form a chain and are also the leaves of the Merkle tree
that checkpoints sign. "chain" sorts first, so a verifier checks the link without parsing JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Connection, Engine

from audit import crypto, schema
from audit.canonical import Canonical, NotCanonical, canonical, rfc3339
from audit.db import connect, database_failure, in_lists, insert_rows, write_transaction
from audit.errors import KeyRotated, LedgerError, NotSigned
from audit.keys import (
    ensure_signing_key,
    fingerprint,
    load_signing_key,
    public_bytes,
    signing_key_path,
)
from audit.merkle import Accumulator
from audit.signing import SignedCheckpoint, rotation_statement, sign_checkpoint
from routing_core.errors import LeadgateError
from routing_core.ids import new_ulid

KINDS = frozenset({
    "decision", "writeback", "review_action", "violation", "policy_loaded", "checkpoint",
    "erasure", "key_rotation", "personal_data_access", "officer_credential",
    "officer_auth_refused", "officer_action_refused",
})
ENVELOPE_VERSION = 1
GENESIS = bytes(32)


ENTRY_COLUMNS = ("seq", "entry_id", "kind", "subject", "time", "body", "prev_hash", "entry_hash")


_SEALED_KEYS = frozenset({"alg", "ct", "nonce"})


def _envelope_bytes(prev: bytes, seq: int, entry_id: str, entry: EntryIn,
                    personal: dict[str, Any] | None, ledger_json: str,
                    time_tail: str) -> bytes | None:
    """canonical(envelope), assembled around canonical(payload): the envelope's keys are
    already in order and the fields the ledger makes need no checking. None when anything is
    unusual (the caller then canonicalises the whole envelope, naming any problem)."""
    subject = entry.subject
    if not isinstance(entry.payload, (dict, Canonical)) \
            or not (subject is None or type(subject) is str):
        return None
    try:
        payload = entry.payload if isinstance(entry.payload, Canonical) \
            else canonical(entry.payload)
        if personal is None:
            sealed = b"null"
        elif personal.keys() == _SEALED_KEYS and all(type(v) is str for v in personal.values()):
            sealed = (f'{{"alg":{encode_basestring(personal["alg"])},'
                      f'"ct":{encode_basestring(personal["ct"])},'
                      f'"nonce":{encode_basestring(personal["nonce"])}}}').encode()
        else:
            sealed = canonical(personal)
        text = (f'{{"chain":{{"prev":"{prev.hex()}","seq":{seq}}},'
                f'"id":{encode_basestring(entry_id)},"kind":{encode_basestring(entry.kind)},'
                f'"ledger":{ledger_json},"payload":')
        rest = (f',"subject":{"null" if subject is None else encode_basestring(subject)}'
                f'{time_tail}')
        return b"".join((text.encode("utf-8"), payload, b',"personal":', sealed,
                         rest.encode("utf-8")))
    except (NotCanonical, UnicodeEncodeError, TypeError):
        return None


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


@dataclass(frozen=True)
class EntryIn:
    """One entry to append. `personal` (name, email, phone...) is encrypted per subject.
    `payload` may come already encoded (`Canonical`)."""

    kind: str
    subject: str | None
    payload: dict[str, Any] | Canonical
    personal: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LedgerError(f"unknown ledger entry kind {self.kind!r}",
                              fix=f"use one of {', '.join(sorted(KINDS))}")


class Appended(NamedTuple):
    """What an append produced, per entry (a tuple: made once per entry, so kept cheap)."""

    seq: int
    entry_id: str
    kind: str
    subject: str | None
    time: str
    entry_hash: str  # hex


@dataclass
class Head:
    ledger_id: str
    size: int
    last_hash: bytes
    frontier: bytes
    checkpoints: int
    last_checkpoint_digest: bytes | None


def read_head(conn: Connection, *, for_update: bool = False) -> Head:
    query = sa.select(schema.head).where(schema.head.c.id == 1)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()  # already held inside write_transaction; harmless
    row = conn.execute(query).first()
    if row is None:
        raise LedgerError("the ledger head row is missing",
                          fix="run `leadgate db upgrade` on an empty database")
    return Head(row.ledger_id, int(row.size), bytes(row.last_hash), bytes(row.frontier),
                int(row.checkpoints),
                None if row.last_checkpoint_digest is None else bytes(row.last_checkpoint_digest))


def read_payloads(conn: Connection, kind: str, subject: str | None
                  ) -> Iterator[dict[str, Any]]:
    """The payloads of the ledger's `kind` entries about `subject` (None: about no data
    subject), newest first (the ledger's subject index finds them)."""
    e = schema.entries
    about = e.c.subject.is_(None) if subject is None else e.c.subject == subject
    for body in conn.execute(sa.select(schema.StoredBlob(e.c.body)).where(about, e.c.kind == kind)
                             .order_by(e.c.seq.desc())).scalars():
        yield json.loads(schema.stored_bytes(body))["payload"]


@dataclass
class Ledger:
    """The ledger in one database. `clock` returns the current UTC time and `new_id` a new
    entry id (a ULID); tests pin both."""

    engine: Engine
    key_path: Path | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_id: Callable[[], str] = field(default=new_ulid)

    def append(self, conn: Connection, entries: Sequence[EntryIn]) -> list[Appended]:
        """Append inside the caller's `write_transaction` (nothing lands if it rolls back)."""
        if not entries:
            return []
        head = read_head(conn, for_update=True)
        keys = self._subject_keys(conn, [e.subject for e in entries if e.personal and e.subject])
        now = rfc3339(self.clock())
        rows: list[tuple[Any, ...]] = []
        out: list[Appended] = []
        prev = head.last_hash
        seq = head.size
        acc = Accumulator.restore(head.size, head.frontier)
        ledger_json = encode_basestring(head.ledger_id)
        time_tail = f',"time":{encode_basestring(now)},"v":{ENVELOPE_VERSION}}}'
        for entry in entries:
            seq += 1
            entry_id = self.new_id()
            personal = self._seal(keys, head.ledger_id, entry)
            body = _envelope_bytes(prev, seq, entry_id, entry, personal, ledger_json, time_tail)
            if body is None:  # the general route, which also names what cannot be stored
                envelope = {
                    "chain": {"prev": prev.hex(), "seq": seq},
                    "id": entry_id,
                    "kind": entry.kind,
                    "ledger": head.ledger_id,
                    "payload": json.loads(entry.payload)
                    if isinstance(entry.payload, Canonical) else entry.payload,
                    "personal": personal,
                    "subject": entry.subject,
                    "time": now,
                    "v": ENVELOPE_VERSION,
                }
                try:
                    body = canonical(envelope)
                except NotCanonical as exc:
                    raise LedgerError(f"entry {seq} ({entry.kind}) cannot be stored: {exc}",
                                      fix="pass JSON values; amounts as strings") from exc
            digest = sha256(b"\x00" + body).digest()  # leaf_hash, inlined: hot loop
            rows.append((seq, entry_id, entry.kind, entry.subject, now, body, prev, digest))
            out.append(Appended(seq, entry_id, entry.kind, entry.subject, now, digest.hex()))
            acc.add(digest)
            prev = digest
        # Straight to the driver (binary COPY on PostgreSQL): the Core insert's per-row
        # processing would cost about as much as the hashing and encryption together.
        insert_rows(conn, schema.entries, ENTRY_COLUMNS, rows)
        conn.execute(schema.head.update().where(schema.head.c.id == 1)
                     .values(size=seq, last_hash=prev, frontier=acc.frontier()))
        return out

    # -- checkpoints and keys ------------------------------------------------------------

    def key_file(self) -> Path:
        return self.key_path if self.key_path is not None else signing_key_path()

    def current_key(self, conn: Connection) -> str | None:
        """Fingerprint of the key that signs checkpoints now (None before the first one).

        The key table is a convenience; the chain's `key_rotation` entry is the record. The
        row must match the entry it points at, so that an edited table cannot make the
        ledger sign (or export) with a key it never announced."""
        table = schema.signing_keys
        row = conn.execute(sa.select(table.c.fingerprint, table.c.public_key,
                                     table.c.announced_seq)
                           .order_by(table.c.announced_seq.desc()).limit(1)).first()
        if row is None:
            return None
        body = conn.execute(sa.select(schema.StoredBlob(schema.entries.c.body)).where(
            schema.entries.c.seq == row.announced_seq)).scalar()
        try:
            entry = json.loads(schema.stored_bytes(body)) if body is not None else {}
            payload = entry.get("payload") or {}
            announced = (entry.get("kind") == "key_rotation" and payload.get("key") ==
                         row.fingerprint == fingerprint(bytes(row.public_key)) and
                         crypto.unb64(payload.get("public_key", "")) == bytes(row.public_key))
        except (ValueError, TypeError, AttributeError):
            announced = False
        if not announced:
            raise LedgerError(
                f"the signing-key table names key {str(row.fingerprint)[:19]}..., which entry "
                f"{row.announced_seq} does not announce: the table was edited",
                where="ledger_signing_keys",
                fix="run `leadgate audit verify`, and restore the database from a backup")
        return str(row.fingerprint)

    def _register_key(self, conn: Connection, public: bytes, payload: dict[str, Any]) -> None:
        appended = self.append(conn, [EntryIn("key_rotation", None, payload)])
        conn.execute(schema.signing_keys.insert().values(
            fingerprint=fingerprint(public), public_key=public,
            announced_seq=appended[0].seq, created_at=appended[0].time))

    def check_signing_key(self) -> None:
        """Refuse now, not at the next checkpoint, a key file that is missing, unusable or not
        the ledger's key (a job would otherwise do a run's work and fail at its end). Before
        the ledger has a key there is nothing to check: the first checkpoint creates it."""
        with connect(self.engine) as conn:
            current = self.current_key(conn)
            if current is not None:
                self._ledgers_key(conn, current)

    def _ledgers_key(self, conn: Connection, current: str) -> Ed25519PrivateKey:
        path = self.key_file()
        if not path.is_file():  # never created here: a lost key is restored, not replaced
            raise LedgerError(
                f"signing key file not found (the ledger is signed with key {current[:19]}...)",
                where=str(path), fix="restore that key file from your backup and point "
                "LEADGATE_SIGNING_KEY or signing_key in leadgate.yaml at it")
        key = load_signing_key(path)
        found = fingerprint(public_bytes(key))
        if found != current:
            if conn.execute(sa.select(schema.signing_keys.c.fingerprint)
                            .where(schema.signing_keys.c.fingerprint == found)).first():
                raise KeyRotated(
                    f"the signing key file holds key {found[:19]}..., which was rotated out: "
                    f"the ledger now signs with {current[:19]}...", where=str(path),
                    fix="point LEADGATE_SIGNING_KEY or signing_key in leadgate.yaml at the new "
                    "key file")
            raise LedgerError(
                f"the signing key file holds key {found[:19]}..., but the ledger is signed "
                f"with {current[:19]}...", where=str(path),
                fix="use the ledger's key file, or rotate with `leadgate audit rotate-key`",
            )
        return key

    def checkpoint(self, conn: Connection | None = None) -> SignedCheckpoint:
        """Sign the current tree head (also when nothing was appended) and record it.

        The first checkpoint announces the key (creating the key file on first use); a key
        file that does not match the ledger's current key is refused.
        """
        if conn is None:
            with write_transaction(self.engine) as own:
                return self.checkpoint(own)
        current = self.current_key(conn)
        if current is None:
            key = load_signing_key(ensure_signing_key(self.key_file()))
            public = public_bytes(key)
            self._register_key(conn, public, {"public_key": crypto.b64(public),
                                              "key": fingerprint(public), "previous": None,
                                              "endorsement": None})
        else:
            key = self._ledgers_key(conn, current)
        head = read_head(conn)
        _check_head_before_signing(conn, head)
        number = head.checkpoints + 1
        signed = sign_checkpoint(
            key, ledger_id=head.ledger_id, number=number, size=head.size,
            root=Accumulator.restore(head.size, head.frontier).root(),
            last_hash=head.last_hash, time=rfc3339(self.clock()),
            prev=head.last_checkpoint_digest,
        )
        statement = signed.statement
        conn.execute(schema.checkpoints.insert().values(
            number=number, size=head.size, time=statement["time"],
            key_fingerprint=statement["key"], body=signed.body, signature=signed.signature))
        conn.execute(schema.head.update().where(schema.head.c.id == 1).values(
            checkpoints=number, last_checkpoint_digest=signed.digest))
        # The checkpoint is also an entry, so removing a checkpoint row breaks the chain's story.
        self.append(conn, [EntryIn("checkpoint", None, {
            "number": number, "size": head.size, "root": statement["root"],
            "digest": signed.digest.hex()})])
        return signed

    def checkpoint_file(self, signed: SignedCheckpoint) -> bytes:
        """`signed` as the file `audit verify --prior-checkpoint` reads, with its key's public
        half: kept outside the database, it is what a later deletion cannot rewrite."""
        keys = schema.signing_keys
        with connect(self.engine) as conn:
            public = conn.execute(sa.select(keys.c.public_key).where(
                keys.c.fingerprint == signed.statement["key"])).scalar_one()
        return signed.to_file(bytes(public))

    def checkpoint_recorded(self, done: str) -> SignedCheckpoint:
        """`checkpoint()` right after a command committed an officer's or a privacy action, so
        that deleting the action later breaks verification against a signed checkpoint, not
        only against the head row. `done` is what the command did: the entries stand whatever
        happens here, so a failure (NotSigned, exit 1) says they are recorded and how to sign."""
        try:
            return self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the action is recorded
            cause = _as_error(exc, self.engine)
            then = f"{cause.fix}; then run" if cause.fix else "run"
            raise NotSigned(
                f"{done}; but no checkpoint was signed over it ({cause.message})",
                where=cause.where,
                fix=f"{then} `leadgate audit checkpoint` (a sync run signs one too); the action "
                    "stands, do not repeat it") from exc

    def rotate_key(self, new_key_path: str | Path) -> str:
        """Announce a new signing key in an entry endorsed by the current key; returns its
        fingerprint. Later checkpoints must be signed with the new key."""
        new_path = ensure_signing_key(new_key_path)
        new_key = load_signing_key(new_path)
        new_public = public_bytes(new_key)
        with write_transaction(self.engine) as conn:
            current = self.current_key(conn)
            old_key = load_signing_key(self.key_file())
            old_public = public_bytes(old_key)
            if current is None or fingerprint(old_public) != current:
                raise LedgerError("the current key file does not hold the ledger's signing key",
                                  where=str(self.key_file()),
                                  fix="pass the key file that signed the last checkpoint")
            if fingerprint(new_public) == current:
                raise LedgerError("the new key is the current key", where=str(new_path),
                                  fix="name a new key file (it is created if missing)")
            ledger_id = read_head(conn).ledger_id
            endorsement = old_key.sign(rotation_statement(ledger_id, new_public))
            self._register_key(conn, new_public, {
                "public_key": crypto.b64(new_public), "key": fingerprint(new_public),
                "previous": current, "endorsement": crypto.b64(endorsement)})
            self.key_path = Path(new_path)
            self.checkpoint(conn)
        return fingerprint(new_public)

    def verify(self, prior_checkpoint: bytes | None = None) -> Any:
        """Verify the whole ledger; returns a Report or raises VerificationFailed."""
        return verify(self.engine, prior_checkpoint)

    def append_batch(self, entries: Sequence[EntryIn]) -> list[Appended]:
        """Append in a transaction of its own."""
        with write_transaction(self.engine) as conn:
            return self.append(conn, entries)

    def _subject_keys(self, conn: Connection, subjects: list[str]) -> dict[str, bytes | None]:
        """Each subject's key (None once erased), creating keys for new subjects."""
        if not subjects:
            return {}
        wanted = sorted(set(subjects))
        table = schema.subject_keys
        found: dict[str, bytes | None] = {}
        for chunk in in_lists(conn, wanted):
            for row in conn.execute(sa.select(table.c.subject, table.c.key)
                                    .where(table.c.subject.in_(chunk))):
                found[row.subject] = None if row.key is None else bytes(row.key)
        new = [s for s in wanted if s not in found]
        if new:
            now = rfc3339(self.clock())
            fresh = {s: crypto.new_key() for s in new}
            insert_rows(conn, table, ("subject", "key", "created_at"),
                        [(s, k, now) for s, k in fresh.items()])
            found.update(fresh)
        return found

    @staticmethod
    def _seal(keys: dict[str, bytes | None], ledger_id: str,
              entry: EntryIn) -> dict[str, Any] | None:
        if not entry.personal:
            return None
        if entry.subject is None:
            raise LedgerError("personal data needs a subject to be encrypted for",
                              fix="set EntryIn.subject to 'source:record_id'")
        key = keys[entry.subject]
        if key is None:  # the subject was erased: never store their data again
            return {"withheld": "subject erased"}
        return crypto.seal(key, ledger_id, entry.subject, entry.personal)


def verify(engine: Engine, prior_checkpoint: bytes | None = None) -> Any:
    """The whole ledger (see audit.verify.verify_database)."""
    from audit.verify import verify_database

    return verify_database(engine, prior_checkpoint=prior_checkpoint)


def _as_error(exc: Exception, engine: Engine) -> LeadgateError:
    """`exc` as a one-line error: a database failure without its SQL or secrets; a bug by
    its type and first line (the traceback stays on the exception's chain)."""
    if isinstance(exc, LeadgateError):
        return exc
    failure = database_failure(exc, engine)
    if failure is not None:
        return failure
    lines = str(exc).strip().splitlines()
    return LeadgateError(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)


def _check_head_before_signing(conn: Connection, head: Head) -> None:
    """What a checkpoint signs must be the chain's, not an edited head row's: its count and
    last digest are the last checkpoint row's, its last hash the last entry's. (The frontier
    can only be checked against every entry: `audit verify` does that.)"""
    last = conn.execute(sa.select(schema.checkpoints.c.number,
                                  schema.StoredBlob(schema.checkpoints.c.body).label("body"))
                        .order_by(schema.checkpoints.c.number.desc()).limit(1)).first()
    digest = sha256(schema.stored_bytes(last.body)).digest() if last is not None else None
    entry = conn.execute(sa.select(schema.entries.c.seq, schema.entries.c.entry_hash)
                         .order_by(schema.entries.c.seq.desc()).limit(1)).first()
    if (head.checkpoints != (last.number if last is not None else 0)
            or head.last_checkpoint_digest != digest
            or (entry is None and head.size != 0)
            or (entry is not None and (entry.seq != head.size
                                       or bytes(entry.entry_hash) != head.last_hash))):
        raise LedgerError("the ledger head does not match its last entry or checkpoint, so "
                          "no checkpoint was signed", where="ledger_head",
                          fix="run `leadgate audit verify` and restore the database from a "
                          "backup that verifies")
