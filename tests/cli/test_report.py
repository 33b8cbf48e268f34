"""The verdict tables say why: conflicting landmarks for INCONSISTENT, the settle advice
for INCONCLUSIVE; counts agree in number ("1 chip")."""

from __future__ import annotations

from pathlib import Path

import pytest

from chiploc import solver
from chiploc.cli._report import plural, verdict_cells, verdict_why
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

GERMANY = "country:DEU"


def _rtt(km: float) -> float:
    return 2.0 * km / SPEED_OF_LIGHT_KM_PER_MS


def test_inconsistent_names_the_conflicting_landmarks() -> None:
    ms = [
        solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=0.2),
        solver.Measurement(landmark="waw", lat=52.23, lon=21.01, rtt_ms=0.2),
    ]
    result = solver.solve("c", ms, solver.load_region(GERMANY))
    assert result.verdict is solver.Verdict.INCONSISTENT
    why = verdict_why(result)
    assert "fra" in why
    assert "waw" in why
    assert "conflict" in why


def test_inconclusive_gives_the_settle_advice() -> None:
    # A chip near Strasbourg (on the border), bounds loose enough to straddle it.
    ms = [
        solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=_rtt(190.0)),
        solver.Measurement(landmark="par", lat=48.86, lon=2.35, rtt_ms=_rtt(420.0)),
        solver.Measurement(landmark="muc", lat=48.14, lon=11.58, rtt_ms=_rtt(300.0)),
    ]
    result = solver.solve("c", ms, solver.load_region(GERMANY))
    assert result.verdict is solver.Verdict.INCONCLUSIVE
    assert result.settle
    why = verdict_why(result)
    s = result.settle[0]
    assert s.landmark in why
    assert f"{s.rtt_needed_ms:,.3f} ms" in why
    assert s.would_give.value in why


def test_cells_append_what_the_caller_adds() -> None:
    ms = [solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=_rtt(50.0))]
    result = solver.solve("c", ms, solver.load_region(GERMANY))
    cells = verdict_cells(result, more="no answer from par")
    assert cells[-1] == "no answer from par"
    assert cells[1] == f"{result.margin_km:,.1f}"


def test_plural() -> None:
    assert plural(1, "chip") == "1 chip"
    assert plural(2, "chip") == "2 chips"
    assert plural(0, "chip") == "0 chips"
    assert plural(1000, "country", "countries") == "1,000 countries"


def test_counts_agree_in_number_on_maps() -> None:
    from chiploc import maps

    ms = [solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=_rtt(50.0))]
    one = solver.solve("c", ms, solver.load_region(GERMANY), tolerate=0).to_json_dict()
    page = maps.fleet_map([one])
    assert "chiploc fleet — 1 chip</title>" in page
    assert "Fleet: 1 chip\\u003c" in page
    assert "landmark(s)" not in maps.chip_map(one)
    assert "0 landmarks may be dropped" in maps.chip_map(one)


def test_solve_prints_numbers_as_every_table_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chiploc.cli import main

    csv = tmp_path / "m.csv"
    csv.write_text(
        f"target,landmark,lat,lon,rtt_ms\nfar,mad,40.42,-3.70,{_rtt(100.0)}\n", encoding="utf-8"
    )
    assert main(["solve", str(csv), "--region", GERMANY]) == 0
    out = capsys.readouterr().out
    ms = [solver.Measurement(landmark="mad", lat=40.42, lon=-3.70, rtt_ms=_rtt(100.0))]
    result = solver.solve("far", ms, solver.load_region(GERMANY))
    assert result.margin_km is not None
    assert result.margin_km > 1000
    assert f"{result.margin_km:,.1f}" in out  # thousands separated, one decimal
    assert "area km²" in out
    assert f"region lies {result.margin_km:,.1f} km outside" in out
