"""Real protocol keys and registries for the certificate tests (fixed seeds)."""

from __future__ import annotations

from typing import Any

import pytest

from chiploc.protocol import (
    ChipEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
    index_by_id,
)

NOW_S = 1_700_000_000
EVIDENCE = ("11" * 32, "22" * 32, "33" * 32)
AUTH_REGION_DIGEST = "ad" * 32


def result_dict(verdict: str = "COMPLIANT", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": "chip-1",
        "verdict": verdict,
        "proof": True,
        "model": "vacuum",
        "region_spec": "country:DEU",
        "region": {
            "type": "Polygon",
            "coordinates": [[[8.0, 50.0], [9.0, 50.0], [9.0, 51.0], [8.0, 50.0]]],
        },
        "region_center": {"lat": 50.4, "lon": 8.6},
        "area_km2": 1234.5,
        "margin_km": 12.3,
        "binding_landmarks": ["fra"],
        "conflicting_landmarks": [],
        "settle": [],
        "tolerate": 0,
        "estimate": None,
        "landmarks": [],
        "message": "region lies 12.3 km inside country:DEU",
    }
    base.update(overrides)
    return base


def chip_public(n: int) -> bytes:
    return generate_private_key(
        Role.CHIP, f"chip-{n}", seed=bytes([0x30 + n]) * 32
    ).public_key.key_bytes


@pytest.fixture
def verifier_key() -> PrivateKey:
    return generate_private_key(Role.VERIFIER, "verifier-1", seed=b"\x01" * 32)


@pytest.fixture
def other_verifier_key() -> PrivateKey:
    return generate_private_key(Role.VERIFIER, "verifier-2", seed=b"\x02" * 32)


@pytest.fixture
def authority_key() -> PrivateKey:
    return generate_private_key(Role.AUTHORITY, "authority", seed=b"\x0a" * 32)


@pytest.fixture
def registry(
    verifier_key: PrivateKey, other_verifier_key: PrivateKey, authority_key: PrivateKey
) -> Registry:
    return Registry(
        authority_public_key=authority_key.public_key.key_bytes,
        chips=index_by_id(
            [
                ChipEntry(id="chip-1", public_key=chip_public(1), region="country:DEU"),
                ChipEntry(
                    id="chip-2", public_key=chip_public(2), region="country:DEU", revoked=True
                ),
                ChipEntry(id="chip-3", public_key=chip_public(3), region="country:FRA"),
            ]
        ),
        verifiers=index_by_id(
            [
                VerifierEntry(id="verifier-1", public_key=verifier_key.public_key.key_bytes),
                VerifierEntry(
                    id="verifier-2",
                    public_key=other_verifier_key.public_key.key_bytes,
                    revoked=True,
                ),
            ]
        ),
    )
