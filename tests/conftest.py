"""Suite-wide settings, and the fixed identities the protocol, agent and landmark tests share.

Area-specific fixtures live in each tests/<area>/conftest.py (a nearer fixture of the
same name overrides these)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
)

# Test chiploc as it is installed: `python -m pytest` puts the checkout's top on sys.path,
# where the part folders (solver/, maps/, ...) would import under bare names and hide a
# lookup such as resources.files("solver") that fails for every user.
_TOP = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOP]

# Bounded, repeatable property runs in the suite; longer runs are opt-in.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("long", max_examples=5000, deadline=None)
# scripts/mutation runs each mutant against fast test selections: fewer examples, same seeds.
settings.register_profile("mutation", parent=settings.get_profile("ci"), max_examples=25)
settings.load_profile(os.environ.get("CHIPLOC_HYPOTHESIS_PROFILE", "ci"))


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
