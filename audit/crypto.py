"""Per-subject encryption of personal data (AES-256-GCM), for crypto-shredding on erasure.

Each data subject has its own key in `ledger_subject_keys`; the ledger stores only ciphertext,
and its hashes cover the ciphertext. Destroying the key makes the data unrecoverable while the
hash chain, which never saw the plaintext, still verifies.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from audit.canonical import canonical

ALG = "A256GCM"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _aad(ledger_id: str, subject: str) -> bytes:
    # Binds a ciphertext to its ledger and subject: it cannot be replayed under another subject.
    return f"leadgate/personal/v1|{ledger_id}|{subject}".encode()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, ledger_id: str, subject: str, personal: dict[str, Any]) -> dict[str, str]:
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, canonical(personal), _aad(ledger_id, subject))
    return {"alg": ALG, "ct": b64(ciphertext), "nonce": b64(nonce)}


def unseal(key: bytes, ledger_id: str, subject: str, sealed: dict[str, str]) -> dict[str, Any]:
    """The personal fields; ValueError when the ciphertext or key is wrong."""
    try:
        plain = AESGCM(key).decrypt(unb64(sealed["nonce"]), unb64(sealed["ct"]),
                                    _aad(ledger_id, subject))
    except (InvalidTag, KeyError, ValueError) as exc:
        raise ValueError("personal data does not decrypt with the subject's key") from exc
    value = json.loads(plain)
    assert isinstance(value, dict)
    return value
