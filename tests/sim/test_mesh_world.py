"""The landmark mesh end to end on 127.0.0.1, behind the user-space delay emulator.

World: five landmarks. ``lm-x`` is registered 300 km south of where it really is; it really
sits between ``lm-fra`` and ``lm-cgn`` (moved towards some of its peers). Every path's
one-way delay is the true geodesic distance at 2/3 c (never early). A chip sits in the same
building as ``lm-x``.

Properties checked (of the world, not of the code):

* the mesh (real daemons, real agents answering with landmark keys, signed reports, the
  collector, the store) flags exactly the pairs of ``lm-x`` that beat light between the
  registered sites, names ``lm-x`` alone suspect, shows it in ``lm-x``'s peers' ``/metrics``
  and audits the flag;
* with ``lm-x`` in the proof, the chip's proven region misses the chip's true position by
  far (the registry lie makes the proof wrong); once the suspect is excluded the proven
  region holds the chip's true position, and ``lm-x`` is in no proof until an operator
  clears it (audited);
* ``chiploc mesh export`` writes a calibration that ``--model calibrated`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pyproj import Geod
from shapely.geometry import Point

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import InputError
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    generate_private_key,
    write_keypair,
)
from chiploc.sim import EmulatorHost, FixedDelay
from chiploc.solver import Calibration, Model
from chiploc.store import open_store
from chiploc.verifier import (
    Collector,
    RoundTarget,
    assess_and_flag,
    clear_suspect,
    judge_all,
    verify_audit,
    without_landmarks,
)

GEOD = Geod(ellps="WGS84")
FIBER_KM_PER_MS = SPEED_OF_LIGHT_KM_PER_MS * 2 / 3

pytestmark = pytest.mark.slow

TRUE_X = (50.45, 7.75)  # between Frankfurt and Cologne


def _moved(site: tuple[float, float], azimuth: float, km: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(site[1], site[0], azimuth, km * 1000)
    return (float(lat), float(lon))


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[1], a[0], b[1], b[0])[2]) / 1000


TRUE = {
    "lm-fra": (50.11, 8.68),
    "lm-cgn": (50.94, 6.96),
    "lm-muc": (48.14, 11.58),
    "lm-par": (48.86, 2.35),
    "lm-x": TRUE_X,
}
REGISTERED = {**TRUE, "lm-x": _moved(TRUE_X, 180.0, 300.0)}
CHIP_AT = TRUE_X  # the chip shares lm-x's building


def _one_way_ns(a: tuple[float, float], b: tuple[float, float]) -> int:
    return round(_km(a, b) / FIBER_KM_PER_MS * 1e6)


def _seed(name: str) -> bytes:
    return (name.encode() * 32)[:32]


@contextlib.asynccontextmanager
async def _world(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    authority = generate_private_key(Role.AUTHORITY, "authority", seed=_seed("auth"))
    keys = {lid: generate_private_key(Role.LANDMARK, lid, seed=_seed(lid)) for lid in TRUE}
    chip_key = generate_private_key(Role.CHIP, "chip-x", seed=_seed("chip-x"))
    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            lid: LandmarkEntry(
                id=lid,
                lat=REGISTERED[lid][0],
                lon=REGISTERED[lid][1],
                public_key=k.public_key.key_bytes,
            )
            for lid, k in keys.items()
        },
        chips={
            "chip-x": ChipEntry(
                id="chip-x", public_key=chip_key.public_key.key_bytes, region="country:DEU"
            )
        },
    )
    async with contextlib.AsyncExitStack() as stack:
        # the emulators run in a child process (as in SimulatedWorld): in this process their
        # sender thread would queue behind the event loop for the GIL and deliver late
        host = EmulatorHost(seed=13)
        host.start()
        stack.callback(host.stop)
        agents = {}
        for lid, key in keys.items():  # each landmark's agent side, answering as a peer
            agents[lid] = await stack.enter_async_context(ChipAgent(key, registry))
        chip_agent = await stack.enter_async_context(ChipAgent(chip_key, registry))
        emulators = {
            lid: host.emulator(f"mesh-{lid}", backends=[agents[lid].address]) for lid in TRUE
        }
        chip_emulator = host.emulator("chip-x", backends=[chip_agent.address])
        daemons = {}
        for lid, key in keys.items():
            config = LandmarkConfig(
                id=lid,
                key_path=tmp_path / "unused.key",
                registry_path=tmp_path / "unused.json",
                db_path=tmp_path / f"{lid}.db",
                probe_timeout_ms=300,
                hello_timeout_ms=1000,
                mesh_peers={p: emulators[p].address for p in TRUE if p != lid},
                mesh_interval_s=0,  # passes on request (the schedule has its own test)
                mesh_probes=8,
            )
            daemons[lid] = await stack.enter_async_context(
                LandmarkDaemon(config, key=key, registry=registry)
            )
        for lid, daemon in daemons.items():
            for peer in TRUE:
                if peer != lid:
                    emulators[peer].set_path(
                        daemon.udp_address,
                        delay=FixedDelay(delay_ns=_one_way_ns(TRUE[lid], TRUE[peer])),
                    )
            chip_emulator.set_path(
                daemon.udp_address, delay=FixedDelay(delay_ns=_one_way_ns(TRUE[lid], CHIP_AT))
            )
        yield {
            "registry": registry,
            "daemons": daemons,
            "chip_address": chip_emulator.address,
        }


async def test_mesh_flags_a_landmark_registered_300_km_away_and_proofs_stop_using_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with _world(tmp_path) as world:
        registry: Registry = world["registry"]
        daemons: dict[str, LandmarkDaemon] = world["daemons"]
        urls = {lid: d.http_url for lid, d in daemons.items()}
        # The mesh keeps each link's minimum over passes (as its schedule does): pass again,
        # at most 5 times, until the two links that must beat light do (on a loaded machine
        # one pass can be slowed by the others; a slow pass never flags anything).
        passes = 0
        async with aiohttp.ClientSession() as http:
            for passes in range(1, 6):  # noqa: B007 - the count is used below
                for url in urls.values():  # one mesh pass each, through the HTTP route
                    async with http.post(f"{url}/v1/mesh/rounds", json={}) as response:
                        body = await response.json()
                        assert response.status == 200, body
                        assert all("error" not in r for r in body["results"]), body
                if all(daemons[lid].mesh["lm-x"].violation for lid in ("lm-fra", "lm-cgn")):
                    break
            # the landmarks' own view: lm-fra's link to lm-x beats light, others do not
            async with http.get(f"{urls['lm-fra']}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"{urls['lm-fra']}/v1/mesh") as response:
                view = await response.json()
        assert 'chiploc_landmark_mesh_violation{peer="lm-x"} 1' in metrics
        assert 'chiploc_landmark_mesh_violation{peer="lm-muc"} 0' in metrics
        assert {link["peer"] for link in view["links"] if link["violation"]} == {"lm-x"}

        with open_store(tmp_path / "verifier.db") as store:
            target = RoundTarget(chip_id="chip-x", address="{}:{}".format(*world["chip_address"]))
            async with Collector(landmark_urls=urls, registry=registry, store=store) as collector:
                collection = await collector.collect()
                assert collection.mesh_verified == 20 * passes  # 5 landmarks x 4 peers a pass
                assert collection.mesh_stored == 20 * passes
                assert not collection.mesh_rejected
                assert not collection.screened.reports  # no chip measured yet
                # the chip: rounds until lm-x's minimum is what a building apart gives
                # (< 1 ms; at most 5 rounds)
                screened = collection.screened
                for _ in range(5):
                    await collector.trigger([target], probes=8)
                    batch = await collector.collect()
                    assert batch.mesh_verified == 0
                    screened = screened.merged(batch.screened)
                    x_rtts = [
                        r.min_rtt_ns
                        for r in screened.reports
                        if r.landmark_id == "lm-x" and r.min_rtt_ns is not None
                    ]
                    if x_rtts and min(x_rtts) < 1_000_000:
                        break
            assert {r.chip_id for r in screened.reports} == {"chip-x"}  # never a mesh report
            assert {r.landmark_id for r in screened.reports} == set(TRUE)

            status = assess_and_flag(store, registry, now_unix_ns=2_000_000_000_000_000_000)
            pairs = status.assessment.violating_pairs
            # the pairs that beat light are exactly lm-x with the peers it was moved towards
            assert pairs == (("lm-cgn", "lm-x"), ("lm-fra", "lm-x"))
            for check in status.assessment.checks:  # independent: registered vs true distance
                a, b = check.link.landmark, check.link.peer
                light_km = _km(TRUE[a], TRUE[b])
                assert check.registered_km == pytest.approx(_km(REGISTERED[a], REGISTERED[b]))
                assert check.bound_km >= light_km  # the emulator never delivers early
            assert status.suspects == frozenset({"lm-x"})
            assert status.newly_flagged == ("lm-x",)

            # with lm-x in the proof, the region misses the chip's true position by far
            (with_x,) = judge_all(["chip-x"], screened, registry)
            assert "lm-x" in {b.measurement.landmark for b in with_x.result.landmarks}
            chip_point = Point(CHIP_AT[1], CHIP_AT[0])
            (x_bound,) = [b for b in with_x.result.landmarks if b.measurement.landmark == "lm-x"]
            assert x_bound.radius_km < 300.0  # its disk, around the registered site, misses
            assert with_x.result.region is None or not with_x.result.region.contains(chip_point)
            # without the suspect, the proven region holds the chip's true position
            kept = without_landmarks(screened, status.suspects)
            assert kept.rejected["mesh_suspect"] >= 1
            assert "lm-x" not in {r.landmark_id for r in kept.reports}
            (without_x,) = judge_all(["chip-x"], kept, registry)
            used = {b.measurement.landmark for b in without_x.result.landmarks}
            assert used == {"lm-fra", "lm-cgn", "lm-muc", "lm-par"}
            assert without_x.result.region is not None
            assert without_x.result.region.contains(chip_point)

            # the mesh is the calibration source: export (suspect left out), solve calibrated
            capsys.readouterr()
            calibration_csv = _export(tmp_path, registry)
            printed = capsys.readouterr().out  # what an operator reads from `mesh check`
            assert "2 violating pairs (lm-cgn-lm-x, lm-fra-lm-x)" in printed
            assert "excluded from proofs: lm-x" in printed
            assert "lm-fra -> lm-x:" in printed
            text = calibration_csv.read_text(encoding="utf-8")
            assert text.startswith("landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\n")
            assert "lm-x" not in text
            assert len(text.splitlines()) == 1 + 12  # 4 honest landmarks x 3 peers
            calibration = Calibration.from_csv(calibration_csv)
            assert calibration.bestline("lm-fra").points == 3
            (calibrated,) = judge_all(
                ["chip-x"], kept, registry, model=Model.CALIBRATED, calibration=calibration
            )
            assert calibrated.result.proof is False  # an estimate, labelled so

            # the flag persists (no new flag) until an operator clears it, audited
            again = assess_and_flag(store, registry, now_unix_ns=2_000_000_000_000_000_001)
            assert again.suspects == {"lm-x"}
            assert again.newly_flagged == ()
            with pytest.raises(InputError):
                clear_suspect(store, "lm-fra", operator="ops", reason="x", now_unix_ns=1)
            clear_suspect(
                store,
                "lm-x",
                operator="alice",
                reason="site re-surveyed",
                now_unix_ns=2_000_000_000_000_000_002,
            )
            assert store.mesh_suspects() == {}
            # no mesh round since the clear: lm-x is back in proofs (the operator's call)
            after = assess_and_flag(store, registry, now_unix_ns=2_000_000_000_000_000_003)
            assert after.suspects == frozenset()
            report = verify_audit(store)
            assert report.mesh_rounds == 20 * passes
            assert report.mesh_flags == 2
            flags = list(store.mesh_flags())
            assert [(f.landmark_id, f.action) for f in flags] == [
                ("lm-x", "suspect"),
                ("lm-x", "clear"),
            ]
            assert flags[1].details["operator"] == "alice"


def _export(tmp_path: Path, registry: Registry) -> Path:
    from chiploc.cli import main

    authority = generate_private_key(Role.AUTHORITY, "authority", seed=_seed("auth"))
    (tmp_path / "registry.json").write_bytes(registry.to_signed_json(authority))
    write_keypair(authority, tmp_path / "keys")
    (tmp_path / "authority.pub").write_bytes((tmp_path / "keys" / "authority.pub").read_bytes())
    out = tmp_path / "calibration.csv"
    args = ["--db", str(tmp_path / "verifier.db"), "--registry", str(tmp_path / "registry.json")]
    assert main(["mesh", "check", *args]) == 0
    assert main(["mesh", "export", *args, "--out", str(out)]) == 0
    return out


async def test_the_schedule_measures_every_peer_and_metrics_show_it(
    tmp_path: Path, landmark_key: PrivateKey
) -> None:
    """Two landmarks on loopback with ``mesh_interval_s = 1``: each measures the other on its
    own; registered 0.6 km apart, which a loopback round trip cannot beat: no flag."""
    authority = generate_private_key(Role.AUTHORITY, "authority", seed=_seed("auth"))
    other = generate_private_key(Role.LANDMARK, "lm-par", seed=_seed("lm-par"))
    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra", lat=50.11, lon=8.68, public_key=landmark_key.public_key.key_bytes
            ),
            # registered 0.6 km apart: on loopback they really are that close (or closer)
            "lm-par": LandmarkEntry(
                id="lm-par", lat=50.1154, lon=8.68, public_key=other.public_key.key_bytes
            ),
        },
    )
    async with contextlib.AsyncExitStack() as stack:
        agent_fra = await stack.enter_async_context(ChipAgent(landmark_key, registry))
        agent_par = await stack.enter_async_context(ChipAgent(other, registry))
        daemons = []
        for key, peer, address in (
            (landmark_key, "lm-par", agent_par.address),
            (other, "lm-fra", agent_fra.address),
        ):
            config = LandmarkConfig(
                id=key.id,
                key_path=tmp_path / "unused.key",
                registry_path=tmp_path / "unused.json",
                db_path=tmp_path / f"{key.id}.db",
                mesh_peers={peer: address},
                mesh_interval_s=1,
                mesh_probes=4,
            )
            daemons.append(
                await stack.enter_async_context(LandmarkDaemon(config, key=key, registry=registry))
            )
        for _ in range(100):  # bounded: at most 5 s
            if all(d.mesh for d in daemons):
                break
            await asyncio.sleep(0.05)
        for daemon in daemons:
            (check,) = daemon.mesh.values()
            assert not check.violation
            assert check.link.rtt_ms < 5
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{daemons[0].http_url}/metrics") as response,
        ):
            metrics = await response.text()
        assert 'chiploc_landmark_mesh_min_rtt_seconds{peer="lm-par"}' in metrics
        assert 'chiploc_landmark_mesh_violation{peer="lm-par"} 0' in metrics


async def test_simulated_world_mesh_flags_a_displaced_landmark(tmp_path: Path) -> None:
    """The simulation's own path model (per-hop stretch 1.3-1.5 at 2/3 c, last mile, jitter,
    emulator in a child process): Paris is registered at Paris but the simulation puts it
    300 km towards Amsterdam. Its links to Amsterdam and Brussels then beat light between
    the registered sites; no honest pair does; Paris alone is suspect."""
    from chiploc.sim import CITIES_BY_CODE, FleetScenario, PathModel, SimulatedWorld

    paris, amsterdam = CITIES_BY_CODE["par"], CITIES_BY_CODE["ams"]
    azimuth = GEOD.inv(paris.lon, paris.lat, amsterdam.lon, amsterdam.lat)[0]
    true_paris = _moved((paris.lat, paris.lon), azimuth, 300.0)
    scenario = FleetScenario.generate(
        seed=13,
        chips=1,
        landmarks=6,
        landmark_codes=("par", "ams", "bru", "dus", "fra", "lon"),
        model=PathModel(stretch_min=1.3, stretch_max=1.5),
    )
    async with SimulatedWorld(
        scenario,
        tmp_path / "world",
        mesh=True,
        landmark_sites={"lm-par": true_paris},
        probe_timeout_ms=500,
        hello_timeout_ms=1000,
    ) as world:
        assert _km(world.site("lm-par"), (paris.lat, paris.lon)) == pytest.approx(300, rel=1e-6)
        passes = 0
        for passes in range(1, 6):  # noqa: B007 - the minimum over passes, as the schedule keeps it
            results = await world.mesh_pass()
            assert all(
                not isinstance(r, Exception) for per in results.values() for r in per.values()
            ), results
            daemons = world.landmarks
            if all(daemons[lid].mesh["lm-par"].violation for lid in ("lm-ams", "lm-bru")):
                break
        registry = scenario.registry
        with open_store(tmp_path / "verifier.db") as store:
            async with Collector(
                landmark_urls=world.landmark_urls, registry=registry, store=store
            ) as collector:
                collection = await collector.collect()
            assert collection.mesh_verified == 30 * passes
            status = assess_and_flag(store, registry, now_unix_ns=2_000_000_000_000_000_000)
        pairs = set(status.assessment.violating_pairs)
        assert {("lm-ams", "lm-par"), ("lm-bru", "lm-par")} <= pairs
        assert all("lm-par" in pair for pair in pairs)  # no honest pair, ever
        assert status.suspects == frozenset({"lm-par"})
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{world.landmark_urls['lm-ams']}/metrics") as response,
        ):
            metrics = await response.text()
        assert 'chiploc_landmark_mesh_violation{peer="lm-par"} 1' in metrics
        assert 'chiploc_landmark_mesh_violation{peer="lm-bru"} 0' in metrics
