"""Geodesy against the world: distances, chord bounds, disks, lengths and areas.

Every expectation here is computed without solver/_geodesy.py: distances and circles
with an independent pyproj ``Geod`` (``tests/solver/_world.py``), straight-line
distances with the textbook ECEF formula and with PROJ's own geocentric conversion,
areas with PROJ's geodesic polygon area on densified rings. The disk checks are the
definitions: a circumscribed disk holds every point within R of its centre and its
border lies at >= R; every point of an inscribed disk lies within R; both within a
small, stated slack of the true circle (tight, not only sound).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from chiploc.solver import (
    chord_to_geodesic_km,
    geodesic_disk,
    geodesic_disks,
    geodesic_km,
    geodesic_to_chord_km,
    inscribed_disk,
    polygon_area_km2,
)
from chiploc.solver._geodesy import ecef_km, edge_length_bound_km

from ._world import TRUTH_GEOD, chord_km, dist_km, fwd

Arr = np.ndarray
#: Smallest normal curvature radius of WGS84, b**2 / a, from the defining constants.
_B = 6378.137 * (1 - 1 / 298.257223563)
R_MIN = _B * _B / 6378.137
HALF_MERIDIAN = 20003.931458625


def _random_points(rng: np.random.Generator, n: int) -> tuple[Arr, Arr]:
    """Uniform on the sphere, plus the poles and the antimeridian on both sides."""
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    lon = rng.uniform(-180.0, 180.0, n)
    lat[:4] = [90.0, -90.0, 0.0, 45.0]
    lon[:4] = [0.0, 17.0, 180.0, -180.0]
    return lat, lon


# --------------------------------------------------------------------------- distance


def test_geodesic_distance_matches_an_independent_engine_at_random_and_antipodal_pairs() -> None:
    rng = np.random.default_rng(14)
    lat1, lon1 = _random_points(rng, 600)
    lat2, lon2 = _random_points(rng, 600)
    # Antipodal and nearly antipodal pairs, the same point, points across the antimeridian.
    lat2[:150], lon2[:150] = -lat1[:150], ((lon1[:150] + 360.0) % 360.0) - 180.0
    lat2[150:200] = -lat1[150:200] + rng.uniform(-0.5, 0.5, 50)
    lat2[150:200] = np.clip(lat2[150:200], -90.0, 90.0)
    lat2[200:220], lon2[200:220] = lat1[200:220], lon1[200:220]
    lat1[220:240], lon1[220:240], lat2[220:240], lon2[220:240] = 10.0, 179.99, 10.0, -179.99
    got = geodesic_km(lat1, lon1, lat2, lon2)
    want = dist_km(lat1, lon1, lat2, lon2)
    assert got.shape == (600,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert np.all(got[200:220] == 0.0)
    np.testing.assert_allclose(got[220:240], 2.0 * 0.01 * math.radians(1) * 6281.0, rtol=2e-3)
    # Antipodes are half a meridian apart or a little less (never more).
    assert np.all(got[:150] <= HALF_MERIDIAN + 1e-9)
    assert np.all(got[:150] >= 2 * R_MIN * math.pi / 2 * 0.99)


def test_geodesic_distance_broadcasts_like_its_arguments() -> None:
    """One centre against a grid gives the grid's shape, each value the pair's distance."""
    lat2 = np.array([[0.0], [30.0], [-60.0]])
    lon2 = np.array([10.0, -120.0, 179.0, 45.0])
    got = geodesic_km(48.0, 11.0, lat2, lon2)
    assert got.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert got[i, j] == pytest.approx(
                float(dist_km(48.0, 11.0, lat2[i, 0], lon2[j])), abs=1e-9
            )
    scalar = geodesic_km(0, 0, 0, 1)  # ints, 0-d
    assert scalar.shape == ()
    assert float(scalar) == pytest.approx(111.3195, abs=1e-3)  # a degree of the equator


def test_ecef_agrees_with_proj_geocentric_conversion() -> None:
    rng = np.random.default_rng(3)
    lat, lon = _random_points(rng, 200)
    to_ecef = Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)
    x, y, z = to_ecef.transform(lon, lat, np.zeros_like(lat))
    want = np.stack([x, y, z], axis=-1) / 1000.0
    np.testing.assert_allclose(ecef_km(lat, lon), want, rtol=0, atol=1e-9)
    # Single-precision coordinates are exact numbers too: no precision is lost on them.
    lat32, lon32 = lat.astype(np.float32), lon.astype(np.float32)
    x, y, z = to_ecef.transform(lon32.astype(np.float64), lat32.astype(np.float64), 0.0 * lat)
    want = np.stack([x, y, z], axis=-1) / 1000.0
    np.testing.assert_allclose(ecef_km(lat32, lon32), want, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- chord bounds


def test_chord_bound_holds_for_every_pair_and_is_tight_where_the_earth_is_flattest() -> None:
    """No two points with a chord c are farther apart than chord_to_geodesic_km(c); and
    across the equator along a meridian (curvature radius exactly b**2/a there) the bound
    is the distance itself, to first order."""
    rng = np.random.default_rng(5)
    lat1, lon1 = _random_points(rng, 2000)
    lat2, lon2 = _random_points(rng, 2000)
    near = rng.uniform(0, 2 * R_MIN * 0.9999, 500)  # pairs at every chord length
    az = rng.uniform(0, 360, 500)
    for k in range(500):
        la, lo = fwd(lat1[k], lon1[k], az[k], near[k])
        lat2[k], lon2[k] = la[0], lo[0]
    c = chord_km(lat1, lon1, lat2, lon2)
    s = dist_km(lat1, lon1, lat2, lon2)
    bound = np.array([chord_to_geodesic_km(float(x)) for x in c])
    assert np.all(s <= bound * (1 + 1e-12) + 1e-9)
    assert np.isinf(bound).any()
    assert np.isfinite(bound).any()
    # Within the radius of 2 * b**2 / a every bound is finite and less than half a meridian.
    short = c < 2 * R_MIN * 0.999
    assert np.all(bound[short] < HALF_MERIDIAN)
    for half_deg in (0.001, 0.1, 1.0):
        c_eq = float(chord_km(-half_deg, 30.0, half_deg, 30.0))
        s_eq = float(dist_km(-half_deg, 30.0, half_deg, 30.0))
        # (equal to rounding: the ECEF chord of 0.2 km carries ~1e-12 km of it)
        assert s_eq * (1 - 1e-9) <= chord_to_geodesic_km(c_eq) <= s_eq * (1 + 1e-4 * half_deg**2)


def test_chord_bound_refuses_what_is_no_length() -> None:
    for bad in (-1e-9, -5.0, math.nan):
        with pytest.raises(ValueError, match="chord must be >= 0"):
            chord_to_geodesic_km(bad)
    assert chord_to_geodesic_km(0.0) == 0.0
    # At and beyond 2 b**2 / a the chord may reach the antipode: the whole Earth.
    assert chord_to_geodesic_km(2 * R_MIN * (1 + 1e-12)) == math.inf
    assert chord_to_geodesic_km(13_000.0) == math.inf
    assert chord_to_geodesic_km(2 * R_MIN * (1 - 1e-9)) < HALF_MERIDIAN


@pytest.mark.parametrize("g", [0.0, 1e-3, 1.0, 800.0, 5000.0, 12_000.0, 19_000.0, 19_900.0])
def test_chord_for_a_distance_is_the_largest_whose_bound_stays_within_it(g: float) -> None:
    """Any two points with a chord up to geodesic_to_chord_km(g) are within g; a chord a
    little longer is not guaranteed (its bound exceeds g)."""
    c = geodesic_to_chord_km(g)
    assert 0.0 <= c < 2 * R_MIN
    assert chord_to_geodesic_km(c) <= g * (1 + 1e-12) + 1e-12
    assert chord_to_geodesic_km(min(c * (1 + 1e-9) + 1e-9, 2 * R_MIN)) > g
    # The world: pairs at that chord are within g of each other.
    rng = np.random.default_rng(int(g))
    lat, lon = _random_points(rng, 50)
    az = rng.uniform(0.0, 360.0, 50)
    lo_s, hi_s = np.zeros(50), np.full(50, HALF_MERIDIAN)
    for _ in range(60):  # bisection on the distance at which the chord reaches c
        mid = (lo_s + hi_s) / 2
        lo, la, _ = TRUTH_GEOD.fwd(lon, lat, az, mid * 1000.0)
        within = chord_km(lat, lon, la, lo) <= c
        lo_s, hi_s = np.where(within, mid, lo_s), np.where(within, hi_s, mid)
    assert np.all(lo_s <= g * (1 + 1e-9) + 1e-6)


def test_chord_for_distances_past_the_flattest_half_circle_is_the_limit() -> None:
    """At pi * b**2 / a and beyond every chord up to 2 b**2 / a keeps the distance (its
    bound is pi * b**2 / a <= g); negative distances allow no chord at all."""
    assert geodesic_to_chord_km(math.pi * R_MIN) == pytest.approx(2 * R_MIN, rel=1e-15)
    assert geodesic_to_chord_km(20_000.0) == pytest.approx(2 * R_MIN, rel=1e-15)
    assert geodesic_to_chord_km(-5.0) == 0.0


# --------------------------------------------------------------------------- disks

#: Centres at the poles, next to them, on the antimeridian from both sides, on the equator,
#: with radii from 100 m to 19,500 km (both poles inside beyond ~10,000 km).
DISKS = [
    (90.0, 0.0, 0.1),
    (90.0, 0.0, 1500.0),
    (90.0, 0.0, 15_000.0),
    (-90.0, 120.0, 2.0),
    (-90.0, 120.0, 6000.0),
    (-90.0, 120.0, 19_500.0),
    (89.99, -45.0, 0.1),
    (89.99, -45.0, 75.0),
    (89.99, -45.0, 10_500.0),
    (-88.5, 180.0, 75.0),
    (-88.5, 180.0, 1500.0),
    (-88.5, 180.0, 15_000.0),
    (0.0, 180.0, 0.1),
    (0.0, 180.0, 1500.0),
    (0.0, 180.0, 10_500.0),
    (-17.7, -179.95, 2.0),
    (-17.7, -179.95, 75.0),
    (-17.7, -179.95, 6000.0),
    (-17.7, -179.95, 19_500.0),
    (65.8, 179.9, 1500.0),
    (65.8, 179.9, 6000.0),
    (0.0, 0.0, 0.1),
    (0.0, 0.0, 2.0),
    (0.0, 0.0, 10_500.0),
    (0.0, 0.0, 19_500.0),
    (48.1, 11.6, 75.0),
    (48.1, 11.6, 1500.0),
    (48.1, 11.6, 6000.0),
    (48.1, 11.6, 15_000.0),
    (-33.9, 151.2, 2.0),
    (-33.9, 151.2, 1500.0),
    (-33.9, 151.2, 19_500.0),
    (-90.0, -180.0, 1500.0),  # a ring around the pole drawn from -180 to 180 exactly
    (-89.0, -180.0, 1500.0),
    (0.5, 30.0, 9990.0),  # just north of the equator: holds the north pole only
    (-0.5, 30.0, 9990.0),
]


def _on_circle(lat: float, lon: float, r_km: float, n: int = 720) -> tuple[Arr, Arr]:
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    return fwd(lat, lon, az, np.full(n, r_km))


def _border_points(geom: BaseGeometry, per_edge: int = 6) -> tuple[Arr, Arr]:
    """Points along the polygon's border (``per_edge`` on every edge), minus the cuts at
    +-180 and the poles (they are edges of the map, not of the disk)."""
    xy, ring = shapely.get_coordinates(
        shapely.get_rings(shapely.get_parts(geom)), return_index=True
    )
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    t = np.linspace(0.0, 1.0, per_edge, endpoint=False)[:, None, None]
    pts = (a + t * (b - a)).reshape(-1, 2)
    real = (np.abs(pts[:, 0]) < 180.0 - 1e-9) & (np.abs(pts[:, 1]) < 90.0 - 1e-9)
    return np.asarray(pts[real, 1]), np.asarray(pts[real, 0])


def _inside(geom: BaseGeometry, lat: Arr, lon: Arr) -> Arr:
    return np.asarray(shapely.intersects_xy(geom, lon, lat))


@pytest.mark.parametrize(("lat", "lon", "radius"), DISKS)
def test_circumscribed_disk_holds_the_true_disk_and_stays_close_to_it(
    lat: float, lon: float, radius: float
) -> None:
    _check_circumscribed(lat, lon, radius)


#: Just short of a hemisphere, centred on the equator: the certified ring (inflated for an
#: outer disk, shrunk for an inner one) passes within a few km of both poles, on either
#: side of 10,001.97 km (centre to pole); whether the ring holds the centre or the far side
#: is decided on the ring itself.
HEMISPHERES = [(0.0, 150.0), (0.0, -120.0), (0.0, 180.0), (0.0, -180.0)]


@pytest.mark.parametrize(("lat", "lon"), HEMISPHERES)
@pytest.mark.parametrize("radius", [9989.0, 9990.5])
def test_circumscribed_disks_of_nearly_a_hemisphere(lat: float, lon: float, radius: float) -> None:
    _check_circumscribed(lat, lon, radius)


@pytest.mark.parametrize(("lat", "lon"), HEMISPHERES)
@pytest.mark.parametrize("radius", [10_012.5])
def test_inscribed_disks_of_nearly_a_hemisphere(lat: float, lon: float, radius: float) -> None:
    _check_inscribed(lat, lon, radius)


@pytest.mark.parametrize("radius", [19_985.0, 19_989.9])
def test_circumscribed_disks_just_short_of_the_whole_earth(radius: float) -> None:
    """Past 19,990 km the disk is the whole Earth; just short of it, a certified ring
    around the antipode, which must hold no point within R."""
    _check_circumscribed(12.0, -70.0, radius)


def _check_circumscribed(lat: float, lon: float, radius: float) -> None:
    disk = geodesic_disk(lat, lon, radius)
    assert disk.is_valid
    xmin, ymin, xmax, ymax = disk.bounds
    assert -180.0 <= xmin <= xmax <= 180.0
    assert -90.0 <= ymin <= ymax <= 90.0
    # Every point within R is inside: the centre, and rings at R, just under R and R/2.
    assert _inside(disk, np.array([lat]), np.array([lon])).all()
    for frac in (1.0, 1 - 1e-9, 0.5):
        la, lo = _on_circle(lat, lon, radius * frac)
        out = ~_inside(disk, la, lo)
        assert not out.any(), f"{int(out.sum())} points at {frac} R lie outside"
    # The border lies at >= R, and within 0.3 % + 20 m of it (tight).
    bl, bo = _border_points(disk)
    d = dist_km(lat, lon, bl, bo)
    if radius < 19_000.0:
        assert d.size > 0
    if d.size:
        assert float(d.min()) >= radius * (1 - 1e-9)
        assert float(d.max()) <= radius * (1 + 3e-3) + 0.02
    # ... so points a little beyond the circle are outside.
    if radius * 1.004 + 0.03 < HALF_MERIDIAN - 5.0:
        la, lo = _on_circle(lat, lon, radius * 1.004 + 0.03, n=90)
        assert not _inside(disk, la, lo).any()


@pytest.mark.parametrize(("lat", "lon", "radius"), DISKS)
def test_inscribed_disk_holds_only_points_within_the_radius_and_nearly_all_of_them(
    lat: float, lon: float, radius: float
) -> None:
    _check_inscribed(lat, lon, radius)


def _check_inscribed(lat: float, lon: float, radius: float) -> None:
    inner = inscribed_disk(lat, lon, radius)
    assert inner.is_valid
    assert not inner.is_empty
    xmin, ymin, xmax, ymax = inner.bounds
    assert -180.0 <= xmin <= xmax <= 180.0
    assert -90.0 <= ymin <= ymax <= 90.0
    # Every point of the polygon is within R: its border (densified) and random points.
    bl, bo = _border_points(inner)
    if radius < 19_000.0:
        assert bl.size > 0
    assert float(dist_km(lat, lon, bl, bo).max(initial=0.0)) <= radius
    rng = np.random.default_rng(int(radius * 10) + int(abs(lat)))
    x = rng.uniform(xmin, xmax, 3000)
    y = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(ymin)), np.sin(np.radians(ymax)), 3000)))
    held = _inside(inner, y, x)
    assert float(dist_km(lat, lon, y[held], x[held]).max(initial=0.0)) <= radius
    # ... and it is not vacuous: the centre, and every point within R (1 - 0.3 %) - 20 m.
    assert _inside(inner, np.array([lat]), np.array([lon])).all()
    for frac in (0.5, 1.0):
        la, lo = _on_circle(lat, lon, frac * (radius * (1 - 3e-3) - 0.02))
        out = ~_inside(inner, la, lo)
        assert not out.any(), f"{int(out.sum())} points well within R are outside"
    if bl.size:
        assert float(dist_km(lat, lon, bl, bo).min()) >= radius * (1 - 3e-3) - 0.02


@pytest.mark.parametrize(
    ("lat", "lon", "r"),
    [
        ([10.0, -89.0, 60.0, 0.0, 35.0], [20.0, 0.0, 179.5, -180.0, 139.7],
         [12_000.0, 300.0, 900.0, 0.5, 40.0]),
        # Rings around a pole next to small rings: drawn from other longitudes.
        ([0.0, -90.0, 10.0, 90.0, -89.0], [170.0, -180.0, -175.0, 0.0, -180.0],
         [10.0, 1500.0, 50.0, 1800.0, 2000.0]),
    ],
)  # fmt: skip
def test_disks_of_every_size_at_once_equal_the_disks_one_by_one(
    lat: list[float], lon: list[float], r: list[float]
) -> None:
    """The batch is the same set of disks: each holds its own circle and not the others'."""
    la, lo, rr = np.array(lat), np.array(lon), np.array(r)
    disks = geodesic_disks(la, lo, rr)
    assert len(disks) == 5
    for k, disk in enumerate(disks):
        c_la, c_lo = _on_circle(lat[k], lon[k], r[k], n=360)
        assert _inside(disk, c_la, c_lo).all()
        alone = geodesic_disk(lat[k], lon[k], r[k])
        assert polygon_area_km2(disk) / polygon_area_km2(alone) == pytest.approx(1.0, abs=1e-9)
        for j in range(5):
            if j != k and dist_km(lat[k], lon[k], lat[j], lon[j]) > r[k] * 1.01 + r[j] + 1:
                assert not _inside(disk, la[j : j + 1], lo[j : j + 1]).any()


def test_degenerate_and_whole_earth_radii() -> None:
    """Radius 0 still holds the centre; a radius at or beyond the farthest point, or
    infinite, is the whole Earth; an inner disk of half a meridian is the whole Earth."""
    zero = geodesic_disk(-45.0, 100.0, 0.0)
    assert _inside(zero, np.array([-45.0]), np.array([100.0])).all()
    assert polygon_area_km2(zero) < 1e-4
    for r in (HALF_MERIDIAN, 19_995.0, 25_000.0, math.inf):
        world = geodesic_disk(12.0, -70.0, r)
        assert polygon_area_km2(world) == pytest.approx(510_065_621.7, rel=1e-6)
    assert polygon_area_km2(inscribed_disk(0.0, 0.0, HALF_MERIDIAN)) == pytest.approx(
        510_065_621.7, rel=1e-6
    )
    # A radius short of the farthest point leaves the antipode out.
    near_all = geodesic_disk(30.0, 40.0, 19_800.0)
    assert not _inside(near_all, np.array([-30.0]), np.array([-140.0])).any()
    assert _inside(near_all, np.array([-30.0, 89.0, -89.0]), np.array([-100.0, 0.0, 0.0])).all()


@pytest.mark.parametrize("radius", [1e-5, 2e-5, 5e-5, 19_950.0, 20_000.0])
def test_inscribed_disks_too_small_or_too_large_to_certify_still_hold_only_their_points(
    radius: float,
) -> None:
    """Below a few cm, and beyond pi b**2/a (~19,904 km, where the distance from the
    centre is no longer smooth), a ring cannot be certified: the inner disk may be empty,
    but never holds a point farther than R."""
    lat, lon = 12.0, -70.0
    inner = inscribed_disk(lat, lon, radius)
    if inner.is_empty:
        return
    bl, bo = _border_points(inner)
    assert float(dist_km(lat, lon, bl, bo).max(initial=0.0)) <= radius
    rng = np.random.default_rng(11)
    xmin, ymin, xmax, ymax = inner.bounds
    x, y = rng.uniform(xmin, xmax, 4000), rng.uniform(ymin, ymax, 4000)
    held = _inside(inner, y, x)
    assert float(dist_km(lat, lon, y[held], x[held]).max(initial=0.0)) <= radius


def test_the_disk_cache_stays_within_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many disks are asked for, two at a time, the cache never holds more than
    its limit (memory stays bounded in a long-running verifier)."""
    from chiploc.solver import _geodesy

    monkeypatch.setattr(_geodesy, "_DISK_CACHE_SIZE", 3)
    for k in range(6):
        geodesic_disks([10.0, 20.0], [float(k), float(k)], [50.0, 60.0])
        assert len(_geodesy._DISK_CACHE) <= 3


def test_disk_arguments_that_are_no_disk_are_refused() -> None:
    with pytest.raises(ValueError, match="coordinates out of range"):
        geodesic_disk(0.0, 180.5, 10.0)
    with pytest.raises(ValueError, match="coordinates out of range"):
        geodesic_disks([0.0, -90.5], [0.0, 0.0], [1.0, 1.0])
    for lat, lon in ((90.5, 0.0), (-90.5, 0.0), (0.0, -180.5), (0.0, 180.5)):
        with pytest.raises(ValueError, match="coordinates out of range"):
            geodesic_disk(lat, lon, 10.0)
    with pytest.raises(ValueError, match=r"^lat, lon and radius_km must have the same length$"):
        geodesic_disks([0.0, 1.0], [0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="radius_km must be >= 0"):
        geodesic_disks([0.0, 1.0], [0.0, 1.0], [1.0, math.nan])
    # The message names the radius that is wrong, not a valid one before it.
    with pytest.raises(ValueError, match=r"radius_km must be >= 0, got -2\.0$"):
        geodesic_disks([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 0.5, -2.0])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and > 0"):
            inscribed_disk(0.0, 0.0, bad)
    with pytest.raises(ValueError, match="coordinates out of range"):
        inscribed_disk(-91.0, 0.0, 5.0)


# --------------------------------------------------------------------------- lengths, areas


def _true_length_km(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    """Length of the straight lon/lat segment: many short geodesic pieces summed."""
    t = np.linspace(0.0, 1.0, 2001)
    la, lo = lat_a + t * (lat_b - lat_a), lon_a + t * (lon_b - lon_a)
    return float(dist_km(la[:-1], lo[:-1], la[1:], lo[1:]).sum())


def test_edge_length_bound_is_at_least_the_true_length_and_close_to_it() -> None:
    rng = np.random.default_rng(9)
    n = 120
    lat_a = rng.uniform(-85.0, 85.0, n)
    lon_a = rng.uniform(-180.0, 180.0, n)
    lat_b = np.clip(lat_a + rng.uniform(-2.0, 2.0, n), -89.0, 89.0)
    lon_b = lon_a + rng.uniform(-2.0, 2.0, n)  # unwrapped: may pass +-180
    lat_a[:10], lat_b[:10] = -0.7, 0.9  # across the equator
    lat_a[10:20], lat_b[10:20] = 0.0, 1.5  # from the equator
    lat_a[20:30], lat_b[20:30] = 60.0, 60.0  # along a parallel
    lon_b[30:40] = lon_a[30:40]  # along a meridian
    bound = edge_length_bound_km(lat_a.copy(), lon_a.copy(), lat_b.copy(), lon_b.copy())
    true = np.array([_true_length_km(*p) for p in zip(lat_a, lon_a, lat_b, lon_b, strict=True)])
    assert np.all(bound >= true * (1 - 1e-9))
    # R1 / R0 and the latitude range of a 2-degree segment: within 4 %.
    assert np.all(bound <= true * 1.04 + 1e-9)
    # Along a parallel: the cosine of that latitude, not of a lower one.
    assert np.all(bound[20:30] <= true[20:30] * 1.005)
    # Direction does not matter.
    back = edge_length_bound_km(lat_b.copy(), lon_b.copy(), lat_a.copy(), lon_a.copy())
    np.testing.assert_allclose(back, bound, rtol=1e-12)


def _proj_area_km2(geom: BaseGeometry) -> float:
    """PROJ's geodesic area of the polygon with edges split finely (straight lon/lat)."""
    parts = [orient(p, 1.0) for p in shapely.get_parts(shapely.segmentize(geom, 0.01))]
    # Exteriors anticlockwise, holes clockwise: PROJ adds the signed areas of the rings.
    return float(sum(TRUTH_GEOD.geometry_area_perimeter(p)[0] for p in parts)) / 1e6


@pytest.mark.parametrize(
    "geom",
    [
        box(5.0, 45.0, 15.0, 55.0),
        box(-180.0, -90.0, 180.0, -60.0),  # around the south pole
        Polygon([(0, 0), (0, 10), (10, 10), (10, 0)]),  # clockwise
        Polygon(
            [(100, 10), (120, 10), (120, 30), (100, 30)],
            [[(105, 15), (110, 15), (110, 20), (105, 20)], [(112, 22), (115, 22), (115, 25)]],
        ),  # two holes
        MultiPolygon([box(-10, -10, -5, -5), box(170, 60, 180, 70)]),
        Polygon(
            [(30.0, 50.0), (31.0, 50.0), (31.0, 51.0), (30.0, 51.0)],
            [
                [(30.2, 50.2), (30.4, 50.2), (30.4, 50.4)],
                [(30.6, 50.6), (30.8, 50.6), (30.8, 50.8)],
            ],
        ),  # small, with holes: every km2 counts
        Polygon(
            [(30.0, 50.0), (31.0, 50.0), (31.0, 51.0), (30.0, 51.0)],
            [[(30.2, 50.2), (30.8, 50.2), (30.8, 50.8), (30.2, 50.8)]],
        ),  # one hole
        Polygon([(-40, -20), (-20, -35), (-5, 10), (-30, 5)]),  # slanted edges
    ],
)
def test_polygon_area_matches_proj_on_densified_rings(geom: BaseGeometry) -> None:
    assert polygon_area_km2(geom) == pytest.approx(_proj_area_km2(geom), rel=1e-6, abs=1e-3)


def test_polygon_area_of_mixed_and_empty_geometries() -> None:
    square = box(0.0, 0.0, 1.0, 1.0)
    line = shapely.LineString([(20, 20), (30, 30)])
    mixed = shapely.GeometryCollection([square, line, Polygon()])
    assert polygon_area_km2(mixed) == pytest.approx(_proj_area_km2(square), rel=1e-6)
    far = box(40.0, -30.0, 41.0, -29.0)
    three = shapely.GeometryCollection([line, square, shapely.Point(3, 3), far])
    want = _proj_area_km2(square) + _proj_area_km2(far)
    assert polygon_area_km2(three) == pytest.approx(want, rel=1e-6)
    holed = Polygon(
        [(30.0, 50.0), (31.0, 50.0), (31.0, 51.0), (30.0, 51.0)],
        [[(30.2, 50.2), (30.8, 50.2), (30.8, 50.8), (30.2, 50.8)]],
    )
    after_nothing = shapely.GeometryCollection([Polygon(), line, holed])
    assert polygon_area_km2(after_nothing) == pytest.approx(_proj_area_km2(holed), rel=1e-6)
    assert polygon_area_km2(Polygon()) == 0.0
    assert polygon_area_km2(shapely.GeometryCollection([line])) == 0.0
    assert polygon_area_km2(MultiPolygon()) == 0.0


# --------------------------------------------------------------------------- map pieces


def _points_of(geom: BaseGeometry, lat: Arr, lon: Arr) -> Arr:
    return np.asarray(shapely.intersects_xy(geom, lon, lat))


def test_a_disk_cut_at_the_antimeridian_covers_the_same_points_as_the_uncut_ring() -> None:
    """The polygon pieces of a ring drawn in unwrapped longitudes hold exactly the points
    the ring holds (a point and its copies 360 deg away are the same place)."""
    from chiploc.solver._geodesy import _polygonal, _split

    ring = Polygon([(170.0, -10.0), (200.0, -10.0), (200.0, 10.0), (170.0, 10.0)])
    cut = _split(ring, 170.0, 200.0)
    assert cut.is_valid
    assert cut.bounds == (-180.0, -10.0, 180.0, 10.0)
    rng = np.random.default_rng(2)
    lat, lon = rng.uniform(-20.0, 20.0, 4000), rng.uniform(-180.0, 180.0, 4000)
    truth = _points_of(ring, lat, lon) | _points_of(ring, lat, lon + 360.0)
    np.testing.assert_array_equal(_points_of(cut, lat, lon), truth)
    # The polygonal part of a mixed result: its polygons, nothing of its lines or points.
    square, far = box(0.0, 0.0, 1.0, 1.0), box(5.0, 5.0, 6.0, 6.0)
    mixed = shapely.GeometryCollection([square, shapely.LineString([(2, 2), (3, 3)]), far])
    part = _polygonal(mixed)
    assert part.geom_type == "MultiPolygon"
    assert part.equals(MultiPolygon([square, far]))
    one = _polygonal(shapely.GeometryCollection([square, shapely.Point(3.0, 3.0)]))
    assert one.geom_type == "Polygon"
    assert one.equals(square)
    assert _polygonal(shapely.GeometryCollection([shapely.Point(1.0, 1.0)])).is_empty


# --------------------------------------------------------------------------- certificates

#: Rings (centre, radius, vertex count), several laid end to end as the disks are built.
RINGS = [
    (0.0, 10.0, 100.0, 16),
    (30.0, -40.0, 1000.0, 64),
    (-30.0, 170.0, 1000.0, 16),  # across the antimeridian
    (5.0, 100.0, 5000.0, 256),
    (60.0, 0.0, 5000.0, 64),
    (-20.0, -70.0, 300.0, 9),
    (10.0, 40.0, 15_000.0, 256),  # beyond a quarter meridian: the distance is concave there
]


def _true_sag(lat: float, lon: float, r: float, la: Arr, lo: Arr) -> tuple[float, float]:
    """How far the straight lon/lat edges of a ring come inside and outside of r."""
    t = np.linspace(0.0, 1.0, 301)[:, None]
    d = dist_km(lat, lon, la[:-1] + t * (la[1:] - la[:-1]), lo[:-1] + t * (lo[1:] - lo[:-1]))
    return r - float(d.min()), float(d.max()) - r


def test_rings_are_certified_by_bounds_the_real_edges_keep_and_nearly_reach() -> None:
    """Rings at their radius; the certificate of each (computed for all at once) is never
    less than how far its real edges sag inside r (outer) or bulge beyond r (inscribed),
    and, for an outer ring away from the poles, within a third of it."""
    from chiploc.solver._geodesy import _dips_km, _rings

    lat = np.array([c[0] for c in RINGS])
    lon = np.array([c[1] for c in RINGS])
    r = np.array([c[2] for c in RINGS])
    count = np.array([c[3] for c in RINGS], dtype=np.intp)
    az = np.concatenate([np.linspace(0.0, 360.0, n, endpoint=False) for n in count])
    la, lo, start = _rings(lat, lon, r, az, count)
    np.testing.assert_array_equal(start, np.concatenate([[0], np.cumsum(count + 1)]))
    outer = _dips_km(la, lo, start, r, False)
    inner = _dips_km(la, lo, start, r, True)
    for k, (c_lat, c_lon, c_r, n) in enumerate(RINGS):
        ring_la, ring_lo = la[start[k] : start[k + 1]], lo[start[k] : start[k + 1]]
        assert ring_la.size == n + 1
        # Every vertex on the circle, the ring closed, no edge jumping around the map.
        np.testing.assert_allclose(dist_km(c_lat, c_lon, ring_la, ring_lo), c_r, rtol=1e-9)
        assert ring_la[-1] == ring_la[0]
        assert (ring_lo[-1] - ring_lo[0]) % 360.0 == 0.0
        assert np.all(np.abs(np.diff(ring_lo)) < 180.0)
        sag, bulge = _true_sag(c_lat, c_lon, c_r, ring_la, ring_lo)
        assert outer[k] >= sag > 0.0
        assert inner[k] >= bulge
        if abs(c_lat) <= 30.0 and n >= 16 and c_r < 10_000.0:
            assert outer[k] <= 1.35 * sag, (k, outer[k], sag)
    assert inner[4] <= 2.5 * _true_sag(60.0, 0.0, 5000.0, *_ring(la, lo, start, 4))[1]


def _ring(la: Arr, lo: Arr, start: Arr, k: int) -> tuple[Arr, Arr]:
    return la[start[k] : start[k + 1]], lo[start[k] : start[k + 1]]


def test_rings_through_a_pole_or_around_the_centre_are_not_certified() -> None:
    """An edge reaching a pole (where a straight lon/lat line is no curve of bounded
    curvature) and an outer ring whose edges may reach the centre get no finite bound;
    an inscribed ring whose edges may reach the far side (pi b**2/a) neither."""
    from chiploc.solver._geodesy import _dips_km, _rings

    to_pole = float(dist_km(80.0, 0.0, 90.0, 0.0))  # the first vertex (azimuth 0) at the pole
    cases = [(80.0, 0.0, to_pole, 32), (0.0, 0.0, 50.0, 2), (0.0, 0.0, 19_000.0, 3)]
    lat = np.array([c[0] for c in cases])
    lon = np.array([c[1] for c in cases])
    r = np.array([c[2] for c in cases])
    count = np.array([c[3] for c in cases], dtype=np.intp)
    az = np.concatenate([np.linspace(0.0, 360.0, n, endpoint=False) for n in count])
    la, lo, start = _rings(lat, lon, r, az, count)
    assert float(np.abs(la[: start[1]]).max()) == 90.0  # the ring passes over the pole
    outer = _dips_km(la, lo, start, r, False)
    inner = _dips_km(la, lo, start, r, True)
    assert np.isinf(outer[0])
    assert np.isinf(inner[0])
    assert np.isinf(outer[1])  # two vertices 100 km apart: the edges cross the centre
    assert np.isfinite(inner[1])
    assert np.isinf(inner[2])


@pytest.mark.parametrize(
    ("lat", "radius"),
    [(0.0, 1.0), (20.0, 100.0), (45.0, 1000.0), (0.0, 3000.0), (-20.0, 3000.0), (30.0, 0.1)],
)
def test_disks_have_about_the_vertices_their_sag_needs(lat: float, radius: float) -> None:
    """A border that sags 0.1 % of R between vertices needs edges of sqrt(8 * 0.1 % * R /
    kappa) (kappa the circle's geodesic curvature, cot(R/6371)/6371 on a sphere): about 70
    edges in low and middle latitudes (lon/lat edges curve more near the poles). Polygons
    hold no more than a quarter above that (their size is what every intersection and
    margin pays for)."""
    s = 6371.0
    kappa = 1.0 / (s * math.tan(radius / s))
    need = 2 * math.pi * s * math.sin(radius / s) / math.sqrt(8e-3 * radius / kappa)
    for disk in (geodesic_disk(lat, 30.0, radius), inscribed_disk(lat, 30.0, radius)):
        n = len(shapely.get_coordinates(disk)) - 1
        assert n <= 1.25 * need + 4, (n, need)
