"""The fleet generator's batch-signed reports: what a verifier sees from landmarks that
sign one Merkle root per upload."""

from __future__ import annotations

from chiploc.protocol import VerifiedRoots, decode_report, verify_report
from chiploc.sim import FleetWorld, sign_fleet_reports, world_rtts_ms
from chiploc.verifier import screen_reports

NOW = 1_800_000_000 * 10**9


def test_fleet_reports_are_batch_signed_per_landmark_and_verify() -> None:
    world = FleetWorld.generate(seed=7, chips=6, landmarks=5)
    plan = {k: world.nearest_landmarks(k, 3) for k in range(6)}
    signed = sign_fleet_reports(world, plan, now_unix_ns=NOW, probes=4, batch_size=4)
    registry = world.registry()
    roots: dict[str, set[bytes]] = {}
    per_landmark: dict[str, int] = {}
    for k, raws in signed.items():
        assert len(raws) == 3
        for lm, raw in zip(plan[k], raws, strict=True):
            report = verify_report(raw, registry)
            # the chip and landmark the plan asked for, with the world's own minimum RTT
            assert (report.chip_id, report.landmark_id) == (
                world.chips[k].id,
                world.landmarks[lm].id,
            )
            assert report.min_rtt_ns is not None
            assert abs(report.min_rtt_ns / 1e6 - world_rtts_ms(world, k, probes=4)[lm]) < 1e-6
            assert report.batch is not None
            roots.setdefault(report.landmark_id, set()).add(report.batch.root)
            per_landmark[report.landmark_id] = per_landmark.get(report.landmark_id, 0) + 1
    # one root per 4 reports of a landmark: ceil(n / 4) signatures, not n
    for lm, n in per_landmark.items():
        assert len(roots[lm]) == -(-n // 4)
    cache = VerifiedRoots()
    all_raws = [r for raws in signed.values() for r in raws]
    screened = screen_reports(all_raws, registry, now_unix_ns=NOW, roots=cache)
    assert len(screened.reports) == len(all_raws) == 18
    assert cache.misses == sum(len(v) for v in roots.values()) < len(all_raws)
    assert {decode_report(r).digest_hex for r in all_raws} == {
        r.digest_hex for r in screened.reports
    }
