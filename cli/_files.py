"""Output locations, one behaviour for every command: a missing directory is created and
the command says so on stderr (``created directory X``); one that cannot be created is a
one-line error naming it."""

from __future__ import annotations

import sys
from pathlib import Path

from chiploc.common.errors import ConfigError


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) if missing, saying so on stderr."""
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"{directory}: cannot create directory: {e.strerror}", reason="unwritable_output"
        ) from e
    print(f"created directory {directory}", file=sys.stderr)
