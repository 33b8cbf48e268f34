"""Solver tests start cold: no disk, region or border-segment built by an earlier test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _cold_geodesy_caches() -> None:
    """Forget cached disks (and the circle regions and segments built from them).

    mutmut forks each mutant's run from a process that ran the clean code: a disk cached
    there would hide a mutant of solver/_geodesy.py.
    """
    from chiploc.solver import _geodesy, _regions

    _geodesy.clear_disk_cache()
    _regions._load_builtin.cache_clear()
    _regions._SEGMENTS.clear()
