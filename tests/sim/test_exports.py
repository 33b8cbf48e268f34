from __future__ import annotations

from pathlib import Path

from chiploc import sim


def test_exported_names_exist_and_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "simulation.md").read_text()
    for name in sim.__all__:
        assert hasattr(sim, name), name
    for name in ("FleetScenario", "SimulatedWorld", "DelayEmulator", "EmulatorHost", "CITIES"):
        assert name in sim.__all__
        assert name in doc
