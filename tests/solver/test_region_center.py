"""The region's point (``region_center``: the fleet map's dot, the estimate's seed) lies inside
the proven region: by shapely on the region drawn, and by the physics, within every landmark's
proven distance, on huge disks, across the antimeridian and around the poles."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, shape

from chiploc import solver
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

_GEOD = Geod(ellps="WGS84")


def _rtt_ms(radius_km: float) -> float:
    return 2.0 * radius_km / SPEED_OF_LIGHT_KM_PER_MS


CASES = {
    # One disk larger than a hemisphere: its boundary's centroid is on the far side.
    "huge-disk": [("fra", 50.11, 8.68, 12_000.0)],
    "two-huge-disks": [("fra", 50.11, 8.68, 11_000.0), ("syd", -33.87, 151.21, 16_000.0)],
    "antimeridian": [("e", 0.0, 179.5, 300.0), ("w", 0.0, -179.5, 300.0)],
    "antimeridian-north": [("e", 60.0, 178.0, 900.0), ("w", 61.0, -177.0, 900.0)],
    "north-pole": [("a", 88.0, 0.0, 600.0), ("b", 88.0, 120.0, 600.0), ("c", 88.0, -120.0, 600.0)],
    "south-cap": [("s", -89.0, 0.0, 3_000.0)],
    "pole-off-centre": [("n", 85.0, 60.0, 1_500.0)],
    "kassel": [
        ("fra", 50.11, 8.68, 160.0),
        ("ber", 52.52, 13.40, 330.0),
        ("muc", 48.14, 11.58, 380.0),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_region_point_is_inside_the_proven_region(name: str) -> None:
    ms = [
        solver.Measurement(landmark=i, lat=la, lon=lo, rtt_ms=_rtt_ms(r))
        for i, la, lo, r in CASES[name]
    ]
    result = solver.solve("chip", ms, solver.load_region("country:DEU")).to_json_dict()
    assert result["region"] is not None, result["verdict"]
    c = result["region_center"]
    assert c is not None
    region = shape(result["region"])
    assert shapely.covers(region, Point(c["lon"], c["lat"])), (name, c)
    for i, la, lo, r in CASES[name]:
        _, _, d_m = _GEOD.inv(lo, la, c["lon"], c["lat"])
        assert d_m / 1000.0 <= r, f"{name}: the point is {d_m / 1000:.0f} km from {i}, bound {r}"


def test_a_region_that_is_the_whole_earth_has_no_point() -> None:
    ms = [solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=_rtt_ms(25_000.0))]
    result = solver.solve("chip", ms, solver.load_region("country:DEU"))
    assert result.region_center is None
