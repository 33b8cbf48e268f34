"""chiploc ingest atlas: RIPE Atlas ping results -> measurement CSV.

The shared real campaign (../shared/data/atlas-imc2023, or $CHIPLOC_ATLAS_DIR) and
hand-written results in each firmware shape the Atlas result format documents."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from chiploc.cli import main
from chiploc.cli._ingest import AtlasProbe, ingest_atlas, read_json_records, read_probes
from chiploc.solver import parse_measurements_csv

ROOT = Path(__file__).resolve().parents[2]
ATLAS = Path(os.environ.get("CHIPLOC_ATLAS_DIR", ROOT.parent / "shared/data/atlas-imc2023"))

PROBES = {
    1: AtlasProbe(id=1, lat=50.0, lon=8.0),
    2: AtlasProbe(id=2, lat=52.5, lon=13.4),
    3: AtlasProbe(id=3, lat=None, lon=None),
    4: AtlasProbe(id=4, lat=48.1, lon=11.6, disputed=True),
}


def _ping(prb: int, dst: str = "192.0.2.1", **kw: Any) -> dict[str, Any]:
    """A current-firmware ping result (fw 5080), overridable field by field."""
    rec: dict[str, Any] = {
        "fw": 5080, "af": 4, "dst_addr": dst, "dst_name": dst, "src_addr": "10.0.0.1",
        "from": "198.51.100.7", "proto": "ICMP", "ttl": 55, "size": 48,
        "result": [{"rtt": 12.5}, {"rtt": 11.25}, {"rtt": 13.0}],
        "dup": 0, "rcvd": 3, "sent": 3, "min": 11.25, "max": 13.0, "avg": 12.25,
        "msm_id": 1001, "prb_id": prb, "timestamp": 1681831351, "type": "ping", "step": None,
    }  # fmt: skip
    rec.update(kw)
    return rec


def _campaign() -> Path:
    if not (ATLAS / "ping-results.json").is_file():
        pytest.fail(f"the shared Atlas campaign is missing at {ATLAS} (set CHIPLOC_ATLAS_DIR)")
    return ATLAS


def test_the_shared_campaign_keeps_each_pairs_fastest_reply() -> None:
    d = _campaign()
    raw = json.loads((d / "ping-results.json").read_text())
    probes_doc = json.loads((d / "probes.json").read_text())
    coords = {p["id"]: p["geometry"]["coordinates"] for p in probes_doc["results"]}
    report = ingest_atlas(
        read_json_records((d / "ping-results.json").read_text(), source="r"),
        read_probes(read_json_records((d / "probes.json").read_text(), source="p"), source="p"),
    )
    assert report.read == len(raw)
    assert report.used + sum(report.dropped.values()) == report.read
    # Independently: the smallest positive reply per (destination, probe), from the raw JSON.
    expect: dict[tuple[str, str], float] = {}
    for r in raw:
        rtts = [p["rtt"] for p in r["result"] if isinstance(p.get("rtt"), int | float)]
        if r["min"] > 0:
            rtts.append(r["min"])
        if rtts:
            key = (r["dst_addr"], str(r["prb_id"]))
            expect[key] = min(min(rtts), expect.get(key, float("inf")))
    got = {(t, lm): (lat, lon, rtt) for t, lm, lat, lon, rtt in report.rows}
    assert set(got) == set(expect)
    for key, (lat, lon, rtt) in got.items():
        assert rtt == pytest.approx(expect[key], abs=5e-4)  # sagan rounds replies to 1 us
        assert [lon, lat] == coords[int(key[1])]  # GeoJSON order: [lon, lat]
    targets = {line.split(",")[0] for line in (d / "targets.csv").read_text().splitlines()[1:]}
    assert {t for t, _ in got} <= targets


def test_the_command_writes_a_csv_chiploc_solve_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _campaign()
    out = tmp_path / "measurements.csv"
    args = ["ingest", "atlas", str(d / "ping-results.json"), "--probes", str(d / "probes.json")]
    assert main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "results read 44" in err
    assert "never for a certificate" in err
    by_target = parse_measurements_csv(out.read_text(), source=str(out))
    assert len(by_target) == 5
    assert main(["solve", str(out), "--region", "not:CHN", "--model", "fiber", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert all(json.loads(x)["basis"] == "estimate" for x in lines)


def test_every_firmware_shape_and_failure_is_kept_or_counted() -> None:
    old = {  # firmware < 4460: addr / name / pf instead of dst_addr / dst_name / af
        "fw": 4400, "pf": 4, "addr": "192.0.2.9", "name": "example.net", "proto": "ICMP",
        "result": [{"rtt": 20.0}, {"x": "*"}, {"rtt": 19.5}], "rcvd": 2, "sent": 3,
        "min": 19.5, "max": 20.0, "avg": 19.75, "msm_id": 7, "prb_id": 2, "time": 1,
        "timestamp": 1300000000, "type": "ping", "size": 56,
    }  # fmt: skip
    records = [
        _ping(1),
        _ping(1, min=9.0, result=[{"rtt": 9.0}, {"x": "*"}, {"rtt": 9.5}]),  # later round
        _ping(1, result=[{"rtt": 2.0, "dup": 1}, {"rtt": 10.0}], min=2.0, dup=1),  # dup reply
        _ping(2, dst="2001:db8::1", af=6),  # IPv6
        old,
        _ping(1, dst="192.0.2.2", result=[{"x": "*"}] * 3, rcvd=0, min=-1, max=-1, avg=-1),
        _ping(1, dst="192.0.2.3", result=[{"error": "sendto failed"}], rcvd=0, min=-1, avg=-1),
        _ping(2, dst="192.0.2.4", err="network unreachable", result=[], min=-1, avg=-1),
        _ping(3),  # no location
        _ping(4),  # disputed location
        _ping(99),  # not in the probe file
        {**_ping(1), "type": "traceroute"},
        {"fw": 5080, "type": "ping"},  # no prb_id / msm_id / timestamp
        None,  # a JSON-lines line that did not parse
    ]
    report = ingest_atlas(records, PROBES)
    rows = {(t, lm): rtt for t, lm, _, _, rtt in report.rows}
    assert rows == {
        ("192.0.2.1", "1"): 9.0,  # minimum over rounds; the duplicate reply is no evidence
        ("2001:db8::1", "2"): 11.25,
        ("192.0.2.9", "2"): 19.5,
    }
    assert report.dropped == {
        "no_reply": 1,
        "error": 2,
        "no_location": 1,
        "disputed_location": 1,
        "unknown_probe": 1,
        "not_ping": 1,
        "malformed": 2,
    }
    assert report.read == len(records)
    assert report.used == 5
    assert "dropped 9" in report.summary()


def test_json_lines_and_api_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "r.jsonl"
    results.write_text("\n".join(json.dumps(r) for r in (_ping(1), _ping(2))) + "\n{oops\n")
    probes = tmp_path / "p.json"
    probes.write_text(
        json.dumps(
            {
                "count": 3,
                "results": [
                    {"id": 1, "geometry": {"type": "Point", "coordinates": [8.0, 50.0]}},
                    {"id": 2, "geometry": None},
                    {"id": 5, "geometry": {"coordinates": [1, 2]}, "tags": [
                        {"name": "Geoloc disputed", "slug": "system-geoloc-disputed"}]},
                ],
            }
        )
    )  # fmt: skip
    out = tmp_path / "m.csv"
    assert main(["ingest", "atlas", str(results), "--probes", str(probes), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "results read 3, used 1, dropped 2 (malformed 1, no_location 1)" in err
    assert out.read_text().splitlines() == [
        "target,landmark,lat,lon,rtt_ms",
        "192.0.2.1,1,50.0,8.0,11.25",
    ]
    assert read_probes([{"id": 5, "tags": ["system-geoloc-disputed"]}], source="p")[5].disputed


@pytest.mark.parametrize(
    ("results", "probes", "message"),
    [
        ("", "[]", "empty file"),
        ("not json at all", "[]", "neither a JSON array nor JSON lines"),
        ("[]", '[{"id": "x"}]', "no integer id"),
        (json.dumps([_ping(3)]), '[{"id": 3}]', "no usable result"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results: str, probes: str, message: str
) -> None:
    r, p = tmp_path / "r.json", tmp_path / "p.json"
    r.write_text(results)
    p.write_text(probes)
    out = tmp_path / "m.csv"
    assert main(["ingest", "atlas", str(r), "--probes", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
