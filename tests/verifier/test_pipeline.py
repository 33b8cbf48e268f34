"""The verification pipeline's pure steps over real signed reports (no sockets).

Reports are built with ``protocol.sign_report`` and real chip signatures, so
every check ``verify_report`` makes is exercised; time is a fixed number.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chiploc.common.errors import InputError, StoreError, UnknownIdentity
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
    response_message,
    sign_report,
)
from chiploc.solver import Model, Verdict
from chiploc.store import open_store
from chiploc.verifier import (
    Screened,
    group_evidence,
    judge_all,
    judge_chip,
    record_judgement,
    screen_reports,
    verify_audit,
    verify_certificate,
)

NOW_NS = 1_700_000_000 * 1_000_000_000
MS = 1_000_000

#: Three German landmarks and where the registry says they stand.
LANDMARKS = {"lm-fra": (50.1109, 8.6821), "lm-ber": (52.52, 13.405), "lm-muc": (48.1351, 11.582)}


def _seed(label: str) -> bytes:
    return label.encode().ljust(32, b"\0")[:32]


def landmark_keys() -> dict[str, PrivateKey]:
    return {i: generate_private_key(Role.LANDMARK, i, seed=_seed(i)) for i in LANDMARKS}


def chip_key(chip_id: str = "chip-1") -> PrivateKey:
    return generate_private_key(Role.CHIP, chip_id, seed=_seed(chip_id))


def verifier_key() -> PrivateKey:
    return generate_private_key(Role.VERIFIER, "ver-1", seed=_seed("ver-1"))


def authority_key() -> PrivateKey:
    return generate_private_key(Role.AUTHORITY, "authority", seed=_seed("authority"))


def make_registry(*, revoked_chip: bool = False) -> Registry:
    chips = {
        "chip-1": ChipEntry(
            id="chip-1", public_key=chip_key().public_key.key_bytes, region="country:DEU"
        ),
        "chip-2": ChipEntry(
            id="chip-2",
            public_key=chip_key("chip-2").public_key.key_bytes,
            region="country:DEU",
            revoked=revoked_chip,
        ),
    }
    return Registry(
        authority_public_key=authority_key().public_key.key_bytes,
        landmarks={
            i: LandmarkEntry(
                id=i,
                lat=lat,
                lon=lon,
                public_key=landmark_keys()[i].public_key.key_bytes,
                operator="test",
            )
            for i, (lat, lon) in LANDMARKS.items()
        },
        chips=chips,
        verifiers={
            "ver-1": VerifierEntry(id="ver-1", public_key=verifier_key().public_key.key_bytes)
        },
    )


def signed_report(
    landmark: PrivateKey,
    rtts_ns: list[int | None],
    *,
    chip: PrivateKey | None = None,
    session: int = 0,
    started_at_unix_ns: int = NOW_NS - 10 * 1_000_000_000,
    overhead_ns: int = 0,
) -> MeasurementReport:
    """A report whose answered probes carry the chip's real signatures."""
    chip = chip if chip is not None else chip_key()
    session_id = bytes([session]) * 16
    probes = []
    for seq, rtt in enumerate(rtts_ns):
        nonce = bytes([seq + 1, session]) * 8
        if rtt is None:
            probes.append(
                ProbeRecord(
                    seq=seq, nonce=nonce, rtt_ns=None, chip_signature=b"\0" * 64,
                    timestamp_source="none",
                )
            )  # fmt: skip
            continue
        msg = response_message(
            session_id=session_id, chip_id=chip.id, landmark_id=landmark.id, seq=seq, nonce=nonce
        )
        probes.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=rtt,
                chip_signature=chip.sign(msg),
                timestamp_source="userspace",
            )
        )
    return sign_report(
        landmark,
        chip_id=chip.id,
        session_id=session_id,
        chip_address="127.0.0.1:9",
        started_at_unix_ns=started_at_unix_ns,
        finished_at_unix_ns=started_at_unix_ns + 1_000_000,
        probes=probes,
        overhead_lower_bound_ns=overhead_ns,
    )


@pytest.fixture
def registry() -> Registry:
    return make_registry()


@pytest.fixture
def keys() -> dict[str, PrivateKey]:
    return landmark_keys()


# -- screening ------------------------------------------------------------------------


def test_valid_reports_pass_and_duplicates_are_counted_once(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    a = signed_report(keys["lm-fra"], [3 * MS, 2 * MS], session=1)
    b = signed_report(keys["lm-ber"], [5 * MS], session=2)
    screened = screen_reports([a.raw, b.raw, a.raw], registry, now_unix_ns=NOW_NS)
    assert [r.digest_hex for r in screened.reports] == [a.digest_hex, b.digest_hex]
    assert screened.duplicates == 1
    assert screened.rejected_total == 0


def test_report_from_unenrolled_landmark_is_counted_and_not_used(registry: Registry) -> None:
    rogue = generate_private_key(Role.LANDMARK, "lm-rogue", seed=_seed("rogue"))
    report = signed_report(rogue, [1 * MS], session=3)
    screened = screen_reports([report.raw], registry, now_unix_ns=NOW_NS)
    assert screened.reports == ()
    assert dict(screened.rejected) == {"unknown_identity": 1}
    assert group_evidence(screened, registry) == {}


def test_report_signed_with_another_key_under_an_enrolled_id_is_refused(
    registry: Registry,
) -> None:
    impostor = generate_private_key(Role.LANDMARK, "lm-fra", seed=_seed("impostor"))
    report = signed_report(impostor, [1 * MS], session=4)
    screened = screen_reports([report.raw], registry, now_unix_ns=NOW_NS)
    assert screened.reports == ()
    assert dict(screened.rejected) == {"bad_signature": 1}


@pytest.mark.parametrize("position", ["rtt", "landmark_signature", "chip_signature"])
def test_a_flipped_byte_is_counted_and_not_used(
    registry: Registry, keys: dict[str, PrivateKey], position: str
) -> None:
    good = signed_report(keys["lm-fra"], [4 * MS, 3 * MS], session=5)
    raw = bytearray(good.raw)
    if position == "landmark_signature":
        index, reason = len(raw) - 1, "bad_signature"
    elif position == "chip_signature":
        index, reason = len(raw) - 64 - 10, "bad_signature"  # covered by the landmark's
    else:
        # the first probe's RTT (not the minimum, so the report still parses)
        index, reason = raw.index((4 * MS).to_bytes(8, "big")) + 7, "bad_signature"
    raw[index] ^= 0x01
    screened = screen_reports([bytes(raw), good.raw], registry, now_unix_ns=NOW_NS)
    assert [r.digest_hex for r in screened.reports] == [good.digest_hex]
    assert dict(screened.rejected) == {reason: 1}
    grouped = group_evidence(screened, registry)
    assert grouped["chip-1"].evidence_digests == (good.digest_hex,)


def test_landmark_vouching_for_a_forged_chip_answer_is_refused(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    # Signed by an enrolled landmark, but the "chip" signatures come from another key.
    forged = signed_report(
        keys["lm-fra"], [1 * MS], chip=generate_private_key(Role.CHIP, "chip-1", seed=_seed("x"))
    )
    screened = screen_reports([forged.raw], registry, now_unix_ns=NOW_NS)
    assert screened.reports == ()
    assert dict(screened.rejected) == {"bad_chip_signature": 1}


def test_stale_and_future_reports_are_refused(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    old = signed_report(
        keys["lm-fra"], [1 * MS], session=6, started_at_unix_ns=NOW_NS - 7200 * 10**9
    )
    future = signed_report(
        keys["lm-fra"], [1 * MS], session=7, started_at_unix_ns=NOW_NS + 600 * 10**9
    )
    screened = screen_reports([old.raw, future.raw], registry, now_unix_ns=NOW_NS)
    assert screened.reports == ()
    assert dict(screened.rejected) == {"stale": 1, "from_future": 1}


def test_report_of_revoked_chip_is_refused(keys: dict[str, PrivateKey]) -> None:
    registry = make_registry(revoked_chip=True)
    report = signed_report(keys["lm-fra"], [1 * MS], chip=chip_key("chip-2"), session=8)
    screened = screen_reports([report.raw], registry, now_unix_ns=NOW_NS)
    assert dict(screened.rejected) == {"revoked": 1}


def test_garbage_is_counted(registry: Registry) -> None:
    screened = screen_reports([b"", b"\xc1\x0c\x01\x05" + b"\0" * 20], registry, now_unix_ns=NOW_NS)
    assert screened.reports == ()
    assert screened.rejected_total == 2


# -- grouping -------------------------------------------------------------------------


def test_minimum_per_landmark_over_answered_probes_with_registry_coordinates(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    fra_slow = signed_report(keys["lm-fra"], [9 * MS, None, 7 * MS], session=10)
    fra_fast = signed_report(keys["lm-fra"], [None, 4 * MS, 6 * MS], session=11)
    ber_lost = signed_report(keys["lm-ber"], [None, None], session=12)
    muc = signed_report(keys["lm-muc"], [8 * MS], session=13, overhead_ns=MS // 2)
    reports = [fra_slow, fra_fast, ber_lost, muc]
    expected = None
    for order in range(5):
        random.Random(order).shuffle(reports)
        screened = screen_reports([r.raw for r in reports], registry, now_unix_ns=NOW_NS)
        evidence = group_evidence(screened, registry)["chip-1"]
        if expected is None:
            expected = evidence
        assert evidence == expected  # independent of arrival order
    assert expected is not None
    assert expected.reports_seen == 4
    by_landmark = {m.landmark: m for m in expected.measurements}
    assert set(by_landmark) == {"lm-fra", "lm-muc"}  # every lm-ber probe was lost
    assert by_landmark["lm-fra"].rtt_ms == 4.0
    assert (by_landmark["lm-fra"].lat, by_landmark["lm-fra"].lon) == LANDMARKS["lm-fra"]
    assert by_landmark["lm-muc"].overhead_ms == 0.5
    assert expected.evidence_digests == tuple(sorted([fra_fast.digest_hex, muc.digest_hex]))


def test_effective_rtt_decides_which_report_is_best(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    plain = signed_report(keys["lm-fra"], [5 * MS], session=14)
    with_overhead = signed_report(keys["lm-fra"], [6 * MS], session=15, overhead_ns=2 * MS)
    screened = screen_reports([plain.raw, with_overhead.raw], registry, now_unix_ns=NOW_NS)
    (m,) = group_evidence(screened, registry)["chip-1"].measurements
    assert (m.rtt_ms, m.overhead_ms) == (6.0, 2.0)


# -- judging --------------------------------------------------------------------------


def _near_fra_reports(keys: dict[str, PrivateKey]) -> list[MeasurementReport]:
    # Plausible RTTs for a chip near Kassel: a few hundred km from each landmark.
    return [
        signed_report(keys["lm-fra"], [2_400_000, 2_100_000], session=20),
        signed_report(keys["lm-ber"], [3_500_000], session=21),
        signed_report(keys["lm-muc"], [3_600_000], session=22),
    ]


def test_judge_chip_uses_the_registry_region_and_names_its_evidence(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    reports = _near_fra_reports(keys)
    screened = screen_reports([r.raw for r in reports], registry, now_unix_ns=NOW_NS)
    evidence = group_evidence(screened, registry)["chip-1"]
    judgement = judge_chip("chip-1", evidence, registry, region_spec="country:FRA")
    assert judgement.result.region_spec == "country:DEU"  # the registry's, not the caller's
    assert judgement.result.verdict is not Verdict.UNREACHABLE
    assert judgement.result.verdict is not Verdict.VIOLATION  # the disks overlap Germany
    assert judgement.evidence_digests == tuple(sorted(r.digest_hex for r in reports))
    obj = judgement.to_json_dict()
    assert obj["chip"] == obj["target"] == "chip-1"


def test_no_evidence_is_unreachable(registry: Registry) -> None:
    judgement = judge_chip("chip-1", None, registry)
    assert judgement.result.verdict is Verdict.UNREACHABLE
    assert judgement.evidence_digests == ()


def test_all_probes_lost_is_unreachable_and_says_so(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    lost = signed_report(keys["lm-fra"], [None, None], session=23)
    screened = screen_reports([lost.raw], registry, now_unix_ns=NOW_NS)
    judgement = judge_chip("chip-1", group_evidence(screened, registry)["chip-1"], registry)
    assert judgement.result.verdict is Verdict.UNREACHABLE
    assert "every probe lost" in judgement.result.message


def test_unenrolled_chip_is_unreachable_with_the_reason(registry: Registry) -> None:
    judgement = judge_chip("chip-9", None, registry, region_spec="country:NLD")
    assert judgement.result.verdict is Verdict.UNREACHABLE
    assert "not enrolled" in judgement.result.message
    assert "unknown_identity" in judgement.result.message
    with pytest.raises(InputError):
        judge_chip("chip-9", None, registry)  # and no region to judge it against


def test_revoked_chip_is_unreachable_whatever_the_evidence(keys: dict[str, PrivateKey]) -> None:
    valid = make_registry()
    revoked = make_registry(revoked_chip=True)
    report = signed_report(keys["lm-fra"], [2 * MS], chip=chip_key("chip-2"), session=24)
    evidence = group_evidence(screen_reports([report.raw], valid, now_unix_ns=NOW_NS), valid)
    judgement = judge_chip("chip-2", evidence["chip-2"], revoked, region_spec="country:DEU")
    assert judgement.result.verdict is Verdict.UNREACHABLE
    assert "revoked" in judgement.result.message
    assert judgement.evidence_digests == ()


def test_judge_all_keeps_the_requested_order(
    registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    screened = screen_reports(
        [r.raw for r in _near_fra_reports(keys)], registry, now_unix_ns=NOW_NS
    )
    out = judge_all(
        ["chip-9", "chip-1"], screened, registry, region_specs={"chip-9": "country:DEU"}
    )
    assert [j.chip_id for j in out] == ["chip-9", "chip-1"]
    assert out[0].result.verdict is Verdict.UNREACHABLE
    assert out[1].result.model is Model.VACUUM
    assert out[1].result.proof


def test_screened_merge_counts_duplicates(registry: Registry, keys: dict[str, PrivateKey]) -> None:
    a = signed_report(keys["lm-fra"], [1 * MS], session=30)
    b = signed_report(keys["lm-ber"], [1 * MS], session=31)
    one = screen_reports([a.raw], registry, now_unix_ns=NOW_NS)
    two = screen_reports([a.raw, b.raw, b"junk"], registry, now_unix_ns=NOW_NS)
    merged = one.merged(two)
    assert [r.digest_hex for r in merged.reports] == [a.digest_hex, b.digest_hex]
    assert (merged.duplicates, merged.rejected_total) == (1, 1)
    assert isinstance(merged, Screened)


# -- recording ------------------------------------------------------------------------


def test_record_judgement_signs_stores_and_audits(
    tmp_path: Path, registry: Registry, keys: dict[str, PrivateKey]
) -> None:
    reports = _near_fra_reports(keys)
    screened = screen_reports([r.raw for r in reports], registry, now_unix_ns=NOW_NS)
    (judgement,) = judge_all(["chip-1"], screened, registry)
    with open_store(tmp_path / "s.db") as store:
        with pytest.raises(StoreError) as excinfo:  # evidence must be stored first
            record_judgement(store, judgement, signer=verifier_key(), now_unix_ns=NOW_NS)
        assert excinfo.value.reason == "unknown_evidence"
        for r in screened.reports:
            store.add_round(r, received_at_unix_ns=NOW_NS)
        issued = record_judgement(store, judgement, signer=verifier_key(), now_unix_ns=NOW_NS)
        assert issued.record.evidence == judgement.evidence_digests
        assert issued.record.certificate == issued.certificate
        assert verify_audit(store).verdicts == 1
    cert = verify_certificate(issued.certificate, registry, now_unix_s=NOW_NS // 10**9)
    assert cert.chip_id == "chip-1"
    assert cert.verdict == judgement.result.verdict.value
    assert cert.authorized_region_digest_hex == judgement.region.digest_hex
    assert cert.evidence == judgement.evidence_digests


def test_unreachable_certificate_has_no_evidence(tmp_path: Path, registry: Registry) -> None:
    judgement = judge_chip("chip-1", None, registry, region_spec="country:DEU")
    with open_store(tmp_path / "s.db") as store:
        issued = record_judgement(store, judgement, signer=verifier_key(), now_unix_ns=NOW_NS)
    cert = verify_certificate(issued.certificate, registry, now_unix_s=NOW_NS // 10**9)
    assert (cert.verdict, cert.evidence) == ("UNREACHABLE", ())
    # A certificate about a chip the registry does not enrol is not trusted.
    judgement = judge_chip("chip-9", None, registry, region_spec="country:NLD")
    with open_store(tmp_path / "s2.db") as store:
        issued = record_judgement(store, judgement, signer=verifier_key(), now_unix_ns=NOW_NS)
    with pytest.raises(UnknownIdentity):
        verify_certificate(issued.certificate, registry, now_unix_s=NOW_NS // 10**9)
