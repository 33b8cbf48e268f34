"""chiploc solve: CSV parsing, JSON lines, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc.cli import main

GOOD = """target,landmark,lat,lon,rtt_ms,overhead_ms
chip-1,fra,50.11,8.68,1.8,0.1
chip-1,ber,52.52,13.40,2.3,
chip-1,muc,48.14,11.58,2.2,0
chip-2,fra,50.11,8.68,30,0
"""


def test_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.csv"
    p.write_text(GOOD)
    assert main(["solve", str(p), "--region", "country:DEU", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["target"] == "chip-1"
    assert first["model"] == "vacuum"
    assert first["proof"] is True
    assert first["verdict"] in ("COMPLIANT", "INCONCLUSIVE")
    assert {lm["id"] for lm in first["landmarks"]} == {"fra", "ber", "muc"}


def test_table_and_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.csv"
    p.write_text(GOOD)
    assert (
        main(["solve", str(p), "--region", "not:CHN", "--model", "fiber", "--tolerate", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "chip-1" in out
    assert "fiber" in out
    assert main(["solve", str(p), "--region", "country:DEU", "--model", "calibrated"]) == 2
    assert "--calibration" in capsys.readouterr().err


def test_bad_rows_reported_with_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(
        "target,landmark,lat,lon,rtt_ms\n"
        "a,b,91,0,1\n"
        "a,c,x,0,1\n"
        "a,d,0,0,-1\n"
        "a,e,0,181,1\n"
        "a,f,0,0,nan\n"
        "a,g,0,0,1\n"
        "a,g,1,1,2\n"
        "a,h,0,0\n"
    )
    assert main(["solve", str(p), "--region", "country:DEU"]) == 2
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5, 6, 8, 9):
        assert f"line {line}:" in err
    assert "duplicate landmark 'g'" in err


def test_missing_columns_and_bad_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.csv"
    p.write_text("target,landmark,lat,rtt_ms\na,b,1,2\n")
    assert main(["solve", str(p), "--region", "country:DEU"]) == 2
    assert "missing column(s) lon" in capsys.readouterr().err
    p.write_text(GOOD)
    assert main(["solve", str(p), "--region", "country:XYZ"]) == 2
    assert "XYZ" in capsys.readouterr().err


def test_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m.csv"
    m.write_text(GOOD)
    cal = tmp_path / "cal.csv"
    cal.write_text(
        "landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\n"
        "fra,50.11,8.68,ber,52.52,13.40,6.0\n"
        "fra,50.11,8.68,muc,48.14,11.58,5.0\n"
        "fra,50.11,8.68,par,48.86,2.35,7.0\n"
    )
    args = ["solve", str(m), "--region", "country:DEU", "--model", "calibrated"]
    assert main([*args, "--calibration", str(cal), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["proof"] is False
    assert first["model"] == "calibrated"
    assert first["basis"] == "estimate"
    assert first["estimate"]["basis"] == "estimate"
    assert first["estimate"]["method"] == "cbg-depth"
    cal.write_text("landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\nfra,95,8,x,1,1,2\n")
    assert main([*args, "--calibration", str(cal)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_clock_tolerance_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "m.csv"
    p.write_text(GOOD)
    assert main(["solve", str(p), "--region", "country:DEU", "--json"]) == 0
    default = json.loads(capsys.readouterr().out.splitlines()[0])
    assert default["clock_tolerance_ppm"] == 500.0
    args = ["solve", str(p), "--region", "country:DEU", "--json", "--clock-tolerance-ppm", "0"]
    assert main(args) == 0
    exact = json.loads(capsys.readouterr().out.splitlines()[0])
    assert exact["clock_tolerance_ppm"] == 0.0
    for a, b in zip(exact["landmarks"], default["landmarks"], strict=True):
        assert b["radius_km"] > a["radius_km"]
    assert main([*args[:-1], "-3"]) == 2
    assert "--clock-tolerance-ppm" in capsys.readouterr().err
    assert main([*args[:-1], "nan"]) == 2


def test_a_reader_that_goes_away_is_no_crash(tmp_path: Path) -> None:
    """``chiploc solve ... --json | head``: exit 141 (as for SIGPIPE), no traceback."""
    import subprocess
    import sys

    rows = ["target,landmark,lat,lon,rtt_ms"]
    for k in range(300):  # megabytes of JSON: more than a pipe buffer holds
        rows += [f"chip-{k},fra,50.11,8.68,9.0", f"chip-{k},ber,52.52,13.40,9.5"]
    p = tmp_path / "m.csv"
    p.write_text("\n".join(rows) + "\n")
    with subprocess.Popen(
        [sys.executable, "-m", "chiploc", "solve", str(p), "--region", "country:DEU", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.read(100).startswith(b'{"target": "chip-0"')
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 141
    assert b"Traceback" not in err
