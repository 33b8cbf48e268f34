"""Estimates are labelled, never proofs; estimate models never cry wolf.

* Every target with an answer gets an estimate naming its method, the radii it used and
  an error radius; the estimate never changes the verdict or the region.
* Under fiber or calibrated, an empty region is INCONCLUSIVE (a model miss) naming the
  conflicting landmarks, with an estimate; only the vacuum proof says INCONSISTENT.
* Where every path is slower than 2/3 c (as real ones are), the truth lies within each
  estimate's error radius.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.cli import main
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import (
    DEFAULT_ESTIMATOR,
    Calibration,
    Estimator,
    Measurement,
    Model,
    Verdict,
    estimate_many,
    geodesic_km,
    load_region,
    solve,
    solve_many,
)
from chiploc.solver._geodesy import GEOD

FIBER = C * 2 / 3
DEU = load_region("country:DEU")
NOT_CHN = load_region("not:CHN")


def _at(lat: float, lon: float, az: float, km: float) -> tuple[float, float]:
    lo, la, _ = GEOD.fwd(lon, lat, az, km * 1000)
    return float(la), float(lo)


def _world(
    rng: random.Random, truth: tuple[float, float], n: int, lo: float = 1.5, hi: float = 3.0
) -> list[Measurement]:
    """``n`` landmarks up to 3,000 km from ``truth``; each route ``U(lo, hi)`` times the
    great-circle distance at 2/3 c, plus up to 1 ms of fixed delay."""
    out = []
    for k in range(n):
        la, lo_ = _at(*truth, rng.uniform(0, 360), rng.uniform(5, 3000))
        d = float(geodesic_km(truth[0], truth[1], la, lo_))
        rtt = 2 * d * rng.uniform(lo, hi) / FIBER + rng.uniform(0, 1.0)
        out.append(Measurement(landmark=f"l{k}", lat=la, lon=lo_, rtt_ms=rtt))
    return out


@pytest.mark.parametrize("model", list(Model))
@pytest.mark.parametrize("estimator", list(Estimator))
def test_every_estimate_is_present_and_labelled(model: Model, estimator: Estimator) -> None:
    rng = random.Random(7)
    fleet = [(f"t{k}", _world(rng, (51.0, 10.0), rng.randint(1, 12))) for k in range(20)]
    fleet.append(("silent", []))
    cal = Calibration.fit(
        [(m.landmark, m.lat, m.lon, 51.0, 10.0, m.rtt_ms) for _, ms in fleet[:3] for m in ms]
    )
    results = solve_many(fleet, DEU, model=model, calibration=cal, estimator=estimator)
    plain = solve_many(fleet, DEU, model=model, calibration=cal, estimate=False)
    for r, p in zip(results, plain, strict=True):
        assert r.verdict is p.verdict  # an estimate never changes a verdict
        assert r.region == p.region
        d = r.to_json_dict()
        assert d["basis"] == ("proof" if model is Model.VACUUM else "estimate")
        if r.target == "silent":
            assert r.verdict is Verdict.UNREACHABLE
            assert r.estimate is None
            continue
        est = r.estimate
        assert est is not None, r.target
        assert est.method is estimator
        assert est.model in (Model.FIBER, Model.CALIBRATED)
        assert math.isfinite(est.error_radius_km)
        assert d["estimate"]["basis"] == "estimate"
        assert d["estimate"]["method"] == estimator.value
        assert d["estimate"]["error_radius_km"] >= 0


def test_default_estimator_is_the_documented_one() -> None:
    ms = _world(random.Random(1), (48.0, 11.0), 6)
    est = solve("x", ms, DEU).estimate
    assert est is not None
    assert est.method is DEFAULT_ESTIMATOR is Estimator.CBG_DEPTH


def _slow_calibration(ms: list[Measurement]) -> Calibration:
    """A calibration whose peers all answered as if paths were 5x slower than fibre: its
    bestlines turn the honest RTTs below into disks too small to meet."""
    rows = []
    for m in ms:
        for az in (0.0, 120.0, 240.0):
            for km in (100.0, 400.0):
                plat, plon = _at(m.lat, m.lon, az, km)
                rows.append((m.landmark, m.lat, m.lon, plat, plon, 2 * km * 5 / FIBER + 1))
    return Calibration.fit(rows)


def test_an_empty_calibrated_region_is_a_model_miss_not_a_lie() -> None:
    truth = (50.5, 9.0)
    ms = _world(random.Random(3), truth, 6, lo=1.5, hi=2.0)
    res = solve("x", ms, DEU, model=Model.CALIBRATED, calibration=_slow_calibration(ms))
    assert res.verdict is Verdict.INCONCLUSIVE
    assert res.reason == "model_miss"
    assert res.region is None
    assert not res.proof
    assert len(res.conflicting_landmarks) >= 2
    assert set(res.conflicting_landmarks) <= {m.landmark for m in ms}
    assert "no evidence that a landmark lies" in res.message
    assert res.likely_liars == ()
    assert res.estimate is not None
    assert res.to_json_dict()["basis"] == "estimate"
    # The same honest RTTs under the proof model are consistent and hold the truth.
    proof = solve("x", ms, DEU)
    assert proof.verdict is not Verdict.INCONSISTENT
    # and the estimate still lands near the truth, within its stated radius
    err = float(geodesic_km(truth[0], truth[1], res.estimate.lat, res.estimate.lon))
    assert err <= res.estimate.error_radius_km


def test_only_the_vacuum_model_calls_an_empty_region_inconsistent() -> None:
    # Two landmarks 600 km apart both answering within 1 ms: light cannot do that.
    ms = [
        Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=1.0),
        Measurement(landmark="vie", lat=48.21, lon=16.37, rtt_ms=1.0),
    ]
    proof = solve("x", ms, DEU)
    assert proof.verdict is Verdict.INCONSISTENT
    assert proof.to_json_dict()["basis"] == "proof"
    for model in (Model.FIBER, Model.CALIBRATED):
        res = solve("x", ms, DEU, model=model, calibration=Calibration())
        assert res.verdict is Verdict.INCONCLUSIVE
        assert res.reason == "model_miss"
        assert set(res.conflicting_landmarks) == {"fra", "vie"}
        assert res.estimate is not None


@given(
    seed=st.integers(0, 2**32 - 1),
    model=st.sampled_from([Model.FIBER, Model.CALIBRATED]),
    tolerate=st.integers(0, 2),
)
def test_an_estimate_model_is_never_inconsistent(seed: int, model: Model, tolerate: int) -> None:
    rng = random.Random(seed)
    truth = (rng.uniform(-60, 70), rng.uniform(-180, 180))
    ms = _world(rng, truth, rng.randint(2, 8), lo=rng.uniform(0.3, 1.5), hi=2.0)
    peers = [(m.landmark, m.lat, m.lon, *_at(m.lat, m.lon, 90, 300), rng.uniform(1, 40))
             for m in ms for _ in range(2)]  # fmt: skip
    res = solve("x", ms, NOT_CHN, model=model, calibration=Calibration.fit(peers),
                tolerate=tolerate)  # fmt: skip
    assert res.verdict is not Verdict.INCONSISTENT
    assert res.estimate is not None


@given(seed=st.integers(0, 2**32 - 1), estimator=st.sampled_from(list(Estimator)))
def test_the_truth_lies_within_the_error_radius_when_paths_are_slower_than_fibre(
    seed: int, estimator: Estimator
) -> None:
    rng = random.Random(seed)
    truth = (rng.uniform(-60, 70), rng.uniform(-180, 180))
    ms = _world(rng, truth, rng.randint(1, 10), lo=1.0, hi=4.0)
    (est,) = estimate_many([ms], estimator)
    assert est is not None
    err = float(geodesic_km(truth[0], truth[1], est.lat, est.lon))
    assert err <= est.error_radius_km + 1e-6


def test_uniform_inflation_is_recovered_by_min_max_ratio() -> None:
    """If every path is inflated alike, the disks shrunk by one factor meet at the target."""
    rng = random.Random(11)
    truth = (47.0, 5.0)
    ms = _world(rng, truth, 8, lo=2.0, hi=2.0)
    ms = [Measurement(landmark=m.landmark, lat=m.lat, lon=m.lon, rtt_ms=2 * float(
        geodesic_km(truth[0], truth[1], m.lat, m.lon)) * 2.0 / FIBER) for m in ms]  # fmt: skip
    (est,) = estimate_many([ms], Estimator.MIN_MAX_RATIO)
    (nearest,) = estimate_many([ms], Estimator.NEAREST)
    assert est is not None
    assert nearest is not None
    err = float(geodesic_km(truth[0], truth[1], est.lat, est.lon))
    # within the sphere-vs-ellipsoid difference of the distances (0.3 %), far better than
    # the nearest landmark
    assert err < 0.003 * max(float(geodesic_km(truth[0], truth[1], m.lat, m.lon)) for m in ms)
    assert err < float(geodesic_km(truth[0], truth[1], nearest.lat, nearest.lon)) / 5


def test_the_cli_prints_each_estimate_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "m.csv"
    p.write_text("target,landmark,lat,lon,rtt_ms\nc,fra,50.11,8.68,3\nc,ber,52.52,13.40,4\n")
    assert main(["solve", str(p), "--region", "country:DEU", "--estimator", "nearest"]) == 0
    out = capsys.readouterr().out
    assert "estimate (not a proof; nearest on fiber radii): 50.110, 8.680" in out
    with pytest.raises(SystemExit) as e:  # argparse: a usage error
        main(["solve", str(p), "--region", "country:DEU", "--estimator", "median"])
    assert e.value.code == 2
