"""``SimulatedWorld``: a :class:`FleetScenario` brought to life on 127.0.0.1.

Starts, in this process, one :class:`~landmarks.LandmarkDaemon` per landmark
(UDP and HTTP on port 0, its own SQLite database under ``directory``) and one
:class:`~chip_agent.ChipAgent` per place a chip's key answers from (two for a
clone); in a child process (:class:`~sim._host.EmulatorHost`), one
:class:`~sim._delay.DelayEmulator` per chip, in front of its agent(s), with
each landmark's path configured from the scenario's route (relay and clone
included). Landmarks probe a chip at its emulator address.

Invariants: everything binds 127.0.0.1 only; the emulator never delivers
early, so every RTT a landmark measures is at least twice the modelled one-way
floor; ``__aexit__`` stops agents, drains landmarks and ends the child, each
bounded in time, even when start-up failed half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import InputError
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import MeasurementReport, write_keypair

from ._delay import Address, LatenessStats, RouteDelay
from ._host import EmulatorHost, RemoteEmulator
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
    ) -> None:
        self.scenario = scenario
        self.directory = Path(directory)
        self._probes_per_round = probes_per_round
        self._probe_timeout_ms = probe_timeout_ms
        self._hello_timeout_ms = hello_timeout_ms
        self._max_concurrent_rounds = max_concurrent_rounds
        self._host: EmulatorHost | None = None
        self._daemons: dict[str, LandmarkDaemon] = {}
        self._agents: dict[str, list[ChipAgent]] = {}
        self._emulators: dict[str, RemoteEmulator] = {}
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

    async def stop(self) -> None:
        """Stop agents and landmarks (draining rounds), then the emulator process."""
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
