"""``chiploc demo`` end to end at a small size: real landmarks, agents, emulator, store.

One run (module fixture, a subprocess as a user would start it) with the first
9 landmarks (Frankfurt, Paris, Tokyo, Warsaw, Madrid, London, Stockholm, Milan,
Amsterdam), the 5 planted chip cases and the planted landmark (Paris, registered
1,500 km south-west of where it runs); the tests then read what it wrote, verify
every certificate and the audit log with the CLI, check the mesh against an
independent computation, and tamper with copies of both.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyproj import Geod

from chiploc.cli import main
from chiploc.cli._demo import MARKER, prepare_output_dir
from chiploc.common.errors import InputError

pytestmark = pytest.mark.slow

CHIPS = 5
LANDMARKS = 9
C_KM_PER_MS = 299.792458


@dataclass(frozen=True)
class DemoOutput:
    directory: Path
    returncode: int
    stdout: str
    stderr: str

    def verdicts(self) -> dict[str, dict[str, object]]:
        lines = (self.directory / "verdicts.jsonl").read_text(encoding="utf-8").splitlines()
        return {obj["chip"]: obj for obj in map(json.loads, lines)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoOutput:
    out = tmp_path_factory.mktemp("demo") / "chiploc-demo"
    proc = subprocess.run(
        [
            sys.executable, "-m", "chiploc", "demo",
            "--chips", str(CHIPS), "--landmarks", str(LANDMARKS),
            "--probes", "4", "--seed", "0", "--out", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )  # fmt: skip
    return DemoOutput(out, proc.returncode, proc.stdout, proc.stderr)


def test_planted_cases_come_out_right(demo: DemoOutput) -> None:
    verdicts = demo.verdicts()
    assert len(verdicts) == CHIPS, demo.stderr
    by_case = {chip.split("-", 2)[2]: v for chip, v in verdicts.items()}
    assert by_case["relayed"]["verdict"] in {"VIOLATION", "INCONCLUSIVE"}
    assert by_case["clone"]["verdict"] == "INCONSISTENT"
    assert by_case["abroad"]["verdict"] in {"VIOLATION", "INCONCLUSIVE"}
    assert by_case["inside"]["verdict"] in {"COMPLIANT", "INCONCLUSIVE"}
    assert by_case["unenrolled"]["verdict"] == "UNREACHABLE"
    assert "not enrolled" in str(by_case["unenrolled"]["message"])
    for obj in verdicts.values():
        assert obj["verdict"] in str(obj["expected"]).split("|")
        assert obj["target"] == obj["chip"]
        assert obj["model"] == "vacuum"
    assert by_case["relayed"]["expected"] == "INCONCLUSIVE|VIOLATION"
    assert "MISMATCH" not in demo.stdout
    assert f"planted cases: {CHIPS}/{CHIPS} right" in demo.stdout
    assert "early deliveries = 0" in demo.stdout
    assert "audit log intact" in demo.stdout


def test_files_are_written(demo: DemoOutput) -> None:
    d = demo.directory
    for name in ("verdicts.jsonl", "fleet_map.html", "registry.json", "authority.pub", MARKER):
        assert (d / name).is_file(), name
    assert sorted(p.name for p in (d / "certificates").iterdir()) == sorted(
        f"{chip}.json" for chip in demo.verdicts()
    )
    with sqlite3.connect(d / "chiploc.db") as db:
        (verdict_rows,) = db.execute("SELECT count(*) FROM verdicts").fetchone()
        (round_rows,) = db.execute("SELECT count(*) FROM rounds").fetchone()
    assert verdict_rows == CHIPS
    # every landmark measured every enrolled chip once
    assert round_rows == LANDMARKS * (CHIPS - 1)


def test_a_map_per_non_compliant_chip_and_exit_status_zero(demo: DemoOutput) -> None:
    expected = {c for c, v in demo.verdicts().items() if v["verdict"] != "COMPLIANT"}
    assert {p.stem for p in (demo.directory / "maps").iterdir()} == expected
    assert demo.returncode == 0, demo.stderr


def test_every_certificate_verifies_with_the_cli(
    demo: DemoOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every certificate of an enrolled chip verifies against the registry; the one the
    # verifier signed about the planted unenrolled chip (UNREACHABLE) is refused: the
    # registry vouches for no such chip.
    registry = demo.directory / "registry.json"
    for cert in sorted((demo.directory / "certificates").iterdir()):
        status = main(["certificate", "verify", str(cert), "--registry", str(registry)])
        if "unenrolled" in cert.name:
            assert status == 1
            assert "[unknown_chip]" in capsys.readouterr().err
        else:
            assert status == 0


def test_audit_log_verifies_with_the_cli(demo: DemoOutput) -> None:
    assert main(["audit", "verify", "--db", str(demo.directory / "chiploc.db")]) == 0


def test_a_flipped_byte_in_a_certificate_is_caught(
    demo: DemoOutput, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = demo.directory / "registry.json"
    shutil.copy(demo.directory / "authority.pub", tmp_path / "authority.pub")
    shutil.copy(registry, tmp_path / "registry.json")
    cert = sorted((demo.directory / "certificates").iterdir())[0]
    data = bytearray(cert.read_bytes())
    index = data.index(b'"verdict":"') + len(b'"verdict":"')
    data[index] ^= 0x01  # e.g. COMPLIANT -> BOMPLIANT / INCONSISTENT -> HNCONSISTENT
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(data))
    status = main(
        ["certificate", "verify", str(tampered), "--registry", str(tmp_path / "registry.json")]
    )
    assert status == 1
    assert "error:" in capsys.readouterr().err
    # a signature byte too
    data = bytearray(cert.read_bytes())
    sig = data.index(b'"signature":"') + len(b'"signature":"')
    data[sig] = ord("0") if data[sig] != ord("0") else ord("1")
    tampered.write_bytes(bytes(data))
    assert main(["certificate", "verify", str(tampered), "--registry", str(registry)]) == 1


@pytest.mark.parametrize("table", ["verdicts", "rounds"])
def test_a_deleted_row_is_caught(
    demo: DemoOutput, tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str
) -> None:
    db = tmp_path / "copy.db"
    with sqlite3.connect(demo.directory / "chiploc.db") as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    with sqlite3.connect(db) as conn:
        triggers = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
            )
        ]
        for name in triggers:  # the store's guard rails; an attacker drops them
            conn.execute(f'DROP TRIGGER "{name}"')
        if table == "rounds":
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute(
                "DELETE FROM rounds WHERE digest NOT IN (SELECT round_digest FROM verdict_evidence)"
                " AND round_id = (SELECT max(round_id) FROM rounds)"
            )
            if conn.total_changes == 0:
                conn.execute("DELETE FROM rounds WHERE round_id = 1")
        else:
            conn.execute("DELETE FROM verdict_evidence WHERE verdict_id = 2")
            conn.execute("DELETE FROM verdicts WHERE verdict_id = 2")
    capsys.readouterr()
    assert main(["audit", "verify", "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert "row deleted" in err, err
    assert f"{table} row" in err, err


def test_output_directory_rules(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious", encoding="utf-8")
    with pytest.raises(InputError):
        prepare_output_dir(foreign)
    assert (foreign / "thesis.tex").read_text(encoding="utf-8") == "precious"

    previous = tmp_path / "demo"
    prepare_output_dir(previous)
    (previous / "certificates").mkdir()
    (previous / "certificates" / "old.json").write_text("{}", encoding="utf-8")
    (previous / "verdicts.jsonl").write_text("old\n", encoding="utf-8")
    (previous / "notes.txt").write_text("mine", encoding="utf-8")
    prepare_output_dir(previous)  # a previous demo: its outputs go, nothing else
    assert not (previous / "certificates").exists()
    assert not (previous / "verdicts.jsonl").exists()
    assert (previous / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (previous / MARKER).is_file()

    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(InputError):
        prepare_output_dir(a_file)


def test_maps_from_the_store(demo: DemoOutput, tmp_path: Path) -> None:
    # `chiploc map --db` draws what the store holds: one chip, and the whole fleet.
    db = str(demo.directory / "chiploc.db")
    chip = tmp_path / "inside.html"
    assert main(["map", "--db", db, "--target", "chip-001-inside", "--out", str(chip)]) == 0
    assert "chip-001-inside" in chip.read_text(encoding="utf-8")
    fleet = tmp_path / "fleet.html"
    assert main(["map", "--fleet", "--db", db, "--out", str(fleet)]) == 0
    page = fleet.read_text(encoding="utf-8")
    assert all(f"chip-00{i}" in page for i in range(1, CHIPS + 1))
    assert main(["map", "--db", db, "--target", "no-such-chip", "--out", str(chip)]) == 2
    assert main(["map", "--db", str(tmp_path / "missing.db"), "--fleet", "--out", str(fleet)]) == 2


def test_the_mesh_flags_the_planted_landmark_and_no_proof_uses_it(
    demo: DemoOutput, capsys: pytest.CaptureFixture[str]
) -> None:
    """Properties of the world: lm-par runs in Paris and is registered 1,500 km away; the
    links that the mesh says beat light really do (recomputed here from the registered
    coordinates in scenario.json, c and 500 ppm); each involves lm-par; lm-par is the one
    landmark out of proofs; no verdict uses it; the summary says so."""
    geod = Geod(ellps="WGS84")
    scenario = json.loads((demo.directory / "scenario.json").read_text(encoding="utf-8"))
    sites = {x["id"]: x for x in scenario["landmarks"]}
    par = sites["lm-par"]
    moved_m = geod.inv(par["lon"], par["lat"], par["registered_lon"], par["registered_lat"])[2]
    assert moved_m / 1000 == pytest.approx(1500, abs=0.1)
    honest = [x for x in sites.values() if x["id"] != "lm-par"]
    assert all((x["lat"], x["lon"]) == (x["registered_lat"], x["registered_lon"]) for x in honest)

    db, registry = str(demo.directory / "chiploc.db"), str(demo.directory / "registry.json")
    assert main(["mesh", "check", "--db", db, "--registry", registry, "--json"]) == 0
    mesh = json.loads(capsys.readouterr().out)

    def registered_km(a: dict[str, float], b: dict[str, float]) -> float:
        lon_a, lat_a, lon_b, lat_b = (
            a["registered_lon"],
            a["registered_lat"],
            b["registered_lon"],
            b["registered_lat"],
        )
        return float(geod.inv(lon_a, lat_a, lon_b, lat_b)[2]) / 1000

    # each landmark measures the others registered within 3,000 km (docs/demo.md)
    near = [(a, b) for a in sites for b in sites if a != b]
    near = [(a, b) for a, b in near if registered_km(sites[a], sites[b]) <= 3000]
    assert mesh["links_checked"] == len(near) >= 40
    assert [s["landmark"] for s in mesh["suspects"]] == ["lm-par"]
    assert len(mesh["flagged_pairs"]) >= 2
    for pair in mesh["flagged_pairs"]:
        assert "lm-par" in pair["pair"]
        for link in pair["links"]:
            if not link["violation"]:
                continue
            a, b = sites[link["landmark"]], sites[link["peer"]]
            registered_km = (
                geod.inv(
                    a["registered_lon"],
                    a["registered_lat"],
                    b["registered_lon"],
                    b["registered_lat"],
                )[2]
                / 1000
            )
            light_km = link["rtt_ms"] / 2 * C_KM_PER_MS * (1 + 500e-6) * 1.01
            assert registered_km > light_km  # light cannot do it between the registered sites
    for chip, verdict in demo.verdicts().items():
        assert "lm-par" not in {b["id"] for b in verdict["landmarks"]}, chip
    said = " ".join(demo.stdout.split())  # the console wraps long lines
    assert "planted landmark lm-par: registered 1,500 km from where it runs: flagged" in said
    assert "excluded from proofs: lm-par (mesh pass " in said
    assert "SUSPECT" in demo.stdout
