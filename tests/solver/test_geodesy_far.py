"""Disks past a quarter meridian against the true circle, edge by edge.

Beyond a quarter meridian the distance from the centre stops being convex along a
geodesic: an edge between two points of the circle bulges *outside* it, and the bulge
grows without bound as the circle closes around the antipode (the Hessian of the
distance behaves as ``-cot(d / R) / R``). An inscribed polygon must then keep its edges
inside the true disk, and a circumscribed one must keep its edges from dipping inside.

Every expectation is computed here with an independent pyproj ``Geod``
(``tests/solver/_world.py``): each polygon edge is sampled densely (straight in lon/lat,
as shapely reads it) and the geodesic distance of each sample to the centre is compared
with the radius. The ring certificate (``_dips_km``) is checked on rings of few vertices,
where the real sag or bulge is tens of km and a certificate that is too small shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from chiploc.solver import geodesic_disk, inscribed_disk, polygon_area_km2
from chiploc.solver._geodesy import (
    INSCRIBED_MAX_KM,
    _dips_km,
    _plan_azimuths_many,
    _rings,
    geodesic_disks,
)

from ._world import HALF_MERIDIAN_KM, dist_km, fwd

Arr = np.ndarray
#: pi * b**2 / a from the WGS84 defining constants: past it no ring certifies.
_B = 6378.137 * (1 - 1 / 298.257223563)
PI_R0 = math.pi * _B * _B / 6378.137


def _edges_densely(geom: BaseGeometry, per_edge: int = 64) -> tuple[Arr, Arr]:
    """``per_edge`` points on every polygon edge (ends included), minus the cuts at +-180
    and the closing edges along the poles (edges of the map, not of the disk)."""
    xy, ring = shapely.get_coordinates(
        shapely.get_rings(shapely.get_parts(geom)), return_index=True
    )
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    t = np.linspace(0.0, 1.0, per_edge)[:, None, None]
    pts = (a + t * (b - a)).reshape(-1, 2)
    real = (np.abs(pts[:, 0]) < 180.0 - 1e-9) & (np.abs(pts[:, 1]) < 90.0 - 1e-9)
    return np.asarray(pts[real, 1]), np.asarray(pts[real, 0])


def _inside(geom: BaseGeometry, lat: Arr, lon: Arr) -> Arr:
    return np.asarray(shapely.intersects_xy(geom, lon, lat))


def _on_circle(lat: float, lon: float, r_km: float, n: int = 720) -> tuple[Arr, Arr]:
    return fwd(lat, lon, np.linspace(0.0, 360.0, n, endpoint=False), np.full(n, r_km))


# --------------------------------------------------------------------------- polygons

FAR_CENTRES = [(0.0, 20.0), (12.0, -70.0), (-45.0, 179.9), (63.0, 0.0), (89.5, 100.0)]


@pytest.mark.parametrize(("lat", "lon"), FAR_CENTRES)
@pytest.mark.parametrize("radius", [10_000.0, 12_500.0, 15_000.0, 17_500.0, 19_000.0])
def test_inscribed_disks_past_a_quarter_meridian_stay_inside_the_true_disk(
    lat: float, lon: float, radius: float
) -> None:
    """Every point of every edge of an inner disk of 10,000-19,000 km lies within R of the
    centre, and the polygon still holds every point within 99.7 % R - 20 m."""
    inner = inscribed_disk(lat, lon, radius)
    la, lo = _edges_densely(inner)
    assert la.size > 0
    assert float(dist_km(lat, lon, la, lo).max()) <= radius
    c_la, c_lo = _on_circle(lat, lon, radius * (1 - 3e-3) - 0.02)
    assert _inside(inner, c_la, c_lo).all()
    assert _inside(inner, np.array([lat]), np.array([lon])).all()


@pytest.mark.parametrize(("lat", "lon"), FAR_CENTRES)
@pytest.mark.parametrize("radius", [10_100.0, 12_500.0, 15_000.0, 17_500.0, 19_000.0, 19_900.0])
def test_circumscribed_disks_past_a_quarter_meridian_hold_the_true_disk(
    lat: float, lon: float, radius: float
) -> None:
    """No point of any edge of an outer disk of 10,100-19,900 km comes within R of the
    centre (so the true disk is inside), and the border stays within 0.3 % + 20 m of R."""
    outer = geodesic_disk(lat, lon, radius)
    la, lo = _edges_densely(outer)
    assert la.size > 0
    d = dist_km(lat, lon, la, lo)
    assert float(d.min()) >= radius
    assert float(d.max()) <= radius * (1 + 3e-3) + 0.02
    c_la, c_lo = _on_circle(lat, lon, radius)
    assert _inside(outer, c_la, c_lo).all()


@pytest.mark.parametrize(("lat", "lon"), [*FAR_CENTRES, (-90.0, 0.0), (0.0, -180.0)])
@pytest.mark.parametrize("radius", [19_904.0, 19_925.0, 19_950.0, 19_999.0, 20_003.9])
def test_inscribed_disks_of_nearly_half_a_meridian_are_nearly_the_whole_earth(
    lat: float, lon: float, radius: float
) -> None:
    """Past pi b**2/a (19,903 km) no ring certifies; such a circle (a zone authorizing all
    but the antipode's surroundings) used to get an EMPTY inner disk, so it could never be
    COMPLIANT. It now gets the inner disk of 19,910 km: inside the true disk (every edge
    point within R) and holding every point within 19,850 km."""
    inner = inscribed_disk(lat, lon, radius)
    assert inner.is_valid
    la, lo = _edges_densely(inner)
    assert la.size > 0
    assert float(dist_km(lat, lon, la, lo).max()) <= min(radius, INSCRIBED_MAX_KM)
    held = INSCRIBED_MAX_KM * (1 - 3e-3) - 0.02
    for frac in (0.25, 0.75, 1.0):
        c_la, c_lo = _on_circle(lat, lon, frac * held)
        assert _inside(inner, c_la, c_lo).all()
    # The true disk of 19,910 km leaves out about 20,000 km2 around the antipode (less
    # than 0.01 % of the Earth); the polygon leaves out at most three times that.
    assert polygon_area_km2(inner) >= 510_065_621.7 - 70_000.0


def test_inscribed_disks_on_either_side_of_the_cap_are_nested() -> None:
    """An inner disk never shrinks as R grows past the cap, and never reaches past R."""
    areas = [
        polygon_area_km2(inscribed_disk(12.0, -70.0, r))
        for r in (19_000.0, 19_800.0, INSCRIBED_MAX_KM, 19_911.0, 19_990.0)
    ]
    assert areas == sorted(areas)
    assert areas[-1] == pytest.approx(areas[2], rel=1e-12)


# --------------------------------------------------------------------------- certificate

#: Coarse rings (8-16 vertices) from 16,000 km to 19,500 km, at low and high latitudes:
#: their edges bulge tens of km beyond R, the bulge a certificate must cover.
COARSE = [
    (lat, 20.0, r, n)
    for lat in (0.0, 30.0, -45.0, 60.0)
    for r in (16_000.0, 18_000.0, 19_000.0, 19_500.0)
    for n in (8, 12, 16)
]


def _sag_and_bulge(lat: float, lon: float, r: float, la: Arr, lo: Arr) -> tuple[float, float]:
    """How far the straight lon/lat edges of a ring come inside r and reach beyond it."""
    t = np.linspace(0.0, 1.0, 101)[:, None]
    d = dist_km(lat, lon, la[:-1] + t * (la[1:] - la[:-1]), lo[:-1] + t * (lo[1:] - lo[:-1]))
    return r - float(d.min()), float(d.max()) - r


def test_the_certificate_covers_the_bulge_of_coarse_rings_near_the_antipode() -> None:
    """For each ring (all in one batch), the inscribed certificate is at least how far its
    real edges reach beyond R, and the circumscribed one at least how far they come inside
    R, and never negative (the vertices lie on the circle: no edge lies wholly outside)."""
    lat = np.array([c[0] for c in COARSE])
    lon = np.array([c[1] for c in COARSE])
    r = np.array([c[2] for c in COARSE])
    count = np.array([c[3] for c in COARSE], dtype=np.intp)
    az = np.concatenate([np.linspace(0.0, 360.0, n, endpoint=False) for n in count])
    la, lo, start = _rings(lat, lon, r, az, count)
    inner = _dips_km(la, lo, start, r, True)
    outer = _dips_km(la, lo, start, r, False)
    bulges = []
    for k, (c_lat, c_lon, c_r, _) in enumerate(COARSE):
        ring_la, ring_lo = la[start[k] : start[k + 1]], lo[start[k] : start[k + 1]]
        np.testing.assert_allclose(dist_km(c_lat, c_lon, ring_la, ring_lo), c_r, rtol=1e-9)
        sag, bulge = _sag_and_bulge(c_lat, c_lon, c_r, ring_la, ring_lo)
        assert inner[k] >= bulge, (COARSE[k], inner[k], bulge)
        assert outer[k] >= max(sag, 0.0), (COARSE[k], outer[k], sag)
        bulges.append(bulge)
    # The bulges are real (km to hundreds of km), and at low latitudes (where lon/lat
    # edges barely curve) the inscribed certificate stays within a small factor of them.
    assert min(bulges) > 5.0
    low = np.abs(lat) <= 30.0
    ratio = inner[low] / np.array(bulges)[low]
    assert (ratio <= 3.0).all()


@pytest.mark.parametrize(("lat", "r", "n"), [(-45.0, 19_500.0, 48), (0.0, 17_000.0, 64)])
def test_the_certificate_of_a_ring_alone_is_never_negative(lat: float, r: float, n: int) -> None:
    """A ring alone (no join to a next ring in the batch) whose edges all bulge outward:
    its certificate of how far edges come inside R is 0 or more, never a negative number
    that would claim the ring lies wholly outside R while its vertices lie on it."""
    la, lo, start = _rings(
        np.array([lat]),
        np.array([20.0]),
        np.array([r]),
        np.linspace(0.0, 360.0, n, endpoint=False),
        np.array([n], dtype=np.intp),
    )
    sag, _ = _sag_and_bulge(lat, 20.0, r, la, lo)
    assert sag < 1e-6  # the edges bulge outward: the vertices are the closest points
    assert float(_dips_km(la, lo, start, np.array([r]), False)[0]) >= 0.0


# --------------------------------------------------------------------------- fallbacks


def test_rings_that_need_more_vertices_than_the_cap_get_no_plan_and_no_crash() -> None:
    """A batch whose every ring would need more than 16,384 vertices is planned as empty
    (each ring then falls back soundly); it used to crash in numpy (inscribed disks of
    ~19,925-19,942 km centred at 89 deg raised ValueError)."""
    az, count = _plan_azimuths_many(
        np.array([0.0, 89.0]), np.array([1000.0, 19_900.0]), np.array([1e-9, 1e-9])
    )
    assert az.size == 0
    assert (count > 16_384).all()
    for lat in (89.0, -89.0, 90.0):
        for radius in (19_925.1, 19_930.0, 19_942.7):
            inner = inscribed_disk(lat, -70.0, radius)
            la, lo = _edges_densely(inner, per_edge=8)
            assert float(dist_km(lat, -70.0, la, lo).max(initial=0.0)) <= radius


def test_a_batch_mixing_far_and_near_disks_gives_each_its_own_disk() -> None:
    """Far and near disks in one batch: each equals the same disk asked for alone."""
    lat, lon = [0.0, 45.0, -30.0], [20.0, 7.0, 150.0]
    radii = [19_500.0, 50.0, 15_000.0]
    for disk, la0, lo0, r0 in zip(geodesic_disks(lat, lon, radii), lat, lon, radii, strict=True):
        alone = geodesic_disk(la0, lo0, r0)
        assert polygon_area_km2(disk) == pytest.approx(polygon_area_km2(alone), rel=1e-9)
        c_la, c_lo = _on_circle(la0, lo0, r0, n=180)
        assert _inside(disk, c_la, c_lo).all()
    assert HALF_MERIDIAN_KM > PI_R0


# --------------------------------------------------------------------------- size


@pytest.mark.parametrize(("lat", "radius"), [(0.0, 17_000.0), (0.0, 19_000.0), (-20.0, 19_000.0)])
def test_far_disks_have_about_the_vertices_their_bulge_needs(lat: float, radius: float) -> None:
    """Past a quarter meridian a circle of radius R is a small circle around the antipode
    (radius 20,004 - R km) and curves as ``|cot(R / 6371)| / 6371``; edges that bulge 0.1 %
    of R need ``sqrt(8 * 0.1 % * R / kappa)`` of length. Around an antipode near the
    equator (where lon/lat edges barely curve) both polygons hold no more than 1.45 times
    that, plus 4: no vertices spent where the ring does not need them."""
    s = 6371.0
    kappa = abs(1.0 / (s * math.tan(radius / s)))
    need = 2 * math.pi * s * math.sin(radius / s) / math.sqrt(8e-3 * radius / kappa)
    for disk in (geodesic_disk(lat, 30.0, radius), inscribed_disk(lat, 30.0, radius)):
        n = len(shapely.get_coordinates(disk)) - 1
        assert n <= 1.45 * need + 4, (n, need)


# --------------------------------------------------------------------------- batches

#: One batch: every latitude band (poles, near-polar, middle, equator, both hemispheres)
#: with radii from 50 m to 19,800 km, in an order that puts small rings after large ones.
BATCH = [
    (lat, (37.0 * i + 11.0 * j) % 360.0 - 180.0, r)
    for i, lat in enumerate((0.0, 20.0, 45.0, 70.0, 85.0, 89.5, 90.0, -30.0, -60.0, -89.0))
    for j, r in enumerate((19_800.0, 0.05, 3000.0, 1.0, 15_000.0, 40.0, 10_500.0, 900.0))
]


def test_a_large_batch_of_disks_each_hold_their_circle_tightly() -> None:
    """80 disks asked for at once (as a solve asks for every landmark's bound): each holds
    every point of its true circle and its border lies between R and R + 0.3 % + 20 m
    (so none is the whole world, none belongs to another ring of the batch)."""
    disks = geodesic_disks([b[0] for b in BATCH], [b[1] for b in BATCH], [b[2] for b in BATCH])
    assert len(disks) == len(BATCH)
    for (lat, lon, radius), disk in zip(BATCH, disks, strict=True):
        assert disk.is_valid, (lat, lon, radius)
        c_la, c_lo = _on_circle(lat, lon, radius, n=180)
        assert _inside(disk, c_la, c_lo).all(), (lat, lon, radius)
        la, lo = _edges_densely(disk, per_edge=4)
        assert la.size > 0, (lat, lon, radius)
        d = dist_km(lat, lon, la, lo)
        assert float(d.min()) >= radius * (1 - 1e-12), (lat, lon, radius)
        assert float(d.max()) <= radius * (1 + 3e-3) + 0.02, (lat, lon, radius, float(d.max()))


# --------------------------------------------------------------------------- vertices


def _vertices_needed(lat: float, lon: float, radius: float, m: int = 720) -> float:
    """The vertices a lon/lat polygon on the true circle needs so that no edge sags more
    than 0.1 % of R, measured on the world: at m points of the circle, the straight lon/lat
    segment between the points 0.5 deg of azimuth either side sags s (the geodesic distance
    of its midpoint to the centre, against R) over its length l; an edge of length L there
    sags ``8 s / l**2 * L**2 / 8``, so the density is ``sqrt(8 s / l**2 / (8e-3 R))``."""
    az = np.linspace(0.0, 360.0, m, endpoint=False)
    la0, lo0 = fwd(lat, lon, az - 0.5, np.full(m, radius))
    la1, lo1 = fwd(lat, lon, az + 0.5, np.full(m, radius))
    dlon = (lo1 - lo0 + 180.0) % 360.0 - 180.0
    sag = np.abs(radius - dist_km(lat, lon, (la0 + la1) / 2, lo0 + dlon / 2))
    length = dist_km(la0, lo0, la1, lo1)
    curvature = 8.0 * sag / length**2
    arc = length * (360.0 / m)  # the circle between two of the m points
    return float(np.sum(arc * np.sqrt(curvature / (8e-3 * radius))))


def _far_from_the_poles(lat: float, lon: float, radius: float) -> bool:
    c_la, _ = fwd(lat, lon, np.linspace(0.0, 360.0, 3600), np.full(3600, radius))
    return float(np.abs(c_la).max()) < 85.0


#: Rings that stay more than 5 deg from the poles (near a pole the 0.5-deg probe is too
#: coarse to measure how fast lon/lat lines turn), 100 km to 19,000 km.
_SIZED = [
    (lat, 30.0, r)
    for lat in (0.0, 20.0, 45.0, 70.0, -60.0)
    for r in (100.0, 1000.0, 3000.0, 8000.0, 10_500.0, 15_000.0, 19_000.0)
    if _far_from_the_poles(lat, 30.0, r)
]


@pytest.mark.parametrize(("lat", "lon", "radius"), _SIZED)
def test_disks_hold_no_more_than_about_the_vertices_the_world_requires(
    lat: float, lon: float, radius: float
) -> None:
    """Both polygons hold at most 2.55 times (plus 2) the vertices a polygon on the true
    circle needs for a 0.1 % sag (measured above, not from the solver's own curvature
    bounds): placement and the certificate may be conservative, never wasteful by more
    (every vertex costs every intersection and margin that uses the disk)."""
    need = _vertices_needed(lat, lon, radius)
    for disk in (geodesic_disk(lat, lon, radius), inscribed_disk(lat, lon, radius)):
        n = len(shapely.get_coordinates(disk)) - 1
        assert n <= 2.55 * need + 2, (n, need)


def test_a_circle_zone_of_nearly_half_a_meridian_loads_as_nearly_the_whole_earth() -> None:
    """``circle:0,0,19995`` was refused as "the authorized zone is empty"; its zone is now
    nearly the whole Earth and still holds only points within 19,995 km of (0, 0)."""
    from chiploc.solver import load_region

    zone = load_region("circle:0,0,19995").geometry
    assert polygon_area_km2(zone) >= 510_065_621.7 - 70_000.0
    la, lo = _edges_densely(zone, per_edge=16)
    assert la.size > 0
    assert float(dist_km(0.0, 0.0, la, lo).max()) <= 19_995.0
