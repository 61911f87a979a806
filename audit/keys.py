"""The ledger's Ed25519 signing key file: created once with 0600 permissions, then reused."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.errors import LedgerError
from audit.files import temporary_beside

ENV_KEY = "LEADGATE_SIGNING_KEY"
DEFAULT_KEY_FILE = "leadgate-signing.key"


def signing_key_path(config_value: str | None = None) -> Path:
    """LEADGATE_SIGNING_KEY, else the config's `signing_key`, else ./leadgate-signing.key."""
    return Path(os.environ.get(ENV_KEY) or config_value or DEFAULT_KEY_FILE)


def ensure_signing_key(path: str | Path) -> Path:
    """The key file at `path`, created (Ed25519, PKCS#8 PEM, mode 0600) if it does not exist."""
    path = Path(path)
    if path.exists():
        load_signing_key(path)  # fail now, with a clear message, if it is unusable
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written whole to a temporary file, then linked into place: a full disk leaves no empty
    # key file behind, and link() fails if the name exists, so two processes creating the key
    # at once cannot both win and sign with different keys.
    try:
        with temporary_beside(path, pem) as tmp:  # mode 0600
            os.link(tmp, path)
    except FileExistsError:
        load_signing_key(path)
    except OSError as exc:
        raise LedgerError(f"cannot write the signing key file ({exc.strerror})",
                          where=str(path), fix="make room on that disk, or point "
                          "LEADGATE_SIGNING_KEY or signing_key in leadgate.yaml at a folder where "
                          "you may write") from exc
    return path


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    path = Path(path)
    if not path.is_file():
        raise LedgerError(
            "signing key file not found", where=str(path),
            fix="restore the key file from your backup, point LEADGATE_SIGNING_KEY or "
                "signing_key in leadgate.yaml at it, or run `leadgate init` for a new ledger",
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LedgerError(
            f"signing key file is readable by others (mode {mode:o})", where=str(path),
            fix=f"chmod 600 {path}",
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise LedgerError("not an unencrypted PEM private key", where=str(path),
                          fix="use the file `leadgate init` created") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError("the signing key is not an Ed25519 key", where=str(path),
                          fix="use the file `leadgate init` created")
    return key


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """'sha256:' + hex SHA-256 of the raw 32-byte public key."""
    return "sha256:" + hashlib.sha256(public_key).hexdigest()
