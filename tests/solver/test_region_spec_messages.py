"""Region specs as a user types them: a near-miss code gets the right suggestion, errors
name the spec typed, malformed lists and GeoJSON are refused, swapped coordinates warned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc import solver
from chiploc.cli import main
from chiploc.common.errors import RegionSpecError


@pytest.mark.parametrize("spec", ["country:DE", "country:GER", "country:de", "countries:FRA,GER"])
def test_a_near_miss_suggests_deu(spec: str) -> None:
    with pytest.raises(RegionSpecError, match=r"did you mean DEU \(Germany\)") as info:
        solver.load_region(spec)
    assert info.value.reason == "unknown_country"
    assert "chiploc regions" in str(info.value)


@pytest.mark.parametrize("spec", ["not:XYZ", "not:countries:DEU,XYZ", "not:not:country:XYZ"])
def test_errors_name_the_spec_typed(spec: str) -> None:
    with pytest.raises(RegionSpecError) as info:
        solver.load_region(spec)
    assert str(info.value).startswith(repr(spec))


@pytest.mark.parametrize("spec", ["countries:DEU,,FRA", "countries:DEU,FRA,", "not:countries:,CHN"])
def test_empty_list_entries_are_refused(spec: str) -> None:
    with pytest.raises(RegionSpecError, match="empty entry") as info:
        solver.load_region(spec)
    assert info.value.reason == "empty_entry"


def _write(tmp_path: Path, geometry: dict[str, object]) -> str:
    path = tmp_path / "zone.geojson"
    path.write_text(json.dumps(geometry), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "rings",
    [
        [[[7, 49], [10, 49], [10, 51.5], [7, 51.5]]],  # last position is not the first
        [[[7, 49], [10, 49], [7, 49]]],  # closed but only 3 positions
    ],
)
def test_unclosed_geojson_rings_are_refused(tmp_path: Path, rings: list[object]) -> None:
    with pytest.raises(RegionSpecError, match="not closed") as info:
        solver.load_region(_write(tmp_path, {"type": "Polygon", "coordinates": rings}))
    assert info.value.reason == "unclosed_ring"


def test_a_closed_ring_loads(tmp_path: Path) -> None:
    ring = [[7, 49], [10, 49], [10, 51.5], [7, 51.5], [7, 49]]
    zone = solver.load_region(_write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert solver.swapped_lat_lon_warning(zone) is None


def test_lat_lon_order_gets_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Around Paris written as [lat, lon]: as [lon, lat] it is a patch of the Indian Ocean.
    ring = [[48.5, 2], [48.5, 3], [49, 3], [49, 2], [48.5, 2]]
    spec = _write(tmp_path, {"type": "Polygon", "coordinates": [ring]})
    zone = solver.load_region(spec)
    warning = solver.swapped_lat_lon_warning(zone)
    assert warning is not None
    assert "[lat, lon]" in warning
    csv = tmp_path / "m.csv"
    csv.write_text("target,landmark,lat,lon,rtt_ms\nc,fra,50.11,8.68,0.5\n", encoding="utf-8")
    main(["solve", str(csv), "--region", spec])
    assert "warning:" in capsys.readouterr().err


def test_a_zone_at_sea_with_no_land_either_way_is_not_warned(tmp_path: Path) -> None:
    ring = [[-30, -40], [-20, -40], [-20, -30], [-30, -30], [-30, -40]]  # South Atlantic
    zone = solver.load_region(_write(tmp_path, {"type": "Polygon", "coordinates": [ring]}))
    assert solver.swapped_lat_lon_warning(zone) is None


def test_regions_command_lists_codes_and_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regions"]) == 0
    out = capsys.readouterr().out
    assert "DEU  Germany" in out
    assert "FRA  France" in out
    assert main(["regions", "germ"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "DEU  Germany"
    assert "1 country." in out
