"""Measurement CSVs as people write them: BOM, separators, header case, repeated rounds."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from chiploc.cli import main
from chiploc.common.errors import MeasurementError
from chiploc.solver import parse_measurements_csv

ROWS = [
    ("chip-1", "fra", "50.11", "8.68", "1.8"),
    ("chip-1", "ber", "52.52", "13.40", "2.3"),
    ("chip-2", "fra", "50.11", "8.68", "30"),
]


def _csv(
    sep: str,
    header: str = "target,landmark,lat,lon,rtt_ms",
    rows: Sequence[tuple[str, ...]] = ROWS,
) -> str:
    lines = [header.replace(",", sep)] + [sep.join(r) for r in rows]
    return "\n".join(lines) + "\n"


PLAIN = parse_measurements_csv(_csv(","), source="plain")


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + _csv(","),
        _csv(";"),
        _csv("\t"),
        _csv(",", "Target,LANDMARK,Lat,Lon,RTT_ms"),
        _csv(";", " target ; landmark ; lat ; lon ; rtt_ms "),
        "\r\n".join(_csv(",").splitlines()) + "\r\n",
        "\n\n" + _csv(","),
    ],
    ids=["bom", "semicolon", "tab", "header-case", "spaces", "crlf", "leading-blank-lines"],
)
def test_variants_read_as_the_plain_file(text: str) -> None:
    assert parse_measurements_csv(text, source="v") == PLAIN


def test_repeated_rounds_keep_the_minimum() -> None:
    text = _csv(",", rows=[*ROWS, ("chip-1", "fra", "50.11", "8.68", "1.2"), ROWS[0]])
    got = parse_measurements_csv(text, source="rounds")
    fra = [m for m in got["chip-1"] if m.landmark == "fra"]
    assert [m.rtt_ms for m in fra] == [1.2]
    assert [m.landmark for m in got["chip-1"]] == ["fra", "ber"]  # first-seen order kept


def test_repeated_rounds_keep_the_smallest_bound_with_overheads() -> None:
    text = (
        "target,landmark,lat,lon,rtt_ms,overhead_ms\n"
        "c,a,50,8,2.0,0.9\n"  # 1.1 ms after the landmark's proven overhead
        "c,a,50,8,1.5,0.0\n"  # 1.5 ms
    )
    (m,) = parse_measurements_csv(text, source="o")["c"]
    assert (m.rtt_ms, m.overhead_ms) == (2.0, 0.9)


def test_repeated_rows_at_other_coordinates_name_both_lines() -> None:
    text = _csv(",", rows=[*ROWS, ("chip-1", "ber", "48.14", "11.58", "2.0")])
    with pytest.raises(MeasurementError, match=r"line 5: duplicate landmark 'ber'") as e:
        parse_measurements_csv(text, source="conflict")
    assert "on line 3" in str(e.value)


def test_a_wrong_header_is_echoed() -> None:
    with pytest.raises(MeasurementError) as e:
        parse_measurements_csv("tgt;lm;lat;lon;rtt\nc;a;1;2;3\n", source="h")
    assert "'tgt;lm;lat;lon;rtt'" in str(e.value)
    assert e.value.reason == "missing_column"


def test_a_header_and_no_rows_is_an_error() -> None:
    with pytest.raises(MeasurementError, match="no rows") as e:
        parse_measurements_csv("target,landmark,lat,lon,rtt_ms\n\n", source="h")
    assert e.value.reason == "no_rows"


def test_dash_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\ufeff" + _csv(";")))
    assert main(["solve", "-", "--region", "country:DEU", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("target,landmark,lat,lon,rtt_ms\n"))
    assert main(["solve", "-", "--region", "country:DEU"]) == 2
    assert "<stdin>: a header and no rows" in capsys.readouterr().err
