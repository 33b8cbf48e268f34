"""The fault scenario runner: :func:`run_faults` runs every fault scenario (the
benchmark's set) one after another and returns their :class:`FaultOutcome` s.

The scenarios live in ``_fault_rounds`` (datagram faults through a
:class:`FaultyRelay`, an agent restart, wall-clock jumps) and ``_fault_kills``
(SIGKILL of the landmark and of the verifier's writer).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ._fault_kills import landmark_kill_restart, verifier_kill
from ._fault_lab import FaultOutcome
from ._fault_relay import FaultPlan
from ._fault_rounds import agent_restart, lossy_rounds, wall_clock_jump

__all__ = ["run_faults"]


async def run_faults(directory: str | os.PathLike[str], *, seed: int = 0) -> list[FaultOutcome]:
    """Every fault scenario, one after another (the benchmark's set)."""
    root = Path(directory)
    outcomes = []
    for i, (loss, dup, reorder) in enumerate(((0.0, 0.0, 0.0), (0.1, 0.1, 0.1), (0.3, 0.3, 0.3))):
        plan = FaultPlan(loss=loss, duplicate=dup, reorder=reorder, seed=seed + i)
        outcomes.append(await lossy_rounds(root / f"lossy-{i}", plan))
    plan = FaultPlan(loss=0.3, duplicate=0.3, reorder=0.3, timed_only=False, seed=seed + 7)
    outcomes.append(await lossy_rounds(root / "lossy-setup", plan, rounds=6))
    outcomes.append(await landmark_kill_restart(root / "landmark-kill", seed=seed))
    outcomes.append(await agent_restart(root / "agent-restart"))
    outcomes.append(await asyncio.to_thread(verifier_kill, root / "verifier-kill", seed=seed))
    outcomes.append(await wall_clock_jump(root / "clock-jump"))
    return outcomes
