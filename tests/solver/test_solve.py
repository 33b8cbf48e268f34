"""solve(): soundness properties worldwide, explicit cases, verdicts, tolerate."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import MeasurementError
from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import (
    Calibration,
    Estimator,
    Measurement,
    Model,
    Verdict,
    fit_bestline,
    geodesic_disk,
    geodesic_km,
    load_region,
    polygon_area_km2,
    radius_km,
    solve,
    solve_many,
)
from chiploc.solver._geodesy import GEOD, ecef_km, geodesic_to_chord_km
from chiploc.solver._models import rtt_for_radius_ms

DEU = load_region("country:DEU")


def _rtt(lat: float, lon: float, la: float, lo: float, stretch: float = 1.0) -> float:
    chord = float(np.linalg.norm(ecef_km(lat, lon) - ecef_km(la, lo)))
    return 2 * chord / C * stretch


def _inside(geom: shapely.Geometry, lat: float, lon: float) -> bool:
    return bool(shapely.intersects_xy(geom, lon, lat))


point = st.tuples(st.floats(-1, 1).map(lambda s: math.degrees(math.asin(s))), st.floats(-180, 180))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[float, float, list[Measurement]]:
    lat, lon = draw(point)
    n = draw(st.integers(1, 8))
    ms = []
    for k in range(n):
        if draw(st.booleans()):
            la, lo = draw(point)
        else:  # a landmark near the target
            az = draw(st.floats(0, 360))
            d = draw(st.floats(0, 3000))
            lo_, la_, _ = GEOD.fwd(lon, lat, az, d * 1000)
            la, lo = float(la_), float(lo_)
        stretch = draw(st.floats(1.0, 2.5))
        ms.append(
            Measurement(landmark=f"l{k}", lat=la, lon=lo, rtt_ms=_rtt(lat, lon, la, lo, stretch))
        )
    return lat, lon, ms


@given(scenario())
def test_true_location_always_inside(sc: tuple[float, float, list[Measurement]]) -> None:
    lat, lon, ms = sc
    res = solve("t", ms, DEU, estimate=False)
    assert res.verdict is not Verdict.INCONSISTENT
    assert res.region is not None
    assert _inside(res.region, lat, lon)


@given(scenario(), point, st.floats(1.0, 2.0))
def test_adding_a_landmark_never_grows_the_region(
    sc: tuple[float, float, list[Measurement]], extra: tuple[float, float], stretch: float
) -> None:
    lat, lon, ms = sc
    before = solve("t", ms, DEU, estimate=False)
    la, lo = extra
    more = [
        *ms,
        Measurement(landmark="extra", lat=la, lon=lo, rtt_ms=_rtt(lat, lon, la, lo, stretch)),
    ]
    after = solve("t", more, DEU, estimate=False)
    assert before.region is not None
    assert after.region is not None
    assert after.area_km2 is not None
    assert before.area_km2 is not None
    assert after.area_km2 <= before.area_km2 * (1 + 1e-9) + 1e-6
    assert shapely.difference(after.region, before.region).area < 1e-9


def _lms(
    lat: float, lon: float, spots: list[tuple[str, float, float]], stretch: float
) -> list[Measurement]:
    return [
        Measurement(landmark=n, lat=la, lon=lo, rtt_ms=_rtt(lat, lon, la, lo, stretch))
        for n, la, lo in spots
    ]


EUROPE = [
    ("fra", 50.11, 8.68),
    ("ber", 52.52, 13.40),
    ("muc", 48.14, 11.58),
    ("ham", 53.55, 9.99),
    ("ams", 52.37, 4.90),
    ("par", 48.86, 2.35),
]


def test_compliant_with_margin_and_json() -> None:
    res = solve("chip-1", _lms(50.9, 10.5, EUROPE, 1.05), DEU)
    assert res.verdict is Verdict.COMPLIANT
    assert res.proof
    assert res.margin_km is not None
    assert 0 < res.margin_km < 200
    d = res.to_json_dict()
    assert set(d) == {
        "target", "verdict", "proof", "model", "region_spec", "region", "region_center",
        "area_km2", "margin_km", "binding_landmarks", "conflicting_landmarks", "settle",
        "tolerate", "estimate", "landmarks", "message", "clock_tolerance_ppm", "basis", "reason",
    }  # fmt: skip
    assert d["basis"] == "proof"
    assert d["reason"] is None
    assert d["clock_tolerance_ppm"] == MAX_CLOCK_RATE_ERROR_PPM
    assert d["region"]["type"] in ("Polygon", "MultiPolygon")
    assert d["estimate"]["model"] == "fiber"
    assert all(lm["binding"] == (lm["id"] in d["binding_landmarks"]) for lm in d["landmarks"])
    # The margin never overstates: the border is at least that far from every region point.
    border = DEU.inner_border
    xy = shapely.get_coordinates(res.region)
    nearest = min(
        float(geodesic_km(la, lo, border.lat_a, border.lon_a).min()) for lo, la in xy[::8]
    )
    assert res.margin_km <= nearest + 1e-6


def test_violation_and_inconclusive_with_settle() -> None:
    res = solve("chip-2", _lms(48.86, 2.35, EUROPE, 1.02), DEU)  # in Paris
    assert res.verdict is Verdict.VIOLATION
    assert res.margin_km is not None
    assert res.margin_km > 0
    res = solve("chip-3", _lms(50.9, 10.5, EUROPE, 1.6), DEU)
    assert res.verdict is Verdict.INCONCLUSIVE
    assert res.settle
    s = res.settle[0]
    assert s.rtt_needed_ms < s.rtt_ms
    # Taking any of the advice settles it, exactly as claimed.
    for s in res.settle:
        better = [
            Measurement(landmark=m.landmark, lat=m.lat, lon=m.lon, rtt_ms=s.rtt_needed_ms)
            if m.landmark == s.landmark
            else m
            for m in _lms(50.9, 10.5, EUROPE, 1.6)
        ]
        assert solve("chip-3", better, DEU).verdict is s.would_give


def test_unreachable_and_inconsistent_minimal_set() -> None:
    assert solve("x", [], DEU).verdict is Verdict.UNREACHABLE
    ms = _lms(50.9, 10.5, EUROPE, 1.1)
    # Two landmarks claiming the chip is right next to each of them: they conflict.
    ms += [
        Measurement(landmark="liar-nyc", lat=40.7, lon=-74.0, rtt_ms=1.0),
    ]
    res = solve("x", ms, DEU)
    assert res.verdict is Verdict.INCONSISTENT
    assert res.region is None
    assert res.area_km2 is None
    assert res.estimate is None
    assert "liar-nyc" in res.conflicting_landmarks
    assert len(res.conflicting_landmarks) == 2
    # Irreducible: removing any member leaves a consistent set.
    for drop in res.conflicting_landmarks:
        rest = [m for m in ms if m.landmark in res.conflicting_landmarks and m.landmark != drop]
        assert solve("x", rest, DEU).verdict is not Verdict.INCONSISTENT


def test_tolerate_catches_a_lying_landmark() -> None:
    # Chip in Paris; the liar in Berlin claims 0.1 ms, dragging the region into Germany.
    honest = _lms(
        48.86, 2.35, [("par", 48.85, 2.34), ("lon", 51.5, -0.12), ("bru", 50.85, 4.35)], 1.2
    )
    liar = Measurement(
        landmark="ber", lat=52.52, lon=13.40, rtt_ms=_rtt(48.86, 2.35, 52.52, 13.40, 1.0) * 0.9
    )
    plain = solve("x", [*honest, liar], DEU, tolerate=0)
    tolerant = solve("x", [*honest, liar], DEU, tolerate=1)
    assert plain.verdict is Verdict.INCONSISTENT
    assert tolerant.verdict is Verdict.VIOLATION
    assert ("ber",) in tolerant.likely_liars
    assert "ber" in tolerant.message
    # A subtler liar keeps the set consistent but drags the region into Germany: tolerate
    # refuses to call it COMPLIANT.
    ms = _lms(50.9, 10.5, EUROPE, 1.05)
    assert solve("x", ms, DEU, tolerate=1).verdict in (Verdict.COMPLIANT, Verdict.INCONCLUSIVE)
    region_union = solve("x", ms, DEU, tolerate=1).region
    assert region_union is not None
    assert _inside(region_union, 50.9, 10.5)


@pytest.mark.parametrize(
    ("lat", "lon", "spots"),
    [
        (-17.8, 178.1, [("suv", -18.14, 178.44), ("nan", -17.76, 177.44), ("tbu", -21.2, -175.2)]),
        (65.9, -169.5, [("nome", 64.5, -165.4), ("anadyr", 64.7, 177.5), ("uelen", 66.16, -169.8)]),
        (89.5, 30.0, [("alert", 82.5, -62.3), ("ny", 78.9, 11.9), ("bar", 80.0, 100.0)]),
        (-89.0, 0.0, [("pole", -90.0, 0.0), ("mcm", -77.85, 166.67)]),
    ],
)
def test_antimeridian_and_poles(
    lat: float, lon: float, spots: list[tuple[str, float, float]]
) -> None:
    ms = _lms(lat, lon, spots, 1.3)
    res = solve("x", ms, load_region("not:CHN"))
    assert res.region is not None
    assert _inside(res.region, lat, lon)
    assert res.verdict is Verdict.COMPLIANT
    xmin, _, xmax, _ = res.region.bounds
    assert -180 <= xmin <= xmax <= 180


def test_huge_and_tiny_bounds() -> None:
    far = Measurement(landmark="far", lat=-40.0, lon=175.0, rtt_ms=2 * 15_000 / C)
    res = solve("x", [far], DEU)
    assert res.landmarks[0].radius_km > 15_000
    assert res.verdict is Verdict.INCONCLUSIVE
    near = Measurement(landmark="near", lat=50.0, lon=10.0, rtt_ms=2 * 2.0 / C)
    res = solve("x", [near], DEU)
    assert res.verdict is Verdict.COMPLIANT
    assert res.area_km2 is not None
    assert res.area_km2 == pytest.approx(math.pi * 4, rel=0.01)
    whole = Measurement(landmark="w", lat=0.0, lon=0.0, rtt_ms=200.0)
    res = solve("x", [whole], DEU)
    assert res.landmarks[0].radius_km == math.inf
    assert res.to_json_dict()["landmarks"][0]["radius_km"] is None


def test_landmark_on_the_border() -> None:
    # Aachen-ish point on the DEU/BEL/NLD border; a 5 km bound straddles it.
    lat, lon = 50.7539, 6.0208
    m = Measurement(landmark="tri", lat=lat, lon=lon, rtt_ms=2 * 5.0 / C)
    assert solve("x", [m], DEU).verdict is Verdict.INCONCLUSIVE


def test_overhead_and_models() -> None:
    m = Measurement(landmark="a", lat=0.0, lon=0.0, rtt_ms=10.0, overhead_ms=4.0)
    assert radius_km(m, Model.FIBER, clock_tolerance_ppm=0) == pytest.approx(3 * C * 2 / 3)
    assert radius_km(m, Model.VACUUM) > 3 * C
    res = solve("x", [m], DEU, model=Model.FIBER)
    assert not res.proof
    assert "estimate" in res.message
    with pytest.raises(MeasurementError, match="exceeds"):
        Measurement(landmark="a", lat=0.0, lon=0.0, rtt_ms=1.0, overhead_ms=2.0)
    with pytest.raises(MeasurementError, match="duplicate"):
        solve("x", [m, m], DEU)
    with pytest.raises(ValueError, match="tolerate"):
        solve("x", [m], DEU, tolerate=-1)


def test_calibrated_bestline() -> None:
    d = [100.0, 500.0, 1000.0, 2000.0]
    rtt = [3.0, 8.0, 14.0, 30.0]
    line = fit_bestline(d, rtt)
    assert line.slope_ms_per_km >= 2 / C
    assert all(line.rtt_ms(x) <= t + 1e-9 for x, t in zip(d, rtt, strict=True))
    cal = Calibration.fit([("a", 0.0, 0.0, 0.0, 1.0, 3.0), ("a", 0.0, 0.0, 0.0, 5.0, 8.0)])
    m = Measurement(landmark="a", lat=0.0, lon=0.0, rtt_ms=6.0)
    r = radius_km(m, Model.CALIBRATED, cal)
    assert 0 < r < radius_km(m, Model.VACUUM)
    res = solve("x", [m], DEU, model=Model.CALIBRATED, calibration=cal, estimator=Estimator.CBG)
    assert res.estimate is not None
    assert res.estimate.model is Model.CALIBRATED  # CBG proper: the calibration's bestlines
    assert res.estimate.method is Estimator.CBG


def test_tightness_against_dense_grid() -> None:
    lat, lon = 50.0, 10.0
    ms = _lms(lat, lon, EUROPE, 1.3)
    res = solve("x", ms, DEU, estimate=False)
    assert res.region is not None
    assert res.area_km2 is not None
    minx, miny, maxx, maxy = res.region.bounds
    gx, gy = np.meshgrid(np.linspace(minx, maxx, 500), np.linspace(miny, maxy, 500))
    inside = np.ones(gx.size, dtype=bool)
    for m in ms:
        inside &= geodesic_km(m.lat, m.lon, gy.ravel(), gx.ravel()) <= radius_km(m, Model.VACUUM)
    cells = shapely.box(minx, miny, maxx, maxy)
    ref = polygon_area_km2(cells) * inside.mean()
    assert 0.98 < res.area_km2 / ref < 1.02
    assert geodesic_disk(lat, lon, 1.0).is_valid


@pytest.mark.parametrize("ppm", [0.0, 1.0, 500.0, 20_000.0])
@pytest.mark.parametrize("model", [Model.VACUUM, Model.FIBER])
def test_clock_tolerance_widens_the_rtt_by_exactly_its_factor(ppm: float, model: Model) -> None:
    e = ppm * 1e-6
    m = Measurement(landmark="a", lat=50.0, lon=10.0, rtt_ms=9.0)
    exact = radius_km(m, model, clock_tolerance_ppm=0.0)
    widened = radius_km(m, model, clock_tolerance_ppm=ppm)
    if model is Model.FIBER:  # linear in the RTT
        assert widened == pytest.approx(exact / (1 - e), rel=1e-12)
    else:  # the chord is linear in the RTT; the geodesic radius is a function of the chord
        assert geodesic_to_chord_km(widened) == pytest.approx(
            geodesic_to_chord_km(exact) / (1 - e), rel=1e-12
        )
    assert widened >= exact
    # A landmark-proven overhead is discounted by the fastest possible clock.
    mo = Measurement(landmark="a", lat=50.0, lon=10.0, rtt_ms=9.0, overhead_ms=3.0)
    fib = radius_km(mo, Model.FIBER, clock_tolerance_ppm=ppm)
    assert fib == pytest.approx((9.0 / (1 - e) - 3.0 / (1 + e)) / 2 * C * 2 / 3, rel=1e-12)
    # rtt_for_radius_ms inverts radius_km.
    assert rtt_for_radius_ms(mo, fib, Model.FIBER, clock_tolerance_ppm=ppm) == pytest.approx(
        9.0, rel=1e-12
    )


def test_solve_uses_the_clock_tolerance_and_reports_it() -> None:
    ms = _lms(50.9, 10.5, EUROPE, 1.3)
    strict = solve("x", ms, DEU, estimate=False, clock_tolerance_ppm=0.0)
    default = solve("x", ms, DEU, estimate=False)
    wide = solve("x", ms, DEU, estimate=False, clock_tolerance_ppm=50_000.0)
    assert default.clock_tolerance_ppm == MAX_CLOCK_RATE_ERROR_PPM == 500.0
    assert wide.to_json_dict()["clock_tolerance_ppm"] == 50_000.0
    for a, b in zip(strict.landmarks, default.landmarks, strict=True):
        assert geodesic_to_chord_km(b.radius_km) == pytest.approx(
            geodesic_to_chord_km(a.radius_km) / (1 - 5e-4), rel=1e-12
        )
    assert strict.area_km2 is not None
    assert default.area_km2 is not None
    assert wide.area_km2 is not None
    assert strict.area_km2 < default.area_km2 < wide.area_km2
    for bad in (-1.0, math.nan, math.inf, 100_001.0):
        with pytest.raises(ValueError, match="clock_tolerance_ppm"):
            solve("x", ms, DEU, clock_tolerance_ppm=bad)


@given(scenario(), st.floats(0.0, 5000.0))
def test_slow_landmark_clock_within_tolerance_keeps_the_chip_inside(
    sc: tuple[float, float, list[Measurement]], slow_ppm: float
) -> None:
    # Each landmark's clock runs slow by up to the tolerance: it under-measures every RTT.
    lat, lon, ms = sc
    slow = [
        Measurement(
            landmark=m.landmark, lat=m.lat, lon=m.lon, rtt_ms=m.rtt_ms * (1 - slow_ppm * 1e-6)
        )
        for m in ms
    ]
    res = solve("t", slow, DEU, estimate=False, clock_tolerance_ppm=slow_ppm)
    assert res.region is not None
    assert _inside(res.region, lat, lon)


@pytest.mark.parametrize("one_per_block", [False, True])
@pytest.mark.parametrize("spec", ["country:DEU", "not:DEU", "countries:DEU,FRA,NLD,DNK"])
@given(
    disks=st.lists(
        st.tuples(st.floats(40.0, 62.0), st.floats(-5.0, 25.0), st.floats(20.0, 2000.0)),
        min_size=1,
        max_size=4,
    )
)
def test_settle_zone_segments_meeting_region_are_exact(
    spec: str, one_per_block: bool, disks: list[tuple[float, float, float]]
) -> None:
    """_meeting (one predicate query and one point test per run, for several regions at
    once, in blocks of regions) = the polygon predicate query of each region alone."""
    from chiploc.solver import _settle
    from chiploc.solver._intersect import _Shape
    from chiploc.solver._regions import coarse_zone
    from chiploc.solver._settle import _meeting

    regions = [geodesic_disk(lat, lon, radius) for lat, lon, radius in disks]
    shapes = [_Shape.of(region) for region in regions]
    seg_a = np.concatenate([shape.seg_a for shape in shapes])
    seg_b = np.concatenate([shape.seg_b for shape in shapes])
    lines = shapely.linestrings(np.stack([seg_a, seg_b], axis=1))
    line_job = np.repeat(np.arange(len(shapes)), [shape.seg_a.shape[0] for shape in shapes])
    zone = coarse_zone(load_region(spec))
    cells = _settle._MEETING_CELLS
    if one_per_block:  # a big zone's case: several blocks of regions
        _settle._MEETING_CELLS = zone.lon_a.size  # type: ignore[misc]
    try:
        cross_inner, cross_outer, meets = _meeting(
            lines, line_job, np.array(regions, dtype=object), zone
        )
    finally:
        _settle._MEETING_CELLS = cells  # type: ignore[misc]
    ia, ja = zone.tree.query(lines, predicate="intersects")
    for cross, mine in ((cross_inner, ja < zone.split), (cross_outer, ja >= zone.split)):
        want = np.zeros(len(lines), dtype=bool)
        want[ia[mine]] = True
        assert np.array_equal(cross, want)
    for j, region in enumerate(regions):
        want_meets = np.zeros(zone.lon_a.size, dtype=bool)
        want_meets[zone.tree.query(region, predicate="intersects")] = True
        assert np.array_equal(meets[j], want_meets)


@pytest.mark.parametrize("tolerate", [0, 1])
def test_solve_many_gives_what_solve_gives(tolerate: int) -> None:
    """Built together or one by one, every target gets the same result."""
    fleet = [
        ("berlin", _lms(52.5, 13.4, EUROPE, 1.3)),
        ("nobody", []),
        ("paris", _lms(48.9, 2.35, EUROPE, 1.6)),
        ("far", _lms(-33.9, 151.2, EUROPE, 1.1)),
        (
            "liar",
            [
                *_lms(50.0, 10.0, EUROPE, 1.2)[:3],
                Measurement(landmark="x", lat=-30.0, lon=150.0, rtt_ms=1.0),
            ],
        ),
    ]
    many = solve_many(fleet, DEU, tolerate=tolerate)
    one = [solve(t, ms, DEU, tolerate=tolerate) for t, ms in fleet]
    for a, b in zip(many, one, strict=True):
        # Rings built in one batch may differ from rings built alone by rounding (1e-9 deg).
        ja, jb = a.to_json_dict(), b.to_json_dict()
        for key in ("region", "area_km2", "margin_km", "estimate", "settle", "region_center"):
            ja.pop(key), jb.pop(key)
        assert ja == jb
        assert (a.area_km2 is None) == (b.area_km2 is None)
        if a.area_km2 is not None and b.area_km2 is not None:
            assert a.area_km2 == pytest.approx(b.area_km2, rel=1e-6)
        assert [(s.landmark, s.would_give) for s in a.settle] == [
            (s.landmark, s.would_give) for s in b.settle
        ]
    assert many[1].verdict is Verdict.UNREACHABLE


@pytest.mark.parametrize("spec", ["country:DEU", "countries:DEU,FRA,NLD", "not:DEU"])
def test_fleet_advice_is_each_targets_own(spec: str) -> None:
    """Settle advice and margins made for a whole fleet at once (one array per step)
    are what each target gets alone; most of these targets get advice."""
    rng = np.random.default_rng(11)
    fleet = []
    for k in range(30):
        lat, lon = float(rng.uniform(47.5, 54.5)), float(rng.uniform(6.5, 14.5))
        ms = []
        for j in range(int(rng.integers(2, 9))):
            lo_, la_, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360), rng.uniform(50, 2500) * 1000)
            la, lo = float(la_), float(lo_)
            ms.append(
                Measurement(landmark=f"l{j}", lat=la, lon=lo, rtt_ms=_rtt(lat, lon, la, lo, 1.05))
            )
        fleet.append((f"t{k}", ms))
    zone = load_region(spec)
    many = solve_many(fleet, zone, estimate=False)
    assert sum(bool(r.settle) for r in many) >= 10
    for (target, ms), got in zip(fleet, many, strict=True):
        one = solve(target, ms, zone, estimate=False)
        assert got.verdict is one.verdict
        assert [(s.landmark, s.would_give) for s in got.settle] == [
            (s.landmark, s.would_give) for s in one.settle
        ]
        for a, b in zip(got.settle, one.settle, strict=True):
            assert a.rtt_needed_ms == pytest.approx(b.rtt_needed_ms, rel=1e-6)
        assert (got.margin_km is None) == (one.margin_km is None)
        if got.margin_km is not None and one.margin_km is not None:
            assert got.margin_km == pytest.approx(one.margin_km, rel=1e-6, abs=1e-6)


def test_solve_many_refuses_a_duplicate_landmark() -> None:
    ms = _lms(52.5, 13.4, EUROPE, 1.3)
    with pytest.raises(MeasurementError, match="duplicate"):
        solve_many([("a", ms), ("b", [ms[0], ms[0]])], DEU)


@pytest.mark.parametrize("model", [Model.VACUUM, Model.FIBER, Model.CALIBRATED])
@given(
    st.lists(st.tuples(st.floats(0.0, 200.0), st.floats(0.0, 1.0)), min_size=0, max_size=12),
    st.floats(0.0, 100_000.0),
)
def test_radii_are_radius_of_each(
    model: Model, rtts: list[tuple[float, float]], ppm: float
) -> None:
    from chiploc.solver._models import radii_km

    ms = [
        Measurement(landmark=f"l{k}", lat=0.0, lon=0.0, rtt_ms=rtt, overhead_ms=rtt * frac)
        for k, (rtt, frac) in enumerate(rtts)
    ]
    got = radii_km(ms, model, clock_tolerance_ppm=ppm)
    want = [radius_km(m, model, clock_tolerance_ppm=ppm) for m in ms]
    assert got.tolist() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("model", [Model.VACUUM, Model.FIBER, Model.CALIBRATED])
@given(
    st.lists(st.tuples(st.floats(0.0, 25_000.0), st.floats(0.0, 50.0)), min_size=0, max_size=12),
    st.floats(0.0, 100_000.0),
)
def test_rtts_for_radii_are_rtt_for_radius_of_each(
    model: Model, pairs: list[tuple[float, float]], ppm: float
) -> None:
    from chiploc.solver._models import rtt_for_radius_ms, rtts_for_radii_ms

    ms = [
        Measurement(landmark=f"l{k}", lat=0.0, lon=0.0, rtt_ms=100.0, overhead_ms=overhead)
        for k, (_, overhead) in enumerate(pairs)
    ]
    radii = np.array([r for r, _ in pairs], dtype=np.float64)
    got = rtts_for_radii_ms(ms, radii, model, clock_tolerance_ppm=ppm)
    want = [
        rtt_for_radius_ms(m, r, model, clock_tolerance_ppm=ppm)
        for m, r in zip(ms, radii.tolist(), strict=True)
    ]
    assert got.tolist() == pytest.approx(want, rel=1e-12)


def test_lockstep_estimates_take_the_same_steps() -> None:
    """Many estimates at once (numpy lockstep) land where each alone (plain Python) does."""
    from chiploc.solver._estimate import estimate_position, estimate_positions

    rng = np.random.default_rng(7)
    problems = []
    for k in range(40):
        lat, lon = float(rng.uniform(-60, 60)), float(rng.uniform(-180, 180))
        spots = [
            (f"l{j}", lat + float(rng.uniform(-8, 8)), lon + float(rng.uniform(-8, 8)))
            for j in range(3 + k % 14)
        ]
        ms = _lms(lat, lon, spots, 1.0 + float(rng.uniform(0, 0.8)))
        problems.append((ms, (lat + 1.0, lon - 1.0)))
    problems.append(([], (0.0, 0.0)))
    together = estimate_positions(problems, Model.FIBER, None, 500.0)
    alone = [estimate_position(ms, Model.FIBER, None, s, 500.0) for ms, s in problems]
    assert together[-1] is None
    assert alone[-1] is None
    for a, b in zip(together[:-1], alone[:-1], strict=True):
        assert a is not None
        assert b is not None
        assert a == pytest.approx(b, abs=1e-6)


def _residuals(
    x: npt.NDArray[np.float64],
    la: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    d: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The estimate's weighted residuals at (lat, lon) = x (degrees), landmarks in radians."""
    from chiploc.solver._estimate import _R_MEAN_KM

    p, q = np.radians(x[0]), np.radians(x[1])
    cosc = np.sin(p) * np.sin(la) + np.cos(p) * np.cos(la) * np.cos(q - lo)
    out: npt.NDArray[np.float64] = (_R_MEAN_KM * np.arccos(np.clip(cosc, -1, 1)) - d) * w
    return out


def test_estimate_reaches_the_least_squares_optimum_of_scipy() -> None:
    """The hand-written Levenberg-Marquardt (written for speed, docs/solver.md) lands where
    scipy.optimize.least_squares lands on the same weighted residuals from the same start."""
    from scipy.optimize import least_squares

    from chiploc.solver._estimate import _MAX_LANDMARKS, estimate_position
    from chiploc.solver._models import radii_km

    rng = np.random.default_rng(3)
    for _ in range(40):
        lat, lon = float(rng.uniform(-60, 60)), float(rng.uniform(-180, 180))
        spots = [
            (
                f"l{j}",
                lat + float(rng.uniform(-12, 12)),
                (lon + float(rng.uniform(-12, 12)) + 180) % 360 - 180,
            )
            for j in range(int(rng.integers(4, 20)))
        ]
        ms = _lms(lat, lon, spots, 1.0 + float(rng.uniform(0.3, 0.9)))
        start = (lat + float(rng.uniform(-1, 1)), lon + float(rng.uniform(-1, 1)))
        got = estimate_position(ms, Model.FIBER, None, start)
        assert got is not None
        dist = radii_km(ms, Model.FIBER)
        near = np.argsort(dist, kind="stable")[:_MAX_LANDMARKS]
        la = np.radians([ms[i].lat for i in near])
        lo = np.radians([ms[i].lon for i in near])
        d, w = dist[near], 1.0 / np.maximum(dist[near], 10.0)

        args = (la, lo, d, w)
        ref = least_squares(_residuals, np.array(start), method="lm", xtol=1e-12, args=args)
        mine = float(np.sum(_residuals(np.array(got), *args) ** 2))
        assert mine <= 2 * ref.cost * (1 + 1e-2) + 1e-4  # it stops at steps below 1e-3 deg
        assert got[0] == pytest.approx(ref.x[0], abs=0.01)
        assert got[1] == pytest.approx(((ref.x[1] + 180) % 360) - 180, abs=0.01)


@given(st.lists(scenario(), min_size=2, max_size=6))
def test_every_target_of_a_fleet_is_inside_its_region(
    fleet: list[tuple[float, float, list[Measurement]]],
) -> None:
    """Disks built for many targets at once are as sound as disks built alone."""
    results = solve_many([(f"t{k}", ms) for k, (_, _, ms) in enumerate(fleet)], DEU, estimate=False)
    for (lat, lon, _), res in zip(fleet, results, strict=True):
        assert res.region is not None
        assert _inside(res.region, lat, lon)
