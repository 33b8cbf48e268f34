"""scripts/bootstrap says that an install is running before the (silent, ~15 s) pip install,
and how long it took; an up-to-date .venv is silent. Run on a copy with a stand-in
.venv/bin/python that records what it was asked and installs nothing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", repo / "scripts" / "bootstrap")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    log = tmp_path / "calls.log"
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\n', encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return repo, log


def _run(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "bootstrap"), "test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHON": "python3"},
    )


def test_first_install_says_it_is_running_then_done(tmp_path: Path) -> None:
    repo, log = _copy(tmp_path)
    first = _run(repo)
    lines = first.stderr.splitlines()
    assert lines[0].startswith("bootstrap: installing chiploc with [test]"), first.stderr
    assert lines[-1].startswith("bootstrap: installed in "), first.stderr
    assert "-e .[test]" in log.read_text(encoding="utf-8")
    again = _run(repo)
    assert again.stderr == ""  # up to date: nothing to say, nothing installed
