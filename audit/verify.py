"""Verification of the whole ledger: hash chain, Merkle roots, checkpoint signatures, keys.

The per-entry loop is the hot path (1,000,000 entries should verify in seconds): it hashes the
stored bytes, compares the fixed-position chain prefix and the column values with one
`startswith`/`endswith` each, and folds the hash into the Merkle accumulator. JSON is parsed
only for key rotations, checkpoint entries and to explain a failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from audit.crypto import unb64
from audit.db import SQLITE_MMAP
from audit.errors import VerificationFailed
from audit.keys import fingerprint
from audit.merkle import Accumulator, Tree, verify_consistency
from audit.schema import entries_sql, stored_bytes
from audit.signing import (
    CHECKPOINT_TYPE,
    SignedCheckpoint,
    rotation_statement,
    verify_signature,
)

GENESIS = bytes(32)
# (seq, entry_id, kind, subject, time, body, stored entry hash)
Row = tuple[int, str, str, "str | None", str, bytes, bytes]


@dataclass
class Report:
    entries: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str = ""
    root: str = ""
    checkpoints: int = 0
    keys: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    prior: str | None = None
    ledger_id: str = ""
    #: entries 1..signed_size are under the last signed checkpoint (0: there is none)
    signed_size: int = 0

    def summary(self) -> str:
        """The verdict, then what a regulator compares with values received over a trusted
        channel (ledger id, key fingerprints), then any entries no signature covers yet."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items()))
        text = (f"ok: {self.entries} entries ({kinds or 'none'}), seq {self.first_seq}.."
                f"{self.last_seq}, {self.checkpoints} checkpoints with valid signatures, "
                f"{len(self.keys)} signing key(s); root {self.root[:16]}...")
        if self.prior:
            text += f"; {self.prior}"
        text += (f"\nledger {self.ledger_id}; signing key fingerprint(s), first to current: "
                 f"{', '.join(self.keys) or 'none'}")
        if self.last_seq > self.signed_size:
            first = self.signed_size + 1
            span = f"entry {first} is" if first == self.last_seq else \
                f"entries {first}..{self.last_seq} are"
            text += (f"\n{span} after the last signed checkpoint" if self.signed_size else
                     f"\n{span} not covered by a signed checkpoint (there is none yet)")
        return text


def fail(message: str, seq: int | None = None) -> VerificationFailed:
    where = f"entry {seq}" if seq is not None else None
    return VerificationFailed(message, seq=seq, where=where)


def joined(prefix: list[bytes], before: int, stack: list[bytes], count: int) -> list[bytes]:
    """The tree's stack of perfect subtrees at size before + count, from its stack at `before`
    and the stack of the `count` leaves after it, folded on their own (an aligned range: no
    subtree of theirs is larger than the smallest before them). Equal neighbours merge: two
    ranges of 128 after nothing are one subtree of 256, not two side by side."""
    nodes = list(zip(_subtree_sizes(before), prefix, strict=True))
    for size, digest in zip(_subtree_sizes(count), stack, strict=True):
        nodes.append((size, digest))
        while len(nodes) > 1 and nodes[-1][0] == nodes[-2][0]:
            (size, right), (_, left) = nodes.pop(), nodes.pop()
            nodes.append((2 * size, hashlib.sha256(b"\x01" + left + right).digest()))
    return [digest for _, digest in nodes]


def _subtree_sizes(n: int) -> list[int]:
    """The sizes of the perfect subtrees of a tree of n leaves, left to right."""
    return [1 << bit for bit in reversed(range(n.bit_length())) if n >> bit & 1]


class ChainVerifier:
    """Feeds on rows in sequence order; checks checkpoints as the tree reaches their sizes."""

    def __init__(self, ledger_id: str, checkpoints: list[SignedCheckpoint], *,
                 keep_leaves: bool = False) -> None:
        self.ledger_id = ledger_id
        self.report = Report(first_seq=1)
        self.next_seq = 1
        self.prev = GENESIS
        self.size = 0
        self.stack: list[bytes] = []
        self.leaves: list[bytes] | None = [] if keep_leaves else None
        self.kinds: dict[str, int] = {}
        self.keys: dict[str, bytes] = {}  # fingerprint -> public key, as announced in order
        self.announced: dict[str, int] = {}  # fingerprint -> seq of its key_rotation entry
        self.current_key: str | None = None
        self.last_good_checkpoint_size = 0
        self.checkpoints = checkpoints
        self.by_size: dict[int, list[tuple[dict[str, Any], SignedCheckpoint]]] = {}
        self.by_number: dict[int, SignedCheckpoint] = {}
        self.recorded: set[int] = set()  # checkpoints whose own `checkpoint` entry was seen
        self._index_checkpoints()

    # -- checkpoints table on its own -------------------------------------------------

    def _index_checkpoints(self) -> None:
        prev_digest: bytes | None = None
        prev_size = -1
        for expected, cp in enumerate(self.checkpoints, start=1):
            try:
                st = cp.statement
            except ValueError as exc:
                raise fail(f"checkpoint {expected} is not valid JSON") from exc
            number = st.get("number")
            if number != expected:
                raise fail(f"checkpoint {expected} is missing (found number {number} next)")
            if st.get("type") != CHECKPOINT_TYPE or st.get("ledger") != self.ledger_id:
                raise fail(f"checkpoint {number} is not a checkpoint of ledger {self.ledger_id}")
            want_prev = None if prev_digest is None else prev_digest.hex()
            if st.get("prev") != want_prev:
                raise fail(f"checkpoint {number} does not chain to checkpoint {number - 1} "
                           "(a checkpoint was removed, replaced or reordered)")
            if not isinstance(st.get("size"), int) or st["size"] <= prev_size:
                raise fail(f"checkpoint {number} covers {st.get('size')} entries, not more than "
                           f"checkpoint {number - 1}")
            prev_size = st["size"]
            prev_digest = cp.digest
            self.by_size.setdefault(st["size"], []).append((st, cp))
            self.by_number[number] = cp

    # -- the hot loop ---------------------------------------------------------------------

    def feed(self, rows: Iterable[Row]) -> None:
        sha = hashlib.sha256
        expected = self.next_seq
        prev = self.prev
        size = self.size
        stack = self.stack
        leaves = self.leaves
        kinds = self.kinds
        ledger = self.ledger_id
        by_size = self.by_size
        for seq, entry_id, kind, subject, time, body, stored in rows:
            if seq != expected:
                self._sync(expected, prev, size)
                self._bad_position(seq, expected)
            if body.__class__ is not bytes:  # an edited row: TEXT, NULL (see audit.schema)
                body = stored_bytes(body)
            digest = sha(b"\x00" + body).digest()
            if digest != stored:
                raise fail("the stored entry hash does not match the entry's bytes "
                           "(the entry or its hash was altered)", seq)
            head = (f'{{"chain":{{"prev":"{prev.hex()}","seq":{seq}}},"id":"{entry_id}",'
                    f'"kind":"{kind}","ledger":"{ledger}","payload":').encode()
            subj = "null" if subject is None else encode_basestring(subject)
            tail = f',"subject":{subj},"time":"{time}","v":1}}'.encode()
            if not (body.startswith(head) and body.endswith(tail)):
                self._sync(expected, prev, size)
                self._diagnose(seq, entry_id, kind, subject, time, body)
            if kind in ("key_rotation", "checkpoint"):
                self._special(seq, kind, body)
            kinds[kind] = kinds.get(kind, 0) + 1
            stack.append(digest)
            n = size
            while n & 1:
                right = stack.pop()
                stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
                n >>= 1
            size += 1
            if leaves is not None:
                leaves.append(digest)
            prev = digest
            expected += 1
            if size in by_size:
                self._sync(expected, prev, size)
                self._check_checkpoints(size)
        self._sync(expected, prev, size)

    def feed_checked(self, leaves: bytes, specials: list[tuple[int, str, bytes]],
                     kinds: dict[str, int]) -> None:
        """Leaves whose per-entry checks were done elsewhere (audit.verify_parallel): only the
        Merkle tree, key announcements and checkpoints are left to do, in order."""
        sha = hashlib.sha256
        stack = self.stack
        size = self.size
        by_size = self.by_size
        pending = iter(specials)
        special = next(pending, None)
        for offset in range(0, len(leaves), 32):
            digest = leaves[offset:offset + 32]
            seq = size + 1
            if special is not None and special[0] == seq:
                self._sync(seq, self.prev, size)
                self._special(seq, special[1], special[2])
                special = next(pending, None)
            stack.append(digest)
            n = size
            while n & 1:
                right = stack.pop()
                stack[-1] = sha(b"\x01" + stack[-1] + right).digest()
                n >>= 1
            size += 1
            self.prev = digest
            if size in by_size:
                self._sync(size + 1, digest, size)
                self._check_checkpoints(size)
            if self.leaves is not None:
                self.leaves.append(digest)
        self._sync(size + 1, self.prev, size)
        for kind, n in kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n

    def feed_aligned(self, chunk: Any) -> None:
        """An aligned range checked by a worker (audit.verify_parallel.Chunk), which also
        folded its entry hashes into subtrees of their own: only key announcements and
        checkpoints are left to do, in order."""
        prefix, before = self.stack, chunk.lo - 1
        events: list[tuple[int, int, Any]] = [(seq, 0, (kind, body))
                                              for seq, kind, body in chunk.specials]
        events += [(size, 1, None) for size in self.by_size if chunk.lo <= size <= chunk.hi]
        events.sort(key=lambda e: (e[0], e[1]))
        for position, what, special in events:
            if what == 0:  # before its own leaf, as in feed()
                self._special(position, special[0], special[1])
            else:
                stack, digest = chunk.stacks[position]
                self.stack = joined(prefix, before, stack, position - before)
                self._sync(position + 1, digest, position)
                self._check_checkpoints(position)
        self.stack = joined(prefix, before, chunk.stack, chunk.hi - before)
        self._sync(chunk.hi + 1, chunk.last_hash, chunk.hi)
        if self.leaves is not None:
            leaves = chunk.leaves
            self.leaves.extend(leaves[i:i + 32] for i in range(0, len(leaves), 32))
        for kind, n in chunk.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n

    def _sync(self, expected: int, prev: bytes, size: int) -> None:
        self.next_seq, self.prev, self.size = expected, prev, size

    def root(self) -> bytes:
        if not self.stack:
            return hashlib.sha256(b"").digest()
        result = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            result = hashlib.sha256(b"\x01" + left + result).digest()
        return result

    # -- failures and the rarer entry kinds ----------------------------------------------

    def _bad_position(self, seq: int, expected: int) -> None:
        if seq > expected:
            raise fail(f"entry {expected} is missing (the next entry is {seq})", expected)
        raise fail(f"entry {seq} appears again after entry {expected - 1} "
                   "(duplicate or reordered sequence)", seq)

    def _diagnose(self, seq: int, entry_id: str, kind: str, subject: str | None, time: str,
                  body: bytes) -> None:
        try:
            env = json.loads(body)
            claimed = env["chain"]["seq"]
            claimed_prev = env["chain"]["prev"]
        except (ValueError, KeyError, TypeError) as exc:
            raise fail("the entry's bytes are not a ledger envelope", seq) from exc
        if claimed != seq:
            if isinstance(claimed, int) and claimed < seq:
                raise fail(f"the entry stored as {seq} was written as entry {claimed}: an entry "
                           f"was inserted at {claimed} or entries were reordered", claimed)
            raise fail(f"the entry stored as {seq} was written as entry {claimed}: entries "
                       "were reordered or swapped", seq)
        if claimed_prev != self.prev.hex():
            if seq > 1:
                raise fail(f"entry {seq - 1} no longer hashes to the previous hash recorded by "
                           f"entry {seq}: entry {seq - 1} was altered after entry {seq} was "
                           f"written (or entry {seq} was replaced)", seq - 1)
            raise fail("the first entry does not start the chain", seq)
        if env.get("ledger") != self.ledger_id:
            raise fail(f"the entry belongs to ledger {env.get('ledger')}, not {self.ledger_id}",
                       seq)
        raise fail("the entry's id, kind, subject or time columns disagree with its hashed "
                   f"bytes (columns say {kind!r}, {subject!r}, {time!r})", seq)

    def _special(self, seq: int, kind: str, body: bytes) -> None:
        payload = json.loads(body)["payload"]
        if kind == "key_rotation":
            self._key_rotation(seq, payload)
        else:
            number = payload.get("number")
            cp = self.by_number.get(number) if isinstance(number, int) else None
            if cp is None:
                raise fail(f"checkpoint {number}, recorded by this entry, is missing from the "
                           "checkpoints", seq)
            if cp.digest.hex() != payload.get("digest"):
                raise fail(f"checkpoint {number} differs from the one this entry recorded "
                           "(replaced checkpoint)", seq)
            self.recorded.add(number)

    def _key_rotation(self, seq: int, payload: dict[str, Any]) -> None:
        try:
            public = unb64(payload["public_key"])
        except (KeyError, TypeError, ValueError) as exc:
            raise fail("key rotation entry without a valid public key", seq) from exc
        fp = fingerprint(public)
        if payload.get("key") != fp:
            raise fail("key rotation entry names a fingerprint that is not its key's", seq)
        if self.current_key is None:
            if payload.get("previous") is not None:
                raise fail("the first signing key claims a predecessor", seq)
        else:
            endorsement = payload.get("endorsement")
            if payload.get("previous") != self.current_key or not isinstance(endorsement, str):
                raise fail(f"new signing key {fp[:19]}... is not endorsed by the current key "
                           f"{self.current_key[:19]}...", seq)
            if not verify_signature(self.keys[self.current_key],
                                    rotation_statement(self.ledger_id, public),
                                    unb64(endorsement)):
                raise fail(f"the endorsement of signing key {fp[:19]}... does not verify with "
                           "the previous key", seq)
        self.keys[fp] = public
        self.announced[fp] = seq
        self.current_key = fp

    def _check_checkpoints(self, size: int) -> None:
        root = self.root()
        for st, cp in self.by_size[size]:
            number = st["number"]
            if st.get("last_hash") != self.prev.hex():
                raise fail(f"entry {size} differs from the entry checkpoint {number} signed "
                           "(altered or replaced)", size)
            if st.get("root") != root.hex():
                first = self.last_good_checkpoint_size + 1
                raise fail(f"checkpoint {number} signed a different Merkle root for entries 1.."
                           f"{size}: entries {first}..{size} were rewritten", first)
            key = st.get("key")
            if key not in self.keys:
                raise fail(f"checkpoint {number} is signed by unknown key {str(key)[:19]}...")
            if key != self.current_key:
                raise fail(f"checkpoint {number} is signed by retired key {str(key)[:19]}...")
            if not verify_signature(self.keys[key], cp.body, cp.signature):
                raise fail(f"checkpoint {number}: the signature does not verify with key "
                           f"{str(key)[:19]}...")
            self.report.checkpoints += 1
        self.last_good_checkpoint_size = size

    # -- the end --------------------------------------------------------------------------

    def finish(self, *, require_checkpoint_at_end: bool = False) -> Report:
        last = self.next_seq - 1
        beyond = [n for n in self.by_size if n > self.size]
        if beyond:
            top = max(beyond)
            number = self.by_size[top][-1][0]["number"]
            raise fail(f"the ledger ends at entry {last} but checkpoint {number} covers "
                       f"{top} entries: the tail was truncated", last + 1)
        self.check_recorded(whole_ledger=False)
        report = self.report
        report.entries = self.size
        report.last_seq = last
        report.first_seq = 1 if self.size else 0
        report.last_hash = self.prev.hex()
        report.root = self.root().hex()
        report.keys = list(self.keys)
        report.kinds = dict(self.kinds)
        report.ledger_id = self.ledger_id
        report.signed_size = self.last_good_checkpoint_size
        return report

    def check_recorded(self, *, whole_ledger: bool) -> None:
        """Each checkpoint is recorded by an entry appended with it (entry N+1 of checkpoint K
        of N entries): one without it had its entry removed and the chain after it rewritten.
        An export ends at its checkpoint's N, so that one's entry lies beyond it; a database
        holds it (`whole_ledger`)."""
        for number, cp in self.by_number.items():
            size = cp.statement.get("size")
            if number not in self.recorded and (whole_ledger or size != self.size):
                entry = size + 1 if isinstance(size, int) else "N+1"
                raise fail(f"checkpoint {number} (entries 1..{size}) is not recorded by the "
                           f"checkpoint entry appended with it (entry {entry}): that entry was "
                           "removed and the chain after it rewritten")

    def check_prior(self, checkpoint_file: bytes, name: str) -> str:
        """Does today's ledger extend the checkpoint in `checkpoint_file`? (RFC 6962 proof)"""
        from audit.signing import parse_checkpoint_file

        try:
            cp, public = parse_checkpoint_file(checkpoint_file)
            st = cp.statement
            size, old_root = int(st["size"]), bytes.fromhex(st["root"])
        except (ValueError, KeyError, TypeError) as exc:
            raise VerificationFailed(f"not a leadgate checkpoint file ({exc})", where=name,
                                     fix="pass a checkpoint.json written by an export") from exc
        if st.get("ledger") != self.ledger_id:
            raise VerificationFailed(f"the prior checkpoint is of ledger {st.get('ledger')}, not "
                                     f"{self.ledger_id}", where=name)
        if fingerprint(public) != st.get("key") or not verify_signature(public, cp.body,
                                                                           cp.signature):
            raise VerificationFailed("the prior checkpoint's signature does not verify",
                                     where=name)
        if st.get("key") not in self.keys:
            raise VerificationFailed("the prior checkpoint is signed by a key this ledger never "
                                     "announced: its history was replaced", where=name)
        if size > self.size:
            raise fail(f"the ledger has {self.size} entries but prior checkpoint {st['number']} "
                       f"covered {size}: the tail was truncated", self.size + 1)
        assert self.leaves is not None, "keep_leaves=True is needed for a prior checkpoint"
        tree = Tree(self.leaves)
        new_root = tree.root(self.size)
        proof = tree.consistency_proof(size, self.size) if size else []
        if not verify_consistency(size, self.size, old_root, new_root, proof):
            # Name the first entry that differs from the prior head, if the last one does.
            bad = size if self.leaves[size - 1].hex() != st.get("last_hash") else None
            raise fail(f"the ledger does not extend prior checkpoint {st['number']} (size "
                       f"{size}): entries up to {size} were rewritten since it was signed", bad)
        return (f"extends prior checkpoint {st['number']} (size {size}, "
                f"consistency proof of {len(proof)} hashes verified)")


def iter_rows(rows: Iterator[Any]) -> Iterator[Row]:
    for row in rows:
        yield row[0], row[1], row[2], row[3], row[4], stored_bytes(row[5]), bytes(row[6])


def read_checkpoints(conn: Any, up_to: int | None = None) -> list[SignedCheckpoint]:
    """The signed checkpoints in number order (up to number `up_to`), as bytes whatever their
    rows hold."""
    import sqlalchemy as sa

    from audit import schema

    c = schema.checkpoints.c
    query = sa.select(schema.StoredBlob(c.body).label("body"),
                      schema.StoredBlob(c.signature).label("signature")).order_by(c.number)
    if up_to is not None:
        query = query.where(c.number <= up_to)
    return [SignedCheckpoint(stored_bytes(r.body), stored_bytes(r.signature))
            for r in conn.execute(query)]


def verify_database(engine: Any, *, prior_checkpoint: bytes | None = None,
                    prior_name: str = "prior checkpoint", parallel: bool = True) -> Report:
    """Verify the ledger in a database; raises VerificationFailed naming the first bad entry."""
    import sqlalchemy as sa

    from audit import schema
    from audit.db import require_schema, snapshot

    require_schema(engine)
    with snapshot(engine) as conn:
        head = conn.execute(sa.select(schema.head)).first()
        if head is None:
            raise fail("the ledger has no head row: its tables exist but it was never "
                       "initialised, or the row was deleted")
        cps = read_checkpoints(conn)
        verifier = ChainVerifier(head.ledger_id, cps, keep_leaves=prior_checkpoint is not None)
        chunks = None
        database = engine.url.database
        # The workers read entries 1..size only: a row numbered outside them (inserted at 0,
        # say) is diagnosed by the sequential walk, which reads every row.
        if conn.dialect.name == "sqlite" and parallel and database and database != ":memory:" \
                and not _rows_outside(conn, int(head.size)):
            from audit.verify_parallel import parallel_chunks

            chunks = parallel_chunks(database, head.ledger_id, int(head.size),
                                     marks=frozenset(verifier.by_size),
                                     keep_leaves=prior_checkpoint is not None)
        if chunks is not None and _linked(chunks):
            for chunk in chunks:
                if chunk.aligned:
                    verifier.feed_aligned(chunk)
                else:
                    verifier.feed_checked(chunk.leaves, chunk.specials, chunk.kinds)
        else:
            rows = stream_entries(conn)
            try:
                verifier.feed(rows)
            finally:
                rows.close()  # before the connection goes back to the pool
        report = verifier.finish()
        if int(head.size) > report.entries:
            raise fail(f"the ledger ends at entry {report.last_seq} but its head records "
                       f"{head.size} entries: the tail was truncated", report.last_seq + 1)
        if int(head.size) < report.entries or bytes(head.last_hash).hex() != report.last_hash:
            raise fail(f"the ledger head (size {head.size}) does not match its last entry",
                       int(head.size) + 1)
        verifier.check_recorded(whole_ledger=True)
        # the prev_hash column, a convenience beside the hashed bytes, must be what they say:
        # the entry_hash of the entry before (every entry_hash was checked in the walk)
        edited = conn.execute(sa.text(
            "SELECT min(e.seq) FROM ledger_entries e LEFT JOIN ledger_entries p "
            "ON p.seq = e.seq - 1 WHERE (e.seq = 1 AND (e.prev_hash IS NULL OR "
            "e.prev_hash <> :genesis)) "
            "OR (e.seq > 1 AND (p.entry_hash IS NULL OR e.prev_hash IS NULL "
            "OR e.prev_hash <> p.entry_hash))"), {"genesis": GENESIS}).scalar()
        if edited is not None:
            raise fail("the entry's prev_hash column disagrees with the previous entry's hash "
                       "(the column was edited)", int(edited))
        table = {str(r.fingerprint): (bytes(r.public_key), int(r.announced_seq))
                 for r in conn.execute(sa.select(schema.signing_keys))}
        chain = {fp: (public, verifier.announced[fp]) for fp, public in verifier.keys.items()}
        if table != chain:
            # export, signing and explain take keys from this table: it must be the chain's
            odd = sorted(set(table) ^ set(chain)) or sorted(
                fp for fp in table if table[fp] != chain[fp])
            raise fail(f"the signing-key table disagrees with the key announcements in the "
                       f"chain (key {odd[0][:19]}...): the table was edited")
        _check_head(head, cps, report)  # last: an edited entry is named by the checks above
        if prior_checkpoint is not None:
            report.prior = verifier.check_prior(prior_checkpoint, prior_name)
        return report


def _rows_outside(conn: Any, size: int) -> bool:
    import sqlalchemy as sa

    return conn.execute(sa.text("SELECT 1 FROM ledger_entries WHERE seq < 1 OR seq > :size "
                                "LIMIT 1"), {"size": size}).first() is not None


def _check_head(head: Any, checkpoints: list[SignedCheckpoint], report: Report) -> None:
    """The head's other fields are what the next append and checkpoint build on: a frontier
    that is not the entries' would have the next checkpoint sign a wrong root, a count or
    digest that is not the checkpoints' a broken checkpoint chain."""
    try:
        root = Accumulator.restore(int(head.size), bytes(head.frontier or b"")).root().hex()
    except ValueError:
        root = None
    if root != report.root:
        raise fail("the ledger head's Merkle frontier does not match its entries (the head "
                   "row was edited; the next checkpoint would sign a wrong root)")
    digest = bytes(head.last_checkpoint_digest) if head.last_checkpoint_digest else None
    if int(head.checkpoints or 0) != len(checkpoints) or digest != (
            checkpoints[-1].digest if checkpoints else None):
        raise fail(f"the ledger head records {head.checkpoints} checkpoint(s), not the "
                   f"{len(checkpoints)} in its table or not the last of them (the head row "
                   "was edited)")


def _linked(chunks: list[Any]) -> bool:
    """Each range starts where the one before ended (the first at the genesis hash)."""
    prev = GENESIS
    for chunk in chunks:
        if chunk.first_prev != prev.hex():
            return False
        prev = chunk.last_hash
    return True


def stream_entries(conn: Any) -> Generator[Row, None, None]:
    """Entries in sequence order, streamed in chunks through the driver's own cursor."""
    dbapi = conn.connection.dbapi_connection
    sqlite = conn.dialect.name != "postgresql"
    query = entries_sql(conn.dialect.name)
    if not sqlite:
        cursor = dbapi.cursor(name="leadgate_verify")  # server-side: memory stays flat
        cursor.itersize = 10_000
    else:
        # Read the file through a memory map while verifying only: a writer that kept the map
        # would count every page it ever touched in its resident memory.
        dbapi.execute(f"PRAGMA mmap_size={SQLITE_MMAP}")
        cursor = dbapi.cursor()
    try:
        cursor.execute(query)
        while True:
            chunk = cursor.fetchmany(10_000)
            if not chunk:
                break
            yield from chunk
    finally:
        cursor.close()
        if sqlite:
            dbapi.execute("PRAGMA mmap_size=0")
