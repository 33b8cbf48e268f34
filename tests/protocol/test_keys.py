from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chiploc.common.errors import BadSignature, KeyFileError, LocalProtocolError
from chiploc.protocol import (
    PrivateKey,
    Role,
    generate_private_key,
    load_private_key,
    load_public_key,
    validate_id,
    verify_signature,
    write_keypair,
)


@pytest.mark.parametrize("good", ["a", "chip-1", "A.b_c-9", "x" * 64])
def test_valid_ids(good: str) -> None:
    assert validate_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 65, "a b", "é", "a/b", "a\x00"])
def test_invalid_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="1-64"):
        validate_id(bad)
    with pytest.raises(LocalProtocolError):
        generate_private_key(Role.CHIP, bad)


def test_seeded_key_is_deterministic_and_signs() -> None:
    a = generate_private_key(Role.CHIP, "c", seed=b"\x07" * 32)
    b = generate_private_key(Role.CHIP, "c", seed=b"\x07" * 32)
    assert a.public_key == b.public_key
    sig = a.sign(b"msg")
    assert len(sig) == 64
    a.public_key.verify(b"msg", sig)
    with pytest.raises(BadSignature):
        a.public_key.verify(b"msh", sig)
    with pytest.raises(BadSignature):
        verify_signature(a.public_key.key_bytes, b"msg", sig[:-1])
    assert "07070707" not in repr(a)


def test_write_and_load_roundtrip(tmp_path: Path) -> None:
    key = generate_private_key(Role.LANDMARK, "lm-1")
    priv, pub = write_keypair(key, tmp_path)
    assert priv.name == "lm-1.key"
    assert (priv.stat().st_mode & 0o777) == 0o600
    assert load_private_key(priv) == key
    assert load_public_key(pub) == key.public_key
    doc = json.loads(priv.read_text())
    assert doc["role"] == "landmark"
    assert doc["id"] == "lm-1"
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(key, tmp_path)


def test_refuses_group_readable_private_key(tmp_path: Path) -> None:
    priv, _ = write_keypair(generate_private_key(Role.CHIP, "c"), tmp_path)
    os.chmod(priv, 0o640)
    with pytest.raises(KeyFileError) as info:
        load_private_key(priv)
    assert info.value.reason == "key_file_permissions"
    assert str(priv) in str(info.value)


def test_wrong_role_and_missing_and_malformed(tmp_path: Path) -> None:
    priv, pub = write_keypair(generate_private_key(Role.CHIP, "c"), tmp_path)
    with pytest.raises(KeyFileError) as info:
        load_private_key(priv, role=Role.LANDMARK)
    assert info.value.reason == "wrong_key_role"
    with pytest.raises(KeyFileError, match="expected 'd'"):
        load_public_key(pub, id="d")
    with pytest.raises(KeyFileError) as info:
        load_private_key(tmp_path / "nope.key")
    assert info.value.reason == "missing_key_file"
    bad = tmp_path / "bad.pub"
    bad.write_text("{not json")
    with pytest.raises(KeyFileError, match=r"bad\.pub"):
        load_public_key(bad)
    bad.write_text(json.dumps({"format": "chiploc-public-key/1", "role": "chip", "id": "c"}))
    with pytest.raises(KeyFileError, match="malformed"):
        load_public_key(bad)


def test_private_key_validation() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PrivateKey(role=Role.CHIP, id="c", seed=b"short")


def test_keys_in_the_wrong_place_are_refused_saying_which_is_which(tmp_path: Path) -> None:
    priv, pub = write_keypair(generate_private_key(Role.AUTHORITY, "authority"), tmp_path)
    # A private key where a public one is expected (a pinned key, a key to enrol).
    with pytest.raises(KeyFileError) as info:
        load_public_key(priv, role=Role.AUTHORITY)
    assert info.value.reason == "private_key_given"
    assert "PRIVATE key" in str(info.value)
    assert "PUBLIC key" in str(info.value)
    assert str(priv) in str(info.value)
    # A public key where the private one is needed (signing), even with safe permissions.
    os.chmod(pub, 0o600)
    with pytest.raises(KeyFileError) as info:
        load_private_key(pub, role=Role.AUTHORITY)
    assert info.value.reason == "public_key_given"
    assert "PUBLIC key" in str(info.value)
    assert "PRIVATE key" in str(info.value)
    # And with the default 0644 of a .pub file, it still says what is wrong with it.
    os.chmod(pub, 0o644)
    with pytest.raises(KeyFileError) as info:
        load_private_key(pub)
    assert info.value.reason == "public_key_given"
