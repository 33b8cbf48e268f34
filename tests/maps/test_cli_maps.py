"""``chiploc map`` and ``chiploc coverage`` end to end (files in, offline HTML out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chiploc.cli import main
from chiploc.maps import network_references

from ._scenarios import LANDMARKS, scenario


def _jsonl(path: Path, names: list[str]) -> Path:
    path.write_text("".join(json.dumps(scenario(n)) + "\n" for n in names), encoding="utf-8")
    return path


def test_map_one_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _jsonl(tmp_path / "r.jsonl", ["compliant"])
    out = tmp_path / "map.html"
    assert main(["map", str(results), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "COMPLIANT" in page
    assert network_references(page) == []
    assert capsys.readouterr().out.strip() == str(out)


def test_map_target_and_out_dir(tmp_path: Path) -> None:
    results = _jsonl(tmp_path / "r.jsonl", ["compliant", "inconsistent", "violation"])
    one = tmp_path / "one.html"
    assert main(["map", str(results), "--target", "chip-conflict", "--out", str(one)]) == 0
    assert "INCONSISTENT" in one.read_text(encoding="utf-8")
    assert main(["map", str(results), "--out-dir", str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "chip-conflict.html",
        "chip-kassel.html",
        "chip-madrid.html",
    ]


def test_map_fleet(tmp_path: Path) -> None:
    results = _jsonl(tmp_path / "r.jsonl", ["compliant", "inconsistent", "violation"])
    out = tmp_path / "fleet.html"
    assert main(["map", "--fleet", str(results), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Fleet: 3 chips" in page
    assert network_references(page) == []


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("not json\n", [], "r.jsonl:1: not JSON"),
        ("[1]\n", [], "expected a JSON object"),
        ("\n", [], "no results"),
        (None, ["--target", "nobody"], "no result for target"),
        (None, [], "pass --target ID"),
    ],
)
def test_map_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    args: list[str],
    message: str,
) -> None:
    path = tmp_path / "r.jsonl"
    if content is None:
        _jsonl(path, ["compliant", "violation"])
    else:
        path.write_text(content, encoding="utf-8")
    assert main(["map", str(path), "--out", str(tmp_path / "x.html"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_coverage_from_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "lm.csv"
    csv.write_text(
        "landmark,lat,lon\n"
        + "".join(f"{k},{LANDMARKS[k][0]},{LANDMARKS[k][1]}\n" for k in ("fra", "ber", "muc")),
        encoding="utf-8",
    )
    out = tmp_path / "coverage.html"
    argv = ["coverage", "--landmarks", str(csv), "--region", "country:DEU"]
    argv += ["--overhead-us", "50", "--out", str(out), "--max-cells", "60"]
    assert main(argv) == 0
    page = out.read_text(encoding="utf-8")
    assert "best case" in page
    assert network_references(page) == []
    assert "could be proven COMPLIANT" in capsys.readouterr().err


def test_coverage_from_a_signed_registry(tmp_path: Path) -> None:
    from chiploc import protocol

    authority = protocol.generate_private_key(protocol.Role.AUTHORITY, "authority", seed=b"a" * 32)
    protocol.write_keypair(authority, tmp_path)  # authority.pub beside the registry
    entries = []
    for i, k in enumerate(("fra", "ber", "muc", "waw")):
        key = protocol.generate_private_key(protocol.Role.LANDMARK, k, seed=bytes([i + 1]) * 32)
        entries.append(
            protocol.LandmarkEntry(
                id=k,
                lat=LANDMARKS[k][0],
                lon=LANDMARKS[k][1],
                public_key=key.public_key.key_bytes,
                revoked=k == "waw",
            )
        )
    registry = protocol.Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={e.id: e for e in entries},
    )
    reg_path = tmp_path / "registry.json"
    reg_path.write_bytes(registry.to_signed_json(authority))
    out = tmp_path / "coverage.html"
    argv = ["coverage", "--landmarks", str(reg_path), "--region", "country:DEU"]
    argv += ["--overhead-us", "0", "--out", str(out), "--max-cells", "40"]
    assert main(argv) == 0
    page = out.read_text(encoding="utf-8")
    assert "3 landmarks with" in page  # the revoked one is left out
    # A registry whose signature does not match the pinned key is refused.
    other = protocol.generate_private_key(protocol.Role.AUTHORITY, "other", seed=b"b" * 32)
    (tmp_path / "other").mkdir()
    _, other_pub = protocol.write_keypair(other, tmp_path / "other")
    argv_bad = [*argv[:-4], "--authority-key", str(other_pub), "--out", str(tmp_path / "x.html")]
    assert main(argv_bad) == 1  # the registry signature check failed
    assert not (tmp_path / "x.html").exists()
