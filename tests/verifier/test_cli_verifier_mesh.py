"""``chiploc verifier run`` shows the landmark mesh: a ``mesh`` object in ``--json`` and the
suspects in the table (docs/mesh.md, "Where it shows").

World: five landmark daemons (Frankfurt, Paris, Amsterdam, Brussels, London) with their
agent sides behind the user-space delay emulator; the registry puts ``lm-par`` 1,500 km
south-west of Paris, where the simulation runs it (so its real site is up to 1,500 km
closer to its northern peers). Checked against the world, not the code: every link's registered
distance and vacuum bound recomputed here (pyproj, c, 500 ppm); only pairs with ``lm-par``
are flagged; ``lm-par`` is the one suspect and in no chip's proof; an operator's clear
shows, and brings it back into proofs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from pyproj import Geod

from chiploc.cli import main
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
from chiploc.protocol import Role, VerifierEntry, generate_private_key, write_keypair
from chiploc.sim import FleetScenario, SimulatedWorld

pytestmark = pytest.mark.slow

GEOD = Geod(ellps="WGS84")
PPM = 500e-6


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[1], a[0], b[1], b[0])[2]) / 1000


async def test_the_verifiers_json_and_table_show_the_mesh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = FleetScenario.generate(
        seed=0, chips=2, landmarks=5, landmark_codes=("fra", "par", "ams", "bru", "lon")
    ).with_landmark_registered_at("lm-par", azimuth_deg=215.0, distance_km=1500.0)
    key = generate_private_key(Role.VERIFIER, "v-mesh", seed=bytes([8]) * 32)
    registry = scenario.registry.with_entry(
        VerifierEntry(id=key.id, public_key=key.public_key.key_bytes)
    )
    scenario = dataclasses.replace(scenario, registry=registry)
    sites = {lid: (e.lat, e.lon) for lid, e in registry.landmarks.items()}
    paris = next(lm.city for lm in scenario.landmarks if lm.id == "lm-par")
    assert _km(sites["lm-par"], (paris.lat, paris.lon)) == pytest.approx(1500, abs=0.1)
    key_path, _ = write_keypair(key, tmp_path / "vkeys")
    async with SimulatedWorld(
        scenario, tmp_path / "world", mesh=True, probes_per_round=4, mesh_probes=8
    ) as world:
        await world.mesh_pass()
        config = tmp_path / "verifier.toml"
        config.write_text(
            "\n".join(
                [
                    "[verifier]",
                    f'id = "{key.id}"',
                    f'key = "{key_path}"',
                    f'registry = "{world.registry_path}"',
                    f'authority_key = "{world.authority_public_key_path}"',
                    'db = "verifier.db"',
                    "probes = 4",
                    "[verifier.landmarks]",
                    *(f'"{lid}" = "{url}"' for lid, url in world.landmark_urls.items()),
                    "[verifier.chips]",
                    *(f'"{c}" = "{h}:{p}"' for c, (h, p) in world.chip_addresses.items()),
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        run = ["verifier", "run", "--config", str(config)]
        assert await asyncio.to_thread(main, [*run, "--json"]) == 0
        first = capsys.readouterr().out.splitlines()
        assert await asyncio.to_thread(main, run) == 0  # the table, same store
        table = capsys.readouterr().out
        mesh_args = ["--db", str(tmp_path / "verifier.db"), "--registry", str(world.registry_path)]
        clear = ["mesh", "clear", "lm-par", "--operator", "alice", "--reason", "re-surveyed"]
        assert main([*clear, *mesh_args]) == 0
        capsys.readouterr()
        assert await asyncio.to_thread(main, [*run, "--json"]) == 0
        after = capsys.readouterr().out.splitlines()

    *chips, last = [json.loads(line) for line in first]
    mesh = last["mesh"]
    assert set(last) == {"mesh"}
    assert [c["chip"] for c in chips] == [c.id for c in scenario.chips]
    assert mesh["links_checked"] == 20  # 5 landmarks x 4 peers
    assert mesh["pairs_checked"] == 10
    flagged = {tuple(p["pair"]) for p in mesh["flagged_pairs"]}
    # Paris really is ~1,000 km closer to Amsterdam and Brussels than registered: light
    # between the registered sites is beaten by hundreds of km (independent of the code)
    assert {("lm-ams", "lm-par"), ("lm-bru", "lm-par")} <= flagged
    assert all("lm-par" in pair for pair in flagged)  # an honest pair never is
    for pair in mesh["flagged_pairs"]:
        assert pair["links"]
        for link in pair["links"]:
            a, b = link["landmark"], link["peer"]
            registered = _km(sites[a], sites[b])
            bound = link["rtt_ms"] / 2 * SPEED_OF_LIGHT_KM_PER_MS * (1 + PPM)
            assert link["registered_km"] == pytest.approx(registered, abs=0.01)
            assert link["vacuum_bound_km"] >= bound * (1 - 1e-9)
            assert link["vacuum_bound_km"] <= bound * 1.01  # chord-to-geodesic slack only
            assert link["violation"] == (registered > link["vacuum_bound_km"])
            if link["violation"]:
                beaten = link["light_beaten_by_km"]
                assert beaten == pytest.approx(registered - link["vacuum_bound_km"], abs=0.01)
    (suspect,) = mesh["suspects"]
    assert suspect["landmark"] == "lm-par"
    assert suspect["new"] is True
    assert suspect["violating_pairs"] == len(flagged) >= 2
    assert "more than any of them" in suspect["why"]
    assert mesh["cleared"] == []
    for chip in chips:  # the suspect is in no proof
        assert "lm-par" not in {b["id"] for b in chip["landmarks"]}
        assert chip["verdict"] in scenario.chip(chip["chip"]).expected

    assert "landmark mesh: suspects are out of every proof" in table
    row = next(line for line in table.splitlines() if "lm-par " in line and "SUSPECT" in line)
    assert "(new)" not in row  # flagged by the first run, still out until cleared
    assert "light reaches" in table

    *chips_after, last_after = [json.loads(line) for line in after]
    (cleared,) = last_after["mesh"]["cleared"]
    assert (cleared["landmark"], cleared["operator"], cleared["reason"]) == (
        "lm-par",
        "alice",
        "re-surveyed",
    )
    assert last_after["mesh"]["suspects"] == []
    # the operator's word puts it back into proofs (only mesh rounds after the clear count)
    assert any("lm-par" in {b["id"] for b in c["landmarks"]} for c in chips_after)
