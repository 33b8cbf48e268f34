"""chiploc's sans-I/O protocol: identities, the signed registry, the wire codec and reports.

Nothing here opens a socket or reads a clock: time and randomness are arguments.
See ``docs/protocol.md`` for the byte-level format and its test vectors.
"""

from __future__ import annotations

from protocol._keys import (
    PRIVATE_KEY_FORMAT,
    PUBLIC_KEY_FORMAT,
    PrivateKey,
    PublicKey,
    Role,
    generate_private_key,
    load_private_key,
    load_public_key,
    validate_id,
    verify_signature,
    write_keypair,
)
from protocol._registry import (
    REGISTRY_DOMAIN,
    REGISTRY_FORMAT,
    ChipEntry,
    LandmarkEntry,
    Registry,
    VerifierEntry,
    canonical_json,
    index_by_id,
    load_registry,
    load_registry_pinned,
    resolve_authority_key,
)

__all__ = [
    "PRIVATE_KEY_FORMAT",
    "PUBLIC_KEY_FORMAT",
    "REGISTRY_DOMAIN",
    "REGISTRY_FORMAT",
    "ChipEntry",
    "LandmarkEntry",
    "PrivateKey",
    "PublicKey",
    "Registry",
    "Role",
    "VerifierEntry",
    "canonical_json",
    "generate_private_key",
    "index_by_id",
    "load_private_key",
    "load_public_key",
    "load_registry",
    "load_registry_pinned",
    "resolve_authority_key",
    "validate_id",
    "verify_signature",
    "write_keypair",
]
