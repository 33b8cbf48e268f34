"""Every command writing into a missing directory creates it and says so; an error about an
option speaks in that option's unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc import solver
from chiploc.cli import main
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS


def _results(tmp_path: Path) -> Path:
    rtt = 2.0 * 60.0 / SPEED_OF_LIGHT_KM_PER_MS
    lines = []
    for target in ("chip-a", "chip-b"):
        ms = [solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=rtt)]
        result = solver.solve(target, ms, solver.load_region("country:DEU"))
        lines.append(json.dumps(result.to_json_dict()))
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _landmarks(tmp_path: Path) -> Path:
    path = tmp_path / "landmarks.csv"
    path.write_text("landmark,lat,lon\nfra,50.11,8.68\nber,52.52,13.40\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["keys", "map", "map-dir", "map-fleet", "coverage"])
def test_a_missing_output_directory_is_created_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "new" / "deeper"
    argv = {
        "keys": ["keys", "new", "--role", "chip", "--id", "c1", "--out", str(out)],
        "map": ["map", str(_results(tmp_path)), "--target", "chip-a", "--out", str(out / "a.html")],
        "map-dir": ["map", str(_results(tmp_path)), "--out-dir", str(out)],
        "map-fleet": ["map", str(_results(tmp_path)), "--fleet", "--out", str(out / "f.html")],
        "coverage": [
            "coverage", "--landmarks", str(_landmarks(tmp_path)), "--region", "country:LUX",
            "--overhead-us", "20", "--max-cells", "20", "--out", str(out / "c.html"),
        ],
    }[command]  # fmt: skip
    assert main(argv) == 0
    assert out.is_dir()
    assert any(out.iterdir())
    assert f"created directory {out}" in capsys.readouterr().err
    # The second time there is nothing to create, and nothing is said about it.
    assert main(argv) == 0 or command == "keys"  # keys never overwrites a key
    assert "created directory" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--overhead-us", "-5"], "--overhead-us must be ≥ 0 µs, got -5 µs"),
        (
            ["--overhead-us", "5", "--resolution-km", "-3"],
            "--resolution-km must be > 0 km, got -3 km",
        ),
        (["--overhead-us", "5", "--max-cells", "0"], "--max-cells must be at least 1 cell, got 0"),
    ],
)
def test_coverage_errors_speak_in_the_options_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    argv = ["coverage", "--landmarks", str(_landmarks(tmp_path)), "--region", "country:DEU"]
    assert main([*argv, *extra, "--out", str(tmp_path / "c.html")]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert " ms" not in err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--clock-tolerance-ppm", "-1"], "got -1 ppm"),
        (["--tolerate", "9"], "between 0 and 8 landmarks, got 9"),
    ],
)
def test_solve_errors_speak_in_the_options_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("target,landmark,lat,lon,rtt_ms\nc,fra,50.11,8.68,0.5\n", encoding="utf-8")
    assert main(["solve", str(csv), "--region", "country:DEU", *extra]) == 2
    assert says in capsys.readouterr().err
