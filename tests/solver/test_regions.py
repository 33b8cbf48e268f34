"""Authorized regions: specs, borders, GeoJSON validation, digests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely

from chiploc.common.errors import RegionSpecError
from chiploc.solver import country_geometries, load_region


def test_country_lookup_and_codes() -> None:
    table = country_geometries()
    for code in ("DEU", "FRA", "NOR", "KOS", "USA", "RUS", "FJI", "CHN"):
        assert code in table
    assert table["FRA"][0] == "France"
    assert shapely.intersects_xy(table["DEU"][1], 13.4, 52.52)  # Berlin
    assert shapely.intersects_xy(table["FRA"][1], 2.35, 48.86)  # Paris


def test_specs() -> None:
    deu = load_region("country:deu")
    assert deu.canonical == "countries:DEU"
    assert (
        load_region("countries:FRA,DEU").digest_hex == load_region("countries:DEU, FRA").digest_hex
    )
    assert load_region("countries:FRA,DEU").digest_hex != deu.digest_hex
    not_chn = load_region("not:CHN")
    assert not shapely.intersects_xy(not_chn.geometry, 116.4, 39.9)  # Beijing
    assert shapely.intersects_xy(not_chn.geometry, 13.4, 52.52)
    both = load_region("not:countries:CHN,RUS")
    assert not shapely.intersects_xy(both.geometry, 37.6, 55.75)  # Moscow
    circle = load_region("circle:50,10,100")
    assert circle.geometry.within(circle.outer_geometry)
    not_circle = load_region("not:circle:50,10,100")
    assert not_circle.outer_geometry.contains(not_circle.geometry)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("country:XYZ", "XYZ"),
        ("countries:DEU,QQQ", "QQQ"),
        ("not:ZZZ", "ZZZ"),
        ("circle:95,0,10", "circle"),
        ("circle:1,2", "circle"),
        ("circle:1,2,-5", "circle"),
        ("banana", "banana"),
        ("", "empty"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, needle: str) -> None:
    with pytest.raises(RegionSpecError, match=needle):
        load_region(spec)


def test_geojson(tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [[[5, 45], [15, 45], [15, 55], [5, 55], [5, 45]]]}
    for doc in (
        square,
        {"type": "Feature", "geometry": square, "properties": {}},
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": square}]},
    ):
        p = tmp_path / "zone.geojson"
        p.write_text(json.dumps(doc))
        zone = load_region(str(p))
        assert shapely.intersects_xy(zone.geometry, 10, 50)
        assert zone.canonical.startswith("geojson:")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "Point", "coordinates": [0, 0]}', "Point"),
        ('{"type": "FeatureCollection", "features": []}', "no features"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [0, 1], [0, 0]]]}', "outside"),
        (
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}',
            "not a valid polygon",
        ),
        ('{"type": "Polygon", "coordinates": "x"}', "malformed"),
    ],
)
def test_broken_geojson_names_the_file(tmp_path: Path, content: str, needle: str) -> None:
    p = tmp_path / "broken.geojson"
    p.write_text(content)
    with pytest.raises(RegionSpecError, match=needle) as info:
        load_region(str(p))
    assert "broken.geojson" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegionSpecError, match=r"nothere\.geojson"):
        load_region(str(tmp_path / "nothere.geojson"))


def test_builtin_specs_are_built_once_and_files_are_reread(tmp_path: Path) -> None:
    # A built-in spec is a pure function of its text: one shared object per spec.
    for spec in ("countries:DEU,FRA,NLD", "not:CHN", "not:countries:CHN,RUS", "circle:1,2,30"):
        assert load_region(spec) is load_region(spec)
    # A GeoJSON file is read again each time, so an edited file is never served stale,
    # also behind not:.
    path = tmp_path / "zone.geojson"

    def write(x0: float) -> None:
        ring = [[x0, 0.0], [x0 + 1, 0.0], [x0 + 1, 1.0], [x0, 1.0], [x0, 0.0]]
        path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))

    write(0.0)
    first, first_not = load_region(str(path)), load_region(f"not:{path}")
    write(5.0)
    second, second_not = load_region(str(path)), load_region(f"not:{path}")
    assert first.digest_hex != second.digest_hex
    assert first_not.digest_hex != second_not.digest_hex
    assert second.geometry.bounds[0] == 5.0
