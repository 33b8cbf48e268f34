"""Verdicts and margins against the world, in fast deterministic cases.

These state what the verdict module promises, each against an independent computation
(pyproj ``Geod`` in ``tests/solver/_world.py``, shapely on the zone's own data):

* **Margins are tight to half a piece.** For one landmark the proven region is a geodesic
  disk of radius ``r`` and the true margin is ``min over the border of dist(centre, x) - r``.
  The bound is taken on border pieces of at most ``_MARGIN_STEP_KM`` (0.5 km) and gives up
  at most half a piece: each end of a piece is at least the true distance away, so
  ``(f(A) + f(B) - len) / 2 >= true - len / 2``. The test allows 0.26 km (0.25 km and the
  length bound's ellipsoidal slack), on zones with long edges and zones drawn with 0.9 km
  edges.
* **Margins never overstate, even within metres of a corner.** Tiny regions (a landmark
  next to the chip) placed tens of metres from the border, close to a corner, where the
  border's pieces end.
* **Verdicts against the true position.** Chips tens of km inside or outside polygon and
  circle zones are COMPLIANT or VIOLATION; chips at points built from the coordinates of
  a zone's corners are judged by where they truly are.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import Measurement, Verdict, load_region, solve
from chiploc.solver._verdict import _decide

from ._world import chord_bound_km, densify, dist_km, feasible_boundary, fwd, polygon_zone, world

#: Half a 0.5 km piece, and the ellipsoidal slack of the length bound (R1 over the local radius).
TIGHT_KM = 0.26


def _true_border_km(ring: list[list[float]], lat: float, lon: float) -> float:
    """Distance (km) from (lat, lon) to the ring drawn as straight lon/lat lines.

    Geodesic distances to points every 0.01 deg along the edges, then every 10 m within
    two samples of the nearest ones (distances vary by at most the sample spacing).
    """

    def samples(step_deg: float, windows: list[tuple[int, float, float]]) -> np.ndarray:
        out = []
        for k, t0, t1 in windows:
            (lo1, la1), (lo2, la2) = ring[k], ring[k + 1]
            span = max(abs(lo2 - lo1), abs(la2 - la1)) * (t1 - t0)
            t = np.linspace(t0, t1, max(2, int(np.ceil(span / step_deg)) + 1))
            out.append(
                np.column_stack(
                    [np.full(t.size, k), t, lo1 + t * (lo2 - lo1), la1 + t * (la2 - la1)]
                )
            )
        return np.concatenate(out)

    coarse = samples(0.01, [(k, 0.0, 1.0) for k in range(len(ring) - 1)])
    d = dist_km(lat, lon, coarse[:, 3], coarse[:, 2])
    windows = []
    for i in np.argsort(d)[:12]:
        k = int(coarse[i, 0])
        (lo1, la1), (lo2, la2) = ring[k], ring[k + 1]
        w = 0.02 / max(abs(lo2 - lo1), abs(la2 - la1), 1e-12)
        windows.append((k, max(0.0, coarse[i, 1] - w), min(1.0, coarse[i, 1] + w)))
    fine = samples(0.0001, windows)
    return float(dist_km(lat, lon, fine[:, 3], fine[:, 2]).min())


def _one(lat: float, lon: float, radius_km: float) -> list[Measurement]:
    """One landmark at (lat, lon) whose light-speed RTT allows ``radius_km`` of chord."""
    return [Measurement(landmark="l", lat=lat, lon=lon, rtt_ms=2.0 * radius_km / C)]


BOX = [[7.0, 49.0], [10.0, 49.0], [10.0, 51.5], [7.0, 51.5], [7.0, 49.0]]
TRIANGLE = [[0.0, 0.0], [30.0, 40.0], [-10.0, 40.0], [0.0, 0.0]]
# About 0.9 km edges: a zone drawn finely, every edge longer than one 0.5 km piece.
FINE_BOX = densify([[20.0, -1.0], [22.0, -1.0], [22.0, 1.0], [20.0, 1.0], [20.0, -1.0]], 0.008)


@pytest.mark.parametrize(
    ("name", "ring", "centre", "radius_km"),
    [
        ("box-south", BOX, (49.45, 8.5), 20.0),
        ("box-east", BOX, (50.2, 9.6), 10.0),
        ("triangle", TRIANGLE, (30.0, 5.0), 200.0),
        ("fine-box-south", FINE_BOX, (-0.55, 21.03), 10.0),
        ("fine-box-west", FINE_BOX, (0.37, 20.4), 5.0),
    ],
)
def test_margin_gives_up_at_most_half_a_piece(
    tmp_path: Path,
    name: str,
    ring: list[list[float]],
    centre: tuple[float, float],
    radius_km: float,
) -> None:
    zone = polygon_zone(tmp_path, name, ring)
    res = solve("chip", _one(*centre, radius_km), zone, estimate=False)
    assert res.verdict is Verdict.COMPLIANT, res.message
    r = res.landmarks[0].radius_km
    true_km = _true_border_km(ring, *centre) - r
    assert res.margin_km is not None
    assert res.margin_km <= true_km + 1e-6, (name, res.margin_km, true_km)
    assert res.margin_km >= true_km - TIGHT_KM, (name, res.margin_km, true_km)


@pytest.mark.parametrize("inward_km", [0.02, 0.08])
def test_margin_never_overstates_next_to_a_corner(tmp_path: Path, inward_km: float) -> None:
    """Tiny regions tens of metres inside the border, 0.05 to 0.45 km from each corner."""
    ring = BOX
    zone = polygon_zone(tmp_path, "zone", ring)
    poly = Polygon(ring)
    checked = 0
    for (lo1, la1), (lo2, la2) in itertools.pairwise(ring):
        for along_km, at_start in itertools.product((0.05, 0.2, 0.3, 0.45), (True, False)):
            # A point on the edge, along_km from one corner along the straight lon/lat line.
            az_lat, az_lon = (la2 - la1, lo2 - lo1) if at_start else (la1 - la2, lo1 - lo2)
            c_lat, c_lon = (la1, lo1) if at_start else (la2, lo2)
            span = float(dist_km(la1, lo1, la2, lo2))
            t = along_km / span
            p_lat, p_lon = c_lat + t * az_lat, c_lon + t * az_lon
            # Step inward: perpendicular in lon/lat, scaled to roughly inward_km.
            n_lon, n_lat = -az_lat, az_lon * np.cos(np.radians(p_lat))
            for sign in (1.0, -1.0):
                s = inward_km / 111.0 / float(np.hypot(n_lon, n_lat))
                q_lat, q_lon = p_lat + sign * s * n_lat, p_lon + sign * s * n_lon
                if poly.contains(shapely.Point(q_lon, q_lat)):
                    break
            else:
                raise AssertionError("no inward side")
            d = _true_border_km(ring, q_lat, q_lon)
            res = solve("chip", _one(q_lat, q_lon, d / 3), zone, estimate=False)
            assert res.verdict is Verdict.COMPLIANT, res.message
            assert res.margin_km is not None
            true_km = d - res.landmarks[0].radius_km
            assert res.margin_km <= true_km + 1e-6, (along_km, at_start, res.margin_km, true_km)
            checked += 1
    assert checked == 8 * (len(ring) - 1)


@pytest.mark.parametrize(
    ("spec", "lat", "lon", "want"),
    [
        ("country:DEU", 51.0, 10.0, Verdict.COMPLIANT),
        ("country:DEU", 48.0, 2.0, Verdict.VIOLATION),  # France
        ("not:country:DEU", 51.0, 10.0, Verdict.VIOLATION),
        ("not:country:DEU", 48.0, 2.0, Verdict.COMPLIANT),
        ("circle:48,11,800", 48.0, 11.0, Verdict.COMPLIANT),
        ("circle:48,11,800", 30.0, 40.0, Verdict.VIOLATION),
        ("not:circle:48,11,800", 48.0, 11.0, Verdict.VIOLATION),
    ],
)
def test_verdict_and_margin_of_a_chip_far_from_the_border(
    spec: str, lat: float, lon: float, want: Verdict
) -> None:
    """A 5 km region around a chip far from the border: the verdict of where it truly is,
    and a margin within 1 % of the true clearance (a margin stuck at 0 or at a cap fails)."""
    w = world(spec)
    assert bool(w.truth(np.array([lat]), np.array([lon]))[0]) is (want is Verdict.COMPLIANT)
    res = solve("chip", _one(lat, lon, 5.0), load_region(spec), estimate=False)
    assert res.verdict is want, res.message
    r = res.landmarks[0].radius_km
    true_km = float(w.border_dist(np.array([lat]), np.array([lon]), 3000.0)[0]) - r
    assert res.margin_km is not None
    assert res.margin_km <= true_km + 1e-6
    assert res.margin_km >= 0.99 * true_km - 1.0, (res.margin_km, true_km)


QUAD = [[0.0, 0.0], [20.0, 5.0], [25.0, 30.0], [3.0, 22.0], [0.0, 0.0]]


def test_chips_at_mixed_corner_coordinates_are_judged_where_they_are(tmp_path: Path) -> None:
    """For every pair of corners (i, j) of a quadrilateral zone, a chip at (lon_i, lat_j)
    (points inside and outside the zone, 0.6 deg or more from its border): a 10 km region
    around it is COMPLIANT inside the zone, VIOLATION outside."""
    zone = polygon_zone(tmp_path, "quad", QUAD)
    poly = Polygon(QUAD)
    corners = QUAD[:-1]
    seen = []
    for (lon_i, _), (_, lat_j) in itertools.product(corners, corners):
        if poly.exterior.distance(shapely.Point(lon_i, lat_j)) < 0.5:
            continue  # a corner itself
        inside = poly.contains(shapely.Point(lon_i, lat_j))
        res = solve("chip", _one(lat_j, lon_i, 10.0), zone, estimate=False)
        want = Verdict.COMPLIANT if inside else Verdict.VIOLATION
        assert res.verdict is want, (lat_j, lon_i, res.message)
        seen.append(want)
    assert (seen.count(Verdict.COMPLIANT), seen.count(Verdict.VIOLATION)) == (2, 10)


def test_a_small_region_has_its_point_inside() -> None:
    """The region's point (the fleet map's dot) of regions of a few km: inside the region,
    within the landmark's proven distance."""
    for lat, lon, r in ((50.11, 8.68, 3.0), (-33.9, 151.2, 0.5), (0.0, 179.999, 2.0)):
        res = solve("chip", _one(lat, lon, r), load_region("country:DEU"), estimate=False)
        assert res.region_center is not None
        c_lat, c_lon = res.region_center
        assert shapely.intersects_xy(res.region, c_lon, c_lat)
        assert float(dist_km(lat, lon, c_lat, c_lon)) <= res.landmarks[0].radius_km


def test_a_region_straddling_the_border_is_inconclusive() -> None:
    la, lo = fwd(48.0, 11.0, 90.0, 800.0)
    res = solve("chip", _one(float(la[0]), float(lo[0]), 30.0), load_region("circle:48,11,800"))
    assert res.verdict is Verdict.INCONCLUSIVE
    assert res.margin_km is None


def test_a_hemisphere_zone_with_one_border_segment(tmp_path: Path) -> None:
    """The southern hemisphere as a GeoJSON box: its only border is the equator (the box's
    other sides are the pole and the antimeridian, no border). A chip 30 deg south: COMPLIANT
    with a margin of its true distance to the equator (~3,300 km), within 1 %."""
    ring = [[-180.0, -90.0], [180.0, -90.0], [180.0, 0.0], [-180.0, 0.0], [-180.0, -90.0]]
    zone = polygon_zone(tmp_path, "south", ring)
    lat, lon = -30.0, 25.0
    res = solve("chip", _one(lat, lon, 50.0), zone, estimate=False)
    assert res.verdict is Verdict.COMPLIANT, res.message
    true_km = float(dist_km(lat, lon, 0.0, lon)) - res.landmarks[0].radius_km
    assert res.margin_km is not None
    assert true_km - 0.01 * true_km <= res.margin_km <= true_km + 1e-6, (res.margin_km, true_km)


def test_an_empty_region_is_never_a_pass() -> None:
    """No point satisfies the bounds: INCONSISTENT, against any zone (a lie, never a pass)."""
    for spec in ("country:DEU", "not:country:DEU", "circle:48,11,800"):
        assert _decide(Polygon(), load_region(spec)) is Verdict.INCONSISTENT


def test_margin_of_a_long_lens_is_its_distance_to_the_nearest_border(tmp_path: Path) -> None:
    """Two landmarks 20 deg apart on the equator: a lens ~800 km long and ~140 km wide.
    Inside a finely drawn box whose northern edge lies ~50 km past the lens's tip and whose
    sides lie ~150 km from its middle, the margin never exceeds the tip's clearance, checked
    against points on the exact boundary of the feasible set."""
    box = densify([[-2.0, -5.0], [2.0, -5.0], [2.0, 4.09], [-2.0, 4.09], [-2.0, -5.0]], 0.008)
    zone = polygon_zone(tmp_path, "lens-box", box)
    ms = [
        Measurement(landmark=n, lat=0.0, lon=lon, rtt_ms=2.0 * 1180.0 / C)
        for n, lon in (("w", -10.0), ("e", 10.0))
    ]
    res = solve("chip", ms, zone, estimate=False)
    assert res.verdict is Verdict.COMPLIANT, res.message
    f_lat, f_lon = feasible_boundary([(m.lat, m.lon, chord_bound_km(m.rtt_ms)) for m in ms], 1500)
    # Border points every ~1 km (on the border, so their nearest is at least the truth).
    b = np.array(densify(box, 0.01))
    d = dist_km(f_lat[:, None], f_lon[:, None], b[None, :, 1], b[None, :, 0])
    clear = float(d.min())
    assert 40.0 < clear < 60.0
    assert res.margin_km is not None
    # Sound; not tight here: the bound takes each disk's distance, and at the lens's tip
    # the disks cross at a shallow angle (18 km where the truth is about 54).
    assert 1.0 <= res.margin_km <= clear, (res.margin_km, clear)


@pytest.mark.parametrize(
    ("north_lat", "north_km", "dot_in_north"),
    [
        (70.0, 116.0, False),  # the equatorial disk is larger (49,000 vs 42,000 km2)
        (60.0, 150.0, True),  # the northern disk is larger (71,000 vs 49,000 km2)
    ],
)
def test_the_point_of_a_two_part_region_is_in_its_larger_part(
    north_lat: float, north_km: float, dot_in_north: bool
) -> None:
    """Two landmarks that contradict each other, one tolerated: the region is both disks.
    Its point lies in the one of larger true area (on the ellipsoid, not in degrees)."""
    ms = [
        Measurement(landmark="eq", lat=0.0, lon=0.0, rtt_ms=2.0 * 125.0 / C),
        Measurement(landmark="north", lat=north_lat, lon=100.0, rtt_ms=2.0 * north_km / C),
    ]
    res = solve("chip", ms, load_region("country:DEU"), tolerate=1, estimate=False)
    assert res.region is not None
    assert len(shapely.get_parts(res.region)) == 2
    assert res.region_center is not None
    c_lat, c_lon = res.region_center
    assert shapely.intersects_xy(res.region, c_lon, c_lat)
    near_north = float(dist_km(north_lat, 100.0, c_lat, c_lon)) <= north_km * 1.01
    assert near_north is dot_in_north
