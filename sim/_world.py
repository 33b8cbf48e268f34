"""``SimulatedWorld``: a :class:`FleetScenario` brought to life on 127.0.0.1.

Starts, in this process, one :class:`~landmarks.LandmarkDaemon` per landmark
(UDP and HTTP on port 0, its own SQLite database under ``directory``) and one
:class:`~chip_agent.ChipAgent` per place a chip's key answers from (two for a
clone); in a child process (:class:`~sim._host.EmulatorHost`), one
:class:`~sim._delay.DelayEmulator` per chip, in front of its agent(s), with
each landmark's path configured from the scenario's route (relay and clone
included). Landmarks probe a chip at its emulator address.

With ``mesh=True`` (``docs/mesh.md``) every landmark also runs its agent side (a
:class:`~chip_agent.ChipAgent` with its landmark key) behind an emulator of its own, and
lists as mesh peers every other landmark (or those ``mesh_peers`` names for it); the
landmark-to-landmark paths are drawn from the scenario's path model between the landmarks'
**true** sites: ``landmark_sites`` overrides where the simulation puts a landmark (default:
its city, whatever the registry says), so a landmark registered in one place and running in
another can be staged. Only the mesh paths use the override; chip routes stay the
scenario's (a scenario whose *registry* lies, :meth:`FleetScenario.with_landmark_registered_at`,
moves no path at all). :meth:`mesh_pass` runs one pass.

Invariants: everything binds 127.0.0.1 only; the emulator never delivers
early, so every RTT a landmark measures is at least twice the modelled one-way
floor; ``__aexit__`` stops agents, drains landmarks and ends the child, each
bounded in time, even when start-up failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import ChiplocError, InputError
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import MeasurementReport, write_keypair

from ._delay import Address, LatenessStats, RouteDelay
from ._host import EmulatorHost, RemoteEmulator
from ._paths import Point, Route, draw_route
from ._scenario import FleetScenario

__all__ = ["SimulatedWorld"]

_LOOPBACK = "127.0.0.1"


class SimulatedWorld:
    """Async context manager running a scenario's landmarks, agents and emulators.

    ``directory`` receives ``registry.json``, ``authority.pub``, ``keys/`` and
    ``landmarks/<id>.db``. ``probe_timeout_ms`` must exceed the longest
    modelled RTT (intercontinental paths with a 2.5 stretch reach ~400 ms).
    """

    def __init__(
        self,
        scenario: FleetScenario,
        directory: str | Path,
        *,
        probes_per_round: int = 10,
        probe_timeout_ms: int = 2000,
        hello_timeout_ms: int = 3000,
        max_concurrent_rounds: int = 64,
        mesh: bool = False,
        landmark_sites: Mapping[str, tuple[float, float]] | None = None,
        mesh_peers: Mapping[str, Collection[str]] | None = None,
        mesh_probes: int = 16,
    ) -> None:
        self.scenario = scenario
        self._mesh = mesh
        self._mesh_probes = mesh_probes
        ids = {lm.id for lm in scenario.landmarks}
        self._mesh_peers = {
            lm.id: frozenset(ids - {lm.id})
            if mesh_peers is None
            else frozenset(mesh_peers.get(lm.id, ()))
            for lm in scenario.landmarks
        }
        if any(not peers <= ids - {lid} for lid, peers in self._mesh_peers.items()):
            raise InputError("mesh_peers names unknown landmarks or a landmark itself")
        self._landmark_sites = dict(landmark_sites or {})
        unknown = set(self._landmark_sites) - {lm.id for lm in scenario.landmarks}
        if unknown:
            raise InputError(f"landmark_sites names unknown landmarks {sorted(unknown)}")
        self.directory = Path(directory)
        self._probes_per_round = probes_per_round
        self._probe_timeout_ms = probe_timeout_ms
        self._hello_timeout_ms = hello_timeout_ms
        self._max_concurrent_rounds = max_concurrent_rounds
        self._host: EmulatorHost | None = None
        self._daemons: dict[str, LandmarkDaemon] = {}
        self._agents: dict[str, list[ChipAgent]] = {}
        self._emulators: dict[str, RemoteEmulator] = {}
        self._mesh_agents: dict[str, ChipAgent] = {}
        self._mesh_emulators: dict[str, RemoteEmulator] = {}
        self.registry_path = self.directory / "registry.json"
        self.authority_public_key_path = self.directory / "authority.pub"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> SimulatedWorld:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start(self) -> None:
        scenario = self.scenario
        keys_dir = self.directory / "keys"
        db_dir = self.directory / "landmarks"
        keys_dir.mkdir(parents=True, exist_ok=True)
        db_dir.mkdir(parents=True, exist_ok=True)
        self.registry_path.write_bytes(scenario.signed_registry())
        pub_path = keys_dir / f"{scenario.authority.id}.pub"
        if not pub_path.exists():
            _, pub_path = write_keypair(scenario.authority, keys_dir)
        self.authority_public_key_path.write_bytes(pub_path.read_bytes())

        host = EmulatorHost(seed=scenario.seed)
        self._host = host
        await asyncio.to_thread(host.start)

        if self._mesh:  # each landmark's agent side, behind an emulator of its own
            for lm in scenario.landmarks:
                agent = ChipAgent(lm.key, scenario.registry, host=_LOOPBACK, port=0)
                await agent.start()
                self._mesh_agents[lm.id] = agent
                self._mesh_emulators[lm.id] = await asyncio.to_thread(
                    host.emulator, f"mesh-{lm.id}", backends=[agent.address]
                )

        for lm in scenario.landmarks:
            key_path = keys_dir / f"{lm.id}.key"
            if not key_path.exists():
                write_keypair(lm.key, keys_dir)
            config = LandmarkConfig(
                id=lm.id,
                key_path=key_path,
                registry_path=self.registry_path,
                authority_key_path=self.authority_public_key_path,
                db_path=db_dir / f"{lm.id}.db",
                udp_host=_LOOPBACK,
                http_host=_LOOPBACK,
                probes_per_round=self._probes_per_round,
                probe_timeout_ms=self._probe_timeout_ms,
                hello_timeout_ms=self._hello_timeout_ms,
                max_concurrent_rounds=self._max_concurrent_rounds,
                mesh_peers={
                    peer: emulator.address
                    for peer, emulator in self._mesh_emulators.items()
                    if peer in self._mesh_peers[lm.id]
                },
                mesh_interval_s=0,  # passes on request: mesh_pass()
                mesh_probes=self._mesh_probes,
            )
            daemon = LandmarkDaemon(config, key=lm.key, registry=scenario.registry)
            await daemon.start()
            self._daemons[lm.id] = daemon

        for chip in scenario.chips:
            agents: list[ChipAgent] = []
            self._agents[chip.id] = agents
            for _ in chip.locations:
                agent = ChipAgent(chip.key, scenario.registry, host=_LOOPBACK, port=0)
                await agent.start()
                agents.append(agent)
            emulator = await asyncio.to_thread(
                host.emulator, chip.id, backends=[a.address for a in agents]
            )
            self._emulators[chip.id] = emulator
            for lm in scenario.landmarks:
                backend, route = scenario.route(lm.id, chip.id)
                delay = RouteDelay(route=route, model=scenario.model)
                source = self._daemons[lm.id].udp_address
                await asyncio.to_thread(emulator.set_path, source, delay=delay, backend=backend)

        for lm in scenario.landmarks if self._mesh else ():
            source = self._daemons[lm.id].udp_address
            for peer in scenario.landmarks:
                if peer.id in self._mesh_peers[lm.id]:
                    delay = RouteDelay(route=self.mesh_route(lm.id, peer.id), model=scenario.model)
                    emulator = self._mesh_emulators[peer.id]
                    await asyncio.to_thread(emulator.set_path, source, delay=delay)

    def site(self, landmark_id: str) -> tuple[float, float]:
        """Where the simulation puts a landmark: ``landmark_sites`` or its city."""
        if landmark_id in self._landmark_sites:
            return self._landmark_sites[landmark_id]
        lm = next((x for x in self.scenario.landmarks if x.id == landmark_id), None)
        if lm is None:
            raise InputError(f"no landmark {landmark_id!r} in this world")
        return (lm.city.lat, lm.city.lon)

    def mesh_route(self, landmark_id: str, peer_id: str) -> Route:
        """The modelled path between two landmarks' true sites (the same in both directions,
        drawn from a seed of the scenario and the pair)."""
        a, b = sorted((landmark_id, peer_id))
        rng = random.Random(f"{self.scenario.seed}/mesh/{a}/{b}")
        points = [Point(lat=lat, lon=lon, label=x) for x in (a, b) for lat, lon in [self.site(x)]]
        return draw_route(self.scenario.model, points, rng)

    async def mesh_pass(
        self, *, concurrency: int = 1
    ) -> dict[str, dict[str, MeasurementReport | ChiplocError]]:
        """Every landmark measures each of its peers once (``mesh=True`` only).

        At most ``concurrency`` rounds in flight over the whole world (default one at a
        time): in production each landmark is its own process, here they all share one
        event loop, and concurrent rounds time one another's queueing. More rounds at once
        finish sooner with RTTs inflated by the shared loop, which can hide a violation but
        never invent one (a delay only adds)."""
        if not self._mesh:
            raise InputError("this world runs no mesh (mesh=False)", reason="no_mesh")
        if concurrency < 1:
            raise InputError("concurrency must be >= 1", reason="bad_argument")
        gate = asyncio.Semaphore(concurrency)
        out: dict[str, dict[str, MeasurementReport | ChiplocError]] = {
            lid: {} for lid in self._daemons
        }

        async def one(landmark_id: str, peer: str, address: tuple[str, int]) -> None:
            async with gate:
                daemon = self._daemons[landmark_id]
                out[landmark_id].update(await daemon.measure_peers({peer: address}))

        await asyncio.gather(
            *(
                one(lid, peer, address)
                for lid, daemon in self._daemons.items()
                for peer, address in sorted(daemon.config.mesh_peers.items())
            )
        )
        return out

    async def stop(self) -> None:
        """Stop agents and landmarks (draining rounds), then the emulator process."""
        for agent in self._mesh_agents.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(agent.stop(), 5.0)
        self._mesh_agents.clear()
        self._mesh_emulators.clear()
        for agents in self._agents.values():
            for agent in agents:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(agent.stop(), 5.0)
        self._agents.clear()
        for daemon in self._daemons.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(daemon.stop(), 30.0)
        self._daemons.clear()
        self._emulators.clear()
        host, self._host = self._host, None
        if host is not None:
            await asyncio.to_thread(host.stop)

    # -- what the verifier and the demo need -------------------------------------------

    @property
    def landmark_urls(self) -> Mapping[str, str]:
        """Landmark id -> HTTP base URL of its control plane."""
        return MappingProxyType({i: d.http_url for i, d in self._daemons.items()})

    @property
    def landmarks(self) -> Mapping[str, LandmarkDaemon]:
        return MappingProxyType(self._daemons)

    @property
    def chip_addresses(self) -> Mapping[str, Address]:
        """Chip id -> the emulator address landmarks must probe."""
        return MappingProxyType({i: e.address for i, e in self._emulators.items()})

    @property
    def agents(self) -> Mapping[str, tuple[ChipAgent, ...]]:
        return MappingProxyType({i: tuple(a) for i, a in self._agents.items()})

    def delay_floor_ns(self, landmark_id: str, chip_id: str) -> int:
        """The modelled one-way delay floor between a landmark and a chip."""
        return self.scenario.route(landmark_id, chip_id)[1].floor_ns

    async def measure(
        self, landmark_id: str, chip_id: str, *, probes: int | None = None
    ) -> MeasurementReport:
        """Have one landmark measure one chip through its emulator (stored by the landmark)."""
        try:
            daemon = self._daemons[landmark_id]
            address = self._emulators[chip_id].address
        except KeyError as exc:
            raise InputError(f"no landmark or chip {exc.args[0]!r} in this world") from None
        return await daemon.measure(chip_id, address, probes=probes)

    async def lateness(self) -> LatenessStats:
        """The emulator's lateness over every datagram it has sent so far."""
        if self._host is None:
            raise InputError("world not started", reason="not_started")
        return await asyncio.to_thread(self._host.stats)

    async def emulator_counters(self) -> Mapping[str, int]:
        if self._host is None:
            raise InputError("world not started", reason="not_started")
        return await asyncio.to_thread(lambda: self._host.counters if self._host else {})
