"""The border index behind the margin bound: each cluster's cap holds its segments as drawn,
and margins far from a zone (where the index prunes almost every segment) still agree with a
brute-force computation.

A cluster lets ``_margin_km`` skip thousands of segments at once, so a cap that missed a
piece of its border would let a margin overstate: the first test draws points along every
segment's lon/lat line (RFC 7946's straight edges, not great circles) and checks each lies
within its cluster's cap, with unit vectors computed here from geodetic coordinates. The
second places one landmark far outside a zone (a VIOLATION thousands of km from the border)
and compares the margin with pyproj's geodesic distance to the densified border.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from chiploc import solver
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

from ._world import densify

_GEOD = Geod(ellps="WGS84")


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _zone(spec: str, tmp_path: Path) -> solver.AuthorizedRegion:
    if spec.startswith("["):  # a GeoJSON ring with long edges
        path = tmp_path / "zone.geojson"
        ring = json.loads(spec)
        path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}), encoding="utf-8")
        return solver.load_region(str(path))
    return solver.load_region(spec)


ZONES = [
    "country:DEU",
    "country:RUS",  # crosses the antimeridian; long, detailed coast
    "country:IDN",  # thousands of islands: many short rings
    "not:country:FRA",
    "circle:48,11,800",
    "[[-20,55],[40,55],[40,75],[-20,75],[-20,55]]",  # edges of 1,000s of km
    # a band of 340 degrees of longitude: its long edges' midpoints are half a world away
    # from the corners, which all lie within 10 degrees of the antimeridian
    "[[-170,0],[170,0],[170,10],[-170,10],[-170,0]]",
]


@pytest.mark.parametrize("spec", ZONES)
def test_every_point_of_a_cluster_lies_in_its_cap(spec: str, tmp_path: Path) -> None:
    zone = _zone(spec, tmp_path)
    for border in (zone.inner_border, zone.outer_border):
        start = border.cluster_start
        assert start[0] == 0
        assert start[-1] == border.len_km.size
        assert np.all(np.diff(start) > 0)
        owner = np.repeat(np.arange(start.size - 1), np.diff(start))
        t = np.linspace(0.0, 1.0, 9)[:, None]  # ends and 7 points between, along lon/lat
        lon = border.lon_a + t * (border.lon_b - border.lon_a)
        lat = border.lat_a + t * (border.lat_b - border.lat_a)
        u = _unit(lon, lat)  # (9, segments, 3)
        centre = border.cluster_unit[owner]
        angle = np.arccos(np.clip(np.einsum("tsk,sk->ts", u, centre), -1.0, 1.0))
        worst = float((angle - border.cluster_rho[owner]).max())
        assert worst <= 0.0, f"{spec}: a point lies {worst:.3g} rad outside its cluster's cap"


def _densified(geom: shapely.Geometry, step_deg: float = 0.002) -> np.ndarray:
    """Every ring of ``geom``, densified along its straight lon/lat edges."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    return np.concatenate(
        [np.array(densify(shapely.get_coordinates(r).tolist(), step_deg)) for r in rings]
    )


def _bound_km(result: dict[str, object], zone: solver.AuthorizedRegion, step_deg: float) -> float:
    """The brute-force margin bound: the minimum over the densified border (inner for
    COMPLIANT, outer for VIOLATION) of max_i (geodesic to landmark i - r_i), by pyproj."""
    border = zone.geometry if result["verdict"] == "COMPLIANT" else zone.outer_geometry
    pts = _densified(border, step_deg)
    n = len(pts)
    f = np.full(n, -np.inf)
    for lm in result["landmarks"]:  # type: ignore[attr-defined]
        _, _, d_m = _GEOD.inv(np.full(n, lm["lon"]), np.full(n, lm["lat"]), pts[:, 0], pts[:, 1])
        f = np.maximum(f, d_m / 1000.0 - lm["radius_km"])
    return max(0.0, float(f.min()))


# (zone, landmark (lat, lon), bound radius km): the chip is far outside the zone
FAR = [
    ("country:DEU", (40.7, -74.0), 300.0),  # New York: ~6,000 km from Germany
    ("country:JPN", (-33.9, 18.4), 500.0),  # Cape Town: ~14,000 km from Japan
    ("circle:48,11,800", (-34.6, -58.4), 200.0),  # Buenos Aires
    ("country:CHL", (64.1, -21.9), 100.0),  # Reykjavik: ~12,000 km from Chile's long coast
]


@pytest.mark.parametrize(("spec", "centre", "radius_km"), FAR, ids=[f[0] for f in FAR])
def test_far_margins_are_within_1_km_of_the_true_distance_and_never_more(
    spec: str, centre: tuple[float, float], radius_km: float
) -> None:
    zone = solver.load_region(spec)
    rtt = 2.0 * radius_km / SPEED_OF_LIGHT_KM_PER_MS
    ms = [solver.Measurement(landmark="lm", lat=centre[0], lon=centre[1], rtt_ms=rtt)]
    result = solver.solve("chip", ms, zone).to_json_dict()
    assert result["verdict"] == "VIOLATION", result["message"]
    true_km = _bound_km(result, zone, 0.002)  # one disk: the true distance to the border
    margin = result["margin_km"]
    assert margin <= true_km + 1e-6, f"{spec}: margin {margin:.3f} km overstates {true_km:.3f}"
    assert margin >= true_km - 1.0, f"{spec}: margin {margin:.3f} km, true {true_km:.3f} km"


# (zone, landmarks (lat, lon, bound radius km)): several disks whose bounds cross near the
# border, so the disk attaining max_i (dist - r_i) changes along it
LENSES = [
    ("country:DEU", [(50.11, 8.68, 250.0), (52.52, 13.40, 260.0), (48.14, 11.58, 330.0)]),
    ("country:FRA", [(48.86, 2.35, 400.0), (45.76, 4.84, 300.0), (47.22, -1.55, 420.0)]),
    ("country:DEU", [(40.7, -74.0, 300.0), (41.9, -87.6, 1200.0)]),  # far: a VIOLATION
    # One disk due east along the equator, one due north along a meridian, 4,400 km away:
    # on the sphere of radius R0 the northern disk leads, on the ellipsoid the eastern one
    # (an east-west degree at the equator is longer than a north-south one) -- by ~12 km
    # here. The exact maximum must not go by the spherical lead.
    ("circle:0,0,50", [(0.0, 40.0, 3005.0), (40.0, 0.0, 3000.0)]),
]


@pytest.mark.parametrize(("spec", "disks"), LENSES, ids=["deu", "fra", "far", "ellipsoid"])
def test_margins_of_several_disks_match_the_brute_force_bound(
    spec: str, disks: list[tuple[float, float, float]]
) -> None:
    """The margin is the minimum over the border of ``max_i (dist(v, c_i) - r_i)`` (up to
    the 1 km the pieces may lose, and never above it): computed here at every densified
    border point with pyproj, against every disk."""
    zone = solver.load_region(spec)
    ms = [
        solver.Measurement(
            landmark=f"lm{i}", lat=lat, lon=lon, rtt_ms=2.0 * r / SPEED_OF_LIGHT_KM_PER_MS
        )
        for i, (lat, lon, r) in enumerate(disks)
    ]
    result = solver.solve("chip", ms, zone).to_json_dict()
    assert result["verdict"] in {"COMPLIANT", "VIOLATION"}, result["message"]
    true_km = _bound_km(result, zone, 0.002)
    margin = result["margin_km"]
    assert margin <= true_km + 1e-6, f"{spec}: margin {margin:.3f} km overstates {true_km:.3f}"
    assert margin >= true_km - 1.0, f"{spec}: margin {margin:.3f} km, bound {true_km:.3f} km"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(33, 90),
    seed=st.integers(0, 2**31 - 1),
    inside=st.booleans(),
    disks=st.integers(1, 3),
)
def test_margins_on_random_many_cornered_zones_match_the_brute_force_bound(
    tmp_path_factory: pytest.TempPathFactory, n: int, seed: int, inside: bool, disks: int
) -> None:
    """Zones of 33-90 corners (2-3 clusters), star-shaped around a random centre with radii
    from 0.3 to 6 degrees, so long edges and short ones share clusters; 1-3 disks near the
    border, inside or outside. The margin never exceeds the brute-force bound and is
    within 1 km of it."""
    rng = np.random.default_rng(seed)
    lat0, lon0 = rng.uniform(-60, 60), rng.uniform(-170, 170)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.3, 6.0, n)
    ring = [[lon0 + r * np.cos(a), lat0 + r * np.sin(a)] for a, r in zip(ang, rad, strict=True)]
    ring.append(ring[0])
    path = tmp_path_factory.mktemp("zone") / "zone.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}), encoding="utf-8")
    zone = solver.load_region(str(path))
    # disk centres near a random border point, pulled toward (inside) or away from the centre
    k = int(rng.integers(0, n))
    t = rng.uniform(0.0, 1.0)
    blon = ring[k][0] + t * (ring[k + 1][0] - ring[k][0])
    blat = ring[k][1] + t * (ring[k + 1][1] - ring[k][1])
    pull = rng.uniform(0.2, 0.6) if inside else -rng.uniform(0.3, 2.0)
    clat, clon = blat + pull * (lat0 - blat), blon + pull * (lon0 - blon)
    ms = []
    for i in range(disks):
        dlat, dlon = rng.normal(0, 0.05, 2)
        r_km = float(rng.uniform(5.0, 40.0))
        lat, lon = float(np.clip(clat + dlat, -89, 89)), float(clon + dlon)
        ms.append(
            solver.Measurement(
                landmark=f"lm{i}", lat=lat, lon=lon, rtt_ms=2 * r_km / SPEED_OF_LIGHT_KM_PER_MS
            )
        )
    result = solver.solve("chip", ms, zone).to_json_dict()
    if result["verdict"] not in {"COMPLIANT", "VIOLATION"}:
        return  # the region straddles the border: no margin to check
    true_km = _bound_km(result, zone, 0.001)
    margin = result["margin_km"]
    assert margin <= true_km + 1e-6, f"margin {margin:.4f} km overstates {true_km:.4f} km"
    assert margin >= true_km - 1.0, f"margin {margin:.3f} km, bound {true_km:.3f} km"


def test_a_zone_ending_at_the_antimeridian_is_bordered_there(tmp_path: Path) -> None:
    """Seen from the other side of lon 180 (a VIOLATION 35 km away across it), the edge along
    the antimeridian is the nearest border; a zone split there keeps no such edge."""
    zone = _zone("[[170,0],[180,0],[180,10],[170,10],[170,0]]", tmp_path)
    ms = [solver.Measurement(landmark="lm", lat=5.0, lon=-179.5, rtt_ms=40.0 / 299.792458)]
    result = solver.solve("chip", ms, zone).to_json_dict()
    assert result["verdict"] == "VIOLATION", result["message"]
    _, _, d_m = _GEOD.inv(-179.5, 5.0, 180.0, 5.0)
    true_km = d_m / 1000.0 - result["landmarks"][0]["radius_km"]
    assert true_km - 1.0 <= result["margin_km"] <= true_km + 1e-6
    for spec in ("circle:-17,179.5,400", "not:circle:-17,179.5,400"):
        for border in (
            solver.load_region(spec).inner_border,
            solver.load_region(spec).outer_border,
        ):
            along = (np.abs(border.lon_a) == 180.0) & (border.lon_a == border.lon_b)
            assert not along.any(), f"{spec}: its halves meet along the antimeridian"
