"""Geodesy: chord bounds, circumscribing disks anywhere on Earth, areas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from chiploc.solver import (
    chord_to_geodesic_km,
    geodesic_disk,
    geodesic_km,
    geodesic_to_chord_km,
    inscribed_disk,
    polygon_area_km2,
)
from chiploc.solver._geodesy import (
    GEOD,
    R0_KM,
    WORLD,
    _plan_azimuths_many,
    _rings,
    ecef_km,
    edge_length_bound_km,
)
from chiploc.solver._intersect import DISK_REACH_KM, DISK_REACH_REL

from ._world import dist_km, fwd

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


def _boundary_distances(geom: shapely.Geometry, lat: float, lon: float) -> np.ndarray:
    """Distances from (lat, lon) to points densely sampled on the disk's real boundary."""
    dense = shapely.segmentize(geom, 0.02)
    xy = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(dense)))
    real = (np.abs(xy[:, 0]) < 180.0 - 1e-9) & (np.abs(xy[:, 1]) < 90.0 - 1e-9)
    xy = xy[real]
    return geodesic_km(lat, lon, xy[:, 1], xy[:, 0])


@given(lat=lats, lon=lons, chord=st.floats(0, 2 * R0_KM * 0.999))
def test_chord_bound_holds_for_sampled_points(lat: float, lon: float, chord: float) -> None:
    """Every surface point within `chord` in a straight line is within the geodesic bound."""
    s = chord_to_geodesic_km(chord)
    az = np.linspace(0, 360, 24, endpoint=False)
    for frac in (0.5, 0.9, 0.999, 1.0):
        # Points at geodesic distance slightly beyond the bound must have a longer chord.
        d = min(s * (1 + 1e-6) + 1e-6, 20003.0)
        lo, la, _ = GEOD.fwd(
            np.full(az.size, lon), np.full(az.size, lat), az, np.full(az.size, d * 1000)
        )
        c = np.linalg.norm(ecef_km(la, lo) - ecef_km(lat, lon), axis=-1)
        assert np.all(c > chord * frac - 1e-9)


def test_chord_bound_limits() -> None:
    assert chord_to_geodesic_km(0.0) == 0.0
    assert chord_to_geodesic_km(2 * R0_KM) == math.inf
    assert geodesic_to_chord_km(chord_to_geodesic_km(1000.0)) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="chord"):
        chord_to_geodesic_km(-1.0)


def test_far_points_have_long_chords() -> None:
    """Points beyond pi*R0 along the surface lie > 2*R0 away in a straight line."""
    for lat in (0.0, 30.0, 60.0, 89.0):
        la_grid, lo_grid = np.meshgrid(
            np.linspace(-lat - 2, -lat + 2, 81), np.linspace(175, 185, 201)
        )
        la = np.clip(la_grid, -90, 90).ravel()
        lo = lo_grid.ravel()
        s = geodesic_km(lat, 0.0, la, lo)
        far = s >= math.pi * R0_KM
        c = np.linalg.norm(ecef_km(la, lo) - ecef_km(lat, 0.0), axis=-1)
        assert far.any()
        assert c[far].min() > 2 * R0_KM


@given(lat=lats, lon=lons, radius=st.floats(0.01, 19_900))
def test_disk_circumscribes(lat: float, lon: float, radius: float) -> None:
    disk = geodesic_disk(lat, lon, radius)
    assert disk.is_valid
    assert shapely.contains_xy(disk, lon, lat) or shapely.intersects_xy(disk, lon, lat)
    d = _boundary_distances(disk, lat, lon)
    if d.size:
        assert d.min() >= radius * (1 - 1e-9)
        # ... and reaches no farther than the settle advice assumes (solver._settle).
        assert d.max() <= radius * (1 + DISK_REACH_REL) + DISK_REACH_KM
    # Random points inside the true disk are inside the polygon.
    az = np.linspace(0, 360, 37)
    for frac in (0.3, 0.99, 1.0):
        lo, la, _ = GEOD.fwd(
            np.full(az.size, lon), np.full(az.size, lat), az, np.full(az.size, radius * frac * 1000)
        )
        assert np.all(shapely.intersects_xy(disk, lo, la))


@given(lat=lats, lon=lons, radius=st.floats(0.05, 15_000))
def test_inscribed_disk_is_inside(lat: float, lon: float, radius: float) -> None:
    inner = inscribed_disk(lat, lon, radius)
    if inner.is_empty:
        return
    d = _boundary_distances(inner, lat, lon)
    if d.size:
        assert d.max() <= radius * (1 + 1e-9)
    assert inner.area <= geodesic_disk(lat, lon, radius).area + 1e-9


@given(
    lat=lats,
    lon=lons,
    radius=st.one_of(st.floats(0.05, 50.0), st.floats(50.0, 8000.0), st.floats(8000.0, 19_900)),
    seed=st.integers(0, 2**32 - 1),
)
def test_inscribed_disk_holds_only_points_within_the_radius(
    lat: float, lon: float, radius: float, seed: int
) -> None:
    """Every point of the inscribed polygon is within the radius (independent geodesics),
    and it is not vacuous: the centre and points at 90 % of the radius are in it."""
    inner = inscribed_disk(lat, lon, radius)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = inner.bounds
    x = rng.uniform(minx, maxx, 4000)
    y = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(miny)), np.sin(np.radians(maxy)), 4000)))
    held = shapely.intersects_xy(inner, x, y)
    d = dist_km(lat, lon, y[held], x[held])
    assert d.size == 0 or float(d.max()) <= radius * (1 + 1e-9), (
        f"a point {float(d.max()):.3f} km from the centre is inside the {radius} km inner disk"
    )
    if radius >= 0.05:
        az = np.linspace(0.0, 360.0, 24, endpoint=False)
        la, lo = fwd(lat, lon, az, np.full(az.size, 0.9 * radius))
        assert shapely.intersects_xy(inner, lon, lat)
        assert np.all(shapely.intersects_xy(inner, lo, la))


@pytest.mark.parametrize(
    ("lat", "lon", "radius", "pieces"),
    [
        (-17.7, 178.0, 300.0, 2),  # Fiji: across the antimeridian
        (65.8, -169.0, 700.0, 2),  # Bering Strait
        (89.0, 0.0, 300.0, 1),  # holds the north pole
        (-90.0, 0.0, 2000.0, 1),  # centred on the south pole
        (10.0, 20.0, 15_000.0, 1),  # 15,000 km: both poles inside
        (48.0, 11.0, 2.0, 1),  # 2 km
        (48.0, 11.0, 0.02, 1),  # 20 m
    ],
)
def test_explicit_disks(lat: float, lon: float, radius: float, pieces: int) -> None:
    disk = geodesic_disk(lat, lon, radius)
    assert len(shapely.get_parts(disk)) == pieces
    xmin, ymin, xmax, ymax = disk.bounds
    assert -180 <= xmin <= xmax <= 180
    assert -90 <= ymin <= ymax <= 90
    az = np.linspace(0, 360, 20000, endpoint=False)
    lo, la, _ = GEOD.fwd(
        np.zeros_like(az), np.full_like(az, lat), az, np.full_like(az, radius * 1000)
    )
    exact, _ = GEOD.polygon_area_perimeter(lo, la)
    exact_km2 = abs(exact) / 1e6
    if radius > 10_002:  # pyproj reports the smaller side of the ring
        exact_km2 = polygon_area_km2(WORLD) - exact_km2
    ratio = polygon_area_km2(disk) / exact_km2
    assert 1.0 <= ratio < 1.01


def test_whole_world_and_area() -> None:
    assert geodesic_disk(0.0, 0.0, 19_995.0).equals(WORLD)
    assert polygon_area_km2(WORLD) == pytest.approx(510_065_621.7, rel=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="coordinates"):
        geodesic_disk(91.0, 0.0, 10.0)
    with pytest.raises(ValueError, match="radius"):
        geodesic_disk(0.0, 0.0, -1.0)


@pytest.mark.parametrize("lat", [0.0, 45.0, 70.0, 80.0, 85.0, 88.0, 89.5, 90.0, -89.9])
@pytest.mark.parametrize("radius", [0.0, 0.5, 30.0, 600.0, 3000.0, 8556.9, 12_000.0, 19_000.0])
def test_disk_reach_is_bounded(lat: float, radius: float) -> None:
    disk = geodesic_disk(lat, 87.73, radius)
    d = _boundary_distances(disk, lat, 87.73)
    if d.size:
        assert d.max() <= radius * (1 + DISK_REACH_REL) + DISK_REACH_KM


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(0.0, 0.0), (51.0, 10.0), (-33.9, 151.2), (70.0, 179.9), (-45.0, -180.0), (88.7, 12.0),
     (-89.95, 100.0), (90.0, 0.0), (-90.0, 0.0), (12.0, 180.0)],
)  # fmt: skip
@pytest.mark.parametrize("radius", [0.05, 1.0, 40.0, 900.0, 2500.0, 4200.0, 9000.0, 19_000.0])
def test_planned_vertices_circumscribe(lat: float, lon: float, radius: float) -> None:
    """Vertices placed by the dip budget (dense only where needed) still circumscribe.

    Thousands of points on the true geodesic circle (and just inside it) are all
    inside the polygon, and the polygon stays within the relative budget.
    """
    disk = geodesic_disk(lat, lon, radius)
    az = np.linspace(0, 360, 7200, endpoint=False)
    for frac in (1.0, 1 - 1e-7):
        lo, la, _ = GEOD.fwd(
            np.full(az.size, lon), np.full(az.size, lat), az, np.full(az.size, radius * frac * 1000)
        )
        assert np.all(shapely.intersects_xy(disk, lo, la))
    d = _boundary_distances(disk, lat, lon)
    if d.size:
        assert d.min() >= radius * (1 - 1e-9)
        assert d.max() <= radius * (1 + 3e-3) + 0.02  # ring 1.1e-3 out, sag <= 1e-3 more


def test_vertices_are_dense_only_near_the_pole() -> None:
    """A ring that passes near a pole gets its extra vertices there, not everywhere."""
    one = (np.array([50.0]), np.array([10.0]), np.array([4400.0]))
    az, count = _plan_azimuths_many(one[0], one[2], np.array([1.1]))
    lat_r, lon_u, _ = _rings(*one, az, count)
    near_pole = lat_r[:-1] > 80.0
    step_km = edge_length_bound_km(lat_r[:-1], lon_u[:-1], lat_r[1:], lon_u[1:])
    assert near_pole.any()
    assert np.median(step_km[near_pole]) < 0.5 * np.median(step_km[lat_r[:-1] < 40.0])
    assert lat_r.size < 1024


def test_straight_lon_lat_lines_curve_less_than_the_certificate_assumes() -> None:
    """Geodesic curvature of straight lon/lat segments on WGS84 vs the certificate's bound.

    The space curve through ecef(lat0 + b t, a t), its curvature vector projected on the
    surface's tangent plane, for 359 latitudes x 200 directions: never above
    ``(_KAPPA_TAN |tan lat| + _KAPPA_ABS) / R0`` (the derivation in solver/_geodesy.py
    gives 1.0887 and 0.0039; measured worst 0.99 of that).
    """
    from chiploc.solver._geodesy import _KAPPA_ABS, _KAPPA_TAN

    phi = np.radians(np.linspace(-89.5, 89.5, 359))[:, None]
    ang = np.linspace(0.001, np.pi - 0.001, 200)[None, :]
    a, b = np.cos(ang), np.sin(ang)
    h = 1e-5

    def point(t: float) -> np.ndarray:
        return ecef_km(np.degrees(phi + b * t), np.degrees(a * t))

    p0, pm, pp = point(0.0), point(-h), point(h)
    d1, d2 = (pp - pm) / (2 * h), (pp - 2 * p0 + pm) / h**2
    speed = np.linalg.norm(d1, axis=-1, keepdims=True)
    tangent = d1 / speed
    normal_curvature = d2 - (d2 * tangent).sum(axis=-1, keepdims=True) * tangent
    curvature = normal_curvature / speed**2
    up = np.stack(np.broadcast_arrays(np.cos(phi), 0.0 * phi, np.sin(phi)), axis=-1)
    kappa_g = np.abs((curvature * np.cross(up, tangent)).sum(axis=-1))
    bound = (_KAPPA_TAN * np.abs(np.tan(phi)) + _KAPPA_ABS) / R0_KM
    assert np.all(kappa_g <= bound)
    assert np.max(kappa_g / ((1.0887 * np.abs(np.tan(phi)) + 0.0039) / R0_KM)) <= 1.0


def test_disk_cache_overflowing_mid_call_keeps_the_disks_it_had(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call that finds some disks cached and must clear the full cache for the rest
    still returns every disk (found by a 5,000-example property run: KeyError)."""
    from chiploc.solver import _geodesy

    monkeypatch.setattr(_geodesy, "_DISK_CACHE_SIZE", 3)
    _geodesy.clear_disk_cache()
    try:
        lat, lon, r = np.array([10.0, 20.0]), np.array([5.0, 6.0]), np.array([100.0, 200.0])
        first = _geodesy.geodesic_disks(lat, lon, r)
        more_lat, more_lon, more_r = [30.0, 40.0], [7.0, 8.0], [300.0, 400.0]
        both = _geodesy.geodesic_disks(
            np.append(lat, more_lat), np.append(lon, more_lon), np.append(r, more_r)
        )
        assert len(both) == 4
        assert both[0] is first[0]
        assert both[1] is first[1]
        for disk, a, o, x in zip(both[2:], more_lat, more_lon, more_r, strict=True):
            assert disk.equals(geodesic_disk(a, o, x))
    finally:
        _geodesy.clear_disk_cache()
