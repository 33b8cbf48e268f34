"""The verifier's mesh steps without a network: screening, clear semantics, exclusion."""

from __future__ import annotations

from pathlib import Path

import pytest

from chiploc.common.errors import InputError
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    generate_private_key,
    response_message,
    sign_report,
)
from chiploc.store import open_database
from chiploc.verifier import (
    Screened,
    assess_and_flag,
    clear_suspect,
    is_mesh_report,
    mesh_links,
    screen_mesh_reports,
    without_landmarks,
)

T0 = 1_700_000_000_000_000_000
SID = bytes(range(16))


@pytest.fixture
def peer_key() -> PrivateKey:
    return generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([5]) * 32)


@pytest.fixture
def landmark_key() -> PrivateKey:
    return generate_private_key(Role.LANDMARK, "lm-fra", seed=bytes([2]) * 32)


@pytest.fixture
def chip_key() -> PrivateKey:
    return generate_private_key(Role.CHIP, "chip-1", seed=bytes([3]) * 32)


@pytest.fixture
def mesh_registry(landmark_key: PrivateKey, chip_key: PrivateKey, peer_key: PrivateKey) -> Registry:
    # Frankfurt and Paris, 480 km apart: the test RTTs below are far too short for that
    authority = generate_private_key(Role.AUTHORITY, "authority", seed=bytes([1]) * 32)
    return Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra", lat=50.11, lon=8.68, public_key=landmark_key.public_key.key_bytes
            ),
            "lm-par": LandmarkEntry(
                id="lm-par", lat=48.86, lon=2.35, public_key=peer_key.public_key.key_bytes
            ),
        },
        chips={
            "chip-1": ChipEntry(
                id="chip-1", public_key=chip_key.public_key.key_bytes, region="country:DEU"
            )
        },
    )


def _report(
    prober: PrivateKey,
    target: PrivateKey,
    rtt_ns: int,
    *,
    sid: bytes = SID,
    role: Role = Role.LANDMARK,
) -> bytes:
    nonce = sid
    msg = response_message(
        session_id=sid,
        chip_id=target.id,
        landmark_id=prober.id,
        seq=0,
        nonce=nonce,
        target_role=role,
    )
    probe = ProbeRecord(
        seq=0,
        nonce=nonce,
        rtt_ns=rtt_ns,
        chip_signature=target.sign(msg),
        timestamp_source="userspace",
    )
    return sign_report(
        prober,
        chip_id=target.id,
        session_id=sid,
        chip_address="127.0.0.1:9",
        started_at_unix_ns=T0,
        finished_at_unix_ns=T0 + 1,
        probes=[probe],
        target_role=role,
    ).raw


def test_screening_accepts_only_genuine_mesh_reports(
    landmark_key: PrivateKey, chip_key: PrivateKey, peer_key: PrivateKey, mesh_registry: Registry
) -> None:
    good = _report(landmark_key, peer_key, 3_000_000)
    chip = _report(landmark_key, chip_key, 3_000_000, role=Role.CHIP)
    # the landmark signs a report whose "peer" answers were made by another key (an impostor
    # answering for lm-par): the report verifies as the landmark's, the answers do not
    impostor = generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([9]) * 32)
    forged = _report(landmark_key, impostor, 3_000_000, sid=bytes(16))
    assert is_mesh_report(good)
    assert not is_mesh_report(chip)
    reports, rejected = screen_mesh_reports(
        [good, good, chip, forged, b"junk"], mesh_registry, now_unix_ns=T0
    )
    assert len(reports) == 1  # the duplicate counts once
    assert reports[0].raw == good
    assert rejected == {"wrong_role": 1, "bad_chip_signature": 1, "bad_magic": 1}
    _, late = screen_mesh_reports([good], mesh_registry, now_unix_ns=T0 - 3600 * 10**9)
    assert late == {"from_future": 1}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_flag_clear_and_reflag(
    tmp_path: Path,
    landmark_key: PrivateKey,
    peer_key: PrivateKey,
    mesh_registry: Registry,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """0.5 ms between Frankfurt and Paris (480 km) beats light: with two landmarks nothing
    tells which one moved, so both are suspect. A clear covers what was seen; a new
    violation after it flags again. The same on either store backend."""
    target = (
        str(tmp_path / "v.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    )
    with open_database(target) as store:
        reports, _ = screen_mesh_reports(
            [_report(landmark_key, peer_key, 500_000)], mesh_registry, now_unix_ns=T0
        )
        store.add_mesh_round(reports[0], received_at_unix_ns=T0)
        status = assess_and_flag(store, mesh_registry, now_unix_ns=T0 + 1)
        assert status.suspects == {"lm-fra", "lm-par"}
        assert status.assessment.violating_pairs == (("lm-fra", "lm-par"),)
        with pytest.raises(InputError):
            clear_suspect(store, "lm-par", operator=" ", reason="moved", now_unix_ns=T0 + 2)
        for lid in ("lm-fra", "lm-par"):
            clear_suspect(store, lid, operator="ops", reason="checked", now_unix_ns=T0 + 2)
        assert mesh_links(store) == []  # nothing received since the clears
        assert assess_and_flag(store, mesh_registry, now_unix_ns=T0 + 3).suspects == frozenset()
        again, _ = screen_mesh_reports(
            [_report(landmark_key, peer_key, 600_000, sid=b"\x01" * 16)],
            mesh_registry,
            now_unix_ns=T0,
        )
        store.add_mesh_round(again[0], received_at_unix_ns=T0 + 4)
        status = assess_and_flag(store, mesh_registry, now_unix_ns=T0 + 5)
        assert status.newly_flagged == ("lm-fra", "lm-par")
        assert [link.rtt_ms for link in mesh_links(store)] == [0.6]


def test_without_landmarks_removes_only_the_suspects_reports(
    landmark_key: PrivateKey, chip_key: PrivateKey, mesh_registry: Registry
) -> None:
    from chiploc.protocol import verify_report

    report = verify_report(
        _report(landmark_key, chip_key, 3_000_000, role=Role.CHIP), mesh_registry
    )
    screened = Screened(
        reports=(report,), rejected={"stale": 2}, full_checked=1, flagged={"lm-x": "forged"}
    )
    assert without_landmarks(screened, []) is screened
    assert without_landmarks(screened, ["lm-par"]).reports == (report,)
    out = without_landmarks(screened, ["lm-fra"])
    assert out.reports == ()
    assert dict(out.rejected) == {"stale": 2, "mesh_suspect": 1}
    # the lazy path's alarms survive the exclusion (a flagged landmark is still reported)
    assert (out.full_checked, dict(out.flagged)) == (1, {"lm-x": "forged"})


def test_lazy_verification_keeps_the_roles_apart(
    landmark_key: PrivateKey, chip_key: PrivateKey, peer_key: PrivateKey, mesh_registry: Registry
) -> None:
    """verify_report_lazy, like verify_report, takes a mesh report only as one (its peer's
    answer checked under the peer domain), and a chip report only as a chip's."""
    from chiploc.common.errors import BadSignature, DecodeError
    from chiploc.protocol import verify_report, verify_report_lazy

    mesh = _report(landmark_key, peer_key, 3_000_000)
    chip = _report(landmark_key, chip_key, 3_000_000, role=Role.CHIP)
    for verify in (verify_report, verify_report_lazy):
        assert verify(mesh, mesh_registry, target_role=Role.LANDMARK).chip_id == "lm-par"
        assert verify(chip, mesh_registry).chip_id == "chip-1"
        with pytest.raises(DecodeError) as info:
            verify(mesh, mesh_registry)
        assert info.value.reason == "wrong_role"
        with pytest.raises(DecodeError) as info:
            verify(chip, mesh_registry, target_role=Role.LANDMARK)
        assert info.value.reason == "wrong_role"
        impostor = generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([9]) * 32)
        forged = _report(landmark_key, impostor, 3_000_000, sid=bytes(16))
        with pytest.raises(BadSignature) as bad:
            verify(forged, mesh_registry, target_role=Role.LANDMARK)
        assert bad.value.reason == "bad_chip_signature"


def test_the_mesh_object_and_table_on_a_tie_and_a_clear(
    tmp_path: Path, landmark_key: PrivateKey, peer_key: PrivateKey, mesh_registry: Registry
) -> None:
    """Two landmarks 480 km apart answering in 0.5 ms (light reaches 75 km): nothing tells
    which moved, so both are suspect and each one's ``why`` says it is a tie; after an
    operator clears one, the object lists the clear with who and why."""
    from pyproj import Geod
    from rich.console import Console

    from chiploc.cli._report import mesh_table

    geod = Geod(ellps="WGS84")
    fra, par = mesh_registry.landmarks["lm-fra"], mesh_registry.landmarks["lm-par"]
    apart_km = geod.inv(fra.lon, fra.lat, par.lon, par.lat)[2] / 1000
    with open_database(str(tmp_path / "v.db")) as store:
        reports, _ = screen_mesh_reports(
            [_report(landmark_key, peer_key, 500_000)], mesh_registry, now_unix_ns=T0
        )
        store.add_mesh_round(reports[0], received_at_unix_ns=T0)
        status = assess_and_flag(store, mesh_registry, now_unix_ns=T0 + 1)
        obj = status.to_json_dict()
        assert (obj["links_checked"], obj["pairs_checked"]) == (1, 1)
        ((pair,),) = [p["links"] for p in obj["flagged_pairs"]]
        assert pair["registered_km"] == pytest.approx(apart_km, abs=0.01)
        light_km = 0.25 * 299.792458 * (1 + 500e-6)
        assert light_km <= pair["vacuum_bound_km"] <= light_km * 1.01
        assert pair["light_beaten_by_km"] == pytest.approx(
            apart_km - pair["vacuum_bound_km"], abs=0.01
        )
        assert [s["landmark"] for s in obj["suspects"]] == ["lm-fra", "lm-par"]
        assert all("tied with" in s["why"] and s["new"] for s in obj["suspects"])
        assert obj["cleared"] == []
        console = Console(width=200, record=True)
        table = mesh_table(status)
        assert table is not None
        console.print(table)
        text = console.export_text()
        assert text.count("SUSPECT (new)") == 2
        assert "lm-fra→lm-par 0.500 ms" in text

        clear_suspect(store, "lm-par", operator="bob", reason="GNSS survey", now_unix_ns=T0 + 2)
        after = assess_and_flag(store, mesh_registry, now_unix_ns=T0 + 3)
        obj = after.to_json_dict()
        assert [s["landmark"] for s in obj["suspects"]] == ["lm-fra"]
        # the pair's rounds predate the clear, so it no longer violates; lm-fra stays out
        # (never cleared), its why saying it was flagged earlier
        assert "flagged earlier" in obj["suspects"][0]["why"]
        assert obj["suspects"][0]["new"] is False
        assert obj["cleared"] == [
            {
                "landmark": "lm-par",
                "operator": "bob",
                "reason": "GNSS survey",
                "cleared_at_unix_ns": obj["cleared"][0]["cleared_at_unix_ns"],
            }
        ]
        console = Console(width=200, record=True)
        table = mesh_table(after)
        assert table is not None
        console.print(table)
        text = console.export_text()
        assert "cleared by bob: GNSS survey" in text
        assert text.count("SUSPECT") == 1
