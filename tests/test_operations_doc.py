"""docs/operations.md documents every key the configuration readers accept, and no other:
landmark.toml (LandmarkConfig), the agent's options (the real ``agent run`` parser) and
verifier.toml (VerifierConfig); the documented defaults are the readers' defaults."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from chiploc.cli import build_parser
from chiploc.cli._verifier import _KNOWN_KEYS as VERIFIER_KEYS
from chiploc.cli._verifier import VerifierConfig
from chiploc.landmarks import LandmarkConfig
from chiploc.landmarks._config import CONFIG_KEYS as LANDMARK_KEYS

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def _table(name: str) -> dict[str, tuple[str, str]]:
    """The table after ``<!-- keys: NAME -->``: key -> (type, default)."""
    text = DOC.read_text(encoding="utf-8")
    marker = f"<!-- keys: {name} -->"
    assert marker in text, f"docs/operations.md has no table {name!r}"
    rows = {}
    for line in text.split(marker, 1)[1].lstrip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        key = re.fullmatch(r"`([^`]+)`", cells[0])
        assert key, line
        rows[key.group(1)] = (cells[1], cells[2])
    assert rows
    return rows


def _subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = action.choices[name]
    return parser


def test_landmark_toml_keys_and_defaults() -> None:
    rows = _table("landmark.toml")
    assert set(rows) == LANDMARK_KEYS
    fields = LandmarkConfig.__dataclass_fields__
    for key in ("probes_per_round", "probe_timeout_ms", "hello_timeout_ms", "hello_retries",
                "max_concurrent_rounds"):  # fmt: skip
        assert rows[key][1] == str(fields[key].default), key
    for key in ("id", "key", "registry", "db"):
        assert rows[key][1] == "required", key


def test_agent_options() -> None:
    run = _subparser(build_parser(), "agent", "run")
    options = {
        a.option_strings[-1]: a
        for a in run._actions
        if a.option_strings and a.dest not in ("help", "verbose")  # every command's -v
    }
    rows = _table("agent run")
    assert set(rows) == set(options)
    for name, action in options.items():
        want = "required" if action.required else f"`{action.default}`"
        if action.default is None and not action.required:
            continue  # a documented fallback (authority.pub beside the registry)
        assert rows[name][1] == want, name


@pytest.mark.parametrize("key", sorted(VERIFIER_KEYS))
def test_verifier_toml_key_documented(key: str) -> None:
    rows = _table("verifier.toml")
    assert set(rows) == set(VERIFIER_KEYS)
    field = {"key": "key_path", "registry": "registry_path", "db": "db_path",
             "authority_key": "authority_key_path", "calibration": "calibration_path",
             "certificates_dir": "certificates_dir"}.get(key, key)  # fmt: skip
    default = VerifierConfig.__dataclass_fields__[field].default
    documented = rows[key][1]
    if isinstance(default, int | float) and not isinstance(default, bool):
        assert float(documented.strip("`")) == default, key
    elif isinstance(default, str):
        assert documented == f"`{default}`", key
