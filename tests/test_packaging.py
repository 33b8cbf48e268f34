"""The wheel owns one import name: ``chiploc``, with every part under it.

Builds the wheel from a copy of the checkout (so no build/ or egg-info lands in it),
then imports the parts from the unpacked wheel in a fresh interpreter whose working
directory is not the checkout, so the checkout's top-level folders cannot leak in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = (
    "common",
    "protocol",
    "solver",
    "chip_agent",
    "landmarks",
    "store",
    "verifier",
    "maps",
    "sim",
    "cli",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "chiploc",
        src / "chiploc",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for part in PARTS:
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
        ],
        check=True,
        cwd=out,
        timeout=300,
    )
    (built,) = out.glob("chiploc-*.whl")
    return built


def test_wheel_holds_only_chiploc_and_its_dist_info(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"chiploc"}
    # Every module and data file of every part is in it, under chiploc/.
    for part in PARTS:
        for path in (ROOT / part).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                assert f"chiploc/{rel}" in names, f"{rel} is missing from the wheel"
    assert "chiploc/py.typed" in names
    assert "chiploc/solver/data/borders.npz" in names


def test_unpacked_wheel_imports_chiploc_parts_and_no_bare_names(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}

    def run(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = run(
        "import chiploc.solver, chiploc.landmarks, chiploc.chip_agent, chiploc.maps,"
        " chiploc.cli, chiploc.sim, chiploc.store, chiploc.verifier, chiploc.protocol;"
        "print(chiploc.solver.__file__)"
    )
    assert ok.returncode == 0, ok.stderr
    assert Path(ok.stdout.strip()).is_relative_to(site)
    # Package data is found under the one name: the borders and the inlined Leaflet.
    data = run(
        "from chiploc.solver import load_region; from chiploc.maps._html import _vendor_text;"
        "print(load_region('country:DEU').spec, len(_vendor_text('leaflet.js')) > 100_000)"
    )
    assert data.returncode == 0, data.stderr
    assert data.stdout.split() == ["country:DEU", "True"]
    for bare in (
        "solver",
        "protocol",
        "maps",
        "store",
        "verifier",
        "sim",
        "landmarks",
        "chip_agent",
        "common",
        "cli",
    ):
        failed = run(f"import {bare}")
        assert failed.returncode != 0, bare
        assert "ModuleNotFoundError" in failed.stderr, bare
    cli = subprocess.run(
        [sys.executable, "-m", "chiploc", "--version"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("chiploc ")
