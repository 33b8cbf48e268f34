"""The proven region in a result's JSON is GeoJSON (RFC 7946) carrying the region's exact
coordinates: what is stored, digested into certificates and drawn on maps is the region the
solver proved, not a rounded or reordered copy of it."""

from __future__ import annotations

import json
import math

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, shape

from chiploc.common.canonical import canonical_json
from chiploc.solver import Measurement, Verdict, load_region, solve
from chiploc.solver._results import _region_geojson

DEU = load_region("country:DEU")


def test_polygon_with_a_hole_is_rfc7946_geojson() -> None:
    poly = Polygon(
        [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)],
        holes=[[(2.0, 2.0), (2.0, 4.0), (4.0, 4.0)]],
    )
    # RFC 7946 3.1.6: an array of linear rings, the exterior first, each closed, each
    # position an array [lon, lat].
    assert _region_geojson(poly) == {
        "type": "Polygon",
        "coordinates": [
            [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]],
            [[2.0, 2.0], [2.0, 4.0], [4.0, 4.0], [2.0, 2.0]],
        ],
    }


def test_multipolygon_is_an_array_of_polygons() -> None:
    a = Polygon([(170.0, -10.0), (180.0, -10.0), (180.0, 10.0), (170.0, 10.0)])
    b = Polygon([(-180.0, -10.0), (-170.0, -10.0), (-170.0, 10.0), (-180.0, 10.0)])
    got = _region_geojson(MultiPolygon([a, b]))
    assert got["type"] == "MultiPolygon"
    assert got["coordinates"] == [
        [[[170.0, -10.0], [180.0, -10.0], [180.0, 10.0], [170.0, 10.0], [170.0, -10.0]]],
        [[[-180.0, -10.0], [-170.0, -10.0], [-170.0, 10.0], [-180.0, 10.0], [-180.0, -10.0]]],
    ]
    # JSON arrays all the way down (a tuple would encode the same, but the stored form is
    # what json.loads gives back: one shape for fresh and reloaded results).
    assert json.loads(canonical_json(got)) == got


coord = st.floats(-179.0, 179.0, allow_nan=False).map(lambda x: x + 1e-9 * math.pi)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coord, coord.map(lambda y: y / 2)), min_size=3, max_size=40))
def test_any_region_round_trips_bit_for_bit(points: list[tuple[float, float]]) -> None:
    geom = shapely.convex_hull(shapely.MultiPoint(points)).buffer(0.5, quad_segs=3)
    geom = shapely.difference(geom, shapely.Point(points[0]).buffer(0.1))
    if geom.is_empty:
        return
    back = shape(json.loads(canonical_json(_region_geojson(geom))))
    assert back.geom_type == geom.geom_type
    assert shapely.equals_exact(back, geom, tolerance=0.0)


def _rtt(lat: float, lon: float, la: float, lo: float) -> float:
    from chiploc.solver import geodesic_km

    return 2 * 1.3 * float(geodesic_km(lat, lon, la, lo)) / 299.792458


@pytest.mark.parametrize("where", [(50.9, 10.5), (52.2, 21.0)])
def test_solved_region_in_json_is_the_region_proved(where: tuple[float, float]) -> None:
    lat, lon = where
    sites = [(52.52, 13.40), (48.14, 11.58), (50.11, 8.68), (53.55, 9.99), (52.23, 21.01)]
    ms = [
        Measurement(landmark=f"l{k}", lat=a, lon=o, rtt_ms=max(0.05, _rtt(lat, lon, a, o)))
        for k, (a, o) in enumerate(sites)
    ]
    res = solve("chip-1", ms, DEU)
    assert res.verdict is not Verdict.UNREACHABLE
    assert res.region is not None
    back = shape(json.loads(canonical_json(res.to_json_dict()["region"])))
    assert shapely.equals_exact(back, res.region, tolerance=0.0)
    assert shapely.contains_xy(back, lon, lat)  # the true position is in what is stored
