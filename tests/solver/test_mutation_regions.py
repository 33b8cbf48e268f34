"""Authorized regions against the world: what a zone must contain and exclude, what a bad
spec is told, and which specs name the same zone.

* Zones: a spec's inner geometry holds only points truly in the zone and its outer
  geometry every such point (independent geodesics for circles, the Natural Earth data for
  countries, the file's own polygons for GeoJSON); ``not:`` swaps them; the borders meet
  the poles and the antimeridian exactly; the cuts at +-180 and +-90 are no border.
* Bad input: each kind of mistake is refused with its reason code and a message naming
  the spec or file, never a crash and never a zone.
* Digests: specs spelled differently that name the same zone share a digest; different
  zones never do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from chiploc.common.errors import RegionSpecError
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS as C
from chiploc.solver import (
    Measurement,
    Verdict,
    country_geometries,
    load_region,
    solve,
    suggest_countries,
    swapped_lat_lon_warning,
)
from chiploc.solver._regions import coarse_geometries, coarse_zone

from ._world import dist_km, fwd, world


def _write(tmp_path: Path, doc: Any, name: str = "zone.geojson") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


NOT_A_SPEC = (
    "not a region spec (country:XXX, countries:A,B, not:SPEC, circle:LAT,LON,KM or a GeoJSON file)"
)
OUT_OF_RANGE = "bad circle: lat in [-90, 90], lon in [-180, 180] and KM > 0 required"
SQUARE = [[5.0, 45.0], [15.0, 45.0], [15.0, 55.0], [5.0, 55.0], [5.0, 45.0]]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("spec", "reason", "says"),
    [
        ("", "bad_spec", "empty region spec"),
        ("   ", "bad_spec", "empty region spec"),
        (
            "banana",
            "bad_spec",
            f"'banana': {NOT_A_SPEC}",
        ),
        (
            "not:banana",
            "bad_spec",
            f"'not:banana': {NOT_A_SPEC}",
        ),
        ("countries:", "no_code", "'countries:': no country code given"),
        ("countries: , ", "no_code", "'countries: , ': no country code given"),
        (
            "countries:DEU, ,FRA",
            "empty_entry",
            "'countries:DEU, ,FRA': an empty entry in the list of country codes",
        ),
        (
            "country:XYZ",
            "unknown_country",
            "'country:XYZ': unknown country code 'XYZ'; codes are ISO 3166 alpha-3",
        ),
        ("country:DEUX", "unknown_country", "'country:DEUX': unknown country code 'DEUX'"),
        ("country:D3U", "unknown_country", "'country:D3U': unknown country code 'D3U'"),
        ("circle:1,2", "bad_circle", "'circle:1,2': bad circle: expected LAT,LON,KM"),
        ("circle:1,2,3,4", "bad_circle", "'circle:1,2,3,4': bad circle: expected LAT,LON,KM"),
        ("circle:nan,0,5", "bad_circle", "'circle:nan,0,5': bad circle: not finite"),
        ("circle:0,0,inf", "bad_circle", "'circle:0,0,inf': bad circle: not finite"),
        (
            "circle:0,0,0",
            "bad_circle",
            f"'circle:0,0,0': {OUT_OF_RANGE}",
        ),
        (
            "circle:0,0,-1",
            "bad_circle",
            f"'circle:0,0,-1': {OUT_OF_RANGE}",
        ),
        (
            "circle:91,0,5",
            "bad_circle",
            f"'circle:91,0,5': {OUT_OF_RANGE}",
        ),
        (
            "circle:-90.5,0,5",
            "bad_circle",
            f"'circle:-90.5,0,5': {OUT_OF_RANGE}",
        ),
        (
            "circle:0,180.5,5",
            "bad_circle",
            f"'circle:0,180.5,5': {OUT_OF_RANGE}",
        ),
        (
            "circle:0,-181,5",
            "bad_circle",
            f"'circle:0,-181,5': {OUT_OF_RANGE}",
        ),
        ("circle:a,b,c", "bad_circle", "'circle:a,b,c': bad circle: could not convert"),
    ],
)
def test_each_bad_spec_is_refused_with_its_reason(spec: str, reason: str, says: str) -> None:
    """The reason code a counter keys on, and a message that starts with the spec as typed."""
    with pytest.raises(RegionSpecError) as info:
        load_region(spec)
    assert info.value.reason == reason
    assert str(info.value).startswith(says), str(info.value)
    if reason == "unknown_country":
        assert str(info.value).endswith(" (chiploc regions lists them)")


def test_a_spec_that_is_not_text_is_refused() -> None:
    with pytest.raises(RegionSpecError) as info:
        load_region(None)  # type: ignore[arg-type]
    assert info.value.reason == "bad_spec"


@pytest.mark.parametrize(
    ("doc", "reason", "needle"),
    [
        ("{not json", "bad_geojson", "not valid JSON"),
        ("[1, 2]", "bad_geojson", "top level is not a JSON object"),
        (
            {"type": "FeatureCollection", "features": []},
            "bad_geojson",
            "FeatureCollection has no features",
        ),
        (
            {"type": "FeatureCollection", "features": "x"},
            "bad_geojson",
            "FeatureCollection has no features",
        ),
        ({"type": "FeatureCollection"}, "bad_geojson", "FeatureCollection has no features"),
        (
            {"type": "FeatureCollection", "features": [{"type": "Point"}]},
            "bad_geojson",
            "features[0] is not a Feature",
        ),
        (
            {"type": "FeatureCollection", "features": [7]},
            "bad_geojson",
            "features[0] is not a Feature",
        ),
        (
            {"type": "Feature", "geometry": None},
            "bad_geojson",
            "geometry 0 is None, not a Polygon or MultiPolygon",
        ),
        (
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}},
            "bad_geojson",
            "geometry 0 is 'Point', not a Polygon or MultiPolygon",
        ),
        (
            {"type": "GeometryCollection"},
            "bad_geojson",
            "type 'GeometryCollection' is not a Feature, FeatureCollection, Polygon or",
        ),
        ({"coordinates": []}, "bad_geojson", "type None is not"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]},
            "unclosed_ring",
            "geometry 0: ring 0 is not closed",
        ),
        (
            {"type": "MultiPolygon", "coordinates": [[SQUARE], [[[0, 0], [1, 0], [0, 1], [0, 1]]]]},
            "unclosed_ring",
            "geometry 0: ring 1 is not closed",
        ),
        ({"type": "Polygon", "coordinates": []}, "empty", "geometry 0 is empty"),
        ({"type": "Polygon", "coordinates": [[]]}, "empty", "geometry 0 is empty"),
        ({"type": "Polygon", "coordinates": [5]}, "bad_geojson", "geometry 0 is malformed"),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
                    [[1, 1], [1, 2], [2, 2], [1, 1]],
                    [[3, 3], [3, 4], [4, 4], [3, 3]],
                    [[5, 5], [5, 6], [6, 6], [5, 5.5]],
                ],
            },
            "unclosed_ring",
            "geometry 0: ring 3 is not closed",
        ),
        ({"type": "Polygon", "coordinates": "x"}, "bad_geojson", "geometry 0 is malformed"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, "a"], [0, 0]]]},
            "bad_geojson",
            "geometry 0 is malformed",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, NaN], [0, 0]]]}',
            "bad_geojson",
            "geometry 0 has non-finite coordinates",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 91], [0, 0]]]},
            "bad_geojson",
            "geometry 0 has coordinates outside lon [-180, 180] / lat [-90, 90]",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [-181, 0], [1, 1], [0, 0]]]},
            "bad_geojson",
            "geometry 0 has coordinates outside lon [-180, 180] / lat [-90, 90]",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "bad_geojson",
            "geometry 0 is not a valid polygon (Self-intersection",
        ),
    ],
)
def test_each_broken_geojson_is_refused_naming_the_file(
    tmp_path: Path, doc: Any, reason: str, needle: str
) -> None:
    path = _write(tmp_path, doc, "broken.geojson")
    with pytest.raises(RegionSpecError) as info:
        load_region(path)
    assert info.value.reason == reason, str(info.value)
    assert str(info.value).startswith(f"GeoJSON file {path!r}: {needle}"), str(info.value)
    if reason == "unclosed_ring":
        assert str(info.value).endswith(
            " (RFC 7946: a linear ring has at least 4 positions and its last position equals "
            "its first)"
        )


def test_an_unreadable_geojson_is_refused_saying_why(tmp_path: Path) -> None:
    folder = tmp_path / "zone.geojson"
    folder.mkdir()
    for path, why in (
        (str(folder), "(Is a directory)"),
        (str(tmp_path / "missing.json"), "(No such file or directory)"),
        (str(tmp_path / "a\0b.geojson"), "(embedded null byte)"),
    ):
        with pytest.raises(RegionSpecError) as info:
            load_region(path)
        assert info.value.reason == "unreadable"
        assert str(info.value).endswith(f": cannot read {why}")


def test_a_geojson_over_64_mib_is_refused_and_64_mib_is_read(tmp_path: Path) -> None:
    limit = 64 * 1024 * 1024
    doc = json.dumps({"type": "Polygon", "coordinates": [SQUARE]}).encode()
    path = tmp_path / "big.geojson"
    path.write_bytes(doc + b" " * (limit - len(doc)))  # exactly 64 MiB: read
    assert shapely.intersects_xy(load_region(str(path)).geometry, 10.0, 50.0)
    path.write_bytes(doc + b" " * (limit + 1 - len(doc)))
    with pytest.raises(RegionSpecError) as info:
        load_region(str(path))
    assert info.value.reason == "bad_geojson"
    assert str(info.value) == f"GeoJSON file {str(path)!r}: larger than 64 MiB"


def test_a_file_without_a_geojson_suffix_is_read_if_it_exists(tmp_path: Path) -> None:
    path = _write(tmp_path, {"type": "Polygon", "coordinates": [SQUARE]}, "zone.txt")
    assert shapely.intersects_xy(load_region(path).geometry, 10.0, 50.0)
    with pytest.raises(RegionSpecError) as info:
        load_region(str(tmp_path / "absent.txt"))
    assert info.value.reason == "bad_spec"


# --------------------------------------------------------------------------- same zone, same digest


@pytest.mark.parametrize(
    "spellings",
    [
        [
            "country:DEU",
            "country:deu",
            " Country:DEU ",
            "countries:DEU",
            "COUNTRIES:deu",
            "countries:DEU,DEU",
        ],
        ["countries:DEU,FRA", "countries:FRA,DEU", "countries: fra , deu", "countries:DEU,FRA,DEU"],
        ["not:CHN", "not:country:CHN", "NOT: countries:chn", "not:chn"],
        ["not:CHN,RUS", "not:countries:RUS,CHN"],
        ["circle:50,10,100", "circle:50.0,10.0,100.0", "Circle: 50,10,1e2"],
    ],
)
def test_spellings_of_one_zone_share_a_digest(spellings: list[str]) -> None:
    zones = [load_region(s) for s in spellings]
    assert len({z.digest_hex for z in zones}) == 1
    assert len({z.canonical for z in zones}) == 1
    assert all(z.spec == s for z, s in zip(zones, spellings, strict=True))


def test_different_zones_have_different_digests(tmp_path: Path) -> None:
    specs = [
        "country:DEU",
        "countries:DEU,FRA",
        "not:country:DEU",
        "circle:50,10,100",
        "circle:50,10,101",
        "not:circle:50,10,100",
        _write(tmp_path, {"type": "Polygon", "coordinates": [SQUARE]}),
    ]
    digests = {load_region(s).digest_hex for s in specs}
    assert len(digests) == len(specs)
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in digests)
    assert load_region("country:DEU").canonical == "countries:DEU"
    assert load_region("countries:fra, deu").canonical == "countries:DEU,FRA"
    assert load_region("not:circle:50,10,100").canonical == "not:circle:50.0,10.0,100.0"
    assert load_region(specs[-1]).canonical.startswith("geojson:")


# --------------------------------------------------------------------------- zones in the world


def _sample(bounds: tuple[float, float, float, float], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


@pytest.mark.parametrize(("lat0", "lon0", "r"), [(50.0, 10.0, 300.0), (-17.0, 179.5, 400.0)])
def test_not_circle_holds_only_points_outside_and_every_point_outside(
    lat0: float, lon0: float, r: float
) -> None:
    zone = load_region(f"not:circle:{lat0},{lon0},{r}")
    pts = _sample((lon0 - 8, lat0 - 6, lon0 + 8, lat0 + 6), 4000, 7)
    pts[:, 0] = (pts[:, 0] + 180.0) % 360.0 - 180.0
    d = dist_km(lat0, lon0, pts[:, 1], pts[:, 0])
    inner = shapely.intersects_xy(zone.geometry, pts[:, 0], pts[:, 1])
    outer = shapely.intersects_xy(zone.outer_geometry, pts[:, 0], pts[:, 1])
    assert (d[inner] > r).all()  # COMPLIANT's zone: only points truly outside the circle
    assert outer[d > r].all()  # VIOLATION's zone: misses none of them
    assert inner[d > 1.01 * r].all()
    assert not outer[d < 0.99 * r].any()


def test_a_list_of_countries_is_their_union() -> None:
    zone = load_region("countries:DEU,FRA")
    for lon, lat, want in ((13.4, 52.52, True), (2.35, 48.86, True), (12.5, 41.9, False)):
        assert bool(shapely.intersects_xy(zone.geometry, lon, lat)) is want
        assert bool(shapely.intersects_xy(zone.outer_geometry, lon, lat)) is want


def test_geojson_zones_are_the_union_of_their_polygons_and_keep_holes(tmp_path: Path) -> None:
    far = [[[30.0, 0.0], [31.0, 0.0], [31.0, 1.0], [30.0, 1.0], [30.0, 0.0]]]
    hole = [[9.0, 49.0], [11.0, 49.0], [11.0, 51.0], [9.0, 51.0], [9.0, 49.0]]
    docs = [
        {"type": "MultiPolygon", "coordinates": [[SQUARE, hole], far]},
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE, hole]}},
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": far}},
            ],
        },
    ]
    for doc in docs:
        zone = load_region(_write(tmp_path, doc))
        for lon, lat, want in ((6.0, 46.0, True), (30.5, 0.5, True), (10.0, 50.0, False)):
            assert bool(shapely.intersects_xy(zone.geometry, lon, lat)) is want
            assert bool(shapely.intersects_xy(zone.outer_geometry, lon, lat)) is want


def _one(lat: float, lon: float, radius_km: float) -> list[Measurement]:
    return [Measurement(landmark="l", lat=lat, lon=lon, rtt_ms=2.0 * radius_km / C)]


def test_antarctica_holds_the_pole_and_its_border_is_the_coast() -> None:
    """The South Pole and both sides of the antimeridian are in Antarctica, and a region
    around the pole is COMPLIANT with a margin of about its distance to the coast: the data's
    pole edge and antimeridian cut are no border (a margin of ~0 would say they were)."""
    zone = load_region("country:ATA")
    assert shapely.intersects_xy(zone.geometry, 0.0, -90.0)
    assert shapely.intersects_xy(zone.geometry, 180.0, -85.0)
    assert shapely.intersects_xy(zone.geometry, -180.0, -85.0)
    res = solve("chip", _one(-90.0, 0.0, 50.0), zone, estimate=False)
    assert res.verdict is Verdict.COMPLIANT, res.message
    # The coast's vertices (every vertex off the cuts lies on the true border): the nearest
    # is an upper bound of the region's true clearance, and the data's vertices are dense.
    xy = shapely.get_coordinates(country_geometries()["ATA"][1])
    coast = xy[(np.abs(xy[:, 1]) < 89.9) & (np.abs(xy[:, 0]) < 179.999)]
    nearest = float(dist_km(-90.0, 0.0, coast[:, 1], coast[:, 0]).min())
    clearance = nearest - res.landmarks[0].radius_km
    assert clearance > 300.0
    assert res.margin_km is not None
    assert 0.97 * clearance <= res.margin_km <= clearance, (res.margin_km, clearance)


def test_fiji_is_whole_on_both_sides_of_the_antimeridian() -> None:
    zone = load_region("country:FJI")
    res = solve("chip", _one(-16.8, 179.99, 3.0), zone, estimate=False)  # Taveuni-ish
    w = world("country:FJI")
    truly_in = bool(w.truth(np.array([-16.8]), np.array([179.99]))[0])
    assert (res.verdict is Verdict.COMPLIANT) is truly_in or res.verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize("spec", ["country:DEU", "circle:48,11,800", "not:circle:48,11,800"])
def test_coarse_zones_stay_on_the_safe_side(spec: str) -> None:
    """The advice's simplified zones: the inner one inside the zone, the outer one around it."""
    zone = load_region(spec)
    inner, outer = coarse_geometries(zone)
    assert not inner.is_empty
    assert shapely.covers(zone.geometry, inner)
    assert shapely.covers(outer, zone.outer_geometry)
    z = coarse_zone(zone)
    assert z.inner is inner
    assert z.outer is outer
    # Each boundary segment: its endpoint as a unit vector, and a length never below the
    # geodesic distance between its ends (a straight lon/lat segment is no shorter).
    lon_b = np.append(z.lon_a[1:], np.nan)
    lat_b = np.append(z.lat_a[1:], np.nan)
    lat_r, lon_r = np.radians(z.lat_a), np.radians(z.lon_a)
    unit = np.column_stack(
        [np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)]
    )
    np.testing.assert_allclose(z.unit_a, unit, atol=1e-12)
    same = ~z.ring_first[1:]  # consecutive segments of one ring share an endpoint
    np.testing.assert_allclose(z.unit_b[:-1][same], z.unit_a[1:][same], atol=1e-12)
    on_earth = (np.abs(z.lat_a) <= 90) & (np.abs(z.lon_a) <= 180)  # buffers reach past
    seg = np.flatnonzero(same & on_earth[:-1] & on_earth[1:])
    geo = dist_km(z.lat_a[seg], z.lon_a[seg], lat_b[seg], lon_b[seg])
    assert seg.size > 10
    assert (z.len_km[seg] >= geo - 1e-9).all()
    assert z.split == sum(
        int(shapely.get_num_coordinates(r)) - 1 for r in shapely.get_rings(shapely.get_parts(inner))
    )


# --------------------------------------------------------------------------- what people type


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("DE", "DEU (Germany)"),
        ("GER", "DEU (Germany)"),
        ("germ", "DEU (Germany)"),
        (" uk ", "GBR (United Kingdom)"),
        ("RSA", "ZAF (South Africa)"),
    ],
)
def test_suggestions_put_the_meant_country_first(typed: str, first: str) -> None:
    got = suggest_countries(typed)
    assert got[0] == first, got
    assert len(got) == len(set(got)) <= 3


def test_suggestions_for_nothing_and_a_limit() -> None:
    assert suggest_countries("   ") == []
    # A scrambled code: as many close codes as asked for, the meant one among them.
    many = suggest_countries("UAS", limit=6)
    assert len(many) == 6
    assert any(x.startswith("USA ") for x in many)
    assert len(suggest_countries("S", limit=5)) == 5
    assert suggest_countries("S", limit=1) == suggest_countries("S")[:1]
    assert suggest_countries("united", limit=10)  # a word of the name
    assert any("United States" in s for s in suggest_countries("states", limit=10))


def test_swapped_coordinates_are_warned_only_for_geojson(tmp_path: Path) -> None:
    assert swapped_lat_lon_warning(load_region("country:DEU")) is None
    ring = [[100.0, 10.0], [101.0, 10.0], [101.0, 11.0], [100.0, 11.0], [100.0, 10.0]]
    zone = load_region(_write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert swapped_lat_lon_warning(zone) is None  # a longitude beyond 90: not swapped
    paris = [[48.5, 2.0], [48.5, 3.0], [49.0, 3.0], [49.0, 2.0], [48.5, 2.0]]
    path = _write(tmp_path, {"type": "Polygon", "coordinates": [paris]}, "paris.geojson")
    warning = swapped_lat_lon_warning(load_region(path))
    assert warning is not None
    assert warning.startswith(f"{path}: the zone covers no land as [lon, lat]")
    assert warning.endswith("does as [lat, lon]: are the coordinates swapped?")


@pytest.mark.parametrize(("east", "warned"), [(90.5, False), (90.0, True)])
def test_a_longitude_beyond_90_is_never_taken_for_a_latitude(
    tmp_path: Path, east: float, warned: bool
) -> None:
    """A zone in the southern Indian Ocean (no land) whose swap would cover Greenland: warned
    only if every longitude could be a latitude (up to 90 inclusive)."""
    ring = [[80.0, -60.0], [east, -60.0], [east, -30.0], [80.0, -30.0], [80.0, -60.0]]
    zone = load_region(_write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert (swapped_lat_lon_warning(zone) is not None) is warned


def test_a_zone_too_small_to_have_an_area_is_refused(tmp_path: Path) -> None:
    """A square 1e-170 deg wide: a valid polygon whose area underflows to zero, refused
    as empty (a zone nobody can be inside)."""
    e = 1e-170
    ring = [[0.0, 0.0], [e, 0.0], [e, e], [0.0, e], [0.0, 0.0]]
    path = _write(tmp_path, {"type": "Polygon", "coordinates": [ring]})
    with pytest.raises(RegionSpecError) as info:
        load_region(path)
    assert info.value.reason == "empty"
    assert str(info.value) == f"GeoJSON file {path!r}: the zone has no area"


def test_a_geojson_zone_is_named_by_its_file_content(tmp_path: Path) -> None:
    """The canonical name of a GeoJSON zone is the SHA-256 of the file's bytes: the same
    polygon written differently is another file, the same bytes elsewhere the same zone."""
    doc = {"type": "Polygon", "coordinates": [SQUARE]}
    a = _write(tmp_path, json.dumps(doc), "a.geojson")
    b = _write(tmp_path, json.dumps(doc, indent=2), "b.geojson")
    c = _write(tmp_path, json.dumps(doc), "c.geojson")
    za, zb, zc = (load_region(p) for p in (a, b, c))
    assert za.canonical == "geojson:" + hashlib.sha256(Path(a).read_bytes()).hexdigest()
    assert za.canonical != zb.canonical
    assert za.canonical == zc.canonical
    assert za.digest_hex == zc.digest_hex


@pytest.mark.parametrize(
    ("lat", "lon", "km"),
    [
        (90.0, 0.0, 100.0),
        (-90.0, 0.0, 100.0),
        (0.0, 180.0, 50.0),
        (0.0, -180.0, 50.0),
        (50.1, 8.7, 0.4),
    ],
)
def test_circles_at_the_edges_of_the_ranges_are_zones(lat: float, lon: float, km: float) -> None:
    """Circles centred on a pole or on the antimeridian, and circles under 1 km, are valid
    zones holding the points around their centre, and nothing 1.5 radii away."""
    zone = load_region(f"circle:{lat},{lon},{km}")
    near_lat, near_lon = fwd(lat, lon, np.linspace(0.0, 360.0, 12, endpoint=False), 0.5 * km)
    assert shapely.intersects_xy(zone.geometry, near_lon, near_lat).all()
    far_lat, far_lon = fwd(lat, lon, np.linspace(0.0, 360.0, 12, endpoint=False), 1.5 * km)
    assert not shapely.intersects_xy(zone.outer_geometry, far_lon, far_lat).any()


def test_an_unknown_code_is_answered_with_the_suggestions_or_none() -> None:
    """No near miss: no question asked. Near misses: each named, separated by "or"."""
    with pytest.raises(RegionSpecError) as info:
        load_region("country:ZZZ")
    assert str(info.value) == (
        "'country:ZZZ': unknown country code 'ZZZ'; codes are ISO 3166 alpha-3 "
        "(chiploc regions lists them)"
    )
    hints = suggest_countries("UAS")
    assert len(hints) == 3
    with pytest.raises(RegionSpecError) as info:
        load_region("country:UAS")
    assert str(info.value) == (
        "'country:UAS': unknown country code 'UAS'; codes are ISO 3166 alpha-3, did you mean "
        f"{hints[0]} or {hints[1]} or {hints[2]}? (chiploc regions lists them)"
    )


def test_a_zone_that_leaves_nothing_is_refused(tmp_path: Path) -> None:
    """``not:`` a GeoJSON box of the whole Earth: no point is allowed, and an empty zone is
    never a zone (nothing could be COMPLIANT, and nothing should pass as one)."""
    world_box = [[-180.0, -90.0], [180.0, -90.0], [180.0, 90.0], [-180.0, 90.0], [-180.0, -90.0]]
    path = _write(tmp_path, {"type": "Polygon", "coordinates": [world_box]})
    assert load_region(path).geometry.area == pytest.approx(360.0 * 180.0)
    with pytest.raises(RegionSpecError) as info:
        load_region(f"not:{path}")
    assert info.value.reason == "empty"
    assert str(info.value) == f"not:{path}: the authorized zone is empty"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("countries:DEU:FRA", "unknown_country"),  # never read as DEU or FRA alone
        ("country:DEU:", "unknown_country"),
        ("a\0b", "bad_spec"),  # no file can have this name: not a spec, not unreadable
        ("x" * 5000, "bad_spec"),  # a name too long for the file system
    ],
)
def test_specs_no_file_or_code_can_match_are_refused(spec: str, reason: str) -> None:
    with pytest.raises(RegionSpecError) as info:
        load_region(spec)
    assert info.value.reason == reason
    assert str(info.value).startswith(repr(spec))
