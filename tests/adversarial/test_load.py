"""Load: one landmark measures many chip agents (a child process) in one POST /v1/rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from chiploc.sim import run_load


@pytest.mark.slow
async def test_one_landmark_measures_500_chips_in_one_round(tmp_path: Path) -> None:
    result = await run_load(tmp_path, chips=500, probes=3)
    assert result.completed_share == 1.0, result.errors
    assert result.agent_counters.get("answered", 0) == 500 * 3
    assert result.agent_counters.get("sessions_opened", 0) == 500
    assert result.nofile_soft_limit >= 500
    assert result.seconds > 0
