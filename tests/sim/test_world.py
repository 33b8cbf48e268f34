from __future__ import annotations

from pathlib import Path

import pytest

from chiploc.common.errors import UnknownIdentity
from chiploc.protocol import load_registry, verify_report
from chiploc.sim import FleetScenario, SimulatedWorld


@pytest.mark.slow
async def test_small_world_measures_through_the_emulator(tmp_path: Path) -> None:
    scenario = FleetScenario.generate(seed=11, chips=5, landmarks=4)
    async with SimulatedWorld(scenario, tmp_path, probes_per_round=5) as world:
        assert set(world.landmark_urls) == {lm.id for lm in scenario.landmarks}
        assert all(url.startswith("http://127.0.0.1:") for url in world.landmark_urls.values())
        assert set(world.chip_addresses) == {c.id for c in scenario.chips}
        registry = load_registry(
            world.registry_path,
            authority_public_key=scenario.authority.public_key.key_bytes,
        )
        inside = next(c for c in scenario.chips if c.case == "inside")
        clone = next(c for c in scenario.chips if c.case == "clone")
        for landmark_id, chip in (("lm-par", inside), ("lm-fra", clone), ("lm-tyo", clone)):
            report = await world.measure(landmark_id, chip.id)
            verified = verify_report(report.raw, registry)
            assert verified.min_rtt_ns is not None
            floor_ns = world.delay_floor_ns(landmark_id, chip.id)
            assert verified.min_rtt_ns >= 2 * floor_ns
            # Loose upper bound: the emulator adds little on top of the model.
            assert verified.min_rtt_ns < 2 * floor_ns + 50_000_000
        unenrolled = next(c for c in scenario.chips if c.case == "unenrolled")
        with pytest.raises(UnknownIdentity):
            await world.measure("lm-fra", unenrolled.id)
        stats = await world.lateness()
        assert stats.early == 0
        assert stats.count >= 2 * 3 * 5
        assert len(world.agents[clone.id]) == 2
        clone_answers = [a.counters["answered"] for a in world.agents[clone.id]]
        assert clone_answers[0] >= 5
        assert clone_answers[1] >= 5
    assert (tmp_path / "landmarks" / "lm-fra.db").exists()
    assert world.landmark_urls == {}
