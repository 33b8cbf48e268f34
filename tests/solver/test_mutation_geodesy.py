"""Geodesy against an independent engine: areas, edge lengths, chord conversions, disks.

Each test compares the solver's geodesy with the world computed otherwise: pyproj's
``Geod`` (a separate instance, ``tests/solver/_world.py``) for areas and distances, the
textbook chord of two surface points, and points sampled on the true geodesic circle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from chiploc.solver import (
    chord_to_geodesic_km,
    geodesic_disk,
    geodesic_to_chord_km,
    inscribed_disk,
    polygon_area_km2,
)
from chiploc.solver._geodesy import R0_KM, edge_length_bound_km, geodesic_disks

from ._world import TRUTH_GEOD, chord_km, dist_km, fwd


def _true_area_km2(geom: shapely.Geometry) -> float:
    """Area on WGS84 of a lon/lat polygon with straight lon/lat edges (densified for pyproj,
    whose edges are geodesics; each part oriented, holes against the exterior, as pyproj
    sums signed ring areas)."""
    total = 0.0
    for part in shapely.get_parts(geom):
        dense = orient(shapely.segmentize(part, 0.01), 1.0)
        area, _ = TRUTH_GEOD.geometry_area_perimeter(dense)
        total += area
    return total / 1e6


@pytest.mark.parametrize(
    "geom",
    [
        Polygon([(7, 49), (10, 49), (10, 51.5), (7, 51.5)]),  # Germany-sized box
        Polygon([(7, 49), (7, 51.5), (10, 51.5), (10, 49)]),  # the same, clockwise
        Polygon([(-20, 55), (40, 55), (40, 75), (-20, 75)]),  # far north
        Polygon(  # a box with a hole
            [(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (2, 4), (4, 4), (4, 2)]]
        ),
        MultiPolygon(  # two parts, one with a hole, and one in the south
            [
                Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (4, 2), (4, 4), (2, 4)]]),
                Polygon([(100, -40), (110, -40), (105, -30)]),
            ]
        ),
        Polygon([(-180, -90), (180, -90), (180, -60), (-180, -60)]),  # a polar cap
    ],
)
def test_polygon_area_is_the_true_area(geom: shapely.Geometry) -> None:
    assert polygon_area_km2(geom) == pytest.approx(_true_area_km2(geom), rel=1e-6)


def test_area_of_nothing_and_of_lines_is_zero() -> None:
    assert polygon_area_km2(Polygon()) == 0.0
    assert polygon_area_km2(shapely.LineString([(0, 0), (1, 1)])) == 0.0
    assert polygon_area_km2(MultiPolygon()) == 0.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((0.0, 0.0), (0.0, 10.0)),  # a parallel, on the equator
        ((60.0, -20.0), (60.0, 40.0)),  # a parallel far north
        ((-10.0, 5.0), (20.0, 5.0)),  # a meridian across the equator
        ((10.0, 0.0), (40.0, 30.0)),  # a diagonal
        ((-5.0, 170.0), (-40.0, 200.0)),  # unwrapped past the antimeridian
        ((-70.0, 0.0), (-50.0, 90.0)),  # southern diagonal
        ((5.0, 0.0), (-5.0, 1.0)),  # short, across the equator
    ],
)
def test_edge_length_bound_is_never_below_the_true_length(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    """The length of a straight lon/lat segment, summed over 0.0005-deg steps with an
    independent geodesic, never exceeds the bound; the bound is within 1 % of it along a
    parallel or a meridian (cos of the smallest latitude on the segment: loose on diagonals
    that change latitude, never more than 30 % here)."""
    t = np.linspace(0.0, 1.0, 20001)
    lat = a[0] + t * (b[0] - a[0])
    lon = a[1] + t * (b[1] - a[1])
    true = float(dist_km(lat[:-1], lon[:-1], lat[1:], lon[1:]).sum())
    bound = float(edge_length_bound_km(*(np.array([v]) for v in (a[0], a[1], b[0], b[1])))[0])
    assert true <= bound, (true, bound)
    assert bound <= (1.01 if a[0] == b[0] or a[1] == b[1] else 1.3) * true, (true, bound)


def test_chord_and_geodesic_conversions_at_their_limits() -> None:
    assert chord_to_geodesic_km(0.0) == 0.0
    assert chord_to_geodesic_km(2 * R0_KM) == math.inf
    assert chord_to_geodesic_km(13_000.0) == math.inf
    assert math.isfinite(chord_to_geodesic_km(2 * R0_KM * (1 - 1e-9)))
    for bad in (-1e-9, -5.0, math.nan):
        with pytest.raises(ValueError, match="chord must be >= 0"):
            chord_to_geodesic_km(bad)
    assert geodesic_to_chord_km(0.0) == 0.0
    assert geodesic_to_chord_km(-3.0) == 0.0
    assert geodesic_to_chord_km(math.pi * R0_KM) == 2 * R0_KM
    assert geodesic_to_chord_km(30_000.0) == 2 * R0_KM
    for s in (1.0, 500.0, 5000.0, 15_000.0, 19_000.0):
        c = geodesic_to_chord_km(s)
        assert chord_to_geodesic_km(c) == pytest.approx(min(s, math.pi * R0_KM), rel=1e-9)


@pytest.mark.parametrize("s_km", [10.0, 1000.0, 9000.0, 15_000.0])
def test_points_at_a_geodesic_distance_have_at_least_the_chord_allowed(s_km: float) -> None:
    """Any point s km away (geodesic) is at least geodesic_to_chord_km(s) away in a straight
    line: the chord a landmark may allow for a region of geodesic radius s."""
    for lat in (0.0, 45.0, 89.0, -60.0):
        la, lo = fwd(lat, 30.0, np.linspace(0.0, 360.0, 36, endpoint=False), s_km)
        chords = chord_km(lat, 30.0, la, lo)
        assert (chords >= geodesic_to_chord_km(s_km) - 1e-9).all()
        assert chords.min() <= 1.01 * geodesic_to_chord_km(s_km)


@pytest.mark.parametrize(
    ("lat", "lon", "r"),
    [(50.0, 8.0, 300.0), (-17.0, 179.8, 250.0), (89.5, 10.0, 200.0), (0.0, 0.0, 12_000.0)],
)
def test_many_disks_at_once_are_each_disk(lat: float, lon: float, r: float) -> None:
    """geodesic_disks (the vectorised path) circumscribes each true circle, like one disk."""
    disks = geodesic_disks([lat, 10.0], [lon, 20.0], [r, 50.0])
    for (la0, lo0, r0), disk in zip([(lat, lon, r), (10.0, 20.0, 50.0)], disks, strict=True):
        la, lo = fwd(la0, lo0, np.linspace(0.0, 360.0, 720, endpoint=False), 0.999 * r0)
        assert shapely.intersects_xy(disk, lo, la).all()
        assert polygon_area_km2(disk) <= 1.01 * polygon_area_km2(geodesic_disk(la0, lo0, r0))


def test_infinite_radius_is_the_world_and_bad_disks_are_refused() -> None:
    assert geodesic_disks([0.0], [0.0], [math.inf])[0].equals(shapely.box(-180, -90, 180, 90))
    with pytest.raises(ValueError, match="radius_km must be >= 0"):
        geodesic_disks([0.0], [0.0], [math.nan])
    with pytest.raises(ValueError, match="same length"):
        geodesic_disks([0.0, 1.0], [0.0], [5.0])
    with pytest.raises(ValueError, match=r"coordinates out of range: lat=0.0, lon=181.0"):
        geodesic_disks([0.0], [181.0], [5.0])
    with pytest.raises(ValueError, match=r"lat=-90.5"):
        inscribed_disk(-90.5, 0.0, 5.0)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and > 0"):
            inscribed_disk(0.0, 0.0, bad)


@pytest.mark.parametrize(
    ("lat", "lon", "r"),
    [
        (0.0, 0.0, 10_000.0),
        (30.0, 60.0, 15_000.0),  # both poles inside
        (-17.0, 179.9, 400.0),  # across the antimeridian
        (88.0, 0.0, 500.0),  # holds the pole
        (-89.0, 45.0, 3000.0),
        (45.0, 45.0, 0.01),  # 10 m
        (0.0, 0.0, 19_900.0),  # all but a hole around the antipode
    ],
)
def test_inscribed_disk_is_within_the_circle_and_nearly_fills_it(
    lat: float, lon: float, r: float
) -> None:
    inner = inscribed_disk(lat, lon, r)
    assert not inner.is_empty
    xy = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(inner)))
    real = (np.abs(xy[:, 0]) < 180.0) & (np.abs(xy[:, 1]) < 90.0)
    assert (dist_km(lat, lon, xy[real, 1], xy[real, 0]) <= r).all()
    la, lo = fwd(lat, lon, np.linspace(0.0, 360.0, 360, endpoint=False), 0.99 * r)
    assert shapely.intersects_xy(inner, lo, la).all()
