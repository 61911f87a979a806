"""The audit ledger: append-only, hash-chained, Merkle-checkpointed and signed.

Modules: `db` (engines, migrations, the single-writer transaction), `ledger` (append,
checkpoints, key rotation), `canonical` (RFC 8785 bytes), `merkle` (RFC 6962 trees and proofs),
`signing`/`keys` (Ed25519 checkpoints and the key file), `crypto` (per-subject AES-GCM),
`verify`/`verify_parallel` (the verifier), `export`/`bundle` (bundles and their offline
verification), `explain`, `erasure`. The format is specified in audit/README.md.
"""
