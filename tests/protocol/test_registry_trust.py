"""The registry as a relying party meets it: a file the authority signed, read back exactly.

Properties of the world, each with an independent oracle:

* The file for a small registry is exactly the bytes written out by hand below, and its
  signature is the one PyNaCl makes directly over the documented canonical body.
* Revocation survives the file: a revoked landmark, chip or verifier is revoked after loading.
* Every malformed, tampered or mis-keyed registry is refused with a ``RegistryError`` whose
  one-line diagnosis names the file and what is wrong, and whose ``reason`` is the stable code
  that counters use; every value at the edge of a range that is allowed loads.
* Building a registry never silently overwrites, drops or revokes the wrong entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from chiploc.common.errors import (
    KeyFileError,
    RegistryError,
    RegistryNotTrusted,
    RevokedIdentity,
    UnknownIdentity,
)
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
    load_registry,
    load_registry_pinned,
    reload_registry,
)

AUTHORITY_SEED = bytes([1]) * 32
# Public keys of the seeds 02x32, 03x32, 04x32 (as in docs/protocol.md's test vectors).
LM_KEY = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
CHIP_KEY = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1"
VER_KEY = "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"
AUTHORITY_PUB = SigningKey(AUTHORITY_SEED).verify_key.encode()
MIB_64 = 64 * 1024 * 1024  # the largest registry file a loader reads (docs/protocol.md)


def _nacl_sign(body_canonical: bytes, seed: bytes = AUTHORITY_SEED) -> str:
    """The authority's signature, made with PyNaCl directly over the documented message."""
    return SigningKey(seed).sign(b"chiploc/registry/v1\x00" + body_canonical).signature.hex()


def _canonical(body: Any) -> bytes:
    # The canonical form as docs/protocol.md spells it.
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _signed_file(body: Any, seed: bytes = AUTHORITY_SEED) -> bytes:
    doc = {"format": "chiploc-registry/1", "registry": body, "signature": ""}
    doc["signature"] = _nacl_sign(_canonical(body), seed)
    return json.dumps(doc).encode()


def _body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serial": 2,
        "landmarks": [
            {
                "id": "lm-zrh",
                "lat": 47.37,
                "lon": 8.54,
                "public_key": LM_KEY,
                "operator": "Zürich ops",
                "revoked": False,
            }
        ],
        "chips": [
            {"id": "chip-1", "public_key": CHIP_KEY, "region": "country:CHE", "revoked": False}
        ],
        "verifiers": [{"id": "ver-1", "public_key": VER_KEY, "revoked": True}],
    }
    body.update(over)
    return body


def _load(tmp_path: Path, data: bytes) -> Registry:
    path = tmp_path / "registry.json"
    path.write_bytes(data)
    return load_registry(path, authority_public_key=AUTHORITY_PUB)


# -- the file, byte for byte ----------------------------------------------------------------

EXPECTED_BODY = (
    '{"chips":[{"id":"chip-1","public_key":"' + CHIP_KEY + '","region":"country:CHE",'
    '"revoked":false}],"landmarks":[{"id":"lm-zrh","lat":47.37,"lon":8.54,'
    '"operator":"Zürich ops","public_key":"' + LM_KEY + '","revoked":false}],"serial":2,'
    '"verifiers":[{"id":"ver-1","public_key":"' + VER_KEY + '","revoked":true}]}'
).encode("utf-8")


def _expected_file() -> bytes:
    return (
        "{\n"
        ' "format": "chiploc-registry/1",\n'
        ' "registry": {\n'
        '  "chips": [\n'
        "   {\n"
        '    "id": "chip-1",\n'
        f'    "public_key": "{CHIP_KEY}",\n'
        '    "region": "country:CHE",\n'
        '    "revoked": false\n'
        "   }\n"
        "  ],\n"
        '  "landmarks": [\n'
        "   {\n"
        '    "id": "lm-zrh",\n'
        '    "lat": 47.37,\n'
        '    "lon": 8.54,\n'
        '    "operator": "Zürich ops",\n'
        f'    "public_key": "{LM_KEY}",\n'
        '    "revoked": false\n'
        "   }\n"
        "  ],\n"
        '  "serial": 2,\n'
        '  "verifiers": [\n'
        "   {\n"
        '    "id": "ver-1",\n'
        f'    "public_key": "{VER_KEY}",\n'
        '    "revoked": true\n'
        "   }\n"
        "  ]\n"
        " },\n"
        f' "signature": "{_nacl_sign(EXPECTED_BODY)}"\n'
        "}\n"
    ).encode()


def _small_registry() -> Registry:
    return Registry(
        authority_public_key=AUTHORITY_PUB,
        landmarks={
            "lm-zrh": LandmarkEntry(
                id="lm-zrh",
                lat=47.37,
                lon=8.54,
                public_key=bytes.fromhex(LM_KEY),
                operator="Zürich ops",
            )
        },
        chips={
            "chip-1": ChipEntry(
                id="chip-1", public_key=bytes.fromhex(CHIP_KEY), region="country:CHE"
            )
        },
        verifiers={
            "ver-1": VerifierEntry(id="ver-1", public_key=bytes.fromhex(VER_KEY), revoked=True)
        },
        serial=2,
    )


def test_registry_file_is_exactly_the_hand_written_bytes(tmp_path: Path) -> None:
    """Sorted keys, one-space indent, UTF-8 as written (not \\u-escaped), a final newline, and
    the signature PyNaCl makes over the canonical body: two builds of the same registry are the
    same file, and a reviewer reads an operator's name as written."""
    authority = PrivateKey(role=Role.AUTHORITY, id="authority", seed=AUTHORITY_SEED)
    data = _small_registry().to_signed_json(authority)
    assert data == _expected_file()
    assert _load(tmp_path, _expected_file()) == _small_registry()


def test_a_registry_signed_with_nacl_directly_loads(tmp_path: Path) -> None:
    registry = _load(tmp_path, _signed_file(_body()))
    assert registry.landmark("lm-zrh").operator == "Zürich ops"
    assert registry.chip("chip-1").public_key.hex() == CHIP_KEY
    assert registry.serial == 2


# -- revocation survives the file ---------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "ident", "lookup", "message"),
    [
        ("landmarks", "lm-zrh", "landmark", "landmark 'lm-zrh' is revoked"),
        ("chips", "chip-1", "chip", "chip 'chip-1' is revoked"),
        ("verifiers", "ver-1", "verifier", "verifier 'ver-1' is revoked"),
    ],
)
def test_a_revoked_entry_in_the_file_is_revoked_after_loading(
    tmp_path: Path, section: str, ident: str, lookup: str, message: str
) -> None:
    body = _body()
    body[section][0]["revoked"] = True
    registry = _load(tmp_path, _signed_file(body))
    with pytest.raises(RevokedIdentity) as info:
        getattr(registry, lookup)(ident)
    assert str(info.value) == message
    assert info.value.reason == "revoked"


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        ("landmark", "landmark 'ghost' is not enrolled in the registry"),
        ("chip", "chip 'ghost' is not enrolled in the registry"),
        ("verifier", "verifier 'ghost' is not enrolled in the registry"),
    ],
)
def test_an_unenrolled_identity_is_named_in_the_refusal(
    tmp_path: Path, lookup: str, message: str
) -> None:
    registry = _load(tmp_path, _signed_file(_body()))
    with pytest.raises(UnknownIdentity) as info:
        getattr(registry, lookup)("ghost")
    assert str(info.value) == message
    assert info.value.reason == "unknown_identity"


# -- signed, but malformed: refused, naming the file and the field -------------------------


def _lm(**over: Any) -> dict[str, Any]:
    entry = dict(_body()["landmarks"][0])
    entry.update(over)
    return entry


def _chip(**over: Any) -> dict[str, Any]:
    entry = dict(_body()["chips"][0])
    entry.update(over)
    return entry


def _ver(**over: Any) -> dict[str, Any]:
    entry = dict(_body()["verifiers"][0])
    entry.update(over)
    return entry


_LM_KEYS = "['id', 'lat', 'lon', 'operator', 'public_key', 'revoked']"

MALFORMED = [
    ({"landmarks": [_lm(lat=90.5)]}, "landmark lm-zrh: lat must be finite within ±90.0"),
    ({"landmarks": [_lm(lat=-90.5)]}, "landmark lm-zrh: lat must be finite within ±90.0"),
    ({"landmarks": [_lm(lon=180.5)]}, "landmark lm-zrh: lon must be finite within ±180.0"),
    ({"landmarks": [_lm(lat=True)]}, "landmark lm-zrh: lat must be finite within ±90.0"),
    ({"landmarks": [_lm(lon="8.54")]}, "landmark lm-zrh: lon must be finite within ±180.0"),
    (
        {"landmarks": [_lm(id="lm zrh")]},
        "landmark id must be 1-64 characters of [A-Za-z0-9._-], got 'lm zrh'",
    ),
    ({"chips": [_chip(id="")]}, "chip id must be 1-64 characters of [A-Za-z0-9._-], got ''"),
    (
        {"verifiers": [_ver(id="v/1")]},
        "verifier id must be 1-64 characters of [A-Za-z0-9._-], got 'v/1'",
    ),
    (
        {"landmarks": [_lm(operator="o" * 257)]},
        "operator must be a string of at most 256 characters",
    ),
    ({"landmarks": [_lm(operator=7)]}, "operator must be a string of at most 256 characters"),
    ({"chips": [_chip(region="r" * 4097)]}, "region must be a string of at most 4096 characters"),
    ({"chips": [_chip(region=None)]}, "region must be a string of at most 4096 characters"),
    ({"landmarks": [_lm(revoked="no")]}, "revoked must be a boolean"),
    ({"chips": [_chip(revoked=0)]}, "revoked must be a boolean"),
    ({"verifiers": [_ver(revoked=None)]}, "revoked must be a boolean"),
    ({"chips": [_chip(public_key=CHIP_KEY[:-2])]}, "public_key must be 32 bytes"),
    ({"verifiers": [_ver(public_key=7)]}, "expected a hex string"),
    ({"chips": [["chip-1", CHIP_KEY]]}, "entry must be a JSON object"),
    (
        {"landmarks": [{k: v for k, v in _lm().items() if k != "operator"}]},
        f"entry keys must be exactly {_LM_KEYS}, got ['id', 'lat', 'lon', 'public_key', 'revoked']",
    ),
    ({"chips": [_chip(), _chip()]}, "duplicate ChipEntry id 'chip-1'"),
    ({"landmarks": [_lm(), _lm(lat=0.0)]}, "duplicate LandmarkEntry id 'lm-zrh'"),
    ({"chips": {"chip-1": _chip()}}, "chips must be a list"),
    ({"serial": -1}, "serial must be a non-negative integer"),
    ({"serial": True}, "serial must be a non-negative integer"),
    ({"serial": "3"}, "serial must be a non-negative integer"),
    ({"admins": []}, "registry body must have exactly serial, landmarks, chips, verifiers"),
]


@pytest.mark.parametrize(("over", "why"), MALFORMED)
def test_a_signed_but_malformed_registry_is_refused_saying_what_is_wrong(
    tmp_path: Path, over: dict[str, Any], why: str
) -> None:
    path = tmp_path / "registry.json"
    path.write_bytes(_signed_file(_body(**over)))
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=AUTHORITY_PUB)
    assert str(info.value) == f"{path}: malformed registry: {why}"
    assert info.value.reason == "malformed"


def test_a_body_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_bytes(_signed_file(["serial", "landmarks", "chips", "verifiers"]))
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=AUTHORITY_PUB)
    assert str(info.value) == (
        f"{path}: malformed registry: registry body must have exactly serial, landmarks,"
        " chips, verifiers"
    )


@pytest.mark.parametrize(
    "over",
    [
        {"landmarks": [_lm(lat=90.0, lon=-180.0)]},  # a landmark on the North Pole
        {"landmarks": [_lm(lat=-90, lon=180)]},  # ... or the South Pole, integers
        {"landmarks": [_lm(operator="o" * 256)]},
        {"chips": [_chip(region="r" * 4096)]},
        {"serial": 0},
    ],
)
def test_values_at_the_edge_of_their_range_load(tmp_path: Path, over: dict[str, Any]) -> None:
    registry = _load(tmp_path, _signed_file(_body(**over)))
    assert registry.landmark("lm-zrh").public_key.hex() == LM_KEY


# -- not a registry, or not the authority's -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (
            b'{"format": "chiploc-registry/2", "registry": {}, "signature": ""}',
            "not a chiploc-registry/1 document",
        ),
        (b"[1, 2]", "not a chiploc-registry/1 document"),
        (
            b'{"format": "chiploc-registry/1", "registry": {}, "signature": "", "x": 1}',
            "unexpected top-level keys",
        ),
        (
            b'{"format": "chiploc-registry/1", "registry": {}, "signature": "zz"}',
            "malformed signature or body: ",  # then Python's own words
        ),
        (
            b'{"format": "chiploc-registry/1", "registry": {}, "signature": 5}',
            "malformed signature or body: ",
        ),
    ],
)
def test_not_a_registry_document_is_refused_as_malformed(data: bytes, why: str) -> None:
    with pytest.raises(RegistryError) as info:
        Registry.from_signed_json(data, authority_public_key=AUTHORITY_PUB, source="r.json")
    if why.endswith(": "):  # the rest is the parser's message
        assert str(info.value).startswith(f"r.json: {why}")
    else:
        assert str(info.value) == f"r.json: {why}"
    assert info.value.reason == "malformed"


def test_not_json_is_refused_naming_the_source() -> None:
    for data in (b"{", b"\xff\xfe"):
        with pytest.raises(RegistryError) as info:
            Registry.from_signed_json(data, authority_public_key=AUTHORITY_PUB)
        assert str(info.value).startswith("<registry>: registry is not JSON: ")
        assert info.value.reason == "malformed"


@pytest.mark.parametrize("who", ["tampered", "other authority"])
def test_a_registry_the_pinned_authority_did_not_sign_is_not_trusted(
    tmp_path: Path, who: str
) -> None:
    if who == "tampered":
        doc = json.loads(_signed_file(_body()))
        doc["registry"]["chips"][0]["region"] = "country:PRK"
        data = json.dumps(doc).encode()
    else:
        data = _signed_file(_body(), seed=bytes([9]) * 32)
    path = tmp_path / "registry.json"
    path.write_bytes(data)
    with pytest.raises(RegistryNotTrusted) as info:
        load_registry(path, authority_public_key=AUTHORITY_PUB)
    assert str(info.value) == (
        f"{path}: authority signature does not verify (tampered registry, or wrong authority key)"
    )
    assert info.value.reason == "bad_signature"


# -- the file on disk ---------------------------------------------------------------------


def test_missing_or_unreadable_registry_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(RegistryError) as info:
        load_registry(missing, authority_public_key=AUTHORITY_PUB)
    assert str(info.value) == f"{missing}: no such registry file"
    assert info.value.reason == "missing_registry"
    with pytest.raises(RegistryError) as info:
        load_registry(tmp_path, authority_public_key=AUTHORITY_PUB)  # a directory
    assert str(info.value) == f"{tmp_path}: cannot read registry: Is a directory"
    assert info.value.reason == "bad_registry"


def test_a_registry_file_of_64_mib_loads_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    """The size limit is exact: padding a valid file with whitespace to 64 MiB keeps it
    valid; one more byte and it is refused unread as oversized (never parsed truncated)."""
    data = _signed_file(_body())
    path = tmp_path / "registry.json"
    with path.open("wb") as f:
        f.write(data)
        f.write(b" " * (MIB_64 - len(data)))
    assert load_registry(path, authority_public_key=AUTHORITY_PUB).serial == 2
    with path.open("ab") as f:
        f.write(b" ")
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=AUTHORITY_PUB)
    assert str(info.value) == f"{path}: registry larger than {MIB_64} bytes"
    assert info.value.reason == "oversized"
    path.unlink()


def test_a_terabyte_registry_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    """A runaway file (here a sparse 1 TiB one) is refused as oversized after reading just past
    the limit: a loader that read it whole would run out of memory instead."""
    path = tmp_path / "registry.json"
    path.touch()
    os.truncate(path, 1 << 40)
    with pytest.raises(RegistryError) as info:
        load_registry(path, authority_public_key=AUTHORITY_PUB)
    assert info.value.reason == "oversized"
    path.unlink()


# -- the pinned authority key -------------------------------------------------------------


def _pub_file(path: Path, key: PrivateKey) -> Path:
    path.write_text(json.dumps(key.public_key.to_json_dict()))
    return path


def test_an_explicit_authority_key_is_used_and_none_beside_is_needed(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    (tmp_path / "keys").mkdir()
    path = tmp_path / "reg" / "registry.json"
    path.write_bytes(_signed_file(_body()))
    authority = PrivateKey(role=Role.AUTHORITY, id="authority", seed=AUTHORITY_SEED)
    key = _pub_file(tmp_path / "keys" / "authority.pub", authority)
    assert load_registry_pinned(path, key).serial == 2
    with pytest.raises(RegistryError) as info:
        load_registry_pinned(path)
    assert str(info.value) == (
        f"{path}: no authority key pinned; pass --authority-key FILE or place authority.pub"
        " beside the registry"
    )
    assert info.value.reason == "no_authority_key"
    # A daemon started with --authority-key reloads with it, too.
    running = load_registry_pinned(path, key)
    path.write_bytes(_signed_file(_body(serial=3)))
    assert reload_registry(running, path, key).serial == 3


def test_a_landmark_key_is_not_accepted_as_the_authority_key(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_bytes(_signed_file(_body()))
    # The landmark's public key beside the registry, named as the authority's.
    landmark = generate_private_key(Role.LANDMARK, "lm-zrh", seed=bytes([2]) * 32)
    _pub_file(tmp_path / "authority.pub", landmark)
    with pytest.raises(KeyFileError) as info:
        load_registry_pinned(path)
    assert info.value.reason == "wrong_key_role"


def test_a_reload_refusal_names_the_file(tmp_path: Path) -> None:
    authority = PrivateKey(role=Role.AUTHORITY, id="authority", seed=AUTHORITY_SEED)
    _pub_file(tmp_path / "authority.pub", authority)
    path = tmp_path / "registry.json"
    path.write_bytes(_signed_file(_body()))
    running = load_registry_pinned(path)
    path.write_bytes(_signed_file(_body(chips=[_chip(revoked=True)])))  # same serial 2
    with pytest.raises(RegistryNotTrusted) as info:
        reload_registry(running, path)
    assert str(info.value) == (
        f"{path}: serial 2 equals the running serial but the content differs"
    )
    other = generate_private_key(Role.AUTHORITY, "authority", seed=bytes([9]) * 32)
    _pub_file(tmp_path / "authority.pub", other)
    path.write_bytes(_signed_file(_body(serial=3), seed=bytes([9]) * 32))
    with pytest.raises(RegistryNotTrusted) as info:
        reload_registry(running, path)
    assert str(info.value) == (
        f"{path}: signed by a different authority key than the running registry"
    )
    assert info.value.reason == "authority_changed"


# -- building a registry -------------------------------------------------------------------


def _chip_entry(ident: str, seed: int = 3) -> ChipEntry:
    key = SigningKey(bytes([seed]) * 32).verify_key.encode()
    return ChipEntry(id=ident, public_key=key, region="country:CHE")


def test_enrolling_an_enrolled_id_again_is_refused() -> None:
    registry = _small_registry()
    with pytest.raises(RegistryError) as info:
        registry.with_entry(_chip_entry("chip-1", seed=7))  # a second key for chip-1
    assert str(info.value) == "ChipEntry 'chip-1' is already enrolled"
    assert registry.chip("chip-1").public_key.hex() == CHIP_KEY
    added = registry.with_entry(_chip_entry("chip-2"))
    assert added.chip("chip-2").id == "chip-2"
    assert added.serial == 3


def test_revoking_one_role_leaves_every_other_entry_as_it_was() -> None:
    dual_key = SigningKey(bytes([8]) * 32).verify_key.encode()
    registry = _small_registry().with_entry(
        LandmarkEntry(id="dual", lat=0.0, lon=0.0, public_key=dual_key)
    )
    registry = registry.with_entry(ChipEntry(id="dual", public_key=dual_key, region="r"))
    with pytest.raises(RegistryError) as info:
        registry.with_revoked("dual")
    assert str(info.value) == "'dual' is enrolled in several roles; say which"
    revoked = registry.with_revoked("dual", kind=Role.CHIP)
    with pytest.raises(RevokedIdentity):
        revoked.chip("dual")
    assert revoked.landmark("dual").id == "dual"  # the landmark of the same id still stands
    assert revoked.landmark("lm-zrh").id == "lm-zrh"
    assert revoked.chip("chip-1").id == "chip-1"
    # Nothing dropped on the way: every change keeps the verifiers the registry started with.
    assert dict(revoked.verifiers) == dict(_small_registry().verifiers)
    assert revoked.serial == registry.serial + 1
    with pytest.raises(RegistryError) as info:
        registry.with_revoked("ghost")
    assert str(info.value) == "'ghost' is not enrolled"
    assert info.value.reason == "unknown_identity"


def test_signing_needs_the_registry_s_own_authority_key() -> None:
    registry = _small_registry()
    landmark = generate_private_key(Role.LANDMARK, "lm-zrh", seed=bytes([2]) * 32)
    with pytest.raises(RegistryError) as info:
        registry.to_signed_json(landmark)
    assert str(info.value) == "key 'lm-zrh' is a landmark key, not authority"
    other = generate_private_key(Role.AUTHORITY, "authority", seed=bytes([9]) * 32)
    with pytest.raises(RegistryError) as info:
        registry.to_signed_json(other)
    assert str(info.value) == "signing key does not match the registry's authority key"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chips": [_chip_entry("chip-1")]}, "ChipEntry table must be a mapping of id to entry"),
        (
            {"chips": {"lm-zrh": LandmarkEntry(id="lm-zrh", lat=0, lon=0, public_key=bytes(32))}},
            "expected ChipEntry, got LandmarkEntry",
        ),
        ({"chips": {"chip-9": _chip_entry("chip-1")}}, "ChipEntry keyed 'chip-9' has id 'chip-1'"),
        ({"serial": -1}, "serial must be a non-negative integer"),
        ({"serial": False}, "serial must be a non-negative integer"),
        ({"serial": 1.0}, "serial must be a non-negative integer"),
    ],
)
def test_a_registry_built_in_code_is_checked_like_a_file(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        Registry(authority_public_key=AUTHORITY_PUB, **kwargs)
    assert str(info.value) == message
