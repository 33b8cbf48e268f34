"""chiploc ingest atlas on raw exports as people really have them (docs/ingest.md).

Hand-written fixtures: bulk downloads compressed (gzip, bzip2, xz; told by content, not by
name), JSON lines mixing measurement types and measurements, results wrapped by the API,
probe metadata as API pages, a plain array or the probe archive's objects, and broken
files, each named in a one-line error or a warning with its file and line."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chiploc.cli import main
from chiploc.cli._ingest_read import JsonRecords

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def _ping(prb: int, dst: str = "192.0.2.1", msm: int = 1001, rtt: float = 11.25) -> dict[str, Any]:
    return {
        "fw": 5080, "af": 4, "dst_addr": dst, "dst_name": dst, "src_addr": "10.0.0.1",
        "from": "198.51.100.7", "proto": "ICMP", "ttl": 55, "size": 48,
        "result": [{"rtt": rtt + 1}, {"rtt": rtt}],
        "dup": 0, "rcvd": 2, "sent": 2, "min": rtt, "max": rtt + 1, "avg": rtt + 0.5,
        "msm_id": msm, "prb_id": prb, "timestamp": 1681831351, "type": "ping", "step": None,
    }  # fmt: skip


TRACEROUTE = {
    "fw": 5080, "af": 4, "dst_addr": "192.0.2.1", "dst_name": "192.0.2.1", "from": "x",
    "msm_id": 2002, "prb_id": 1, "timestamp": 1681831351, "type": "traceroute", "proto": "UDP",
    "result": [{"hop": 1, "result": [{"from": "10.0.0.1", "rtt": 0.5, "size": 28, "ttl": 64}]}],
}  # fmt: skip
DNS = {
    "fw": 5080, "af": 4, "dst_addr": "192.0.2.53", "msm_id": 3003, "prb_id": 2,
    "timestamp": 1681831351, "type": "dns", "result": {"rt": 12.0, "size": 60},
}  # fmt: skip

PROBES_API = {
    "count": 2,
    "next": None,
    "previous": None,
    "results": [
        {"id": 1, "geometry": {"type": "Point", "coordinates": [8.0, 50.0]}},
        {"id": 2, "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}},
    ],
}


def _jsonl(records: list[Any]) -> bytes:
    return ("\n".join(json.dumps(r) for r in records) + "\n").encode()


def _ingest(
    tmp_path: Path,
    results: bytes,
    probes: bytes,
    capsys: pytest.CaptureFixture[str],
    *,
    results_name: str = "results.json",
    probes_name: str = "probes.json",
) -> tuple[int, list[str], str]:
    r = tmp_path / results_name
    p = tmp_path / probes_name
    r.write_bytes(results)
    p.write_bytes(probes)
    out = tmp_path / "m.csv"
    code = main(["ingest", "atlas", str(r), "--probes", str(p), "--out", str(out)])
    rows = out.read_text().splitlines()[1:] if out.exists() else []
    return code, rows, capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
@pytest.mark.parametrize("suffix", ["", ".json", ".gz"])
def test_compressed_bulk_downloads_are_read_by_their_magic_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, suffix: str
) -> None:
    """Whatever the name says (none, .json, a wrong .gz), the content decides."""
    packed = COMPRESSORS[kind](_jsonl([_ping(1, rtt=9.5), _ping(2, rtt=20.0), _ping(1, rtt=9.0)]))
    probes = COMPRESSORS[kind](json.dumps(PROBES_API).encode())
    code, rows, err = _ingest(
        tmp_path, packed, probes, capsys, results_name=f"r{suffix}", probes_name=f"p{suffix}"
    )
    assert code == 0, err
    assert rows == ["192.0.2.1,1,50.0,8.0,9.0", "192.0.2.1,2,52.5,13.4,20.0"]
    assert f"JSON lines, {kind}" in err


def test_a_gz_name_on_plain_text_is_read_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows, err = _ingest(
        tmp_path, _jsonl([_ping(2)]), json.dumps(PROBES_API).encode(), capsys, results_name="r.gz"
    )
    assert code == 0, err
    assert rows == ["192.0.2.1,2,52.5,13.4,11.25"]


def test_other_measurement_types_are_counted_by_type_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = [TRACEROUTE, _ping(1), DNS, TRACEROUTE, _ping(2, dst="192.0.2.9", msm=1002)]
    code, rows, err = _ingest(tmp_path, _jsonl(mixed), json.dumps(PROBES_API).encode(), capsys)
    assert code == 0, err
    assert rows == ["192.0.2.1,1,50.0,8.0,11.25", "192.0.2.9,2,52.5,13.4,11.25"]
    assert "results read 5, used 2, dropped 3 (not_ping 3 (traceroute 2, dns 1))" in err
    assert "from 2 measurements" in err


@pytest.mark.parametrize(
    "shape",
    ["api page", "pages as JSON lines", "arrays as JSON lines", "array of pages", "pretty array"],
)
def test_results_wrapped_by_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    a, b = [_ping(1), _ping(2)], [_ping(1, dst="192.0.2.9")]
    page = {"count": 3, "next": None, "previous": None, "results": a + b}
    body = {
        "api page": json.dumps(page).encode(),
        "pages as JSON lines": _jsonl([{"results": a}, {"results": b}]),
        "arrays as JSON lines": _jsonl([a, b]),
        "array of pages": json.dumps([{"results": a}, {"results": b}]).encode(),
        "pretty array": json.dumps(a + b, indent=2).encode(),
    }[shape]
    code, rows, err = _ingest(tmp_path, body, json.dumps(PROBES_API).encode(), capsys)
    assert code == 0, err
    assert "results read 3, used 3" in err
    assert len(rows) == 3


@pytest.mark.parametrize("shape", ["api page", "plain array", "probe archive", "jsonl pages"])
def test_probe_metadata_in_each_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    api = PROBES_API["results"]
    archive = {  # the daily probe archive: flat latitude/longitude, string tags
        "objects": [
            {"id": 1, "latitude": 50.0, "longitude": 8.0, "tags": ["system-anchor"]},
            {"id": 2, "latitude": 52.5, "longitude": 13.4, "tags": ["system-geoloc-disputed"]},
        ]
    }
    body = {
        "api page": json.dumps(PROBES_API).encode(),
        "plain array": json.dumps(api).encode(),
        "probe archive": json.dumps(archive).encode(),
        "jsonl pages": _jsonl([{"count": 2, "results": api[:1]}, {"count": 2, "results": api[1:]}]),
    }[shape]
    code, rows, err = _ingest(tmp_path, _jsonl([_ping(1), _ping(2)]), body, capsys)
    assert code == 0, err
    assert rows[0] == "192.0.2.1,1,50.0,8.0,11.25"
    if shape == "probe archive":  # its disputed tag is honoured
        assert rows == rows[:1]
        assert "disputed_location 1" in err
    else:
        assert rows[1] == "192.0.2.1,2,52.5,13.4,11.25"


def test_a_bad_json_line_is_counted_and_named_with_its_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = _jsonl([_ping(1)]) + b'{"prb_id": 2, "type": "pi\n' + _jsonl([_ping(2)])
    code, rows, err = _ingest(
        tmp_path, gzip.compress(body), json.dumps(PROBES_API).encode(), capsys
    )
    assert code == 0
    assert len(rows) == 2
    assert "results read 3, used 2, dropped 1 (malformed 1)" in err
    assert f"{tmp_path / 'results.json'}:2 (" in err
    assert "warning" in err


@pytest.mark.parametrize(
    ("results", "message"),
    [
        (b'[\n  {"prb_id": 1,\n   "type": "ping"\n  ,,\n]\n', "line 4 column 4: not valid JSON"),
        (b'{\n "count": 1,\n "results": [\n', "line 4 column 1: not valid JSON"),
        (gzip.compress(_jsonl([_ping(1)] * 50))[:-30], "gzip stream broken"),
        (b"\xff\xfe\x00garbage\x00\x81", "not UTF-8 text near line 1"),
        (lzma.compress(b"\n\n \n"), "empty file"),
        (b"oops\nstill not json\n", "neither a JSON array nor JSON lines (first bad line: "),
    ],
    ids=["array", "page", "truncated gz", "binary", "blank xz", "no JSON line"],
)
def test_broken_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results: bytes, message: str
) -> None:
    code, rows, err = _ingest(tmp_path, results, json.dumps(PROBES_API).encode(), capsys)
    assert code == 2
    assert not rows
    assert message in err
    assert str(tmp_path / "results.json") in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_probe_line_stops_the_ingest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probes = _jsonl(PROBES_API["results"]) + b"{broken\n"
    code, rows, err = _ingest(tmp_path, _jsonl([_ping(1)]), probes, capsys)
    assert code == 2
    assert not rows  # nothing written
    assert f"{tmp_path / 'probes.json'}:3" in err


def test_json_lines_are_streamed_not_loaded_whole(tmp_path: Path) -> None:
    """The reader yields the first record before it has read the rest of the file."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(_jsonl([_ping(1)]) + b"x" * 10 + b"\n" + _jsonl([_ping(2)] * 3))
    records = iter(JsonRecords(str(path)))
    assert next(records)["prb_id"] == 1
    with path.open("ab") as f:  # appended after the first record was read: still seen
        f.write(_jsonl([_ping(2, dst="192.0.2.77")]))
    rest = list(records)
    assert rest[0] is None
    assert rest[-1]["dst_addr"] == "192.0.2.77"


def test_a_compressed_export_piped_to_standard_input(tmp_path: Path) -> None:
    """``-`` reads standard input, compressed or not, as a user pipes a download."""
    import subprocess
    import sys

    probes = tmp_path / "p.json.xz"
    probes.write_bytes(lzma.compress(json.dumps(PROBES_API).encode()))
    argv = [sys.executable, "-m", "chiploc", "ingest", "atlas", "-", "--probes", str(probes)]
    for body in (_jsonl([_ping(1), _ping(2)]), gzip.compress(_jsonl([_ping(1), _ping(2)]))):
        proc = subprocess.run(
            [*argv, "--out", "-"], input=body, capture_output=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().splitlines()[1:] == [
            "192.0.2.1,1,50.0,8.0,11.25",
            "192.0.2.1,2,52.5,13.4,11.25",
        ]
