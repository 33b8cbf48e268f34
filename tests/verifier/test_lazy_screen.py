"""Lazy screening backed by a sampled full check: a landmark that forges the transcript of a
probe slower than the minimum is caught by the sample, loudly, and none of its reports is
used; the sample is a keyed, reproducible choice whose rate is what was asked."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator

import pytest

from chiploc.protocol import MeasurementReport, PrivateKey, Registry, sign_report
from chiploc.verifier import LazyVerification, Screened, screen_reports

from .test_pipeline import NOW_NS, chip_key, landmark_keys, make_registry, signed_report

KEY = bytes(range(32))


def _forge_slower_probe(landmark: PrivateKey, report: MeasurementReport) -> MeasurementReport:
    """The landmark re-signs its report with a made-up answer on the slowest probe."""
    slowest = max(
        (p for p in report.probes if p.rtt_ns is not None), key=lambda p: (p.rtt_ns, p.seq)
    )
    probes = [
        dataclasses.replace(p, chip_signature=bytes([0x5A]) * 64) if p is slowest else p
        for p in report.probes
    ]
    return sign_report(
        landmark,
        chip_id=report.chip_id,
        session_id=report.session_id,
        chip_address=report.chip_address,
        started_at_unix_ns=report.started_at_unix_ns,
        finished_at_unix_ns=report.finished_at_unix_ns,
        probes=probes,
    )


@pytest.fixture
def registry() -> Registry:
    return make_registry()


def test_sampled_full_check_catches_a_forged_slower_probe_and_flags_the_landmark(
    registry: Registry,
) -> None:
    keys = landmark_keys()
    honest_fra = signed_report(keys["lm-fra"], [5 * 10**6, 6 * 10**6], session=1)
    forged_fra = _forge_slower_probe(
        keys["lm-fra"], signed_report(keys["lm-fra"], [4 * 10**6, 9 * 10**6], session=2)
    )
    honest_ber = signed_report(keys["lm-ber"], [7 * 10**6, 8 * 10**6], session=3)
    raws = [honest_fra.raw, forged_fra.raw, honest_ber.raw]

    # Lazily, the forgery passes: its minimum probe is genuine.
    unsampled = screen_reports(
        raws, registry, now_unix_ns=NOW_NS, lazy=LazyVerification(key=KEY, rate=0.0)
    )
    assert len(unsampled.reports) == 3
    assert unsampled.full_checked == 0

    # Sampled (here: every report), it is caught, and loudly.
    s = screen_reports(raws, registry, now_unix_ns=NOW_NS, lazy=LazyVerification(key=KEY, rate=1))
    assert [r.landmark_id for r in s.reports] == ["lm-ber"]  # nothing of lm-fra is used
    assert s.rejected == {"forged_transcript": 1, "landmark_flagged": 1}
    assert list(s.flagged) == ["lm-fra"]
    assert forged_fra.digest_hex in s.flagged["lm-fra"]
    assert "bad_chip_signature" in s.flagged["lm-fra"]
    assert s.full_checked == 3


def test_flag_raised_in_a_later_batch_drops_the_landmarks_earlier_reports(
    registry: Registry,
) -> None:
    keys = landmark_keys()
    lazy = LazyVerification(key=KEY, rate=1.0)
    first = screen_reports(
        [signed_report(keys["lm-fra"], [5 * 10**6], session=1).raw],
        registry,
        now_unix_ns=NOW_NS,
        lazy=lazy,
    )
    forged = _forge_slower_probe(
        keys["lm-fra"], signed_report(keys["lm-fra"], [4 * 10**6, 9 * 10**6], session=2)
    )
    second = screen_reports([forged.raw], registry, now_unix_ns=NOW_NS, lazy=lazy)
    merged = first.merged(second)
    assert merged.reports == ()
    assert merged.rejected == {"forged_transcript": 1, "landmark_flagged": 1}
    assert list(merged.flagged) == ["lm-fra"]
    with pytest.raises(ValueError, match="flagged"):
        Screened(reports=first.reports, flagged={"lm-fra": "caught"})


def test_lazy_screening_rejects_a_forged_minimum_probe_like_full_screening(
    registry: Registry,
) -> None:
    keys = landmark_keys()
    report = signed_report(keys["lm-fra"], [9 * 10**6, 4 * 10**6], session=1)
    fastest = report.probes[1]
    probes = [
        dataclasses.replace(p, chip_signature=bytes(64)) if p is fastest else p
        for p in report.probes
    ]
    forged = sign_report(
        keys["lm-fra"],
        chip_id=report.chip_id,
        session_id=report.session_id,
        chip_address=report.chip_address,
        started_at_unix_ns=report.started_at_unix_ns,
        finished_at_unix_ns=report.finished_at_unix_ns,
        probes=probes,
    )
    full = screen_reports([forged.raw], registry, now_unix_ns=NOW_NS)
    lazy = screen_reports(
        [forged.raw], registry, now_unix_ns=NOW_NS, lazy=LazyVerification(key=KEY, rate=0.0)
    )
    assert full.rejected == lazy.rejected == {"bad_chip_signature": 1}
    assert full.reports == lazy.reports == ()
    assert lazy.flagged == {}  # rejected outright, as full verification does


def test_sample_is_keyed_reproducible_and_of_the_requested_rate() -> None:
    digests = [hashlib.sha256(i.to_bytes(4, "big")).hexdigest() for i in range(4000)]
    rate = 0.05
    a = LazyVerification(key=KEY, rate=rate)
    picked = [d for d in digests if a.selects(d)]
    # Binomial(4000, 0.05): mean 200, sd ~13.8; 5 sd either side.
    assert abs(len(picked) - 200) < 5 * math.sqrt(4000 * rate * (1 - rate))
    assert picked == [d for d in digests if a.selects(d)]  # a retried batch: same sample
    b = LazyVerification(key=bytes(32), rate=rate)
    other = {d for d in digests if b.selects(d)}
    assert len(other & set(picked)) < 40  # another key, an unrelated sample
    assert all(LazyVerification(key=KEY, rate=1.0).selects(d) for d in digests[:50])
    assert not any(LazyVerification(key=KEY, rate=0.0).selects(d) for d in digests)
    assert a.detection_probability(1) == pytest.approx(0.05)
    assert a.detection_probability(100) == pytest.approx(1 - 0.95**100)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"key": b"short", "rate": 0.1}, "key"),
        ({"key": KEY, "rate": 1.5}, "rate"),
        ({"key": KEY, "rate": float("nan")}, "rate"),
        ({"key": KEY, "rate": True}, "rate"),
    ],
)
def test_bad_sampling_settings_are_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LazyVerification(**kw)  # type: ignore[arg-type]


def test_full_screening_counts_every_report_as_fully_checked(registry: Registry) -> None:
    keys = landmark_keys()
    raws = [signed_report(keys[i], [5 * 10**6], chip=chip_key()).raw for i in keys]
    s = screen_reports(raws, registry, now_unix_ns=NOW_NS)
    assert (len(s.reports), s.full_checked, dict(s.flagged)) == (3, 3, {})


def test_screening_leaves_the_garbage_collector_as_it_found_it(registry: Registry) -> None:
    """Screening pauses the cyclic collector for speed; it is back on afterwards, even when
    the input fails midway, and a collector someone else turned off stays off."""
    import gc

    def failing() -> Iterator[bytes]:
        yield b"not a report"
        raise RuntimeError("the source broke")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        screen_reports(failing(), registry, now_unix_ns=NOW_NS)
    assert gc.isenabled()
    screened = screen_reports([b"junk"], registry, now_unix_ns=NOW_NS)
    assert dict(screened.rejected) == {"bad_magic": 1}
    assert gc.isenabled()
    gc.disable()
    try:
        screen_reports([b"junk"], registry, now_unix_ns=NOW_NS)
        assert not gc.isenabled()
    finally:
        gc.enable()
