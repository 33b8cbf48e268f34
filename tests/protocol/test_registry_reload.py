"""reload_registry: a running daemon only ever moves forward to a registry its authority signed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc.common.errors import RegistryError
from chiploc.protocol import PrivateKey, Registry, Role, generate_private_key, reload_registry


def _write(tmp_path: Path, registry: Registry, authority: PrivateKey) -> Path:
    path = tmp_path / "registry.json"
    path.write_bytes(registry.to_signed_json(authority))
    (tmp_path / "authority.pub").write_text(json.dumps(authority.public_key.to_json_dict()))
    return path


def test_newer_registry_is_accepted(
    tmp_path: Path, registry: Registry, authority: PrivateKey
) -> None:
    newer = registry.with_revoked("chip-1")
    assert newer.serial == registry.serial + 1
    loaded = reload_registry(registry, _write(tmp_path, newer, authority))
    assert loaded.chips["chip-1"].revoked


def test_identical_registry_is_accepted(
    tmp_path: Path, registry: Registry, authority: PrivateKey
) -> None:
    assert reload_registry(registry, _write(tmp_path, registry, authority)) == registry


def test_rollback_to_an_older_serial_is_refused(
    tmp_path: Path, registry: Registry, authority: PrivateKey
) -> None:
    running = registry.with_revoked("chip-1")  # serial + 1: the chip is revoked
    path = _write(tmp_path, registry, authority)  # the old file would un-revoke it
    with pytest.raises(RegistryError, match="older") as info:
        reload_registry(running, path)
    assert info.value.reason == "rollback"


def test_same_serial_with_other_content_is_refused(
    tmp_path: Path, registry: Registry, authority: PrivateKey
) -> None:
    a = registry.with_revoked("chip-1")
    b = registry.with_revoked("lm-fra")
    assert a.serial == b.serial
    with pytest.raises(RegistryError) as info:
        reload_registry(a, _write(tmp_path, b, authority))
    assert info.value.reason == "rollback"


def test_registry_of_another_authority_is_refused(tmp_path: Path, registry: Registry) -> None:
    other = generate_private_key(Role.AUTHORITY, "authority", seed=bytes([99]) * 32)
    forged = Registry(
        authority_public_key=other.public_key.key_bytes,
        landmarks=registry.landmarks,
        chips=registry.chips,
        verifiers=registry.verifiers,
        serial=registry.serial + 1,
    )
    with pytest.raises(RegistryError) as info:
        reload_registry(registry, _write(tmp_path, forged, other))
    assert info.value.reason == "authority_changed"
