"""Margins at the edges of what the margin code assumes, against an independent computation.

Each case has a true clearance computed without the solver (pyproj ``Geod`` in
``tests/solver/_world.py``, a nearest point known from the geometry), and states that the
margin never exceeds it and, where the case is tight, comes within centimetres of it:

* **A chip metres from a sharp tip.** A zone drawn with 11 m edges narrowing to a point,
  a chip 33 m beyond the point, a region 5 m wide: the bounds the margin code prunes with
  differ by less than a metre here, so whole segments lie within rounding of each other.
* **Any outer region, even one whose vertices average to the Earth's centre.** The
  margin is promised for the exact feasible set; the region handed in is only an outer
  approximation of it, and the answer must hold for any such region.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import shapely
from scipy.optimize import brentq
from shapely.geometry import Polygon

from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import Measurement, Model, Verdict, solve
from chiploc.solver._intersect import _Problem, _Shape
from chiploc.solver._verdict import _margin_km

from ._world import (
    HALF_MERIDIAN_KM,
    chord_bound_km,
    densify,
    dist_km,
    feasible_boundary,
    fwd,
    polygon_zone,
)


def _one(lat: float, lon: float, radius_km: float) -> list[Measurement]:
    return [Measurement(landmark="l", lat=lat, lon=lon, rtt_ms=2.0 * radius_km / C)]


#: A wedge opening east from its tip at (0, 0), 1.1 km long and 44 m wide at its base.
WEDGE = [[0.0, 0.0], [0.01, 0.0002], [0.01, -0.0002], [0.0, 0.0]]


@pytest.mark.parametrize(("west_deg", "radius_km"), [(0.0003, 0.005), (0.0002, 0.002)])
def test_a_chip_metres_beyond_a_sharp_tip(
    tmp_path: Path, west_deg: float, radius_km: float
) -> None:
    """The wedge drawn with ~11 m edges; a chip on the equator 22-33 m west of its tip,
    proven within 2-5 m: VIOLATION, with a margin of its distance to the tip (the nearest
    point of the zone: both edges leave the tip eastward within 1.2 deg of the equator)
    less the proven radius, within 5 cm and never above."""
    zone = polygon_zone(tmp_path, "wedge", densify(WEDGE, 0.0001))
    res = solve("chip", _one(0.0, -west_deg, radius_km), zone, estimate=False)
    assert res.verdict is Verdict.VIOLATION, res.message
    true_km = float(dist_km(0.0, -west_deg, 0.0, 0.0)) - res.landmarks[0].radius_km
    assert res.margin_km is not None
    assert true_km - 5e-5 <= res.margin_km <= true_km + 1e-9, (res.margin_km, true_km)


def test_any_outer_region_gives_a_sound_margin(tmp_path: Path) -> None:
    """The margin bounds the distance from the exact feasible set to the border, whatever
    outer approximation of that set the caller passes. Here a lon/lat triangle holding a
    landmark's 3 km feasible set whose vertices' directions sum to zero (the margin code
    centres its search on their mean), against a box whose edge passes 0.4 km from the
    feasible set: the true clearance, from points on the exact boundary of the feasible set,
    is below 0.5 km, and the margin must not exceed it."""
    lat, lon, r = 0.0, 0.0, 3.0
    ms = _one(lat, lon, r)
    prob = _Problem(ms, Model.VACUUM, None, MAX_CLOCK_RATE_ERROR_PPM)
    # (0, -1, 0) twice (the ring's closing vertex), (0, 1, 0), (0, 1/2, +-sqrt(3)/2).
    region = Polygon([(-90.0, 0.0), (90.0, -60.0), (90.0, 0.0), (90.0, 60.0), (-90.0, 0.0)])
    xy = shapely.get_coordinates(region)
    la, lo = np.radians(xy[:, 1]), np.radians(xy[:, 0])
    mean = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]).mean(axis=1)
    assert float(np.linalg.norm(mean)) < 1e-9  # the case this test is about
    f_lat, f_lon = feasible_boundary([(lat, lon, chord_bound_km(ms[0].rtt_ms))], 720)
    assert shapely.covers(region, shapely.MultiPoint(np.column_stack([f_lon, f_lat])))
    # A box whose western edge is the meridian 3.4 km east of the landmark.
    east = 3.4 / 111.32
    ring = [[east, -1.0], [2.0, -1.0], [2.0, 1.0], [east, 1.0], [east, -1.0]]
    border = polygon_zone(tmp_path, "box", ring).outer_border
    # The feasible set's eastern points against the edge every metre near the equator.
    near = f_lon >= f_lon.max() - 0.002
    edge = np.linspace(-0.01, 0.01, 2001)
    clear = float(dist_km(f_lat[near, None], f_lon[near, None], edge[None, :], east).min())
    assert 0.0 < clear < 0.5
    assert _margin_km(prob, [0], region, border) <= clear


def test_the_nearest_point_of_a_zone_is_never_missed_behind_a_long_edge(tmp_path: Path) -> None:
    """A region 1,000 km wide drawn with ~45 km edges, and a wedge zone pointing at it: the
    wedge's tip 245 km away is drawn with 1 km edges, its long sides start 4 km up from the
    tip (at ~249 km). The margin is the tip's clearance (from points on the exact boundary
    of the feasible set), never the long sides' 249 km: the margin code's first search ring
    (250 km) must reach the short edges even though the region's own edges are long."""
    lat_tip = float(fwd(0.0, 0.0, 0.0, 500.0 + 245.0)[0][0])
    near = [[0.0005 * k, lat_tip + 0.01 * k] for k in range(5)]
    ring = [
        *near,
        [0.5, lat_tip + 5.0],
        [-0.5, lat_tip + 5.0],
        *[[-lo, la] for lo, la in reversed(near)],
    ]
    zone = polygon_zone(tmp_path, "wedge", ring)
    ms = _one(0.0, 0.0, 500.0)
    res = solve("chip", ms, zone, estimate=False)
    assert res.verdict is Verdict.VIOLATION, res.message
    f_lat, f_lon = feasible_boundary([(0.0, 0.0, chord_bound_km(ms[0].rtt_ms))], 720)
    b = np.array(densify(ring, 0.001))
    b = b[b[:, 1] <= lat_tip + 0.2]  # the border near the tip (the rest is farther)
    north = f_lat >= f_lat.max() - 0.1
    clear = float(
        dist_km(f_lat[north, None], f_lon[north, None], b[None, :, 1], b[None, :, 0]).min()
    )
    assert 240.0 < clear < 250.0
    assert res.margin_km is not None
    assert clear - 0.26 <= res.margin_km <= clear + 1e-6, (res.margin_km, clear)


def test_a_zone_without_a_border_gives_an_earthly_margin(tmp_path: Path) -> None:
    """The whole Earth as a GeoJSON zone has no border (its edges are the poles and the
    antimeridian): every region is COMPLIANT, and the margin is still a distance on the
    Earth, between 0 and half a meridian (no two points are farther apart)."""
    ring = [[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]
    zone = polygon_zone(tmp_path, "earth", ring)
    for radius_km in (100.0, 25_000.0):
        res = solve("chip", _one(10.0, 10.0, radius_km), zone, estimate=False)
        assert res.verdict is Verdict.COMPLIANT, res.message
        assert res.margin_km is not None
        assert 0.0 <= res.margin_km <= HALF_MERIDIAN_KM, res.margin_km


def _notched_box(lat0: float, lb: float) -> list[tuple[float, float]]:
    """A lon/lat box (lon +-20, lat lb..30) with a notch from its southern edge up to a
    vertex at (lat0, 0): the region the next test hands in (lon, lat)."""
    return [(0.0, lat0), (20.0, lb), (20.0, 30.0), (-20.0, 30.0), (-20.0, lb), (0.0, lat0)]


@functools.cache
def _rounding_above_one() -> tuple[float, float]:
    """A notched box whose vertices' mean direction is the notch's vertex (lb solved for
    it), and for which the dot product of that vertex with the mean rounds above 1."""
    for lat0 in np.arange(10.0, 20.0, 0.137):

        def tilt(lb: float, lat0: float = float(lat0)) -> float:
            u = _Shape.of(Polygon(_notched_box(lat0, lb))).unit.mean(axis=0)
            return float(np.arctan2(u[2], u[0]) - np.radians(lat0))

        lb = float(brentq(tilt, -30.0, float(lat0) - 0.5, xtol=1e-15))
        u = _Shape.of(Polygon(_notched_box(float(lat0), lb))).unit
        u0 = u.mean(axis=0) / float(np.linalg.norm(u.mean(axis=0)))
        if float(u[0] @ u0) > 1.0:
            return float(lat0), lb
    raise AssertionError("no notched box where the dot product rounds above 1")


@pytest.mark.parametrize("side", [1.0, -1.0], ids=["east", "west"])
def test_a_margin_holds_when_rounding_puts_a_cosine_above_one(tmp_path: Path, side: float) -> None:
    """A feasible set 200 km wide inside a notched box (an outer region of it), and a wedge
    zone whose tip is the notch's vertex, at the region's mean direction: the cosine of the
    angle between them rounds to just above 1 (its arccosine is NaN). The feasible set lies
    east (west) of the wedge, nearest to the middle of one side, a side that ends at the
    tip. The margin is the true clearance, from points on the exact boundary of the
    feasible set to points every ~4 km along the wedge, within 1 km and never above."""
    lat0, lb = _rounding_above_one()
    ms = _one(10.0, 12.0 * side, 100.0)
    prob = _Problem(ms, Model.VACUUM, None, MAX_CLOCK_RATE_ERROR_PPM)
    region = Polygon(_notched_box(lat0, lb))
    f_lat, f_lon = feasible_boundary([(10.0, 12.0 * side, chord_bound_km(ms[0].rtt_ms))], 180)
    assert shapely.covers(region, shapely.MultiPoint(np.column_stack([f_lon, f_lat])))
    ring = [[0.0, lat0], [5.0, lat0 - 10.0], [-5.0, lat0 - 10.0], [0.0, lat0]]
    border = polygon_zone(tmp_path, "wedge", ring).outer_border
    b = np.array(densify(ring, 0.04))
    near = side * f_lon <= 12.0  # the half of the feasible set that faces the wedge
    clear = float(dist_km(f_lat[near, None], f_lon[near, None], b[None, :, 1], b[None, :, 0]).min())
    tip = float(dist_km(f_lat, f_lon, lat0, 0.0).min())
    assert 400.0 < clear < tip - 300.0  # nearest to a side's middle, far from the tip
    margin = _margin_km(prob, [0], region, border)
    assert clear - 1.0 <= margin <= clear + 1e-6, (margin, clear)


def test_margin_of_a_region_cut_by_two_disks(tmp_path: Path) -> None:
    """A 50 km disk cut by a 100 km one 111 km east of it: the region is the small disk's
    eastern part. A box zone whose eastern edge lies ~17 km past the region, inside the
    larger disk: the margin is the true clearance (from points on the exact boundary of
    the feasible set to the edge) within half a 0.5 km piece, never above; each point of
    the edge is outside the small disk but inside the large one, so a bound that took
    either disk's distance alone would say 0 there."""
    ms = [
        Measurement(landmark="a", lat=0.0, lon=0.0, rtt_ms=2.0 * 50.0 / C),
        Measurement(landmark="b", lat=0.0, lon=1.0, rtt_ms=2.0 * 100.0 / C),
    ]
    ring = [[-1.0, -1.0], [0.6, -1.0], [0.6, 1.0], [-1.0, 1.0], [-1.0, -1.0]]
    res = solve("chip", ms, polygon_zone(tmp_path, "box", ring), estimate=False)
    assert res.verdict is Verdict.COMPLIANT, res.message
    assert set(res.binding_landmarks) == {"a", "b"}
    f_lat, f_lon = feasible_boundary([(m.lat, m.lon, chord_bound_km(m.rtt_ms)) for m in ms], 720)
    east = f_lon >= f_lon.max() - 0.02
    edge = np.linspace(-0.1, 0.1, 1001)  # every 22 m, around the region's eastern tip
    clear = float(dist_km(f_lat[east, None], f_lon[east, None], edge[None, :], 0.6).min())
    assert 15.0 < clear < 20.0
    assert res.margin_km is not None
    assert clear - 0.26 <= res.margin_km <= clear + 1e-6, (res.margin_km, clear)


def _long_triangle(h: float, t: float) -> list[tuple[float, float]]:
    """A lon/lat triangle from (0, -170) to the meridian 10, where it spans lat -h..h, with
    a vertex on that side at (0, t): an outer region for the next test (lon, lat)."""
    return [(-170.0, 0.0), (10.0, -h), (t, 0.0), (10.0, h), (-170.0, 0.0)]


@functools.cache
def _rounding_below_minus_one() -> tuple[float, float]:
    """A long triangle whose vertices' mean direction is the antipode of its vertex at
    (0, -170) (t solved for it), for which their dot product rounds below -1."""
    for h in np.arange(15.0, 25.0, 0.173):

        def turn(t: float, h: float = float(h)) -> float:
            u = _Shape.of(Polygon(_long_triangle(h, t))).unit
            m = u.mean(axis=0)
            return float(np.arctan2(m[1], m[0]) - np.arctan2(-u[0][1], -u[0][0]))

        t = float(brentq(turn, 0.0, 20.0, xtol=1e-15))
        u = _Shape.of(Polygon(_long_triangle(float(h), t))).unit
        u0 = u.mean(axis=0) / float(np.linalg.norm(u.mean(axis=0)))
        if float((u @ u0).min()) < -1.0:
            return float(h), t
    raise AssertionError("no long triangle where the dot product rounds below -1")


def test_a_margin_holds_when_rounding_puts_a_cosine_below_minus_one(tmp_path: Path) -> None:
    """A feasible set 200 km wide at (0, -80) inside a lon/lat triangle 180 deg long (an
    outer region of it) one of whose vertices is the antipode of the vertices' mean
    direction: their cosine rounds to just below -1. A box zone 1 deg east of the feasible
    set: the margin is its true clearance within half a 0.5 km piece, never above."""
    h, t = _rounding_below_minus_one()
    ms = _one(0.0, -80.0, 100.0)
    prob = _Problem(ms, Model.VACUUM, None, MAX_CLOCK_RATE_ERROR_PPM)
    region = Polygon(_long_triangle(h, t))
    f_lat, f_lon = feasible_boundary([(0.0, -80.0, chord_bound_km(ms[0].rtt_ms))], 720)
    assert shapely.covers(region, shapely.MultiPoint(np.column_stack([f_lon, f_lat])))
    ring = [[-78.0, -1.0], [-77.0, -1.0], [-77.0, 1.0], [-78.0, 1.0], [-78.0, -1.0]]
    border = polygon_zone(tmp_path, "box", ring).outer_border
    east = f_lon >= f_lon.max() - 0.02
    edge = np.linspace(-0.1, 0.1, 1001)  # the box's western edge every 22 m, near the equator
    clear = float(dist_km(f_lat[east, None], f_lon[east, None], edge[None, :], -78.0).min())
    assert 100.0 < clear < 130.0
    margin = _margin_km(prob, [0], region, border)
    assert clear - 0.26 <= margin <= clear + 1e-6, (margin, clear)
