"""Solver tests under mutation testing start every test with the solver's caches empty.

mutmut (``scripts/mutation``) runs the clean suite in its main process and forks each
mutant's run from it, so the children inherit every disk polygon, loaded region and border
table the clean run built: a mutant in ``_disks``, ``_circle`` or ``_borders`` would then
never run (a cache hit returns the unmutated result) and survive for no reason, and the
per-test coverage mutmut uses to choose a mutant's tests would name only the first test
that filled each entry. Under mutmut (it sets ``MUTANT_UNDER_TEST``) each test therefore
begins cold; in ordinary runs the caches are kept (they are part of what is tested).
"""

from __future__ import annotations

import os

import pytest

from chiploc.solver import _geodesy, _regions


@pytest.fixture(autouse=True)
def _cold_solver_caches_under_mutmut() -> None:
    if "MUTANT_UNDER_TEST" in os.environ:
        _geodesy.clear_disk_cache()
        _regions._borders.cache_clear()
        _regions._load_builtin.cache_clear()
        _regions._SEGMENTS.clear()
        _regions._COARSE.clear()
        _regions._COARSE_ZONES.clear()
