"""The attack lab's shared fixtures and builders: :class:`AttackOutcome` and the
checks that produce it, deterministic keys and registries (``_cast``), and
:class:`_Lab` / ``_world``, which start real :class:`~landmarks.LandmarkDaemon` s,
:class:`~chip_agent.ChipAgent` s, hostile relays and (where geography matters) the
never-early delay emulator in a child process.

Invariants:

* ``AttackOutcome.detected`` is computed from what the system actually did, never
  set by hand: it holds only if every check of the attack held.
* Keys are deterministic (SHA-256 of labels); everything binds 127.0.0.1 port
  0; every wait is bounded; everything a lab started is stopped on the way out,
  also on error or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from chiploc.chip_agent import ChipAgent
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    generate_private_key,
)

from ._attack_middlebox import _Relay
from ._checks import Checks
from ._cities import city
from ._delay import Address, RouteDelay
from ._host import EmulatorHost
from ._loopback import started_agent, started_daemon, started_relay
from ._paths import PathModel, Point, Route, draw_route

__all__ = [
    "_LOOPBACK",
    "_MODEL",
    "_PROBES",
    "AttackOutcome",
    "_Checks",
    "_Lab",
    "_cast",
    "_key",
    "_landmark_key",
    "_point",
    "_registry",
    "_route",
    "_seed",
    "_world",
]

_LOOPBACK: Final = "127.0.0.1"
_PROBES: Final = 5
_MODEL: Final = PathModel()
_R = TypeVar("_R", bound="_Relay")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttackOutcome:
    """What one attack did: was it detected, by which mechanism, with what evidence."""

    name: str
    detected: bool
    mechanism: str
    evidence: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("an attack outcome needs a name")
        if not isinstance(self.detected, bool):
            raise ValueError("detected must be a bool")
        if not isinstance(self.mechanism, str) or not isinstance(self.evidence, str):
            raise ValueError("mechanism and evidence must be strings")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "detected": self.detected,
            "mechanism": self.mechanism,
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class _Checks(Checks):
    """Observations of one attack; ``detected`` only if every one held."""

    def outcome(self, name: str, mechanism: str) -> AttackOutcome:
        return AttackOutcome(
            name=name, detected=self.ok, mechanism=mechanism, evidence=self.evidence()
        )


# ------------------------------------------------------------------ identities


def _seed(attack: str, role: Role, identity: str) -> bytes:
    return hashlib.sha256(
        "\x1f".join(("chiploc-attack", attack, role.value, identity)).encode()
    ).digest()


def _key(role: Role, identity: str, attack: str) -> PrivateKey:
    return generate_private_key(role, identity, seed=_seed(attack, role, identity))


def _landmark_key(attack: str, code: str) -> PrivateKey:
    return _key(Role.LANDMARK, f"lm-{code}", attack)


def _registry(
    attack: str,
    landmarks: Sequence[PrivateKey],
    chips: Mapping[str, tuple[PrivateKey, str]],
) -> Registry:
    """A registry of ``landmarks`` (``lm-<city code>`` at that city) and ``chips``."""
    authority = _key(Role.AUTHORITY, "authority", attack)
    return Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            k.id: LandmarkEntry(
                id=k.id,
                lat=city(k.id.removeprefix("lm-")).lat,
                lon=city(k.id.removeprefix("lm-")).lon,
                public_key=k.public_key.key_bytes,
                operator="attack lab",
            )
            for k in landmarks
        },
        chips={
            cid: ChipEntry(id=cid, public_key=key.public_key.key_bytes, region=region)
            for cid, (key, region) in chips.items()
        },
        serial=1,
    )


def _point(code: str) -> Point:
    c = city(code)
    return Point(lat=c.lat, lon=c.lon, label=code)


def _cast(
    attack: str, codes: Sequence[str] = ("fra",), *, chip: str = "chip-1", also: Sequence[str] = ()
) -> tuple[PrivateKey, list[PrivateKey], Registry]:
    """The chip ``chip``, a landmark ``lm-<code>`` per city code, and a registry enrolling
    them (plus the chips ``also``), every chip authorized in Germany."""
    chip_key = _key(Role.CHIP, chip, attack)
    lm_keys = [_landmark_key(attack, c) for c in codes]
    chips = [chip_key, *(_key(Role.CHIP, other, attack) for other in also)]
    registry = _registry(attack, lm_keys, {k.id: (k, "country:DEU") for k in chips})
    return chip_key, lm_keys, registry


# ------------------------------------------------------------------ real daemons


class _Lab:
    """Owns everything one attack starts; ``close()`` stops it all (bounded)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stack = contextlib.AsyncExitStack()
        self._host: EmulatorHost | None = None

    async def __aenter__(self) -> _Lab:
        self.directory.mkdir(parents=True, exist_ok=True)
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def landmark(
        self,
        key: PrivateKey,
        registry: Registry,
        *,
        probe_timeout_ms: int = 1000,
        hello_timeout_ms: int = 1000,
    ) -> LandmarkDaemon:
        config = LandmarkConfig(
            id=key.id,
            key_path=self.directory / f"{key.id}.key",  # not read: the key is passed
            registry_path=self.directory / "registry.json",  # not read either
            db_path=self.directory / f"{key.id}.db",
            udp_host=_LOOPBACK,
            http_host=_LOOPBACK,
            probes_per_round=_PROBES,
            probe_timeout_ms=probe_timeout_ms,
            hello_timeout_ms=hello_timeout_ms,
        )
        return await started_daemon(self._stack, LandmarkDaemon(config, key=key, registry=registry))

    async def agent(self, key: PrivateKey, registry: Registry) -> ChipAgent:
        return await started_agent(self._stack, ChipAgent(key, registry, host=_LOOPBACK, port=0))

    async def relay(self, relay: _R) -> _R:
        return await started_relay(self._stack, relay)

    async def emulator_host(self) -> EmulatorHost:
        if self._host is None:
            host = EmulatorHost(seed=0)
            await asyncio.to_thread(host.start)
            self._stack.push_async_callback(asyncio.to_thread, host.stop)
            self._host = host
        return self._host

    async def emulate(
        self,
        name: str,
        backends: Sequence[Address],
        paths: Iterable[tuple[Address, Route, int]],
    ) -> Address:
        """An emulator in front of ``backends``; ``paths``: (landmark source, route, backend)."""
        host = await self.emulator_host()
        emulator = await asyncio.to_thread(host.emulator, name, backends=backends)
        for source, route, backend in paths:
            delay = RouteDelay(route=route, model=_MODEL)
            await asyncio.to_thread(emulator.set_path, source, delay=delay, backend=backend)
        return emulator.address


@contextlib.asynccontextmanager
async def _world(
    directory: Path,
    registry: Registry,
    lm_keys: Sequence[PrivateKey],
    chip_key: PrivateKey,
    *,
    probe_timeout_ms: int = 1000,
    hello_timeout_ms: int = 1000,
) -> AsyncIterator[tuple[_Lab, list[LandmarkDaemon], ChipAgent]]:
    """A :class:`_Lab` running a daemon per key of ``lm_keys``, then an agent for
    ``chip_key``, all on ``registry``; everything is stopped on the way out."""
    async with _Lab(directory) as lab:
        daemons = [
            await lab.landmark(
                k, registry, probe_timeout_ms=probe_timeout_ms, hello_timeout_ms=hello_timeout_ms
            )
            for k in lm_keys
        ]
        agent = await lab.agent(chip_key, registry)
        yield lab, daemons, agent


def _route(attack: str, points: Sequence[Point]) -> Route:
    rng = random.Random("/".join(("chiploc-attack", attack, *(p.label for p in points))))
    return draw_route(_MODEL, points, rng)
