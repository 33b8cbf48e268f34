"""Reading one ``[table]`` of a TOML config file (stdlib only).

Shared by every config loader (``landmark.toml``, ``verifier.toml``); it lives here, beside
:mod:`chiploc.common.errors`, so that edge packages can use it without importing the CLI.

Invariants:

* Every failure (missing file, unreadable or invalid TOML, missing table) raises
  :class:`~chiploc.common.errors.ConfigError` naming the file; nothing else escapes.
* Relative paths in a config resolve from the file's own directory: the second value
  returned.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from chiploc.common.errors import ConfigError

__all__ = ["read_toml_table"]


def read_toml_table(path: str | Path, table: str) -> tuple[dict[str, Any], Path]:
    """The ``[table]`` of a TOML file and the directory relative paths resolve from."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{p}: no such config file") from e
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{p}: cannot parse config: {e}") from e
    section = doc.get(table)
    if not isinstance(section, dict):
        raise ConfigError(f"{p}: missing [{table}] table")
    return section, p.parent
