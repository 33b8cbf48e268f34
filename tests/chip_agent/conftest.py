"""Fixed identities and a signed registry for protocol tests (deterministic seeds)."""

from __future__ import annotations

import pytest

from protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
)


def seed(n: int) -> bytes:
    return bytes([n]) * 32


@pytest.fixture
def authority() -> PrivateKey:
    return generate_private_key(Role.AUTHORITY, "authority", seed=seed(1))


@pytest.fixture
def landmark_key() -> PrivateKey:
    return generate_private_key(Role.LANDMARK, "lm-fra", seed=seed(2))


@pytest.fixture
def chip_key() -> PrivateKey:
    return generate_private_key(Role.CHIP, "chip-1", seed=seed(3))


@pytest.fixture
def registry(authority: PrivateKey, landmark_key: PrivateKey, chip_key: PrivateKey) -> Registry:
    verifier = generate_private_key(Role.VERIFIER, "ver-1", seed=seed(4))
    return Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra",
                lat=50.11,
                lon=8.68,
                public_key=landmark_key.public_key.key_bytes,
                operator="ops",
            )
        },
        chips={
            "chip-1": ChipEntry(
                id="chip-1", public_key=chip_key.public_key.key_bytes, region="country:DEU"
            )
        },
        verifiers={"ver-1": VerifierEntry(id="ver-1", public_key=verifier.public_key.key_bytes)},
    )
