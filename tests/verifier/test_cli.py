"""`chiploc certificate verify|show` and `chiploc audit verify|head|list` end to end."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from chiploc.cli import main
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
    index_by_id,
    write_keypair,
)
from chiploc.store import open_store
from chiploc.verifier import issue_certificate, record_registry, verify_audit

from .conftest import AUTH_REGION_DIGEST, EVIDENCE, NOW_S, result_dict

T0_NS = NOW_S * 1_000_000_000


@pytest.fixture
def world(tmp_path: Path, verifier_key: PrivateKey, authority_key: PrivateKey) -> Path:
    """registry.json + authority.pub in tmp_path, a valid certificate in cert.json."""
    revoked = generate_private_key(Role.VERIFIER, "verifier-2", seed=b"\x02" * 32)
    chip = generate_private_key(Role.CHIP, "chip-1", seed=b"\x03" * 32)
    lm = generate_private_key(Role.LANDMARK, "fra", seed=b"\x04" * 32)
    registry = Registry(
        authority_public_key=authority_key.public_key.key_bytes,
        landmarks=index_by_id(
            [LandmarkEntry(id="fra", lat=50.11, lon=8.68, public_key=lm.public_key.key_bytes)]
        ),
        chips=index_by_id(
            [ChipEntry(id="chip-1", public_key=chip.public_key.key_bytes, region="country:DEU")]
        ),
        verifiers=index_by_id(
            [
                VerifierEntry(id="verifier-1", public_key=verifier_key.public_key.key_bytes),
                VerifierEntry(
                    id="verifier-2", public_key=revoked.public_key.key_bytes, revoked=True
                ),
            ]
        ),
    )
    (tmp_path / "registry.json").write_bytes(registry.to_signed_json(authority_key))
    write_keypair(authority_key, tmp_path / "keys")
    (tmp_path / "authority.pub").write_bytes((tmp_path / "keys" / "authority.pub").read_bytes())
    for name, key in (("cert.json", verifier_key), ("revoked.json", revoked)):
        data = issue_certificate(
            result_dict(),
            authorized_region_digest_hex=AUTH_REGION_DIGEST,
            evidence_digests=EVIDENCE,
            signer=key,
            issued_at_unix_s=NOW_S,
            validity_s=3600,
        )
        (tmp_path / name).write_bytes(data + b"\n")
    return tmp_path


def _verify(world: Path, cert: str, *extra: str) -> int:
    return main(
        [
            "certificate",
            "verify",
            str(world / cert),
            "--registry",
            str(world / "registry.json"),
            "--now",
            str(NOW_S + 10),
            *extra,
        ]
    )


def test_valid_certificate_exits_0(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _verify(world, "cert.json") == 0
    out = capsys.readouterr().out
    assert out.startswith("certificate valid: chip chip-1: COMPLIANT")
    assert out.count("\n") == 1


def test_explicit_authority_key(world: Path) -> None:
    (world / "authority.pub").unlink()
    assert _verify(world, "cert.json") == 2  # nothing pinned: an input error
    assert _verify(world, "cert.json", "--authority-key", str(world / "keys/authority.pub")) == 0


def test_wrong_authority_key_is_refused(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = generate_private_key(Role.AUTHORITY, "authority", seed=b"\x0b" * 32)
    write_keypair(other, world / "other")
    code = _verify(world, "cert.json", "--authority-key", str(world / "other/authority.pub"))
    assert code == 1  # the registry's signature check failed
    err = capsys.readouterr().err
    assert "registry.json" in err
    assert "[bad_registry]" in err or "[bad_signature]" in err


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d.replace(b"COMPLIANT", b"VIOLATION"), "bad_signature"),
        (lambda d: d.replace(b'"verifier-1"', b'"verifier-9"'), "unknown_identity"),
        (lambda d: d.replace(b'"signature":"', b'"signature": "'), "not_canonical"),
    ],
)
def test_tampered_certificate_exits_1_with_reason(
    world: Path, capsys: pytest.CaptureFixture[str], edit: object, reason: str
) -> None:
    path = world / "cert.json"
    path.write_bytes(edit(path.read_bytes()))  # type: ignore[operator]
    assert _verify(world, "cert.json") == 1
    err = capsys.readouterr().err
    assert err.startswith("chiploc certificate: error:")
    assert f"[{reason}]" in err


def test_expired_and_revoked_exit_1(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "certificate",
            "verify",
            str(world / "cert.json"),
            "--registry",
            str(world / "registry.json"),
            "--now",
            str(NOW_S + 3600),
        ]
    )
    assert code == 1
    assert "[expired]" in capsys.readouterr().err
    assert _verify(world, "revoked.json") == 1
    assert "[verifier_revoked]" in capsys.readouterr().err


def test_missing_certificate_file_exits_2(world: Path) -> None:
    assert _verify(world, "nope.json") == 2


def test_show(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certificate", "show", str(world / "cert.json")]) == 0
    out = capsys.readouterr().out
    assert "NOT checked" in out
    assert "COMPLIANT" in out
    assert main(["certificate", "show", "--json", str(world / "cert.json")]) == 0
    assert json.loads(capsys.readouterr().out)["chip_id"] == "chip-1"


def test_audit_cli_with_a_real_registry(
    world: Path, authority_key: PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiploc.protocol import load_registry

    registry = load_registry(
        world / "registry.json", authority_public_key=authority_key.public_key.key_bytes
    )
    db = world / "chiploc.db"
    with open_store(db) as s:
        assert record_registry(s, registry, now_unix_ns=T0_NS) == 4
        assert record_registry(s, registry, now_unix_ns=T0_NS + 1) == 0  # idempotent
        assert verify_audit(s).enrolments == 4
    assert main(["audit", "verify", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log intact: 4 entries")
    assert main(["audit", "head", "--db", str(db)]) == 0
    head = capsys.readouterr().out.strip()
    assert head.startswith("4:")
    assert main(["audit", "verify", "--db", str(db), "--anchor", head]) == 0
    capsys.readouterr()
    assert main(["audit", "list", "--db", str(db), "--since", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["seq"] == 4

    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE seq = 2")
    conn.commit()
    conn.close()
    assert main(["audit", "verify", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "audit entry seq=3: entry seq=2 is missing (deleted)" in err
    assert main(["audit", "verify", "--db", str(db), "--anchor", "junk"]) == 2


def test_audit_verify_missing_db_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    assert main(["audit", "verify", "--db", str(tmp_path / "none.db")]) == 2
    assert not (tmp_path / "none.db").exists()


def _status(world: Path, cert: str, *extra: str) -> int:
    return main(["certificate", "status", str(world / cert), "--db", str(world / "v.db"), *extra])


def test_certificate_status_follows_revocation_and_expiry_in_the_store(
    world: Path, authority_key: PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiploc.protocol import load_registry

    registry = load_registry(
        world / "registry.json", authority_public_key=authority_key.public_key.key_bytes
    )
    cert = (world / "cert.json").read_bytes().rstrip(b"\n")
    with open_store(world / "v.db") as s:
        record_registry(s, registry, now_unix_ns=T0_NS)
        s.add_verdict(result_dict(), evidence_digests=(), certificate=cert, issued_at_unix_ns=T0_NS)
    now = ("--now", str(NOW_S + 10))
    assert _status(world, "cert.json", *now) == 0
    assert "STANDS" in capsys.readouterr().out
    # Expiry, as the store's copy says.
    assert _status(world, "cert.json", "--now", str(NOW_S + 3600)) == 1
    assert "[expired]" in capsys.readouterr().out
    # A certificate this store never issued (another verifier's, revoked or not).
    assert _status(world, "revoked.json", *now) == 1
    assert "[not_issued_here]" in capsys.readouterr().out
    # The authority revokes the chip; the verifier records the new registry; the
    # certificate no longer stands, and `verify` against the new registry refuses it.
    revoked = registry.with_revoked("chip-1")
    (world / "registry.json").write_bytes(revoked.to_signed_json(authority_key))
    with open_store(world / "v.db") as s:
        record_registry(s, revoked, now_unix_ns=T0_NS + 5)
    assert _status(world, "cert.json", *now, "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["stands"] is False
    assert doc["reason"] == "chip_revoked"
    assert doc["revoked_at_unix_ns"] == T0_NS + 5
    assert doc["expires_at"] == NOW_S + 3600
    assert _verify(world, "cert.json") == 1
    assert "[chip_revoked]" in capsys.readouterr().err
    # Missing store or certificate: bad input.
    assert main(["certificate", "status", str(world / "cert.json"), "--db", "/nope.db"]) == 2
    assert _status(world, "nope.json") == 2


def test_verify_notices_an_edited_geojson_zone(
    tmp_path: Path,
    verifier_key: PrivateKey,
    authority_key: PrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chiploc.solver import load_region

    zone = tmp_path / "zone.geojson"
    square = [[[8.0, 49.0], [10.0, 49.0], [10.0, 51.0], [8.0, 51.0], [8.0, 49.0]]]
    zone.write_text(json.dumps({"type": "Polygon", "coordinates": square}))
    chip = generate_private_key(Role.CHIP, "chip-1", seed=b"\x03" * 32)
    registry = Registry(
        authority_public_key=authority_key.public_key.key_bytes,
        chips=index_by_id(
            [ChipEntry(id="chip-1", public_key=chip.public_key.key_bytes, region=str(zone))]
        ),
        verifiers=index_by_id(
            [VerifierEntry(id="verifier-1", public_key=verifier_key.public_key.key_bytes)]
        ),
    )
    (tmp_path / "registry.json").write_bytes(registry.to_signed_json(authority_key))
    write_keypair(authority_key, tmp_path / "keys")
    (tmp_path / "authority.pub").write_bytes((tmp_path / "keys" / "authority.pub").read_bytes())
    data = issue_certificate(
        result_dict(region_spec=str(zone)),
        authorized_region_digest_hex=load_region(str(zone)).digest_hex,
        evidence_digests=EVIDENCE,
        signer=verifier_key,
        issued_at_unix_s=NOW_S,
        validity_s=3600,
    )
    (tmp_path / "cert.json").write_bytes(data)
    assert _verify(tmp_path, "cert.json") == 0
    capsys.readouterr()
    square[0][1] = [11.0, 49.0]  # the zone grows under the same file name
    zone.write_text(json.dumps({"type": "Polygon", "coordinates": square}))
    assert _verify(tmp_path, "cert.json") == 1
    assert "[region_changed]" in capsys.readouterr().err


def test_certificate_status_names_each_withdrawal_and_when(
    world: Path, authority_key: PrivateKey, verifier_key: PrivateKey
) -> None:
    from chiploc.common.errors import DecodeError
    from chiploc.protocol import load_registry
    from chiploc.verifier import certificate_status

    registry = load_registry(
        world / "registry.json", authority_public_key=authority_key.public_key.key_bytes
    )
    cert = (world / "cert.json").read_bytes()
    db = world / "s.db"
    with open_store(db) as s:
        record_registry(s, registry, now_unix_ns=T0_NS)
        s.add_verdict(
            result_dict(), evidence_digests=(), certificate=cert.rstrip(b"\n"),
            issued_at_unix_ns=T0_NS,
        )  # fmt: skip
        ok = certificate_status(cert, s, now_unix_s=NOW_S + 1)
        assert (ok.stands, ok.reason, ok.revoked_at_unix_ns) == (True, "valid", None)
        assert ok.summary() == f"certificate {ok.digest_hex[:16]}... STANDS: {ok.detail}"
        assert "chip chip-1: COMPLIANT" in ok.summary()
        assert ok.digest_hex == hashlib.sha256(cert.rstrip(b"\n")).hexdigest()
        # The chip's region changes in a later registry: superseded, not revoked.
        chip = registry.chips["chip-1"]
        moved = type(registry)(
            authority_public_key=registry.authority_public_key,
            serial=registry.serial + 1,
            landmarks=registry.landmarks,
            chips={"chip-1": type(chip)(id="chip-1", public_key=chip.public_key,
                                        region="country:FRA")},
            verifiers=registry.verifiers,
        )  # fmt: skip
        record_registry(s, moved, now_unix_ns=T0_NS + 7)
        got = certificate_status(cert, s, now_unix_s=NOW_S + 1)
        assert (got.stands, got.reason, got.revoked_at_unix_ns) == (False, "region_changed", None)
        assert "country:FRA" in got.detail
        assert "DOES NOT STAND [region_changed]" in got.summary()
        # The verifier is revoked later still: named, with the time the store first saw it.
        gone = moved.with_revoked("verifier-1")
        record_registry(s, gone, now_unix_ns=T0_NS + 9)
        record_registry(s, gone, now_unix_ns=T0_NS + 11)  # seen again: still the first time
        got = certificate_status(cert, s, now_unix_s=NOW_S + 1)
        assert (got.stands, got.reason) == (False, "verifier_revoked")
        assert got.revoked_at_unix_ns == T0_NS + 9
        assert "verifier-1" in got.detail
        # A certificate edited after issue is not the one the store holds.
        edited = cert.replace(b"12.3", b"99.9")
        got = certificate_status(edited, s, now_unix_s=NOW_S + 1)
        assert (got.stands, got.reason) == (False, "not_issued_here")
        assert got.detail == "this store holds no such certificate for chip 'chip-1'"
        with pytest.raises(DecodeError):
            certificate_status(b"{}", s, now_unix_s=NOW_S + 1)
    # A store that never recorded the verifier's enrolment cannot vouch for its key.
    with open_store(world / "bare.db") as s:
        s.add_verdict(
            result_dict(), evidence_digests=(), certificate=cert.rstrip(b"\n"),
            issued_at_unix_ns=T0_NS,
        )  # fmt: skip
        got = certificate_status(cert, s, now_unix_s=NOW_S + 1)
        assert (got.stands, got.reason) == (False, "unknown_identity")
        assert "verifier 'verifier-1' is not in this store's enrolments" in got.detail


def test_revocation_time_is_when_the_store_first_saw_it(
    world: Path, authority_key: PrivateKey
) -> None:
    from chiploc.protocol import load_registry
    from chiploc.verifier import certificate_status

    registry = load_registry(
        world / "registry.json", authority_public_key=authority_key.public_key.key_bytes
    )
    cert = (world / "cert.json").read_bytes()
    with open_store(world / "t.db") as s:
        record_registry(s, registry, now_unix_ns=T0_NS)
        s.add_verdict(
            result_dict(), evidence_digests=(), certificate=cert.rstrip(b"\n"),
            issued_at_unix_ns=T0_NS,
        )  # fmt: skip
        revoked = registry.with_revoked("chip-1")
        record_registry(s, revoked, now_unix_ns=T0_NS + 5)
        # Still revoked, but its record changes later (a new region): a new enrolment row.
        chip = revoked.chips["chip-1"]
        later = type(revoked)(
            authority_public_key=revoked.authority_public_key, serial=revoked.serial + 1,
            landmarks=revoked.landmarks, verifiers=revoked.verifiers,
            chips={"chip-1": type(chip)(id="chip-1", public_key=chip.public_key,
                                        region="country:FRA", revoked=True)},
        )  # fmt: skip
        record_registry(s, later, now_unix_ns=T0_NS + 8)
        got = certificate_status(cert, s, now_unix_s=NOW_S + 1)
    assert (got.stands, got.reason) == (False, "chip_revoked")
    assert "chip 'chip-1' is revoked" in got.detail
    assert got.revoked_at_unix_ns == T0_NS + 5
