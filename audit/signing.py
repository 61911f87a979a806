"""Signed checkpoints (signed tree heads) and signed key rotations.

A checkpoint statement is canonical JSON

    {"type": "leadgate-checkpoint/v1", "ledger": ID, "number": K, "size": N, "root": HEX,
     "last_hash": HEX, "time": RFC3339, "prev": HEX | null, "key": "sha256:..."}

signed with Ed25519 over exactly those bytes. "prev" is the SHA-256 of the previous
checkpoint's statement bytes, so the checkpoints form their own chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.canonical import canonical
from audit.crypto import b64, unb64
from audit.keys import fingerprint, public_bytes

CHECKPOINT_TYPE = "leadgate-checkpoint/v1"
ROTATION_TYPE = "leadgate-key-rotation/v1"


@dataclass(frozen=True)
class SignedCheckpoint:
    body: bytes  # canonical statement bytes (what is signed)
    signature: bytes

    @property
    def statement(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.body).digest()

    def to_file(self, public_key: bytes) -> bytes:
        """The checkpoint file a compliance officer keeps (the --prior-checkpoint input)."""
        return canonical({"checkpoint": self.statement, "signature": b64(self.signature),
                          "public_key": b64(public_key)}) + b"\n"


def sign_checkpoint(key: Ed25519PrivateKey, *, ledger_id: str, number: int, size: int,
                    root: bytes, last_hash: bytes, time: str, prev: bytes | None) -> SignedCheckpoint:
    body = canonical({
        "type": CHECKPOINT_TYPE, "ledger": ledger_id, "number": number, "size": size,
        "root": root.hex(), "last_hash": last_hash.hex(), "time": time,
        "prev": None if prev is None else prev.hex(),
        "key": fingerprint(public_bytes(key)),
    })
    return SignedCheckpoint(body, key.sign(body))


def verify_signature(public_key: bytes, body: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, body)
    except (InvalidSignature, ValueError):
        return False
    return True


def rotation_statement(ledger_id: str, new_public_key: bytes) -> bytes:
    """What the old key signs to endorse the new one."""
    return canonical({"type": ROTATION_TYPE, "ledger": ledger_id,
                      "public_key": b64(new_public_key), "key": fingerprint(new_public_key)})


def parse_checkpoint_file(data: bytes) -> tuple[SignedCheckpoint, bytes]:
    """(checkpoint, public key) from a checkpoint file; ValueError when malformed."""
    try:
        doc = json.loads(data)
        body = canonical(doc["checkpoint"])
        return SignedCheckpoint(body, unb64(doc["signature"])), unb64(doc["public_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a leadgate checkpoint file ({exc.__class__.__name__})") from exc
