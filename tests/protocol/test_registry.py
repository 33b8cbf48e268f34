from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc.cli import main
from chiploc.common.errors import RegistryError, RevokedIdentity, UnknownIdentity
from chiploc.protocol import (
    REGISTRY_DOMAIN,
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    canonical_json,
    generate_private_key,
    index_by_id,
    load_registry,
    load_registry_pinned,
)


def test_signed_roundtrip(registry: Registry, authority: PrivateKey) -> None:
    data = registry.to_signed_json(authority)
    again = Registry.from_signed_json(data, authority_public_key=authority.public_key.key_bytes)
    assert again == registry
    assert again.landmark("lm-fra").lat == 50.11
    assert again.chip("chip-1").region == "country:DEU"
    assert again.verifier("ver-1").id == "ver-1"
    doc = json.loads(data)
    sig = bytes.fromhex(doc["signature"])
    authority.public_key.verify(REGISTRY_DOMAIN + canonical_json(doc["registry"]), sig)


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": "ü"}) == '{"a":"ü","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def _tampered(data: bytes, edit: str) -> bytes:
    doc = json.loads(data)
    if edit == "lat":
        doc["registry"]["landmarks"][0]["lat"] = 48.0
    elif edit == "unrevoke":
        doc["registry"]["chips"][0]["revoked"] = False
    elif edit == "add_chip":
        doc["registry"]["chips"].append(dict(doc["registry"]["chips"][0], id="evil"))
    elif edit == "signature":
        doc["signature"] = "00" * 64
    return json.dumps(doc).encode()


@pytest.mark.parametrize("edit", ["lat", "unrevoke", "add_chip", "signature"])
def test_tampered_registry_is_rejected_naming_the_file(
    tmp_path: Path, registry: Registry, authority: PrivateKey, edit: str
) -> None:
    signed = registry.with_revoked("chip-1").to_signed_json(authority)
    path = tmp_path / "registry.json"
    path.write_bytes(_tampered(signed, edit))
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=authority.public_key.key_bytes)
    assert str(path) in str(info.value)
    assert info.value.reason == "bad_signature"


def test_wrong_authority_key(tmp_path: Path, registry: Registry, authority: PrivateKey) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(registry.to_signed_json(authority))
    other = generate_private_key(Role.AUTHORITY, "other", seed=b"\x09" * 32)
    with pytest.raises(RegistryError, match="does not verify"):
        load_registry(path, authority_public_key=other.public_key.key_bytes)
    with pytest.raises(RegistryError, match="does not match"):
        registry.to_signed_json(other)


@pytest.mark.parametrize("blob", [b"", b"[]", b"{", b'{"format":"chiploc-registry/1"}', b"\xff"])
def test_malformed_registry(tmp_path: Path, authority: PrivateKey, blob: bytes) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(blob)
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=authority.public_key.key_bytes)
    assert str(path) in str(info.value)


def test_signed_but_malformed_body(tmp_path: Path, authority: PrivateKey) -> None:
    body = {"serial": 0, "landmarks": [{"id": "x"}], "chips": [], "verifiers": []}
    sig = authority.sign(REGISTRY_DOMAIN + canonical_json(body))
    doc = {"format": "chiploc-registry/1", "registry": body, "signature": sig.hex()}
    with pytest.raises(RegistryError, match="malformed registry"):
        Registry.from_signed_json(
            json.dumps(doc).encode(), authority_public_key=authority.public_key.key_bytes
        )


def test_lookups_raise(registry: Registry) -> None:
    with pytest.raises(UnknownIdentity):
        registry.chip("nobody")
    revoked = registry.with_revoked("chip-1")
    assert revoked.serial == registry.serial + 1
    with pytest.raises(RevokedIdentity):
        revoked.chip("chip-1")
    with pytest.raises(UnknownIdentity):
        registry.landmark("chip-1")


def test_entry_validation(landmark_key: PrivateKey) -> None:
    key = landmark_key.public_key.key_bytes
    for lat, lon in ((91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)):
        with pytest.raises(ValueError, match="finite"):
            LandmarkEntry(id="x", lat=lat, lon=lon, public_key=key)
    with pytest.raises(ValueError, match="32 bytes"):
        ChipEntry(id="c", public_key=b"x", region="r")
    with pytest.raises(ValueError, match="duplicate"):
        index_by_id([ChipEntry(id="c", public_key=key, region="r")] * 2)


def test_registry_cli_build_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    for role, ident in (
        ("authority", "auth"),
        ("landmark", "lm"),
        ("chip", "c1"),
        ("verifier", "v"),
    ):
        assert main(["keys", "new", "--role", role, "--id", ident, "--out", str(keys)]) == 0
    reg = tmp_path / "registry.json"
    auth = ["--authority", str(keys / "auth.key")]
    assert main(["registry", "init", str(reg), *auth]) == 0
    assert (tmp_path / "authority.pub").exists()
    assert (
        main(
            [
                "registry",
                "add-landmark",
                str(reg),
                *auth,
                "--public-key",
                str(keys / "lm.pub"),
                "--lat",
                "1.5",
                "--lon",
                "2.5",
                "--operator",
                "o",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "registry",
                "add-chip",
                str(reg),
                *auth,
                "--public-key",
                str(keys / "c1.pub"),
                "--region",
                "country:DEU",
            ]
        )
        == 0
    )
    assert (
        main(["registry", "add-verifier", str(reg), *auth, "--public-key", str(keys / "v.pub")])
        == 0
    )
    # a chip key cannot be enrolled as a landmark
    assert (
        main(
            [
                "registry",
                "add-landmark",
                str(reg),
                *auth,
                "--public-key",
                str(keys / "c1.pub"),
                "--lat",
                "0",
                "--lon",
                "0",
            ]
        )
        == 2
    )
    assert main(["registry", "revoke", str(reg), *auth, "--id", "c1"]) == 0
    assert main(["registry", "verify", str(reg)]) == 0
    assert main(["registry", "show", str(reg)]) == 0
    loaded = load_registry_pinned(reg)
    assert loaded.landmarks["lm"].lon == 2.5
    assert loaded.chips["c1"].revoked
    assert loaded.serial == 4
    capsys.readouterr()
    reg.write_bytes(reg.read_bytes().replace(b"2.5", b"3.5"))
    assert main(["registry", "verify", str(reg)]) == 1  # tampered: the check failed
    assert str(reg) in capsys.readouterr().err


def test_no_pinned_authority_key(tmp_path: Path, registry: Registry, authority: PrivateKey) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(registry.to_signed_json(authority))
    with pytest.raises(RegistryError) as info:
        load_registry_pinned(path)
    assert info.value.reason == "no_authority_key"
