"""Attacks on chiploc, each run against real daemons on 127.0.0.1.

Every attack is an ``async def attack(directory) -> AttackOutcome``: it starts
real :class:`~landmarks.LandmarkDaemon` s and :class:`~chip_agent.ChipAgent` s
(plus, where geography matters, the never-early delay emulator in a child
process, and where the attack needs one, a hostile UDP middlebox in this
process), runs the attack, stops everything, and reports what the system did.

Invariants:

* ``AttackOutcome.detected`` is computed from what the system actually did — a
  drop counter that rose, a report :func:`protocol.verify_report` refused, a
  verdict of :func:`solver.solve` — never set by hand. An attack that works
  comes out ``detected=False``; that is a finding, not something to hide.
* Keys are deterministic (SHA-256 of labels); everything binds 127.0.0.1 port
  0; every wait is bounded; every daemon, agent, relay and child process is
  stopped on the way out, also on error or cancellation.
* Nothing here changes what it attacks: only public APIs are used, and forged
  messages are built with the same codec (:mod:`protocol`) an attacker could use.

``run_attacks(directory)`` runs all of :data:`ATTACKS` one after another, each
bounded by ``timeout_s``, and returns the outcomes in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import (
    BadSignature,
    ChiplocError,
    ProbeTimeout,
    RevokedIdentity,
    UnknownIdentity,
)
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import (
    ChipEntry,
    Hello,
    LandmarkEntry,
    MeasurementReport,
    MessageType,
    PrivateKey,
    Probe,
    ProbeRecord,
    Registry,
    Response,
    Role,
    generate_private_key,
    response_message,
    sign_report,
    verify_report,
)

from ._checks import Checks
from ._cities import city
from ._delay import Address, RouteDelay
from ._host import EmulatorHost
from ._loopback import started_agent, started_daemon, started_relay
from ._paths import PathModel, Point, Route, draw_hop, draw_route, fastest_route, geodesic_km

if TYPE_CHECKING:
    from chiploc.solver import SolveResult

__all__ = ["ATTACKS", "AttackOutcome", "run_attacks"]

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


# ------------------------------------------------------------------ hostile middlebox


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, (str(addr[0]), int(addr[1])))


class _Relay:
    """A hostile UDP middlebox: landmarks probe :attr:`address`; it reaches the chip at
    ``upstream`` from one socket of its own. Subclasses override :meth:`from_landmark` /
    :meth:`from_chip`; by default it forwards both ways (optionally holding answers)."""

    def __init__(self, upstream: Address) -> None:
        self.upstream = upstream
        self.hold_answers_s = 0.0
        self.sessions: dict[bytes, Address] = {}  # session id -> landmark-side address
        self._down = _Endpoint(self._on_down)
        self._up = _Endpoint(self._on_up)
        self._handles: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._down, local_addr=(_LOOPBACK, 0))
        await loop.create_datagram_endpoint(lambda: self._up, local_addr=(_LOOPBACK, 0))

    def close(self) -> None:
        for handle in self._handles:
            handle.cancel()
        for endpoint in (self._down, self._up):
            if endpoint.transport is not None:
                endpoint.transport.close()

    @property
    def address(self) -> Address:
        return _sockname(self._down)

    @property
    def upstream_source(self) -> Address:
        """The address the chip side sees this relay send from."""
        return _sockname(self._up)

    def _on_down(self, data: bytes, addr: Address) -> None:
        if len(data) >= 20:
            self.sessions.setdefault(bytes(data[4:20]), addr)
        self.from_landmark(data, addr)

    def _on_up(self, data: bytes, addr: Address) -> None:
        if addr == self.upstream:
            self.from_chip(data)

    def from_landmark(self, data: bytes, addr: Address) -> None:
        self.to_chip(data)

    def from_chip(self, data: bytes) -> None:
        is_answer = len(data) >= 4 and data[3] == MessageType.RESPONSE
        self.to_landmark(data, delay_s=self.hold_answers_s if is_answer else 0.0)

    def to_chip(self, data: bytes) -> None:
        if self._up.transport is not None:
            self._up.transport.sendto(data, self.upstream)

    def to_landmark(self, data: bytes, addr: Address | None = None, *, delay_s: float = 0) -> None:
        dest = addr if addr is not None else self.sessions.get(bytes(data[4:20]))
        transport = self._down.transport
        if dest is None or transport is None:
            return
        if delay_s > 0:  # call_later never fires before its delay: only adds time
            handle = asyncio.get_running_loop().call_later(delay_s, transport.sendto, data, dest)
            self._handles.append(handle)
        else:
            transport.sendto(data, dest)


def _sockname(endpoint: _Endpoint) -> Address:
    if endpoint.transport is None:
        raise RuntimeError("relay not started")
    name = endpoint.transport.get_extra_info("sockname")
    return (str(name[0]), int(name[1]))


# ------------------------------------------------------------------ measuring and solving


async def _measure_all(
    daemons: Iterable[LandmarkDaemon],
    chip_id: str,
    addresses: Address | Mapping[str, Address],
    *,
    probes: int = _PROBES,
) -> dict[str, MeasurementReport | ChiplocError]:
    """Every landmark measures ``chip_id`` concurrently; an error is a value here."""

    async def one(d: LandmarkDaemon) -> MeasurementReport | ChiplocError:
        address = addresses[d.id] if isinstance(addresses, Mapping) else addresses
        try:
            return await d.measure(chip_id, address, probes=probes)
        except ChiplocError as e:
            return e

    ds = list(daemons)
    results = await asyncio.gather(*(one(d) for d in ds))
    return {d.id: r for d, r in zip(ds, results, strict=True)}


def _reports(results: Mapping[str, MeasurementReport | ChiplocError]) -> list[MeasurementReport]:
    return [r for r in results.values() if isinstance(r, MeasurementReport)]


def _solve(
    chip_id: str,
    raws: Iterable[bytes],
    registry: Registry,
    region_spec: str,
    *,
    tolerate: int = 0,
) -> SolveResult:
    """Verify every report (raises on a bad one), then solve under the vacuum model."""
    from chiploc.solver import Measurement, load_region, solve  # lazy: keeps `import sim` light

    measurements = []
    for raw in raws:
        report = verify_report(raw, registry)
        if report.min_rtt_ns is None:
            continue
        entry = registry.landmark(report.landmark_id)
        measurements.append(
            Measurement(
                landmark=report.landmark_id,
                lat=entry.lat,
                lon=entry.lon,
                rtt_ms=report.min_rtt_ns / 1e6,
                overhead_ms=report.overhead_lower_bound_ns / 1e6,
            )
        )
    return solve(chip_id, measurements, load_region(region_spec), tolerate=tolerate)


def _rtts(reports: Iterable[MeasurementReport]) -> str:
    parts = [
        f"{r.landmark_id}={'lost' if r.min_rtt_ns is None else f'{r.min_rtt_ns / 1e6:.2f}ms'}"
        for r in sorted(reports, key=lambda r: r.landmark_id)
    ]
    return ", ".join(parts)


def _true_position_kept(result: SolveResult, where: Point) -> tuple[str, bool, str]:
    """Is the chip's true position inside every landmark's vacuum disk? (soundness)"""
    worst = math.inf
    for bound in result.landmarks:
        m = bound.measurement
        slack = bound.radius_km - geodesic_km(m.lat, m.lon, where.lat, where.lon)
        worst = min(worst, slack)
    return (
        "sound: the true position is inside every vacuum disk",
        worst >= 0,
        f"least slack {worst:.0f} km",
    )


def _verdict(result: SolveResult) -> str:
    return str(result.verdict.value)


def _resign(
    key: PrivateKey, report: MeasurementReport, probes: Sequence[ProbeRecord]
) -> MeasurementReport:
    """``report``'s round with ``probes`` in place of its own, signed by ``key``: what a
    dishonest landmark (or one holding another's id) can produce."""
    return sign_report(
        key,
        chip_id=report.chip_id,
        session_id=report.session_id,
        chip_address=report.chip_address,
        started_at_unix_ns=report.started_at_unix_ns,
        finished_at_unix_ns=report.finished_at_unix_ns,
        probes=probes,
    )


def _report_refusal(raw: bytes, registry: Registry, error: type[ChiplocError]) -> str:
    """The reason code of the ``error`` :func:`protocol.verify_report` refuses ``raw``
    with, or ``"ACCEPTED"``."""
    try:
        verify_report(raw, registry)
    except error as e:
        return e.reason
    return "ACCEPTED"


async def _measure_refusal(
    daemon: LandmarkDaemon, chip_id: str, address: Address, error: type[ChiplocError]
) -> str:
    """The reason code of the ``error`` the round ``daemon`` runs on ``chip_id`` ends
    with, or ``"measured"``."""
    try:
        await daemon.measure(chip_id, address)
    except error as e:
        return e.reason
    return "measured"


# ------------------------------------------------------------------ the attacks


async def relay_attack(directory: Path) -> AttackOutcome:
    """A chip in Moscow answers through a relay in Frankfurt; the zone is Germany."""
    name = "relay"
    checks = _Checks()
    codes = ("fra", "ber", "par", "ams")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-relayed")
    chip_at, proxy_at = _point("mow"), _point("fra")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        # chip side: proxy -> Moscow; the relay is a real forwarder in Frankfurt
        relay = _Relay((_LOOPBACK, 0))  # upstream set below, once the emulator exists
        await lab.relay(relay)
        hop_out = draw_hop(_MODEL, proxy_at, chip_at, random.Random(f"{name}/proxy"))
        chip_side = await lab.emulate(
            "relay-chip", [agent.address], [(relay.upstream_source, Route(hops=(hop_out,)), 0)]
        )
        relay.upstream = chip_side
        # landmark side: each landmark -> the proxy in Frankfurt
        paths = []
        for d, code in zip(daemons, codes, strict=True):
            hop_in = draw_hop(_MODEL, _point(code), proxy_at, random.Random(f"{name}/{code}"))
            paths.append((d.udp_address, Route(hops=(hop_in,)), 0))
        proxy_public = await lab.emulate("relay-proxy", [relay.address], paths)
        results = await _measure_all(daemons, chip_key.id, proxy_public)
    reports = _reports(results)
    checks.check("rounds measured through the relay", len(reports) == len(codes), _rtts(reports))
    result = _solve(chip_key.id, (r.raw for r in reports), registry, "country:DEU")
    checks.check(
        "verdict is never COMPLIANT",
        result.verdict.value in ("VIOLATION", "INCONCLUSIVE"),
        f"{_verdict(result)} ({result.message})",
    )
    checks.check(*_true_position_kept(result, chip_at))
    return checks.outcome(
        name,
        "physics: a relayed answer travels landmark->proxy->chip, at least the direct "
        "distance at c, so every vacuum disk still contains the chip (solver verdict)",
    )


class _Recorder(_Relay):
    """Forwards everything; keeps the HELLOs it saw and the RESPONSEs the chip sent."""

    def __init__(self, upstream: Address) -> None:
        super().__init__(upstream)
        self.hellos: list[bytes] = []
        self.responses: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) >= 4 and data[3] == MessageType.HELLO:
            self.hellos.append(bytes(data))
        self.to_chip(data)

    def from_chip(self, data: bytes) -> None:
        if len(data) >= 4 and data[3] == MessageType.RESPONSE:
            self.responses.append(bytes(data))
        self.to_landmark(data)


class _Replayer(_Recorder):
    """Round 2: before forwarding each probe, answers it with old responses:
    the previous answer of this session verbatim, an answer captured in an earlier
    session verbatim, and that old answer re-labelled with this session and seq."""

    def __init__(self, upstream: Address, captured: Sequence[bytes]) -> None:
        super().__init__(upstream)
        self.captured = list(captured)
        self.injected: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            old = Response.from_bytes(self.captured[probe.seq % len(self.captured)])
            forged = [
                old.to_bytes(),  # another session: unknown to the landmark
                Response(
                    session_id=probe.session_id, seq=probe.seq, signature=old.signature
                ).to_bytes(),  # re-labelled: the signature covers the old nonce
            ]
            mine = [r for r in self.responses if r[4:20] == probe.session_id]
            if mine:
                forged.append(mine[-1])  # this session's previous answer (a lower seq)
            for datagram in forged:
                self.injected.append(datagram)
                self.to_landmark(datagram, addr)
        super().from_landmark(data, addr)


async def replay_attack(directory: Path) -> AttackOutcome:
    """Old answers (from an earlier session and from earlier probes) are replayed."""
    name = "replay"
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name)
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        recorder = await lab.relay(_Recorder(agent.address))
        first = await daemon.measure(chip_key.id, recorder.address, probes=_PROBES)
        replayer = await lab.relay(_Replayer(agent.address, recorder.responses))
        before = dict(daemon.counters)
        second = await daemon.measure(chip_key.id, replayer.address, probes=_PROBES)
        after = dict(daemon.counters)
        # the captured HELLO, sent again to the agent from the recorder's own socket
        agent_before = dict(agent.counters)
        recorder.to_chip(recorder.hellos[0])
        await _settle(lambda: agent.counters.get("replayed", 0) > agent_before.get("replayed", 0))
        agent_after = dict(agent.counters)

    def rose(reason: str, counters: Mapping[str, int], base: Mapping[str, int]) -> int:
        return counters.get(reason, 0) - base.get(reason, 0)

    n = _PROBES
    checks.check("first round captured", len(recorder.responses) == n, f"{n} answers")
    checks.check(
        "old session's answers dropped",
        rose("unknown_session", after, before) >= n,
        f"landmark unknown_session +{rose('unknown_session', after, before)}",
    )
    checks.check(
        "re-labelled answers rejected",
        rose("bad_signature", after, before) >= n,
        f"landmark bad_signature +{rose('bad_signature', after, before)}",
    )
    checks.check(
        "earlier probes' answers rejected",
        rose("replayed", after, before) >= n - 1,
        f"landmark replayed +{rose('replayed', after, before)}",
    )
    old_sigs = {p.chip_signature for p in first.probes if p.rtt_ns is not None}
    accepted = [p.seq for p in second.probes if p.chip_signature in old_sigs]
    verified = verify_report(second.raw, registry)  # each signature over its own nonce
    checks.check(
        "no replayed answer in the report",
        not accepted and verified.answered == n,
        f"{verified.answered}/{n} answered, all fresh; first/second report "
        f"{first.digest_hex[:12]}/{second.digest_hex[:12]}",
    )
    checks.check(
        "replayed HELLO refused by the agent",
        rose("replayed", agent_after, agent_before) == 1,
        f"agent replayed +{rose('replayed', agent_after, agent_before)}",
    )
    return checks.outcome(
        name,
        "landmark: answers demultiplexed by session id (unknown_session), only the "
        "outstanding seq accepted (replayed), chip signature over the fresh nonce "
        "(bad_signature); agent: HELLO session-id replay cache (replayed)",
    )


async def _settle(condition: Callable[[], bool], *, timeout_s: float = 2.0) -> bool:
    """Wait (bounded) until ``condition()`` holds; datagrams on loopback need a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class _Forger(_Relay):
    """Answers every probe first with ``signer(probe)`` signatures, then forwards it."""

    def __init__(self, upstream: Address, signer: Callable[[Probe], bytes]) -> None:
        super().__init__(upstream)
        self.signer = signer
        self.forged: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            signature = self.signer(probe)
            self.forged.append(signature)
            answer = Response(session_id=probe.session_id, seq=probe.seq, signature=signature)
            self.to_landmark(answer.to_bytes(), addr)
        self.to_chip(data)


async def _signature_attack(
    directory: Path, name: str, make_signer: Callable[[str, str], Callable[[Probe], bytes]]
) -> AttackOutcome:
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name, also=["chip-2"])
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        forger = await lab.relay(_Forger(agent.address, make_signer(chip_key.id, lm_key.id)))
        before = daemon.counters.get("bad_signature", 0)
        report = await daemon.measure(chip_key.id, forger.address, probes=_PROBES)
        rose = daemon.counters.get("bad_signature", 0) - before
    checks.check(
        "forged answers rejected at the landmark",
        rose >= _PROBES,
        f"landmark bad_signature +{rose} for {_PROBES} forged answers",
    )
    verified = verify_report(report.raw, registry)
    forged = set(forger.forged)
    checks.check(
        "the real answers were kept",
        verified.answered == _PROBES and not any(p.chip_signature in forged for p in report.probes),
        f"{verified.answered}/{_PROBES} answered with the chip's own signatures",
    )
    # a landmark that signs the forged answers into its report: verify_report refuses it
    tampered = _resign(
        lm_key,
        report,
        [
            ProbeRecord(
                seq=p.seq,
                nonce=p.nonce,
                rtt_ns=p.rtt_ns,
                chip_signature=sig,
                timestamp_source=p.timestamp_source,
            )
            for p, sig in zip(report.probes, forger.forged, strict=True)
            if p.rtt_ns is not None
        ],
    )
    refused = _report_refusal(tampered.raw, registry, BadSignature)
    checks.check(
        "no report accepts them (even one the landmark signs)",
        refused == "bad_chip_signature",
        f"verify_report: {refused}",
    )
    return checks.outcome(
        name,
        "landmark RoundCore verifies the chip's Ed25519 signature against the registry key "
        "(bad_signature, the probe stays outstanding); verify_report re-checks every chip "
        "signature (bad_chip_signature)",
    )


async def forged_signature_attack(directory: Path) -> AttackOutcome:
    """Answers with random bytes in place of the chip's signature."""

    def make(chip_id: str, landmark_id: str) -> Callable[[Probe], bytes]:
        return lambda probe: os.urandom(64)

    return await _signature_attack(directory, "forged_signature", make)


async def wrong_key_signature_attack(directory: Path) -> AttackOutcome:
    """Answers signed over the right message by another (enrolled) chip's key."""
    other = _key(Role.CHIP, "chip-2", "wrong_key_signature")

    def make(chip_id: str, landmark_id: str) -> Callable[[Probe], bytes]:
        def sign(probe: Probe) -> bytes:
            message = response_message(
                session_id=probe.session_id,
                chip_id=chip_id,
                landmark_id=landmark_id,
                seq=probe.seq,
                nonce=probe.nonce,
            )
            return other.sign(message)

        return sign

    return await _signature_attack(directory, "wrong_key_signature", make)


class _EarlyResponder(_Relay):
    """The chip's operator holds the chip key and answers before probes arrive.

    Right after the HELLO_ACK it sends, for every upcoming seq, a response signed by the
    real chip key over a guessed nonce; on each probe it pre-sends guesses for the next
    seq, then forwards the probe to the (distant) chip."""

    def __init__(self, upstream: Address, key: PrivateKey, landmark_id: str) -> None:
        super().__init__(upstream)
        self.key = key
        self.landmark_id = landmark_id
        self.guesses: list[bytes] = []

    def _guess(self, session_id: bytes, seq: int, addr: Address) -> None:
        message = response_message(
            session_id=session_id,
            chip_id=self.key.id,
            landmark_id=self.landmark_id,
            seq=seq,
            nonce=os.urandom(16),  # the probe's nonce is not known yet
        )
        signature = self.key.sign(message)
        self.guesses.append(signature)
        self.to_landmark(
            Response(session_id=session_id, seq=seq, signature=signature).to_bytes(), addr
        )

    def from_chip(self, data: bytes) -> None:
        super().from_chip(data)
        if len(data) >= 20 and data[3] == MessageType.HELLO_ACK:
            sid = bytes(data[4:20])
            addr = self.sessions.get(sid)
            if addr is not None:
                for seq in range(_PROBES):
                    self._guess(sid, seq, addr)

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            self._guess(probe.session_id, probe.seq, addr)  # the outstanding seq
            self._guess(probe.session_id, probe.seq + 1, addr)  # the next one
        self.to_chip(data)


async def early_answer_attack(directory: Path) -> AttackOutcome:
    """Answers sent before the probe arrives, to cut the round trip short."""
    name = "early_answer"
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name)
    far_ms = 20.0
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        # the real chip sits 20 ms (round trip) behind the early responder
        far = await lab.relay(_Relay(agent.address))
        far.hold_answers_s = far_ms / 1000
        early = await lab.relay(_EarlyResponder(far.address, chip_key, lm_key.id))
        before = dict(daemon.counters)
        report = await daemon.measure(chip_key.id, early.address, probes=_PROBES)
        after = dict(daemon.counters)
    reasons = ("wrong_seq", "bad_signature", "unsolicited")
    rose = {k: after.get(k, 0) - before.get(k, 0) for k in reasons}
    checks.check(
        "guesses for the outstanding seq rejected (nonce unknown)",
        rose["bad_signature"] >= _PROBES,
        f"landmark bad_signature +{rose['bad_signature']}",
    )
    checks.check(
        "answers for a seq not yet probed rejected",
        rose["wrong_seq"] >= _PROBES - 1,
        f"landmark wrong_seq +{rose['wrong_seq']}",
    )
    checks.check(
        "every early answer counted",
        sum(rose.values()) == len(early.guesses),
        f"{len(early.guesses)} sent, {rose}",
    )
    verified = verify_report(report.raw, registry)
    guessed = set(early.guesses)
    min_ms = (verified.min_rtt_ns or 0) / 1e6
    checks.check(
        "no early answer accepted: every RTT includes the real path",
        verified.answered == _PROBES
        and min_ms >= far_ms
        and not any(p.chip_signature in guessed for p in verified.probes),
        f"{verified.answered}/{_PROBES} answered, min RTT {min_ms:.2f} ms >= {far_ms} ms held",
    )
    return checks.outcome(
        name,
        "the chip signs the landmark's fresh 16-byte nonce, unknown before the probe "
        "(bad_signature); only the outstanding seq is accepted (wrong_seq); the RTT is "
        "timed on the landmark's clock from its own send",
    )


async def added_delay_attack(directory: Path) -> AttackOutcome:
    """A chip in Warsaw (zone: Germany) holds every answer 20 ms to blur its position."""
    name = "added_delay"
    checks = _Checks()
    codes = ("fra", "ber", "waw", "par")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-waw")
    chip_at = _point("waw")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        operator = await lab.relay(_Relay(agent.address))  # the operator's delaying box
        paths = [
            (d.udp_address, _route(name, [_point(c), chip_at]), 0)
            for d, c in zip(daemons, codes, strict=True)
        ]
        address = await lab.emulate("delay-chip", [operator.address], paths)
        honest = await _measure_all(daemons, chip_key.id, address)
        operator.hold_answers_s = 0.020
        delayed = await _measure_all(daemons, chip_key.id, address)
    honest_reports, delayed_reports = _reports(honest), _reports(delayed)
    checks.check(
        "all rounds measured",
        len(honest_reports) == len(delayed_reports) == len(codes),
        f"honest {_rtts(honest_reports)}; delayed {_rtts(delayed_reports)}",
    )
    base = _solve(chip_key.id, (r.raw for r in honest_reports), registry, "country:DEU")
    result = _solve(chip_key.id, (r.raw for r in delayed_reports), registry, "country:DEU")
    checks.check(
        "delayed: INCONCLUSIVE or VIOLATION, never COMPLIANT",
        result.verdict.value in ("INCONCLUSIVE", "VIOLATION"),
        f"without delay {_verdict(base)}, with 20 ms {_verdict(result)} "
        f"(area {base.area_km2 or 0:.0f} -> {result.area_km2 or 0:.0f} km2)",
    )
    checks.check(*_true_position_kept(result, chip_at))
    return checks.outcome(
        name,
        "delay only lengthens RTTs, so every disk grows and still contains the chip: "
        "the region can only blur (INCONCLUSIVE), never move into the zone",
    )


async def lying_landmark_attack(directory: Path) -> AttackOutcome:
    """One dishonest landmark (Frankfurt) signs a report with its RTTs cut to 0.3 ms."""
    name = "lying_landmark"
    checks = _Checks()
    codes = ("fra", "par", "lon", "mad")  # no honest landmark near the chip (Warsaw)
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-waw")
    chip_at = _point("waw")
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        paths = [
            (d.udp_address, _route(name, [_point(c), chip_at]), 0)
            for d, c in zip(daemons, codes, strict=True)
        ]
        address = await lab.emulate("liar-chip", [agent.address], paths)
        results = await _measure_all(daemons, chip_key.id, address)
    reports = {r.landmark_id: r for r in _reports(results)}
    checks.check("all rounds measured", len(reports) == len(codes), _rtts(reports.values()))
    real = reports["lm-fra"]
    # the liar re-signs its real transcript (real chip signatures) with shortened RTTs
    lie = _resign(
        lm_keys[0],
        real,
        [
            ProbeRecord(
                seq=p.seq,
                nonce=p.nonce,
                rtt_ns=None if p.rtt_ns is None else 300_000,
                chip_signature=p.chip_signature,
                timestamp_source=p.timestamp_source,
            )
            for p in real.probes
        ],
    )
    verify_report(lie.raw, registry)  # it verifies: RTTs are the landmark's word
    raws = [lie.raw, *(r.raw for lid, r in reports.items() if lid != "lm-fra")]
    strict = _solve(chip_key.id, raws, registry, "country:DEU", tolerate=0)
    tolerant = _solve(chip_key.id, raws, registry, "country:DEU", tolerate=1)
    honest_raws = [r.raw for r in reports.values()]
    honest0 = _solve(chip_key.id, honest_raws, registry, "country:DEU", tolerate=0)
    honest1 = _solve(chip_key.id, honest_raws, registry, "country:DEU", tolerate=1)
    checks.check(
        "caught with tolerate=1 (or flagged INCONSISTENT)",
        tolerant.verdict.value != "COMPLIANT" or strict.verdict.value == "INCONSISTENT",
        f"lie verifies; tolerate=0 {_verdict(strict)}, tolerate=1 {_verdict(tolerant)} "
        f"({tolerant.message})",
    )
    checks.check(
        "cost of tolerate on the honest reports",
        True,
        f"honest area {honest0.area_km2 or 0:.0f} km2 ({_verdict(honest0)}) -> "
        f"{honest1.area_km2 or 0:.0f} km2 ({_verdict(honest1)}) with tolerate=1",
    )
    return checks.outcome(
        name,
        "a report's RTT is only its landmark's word (verify_report accepts the lie); "
        "solver tolerate=1 requires the verdict to hold with any one landmark left out",
    )


async def cloned_key_attack(directory: Path) -> AttackOutcome:
    """One chip key answers from Frankfurt and from Tokyo (emulator clone routing)."""
    name = "cloned_key"
    checks = _Checks()
    codes = ("fra", "par", "tyo", "sin")
    chip_key, lm_keys, registry = _cast(name, codes, chip="chip-clone")
    places = (_point("fra"), _point("tyo"))
    async with _world(directory, registry, lm_keys, chip_key) as (lab, daemons, agent):
        agents = [agent, *[await lab.agent(chip_key, registry) for _ in places[1:]]]
        paths = []
        for d, code in zip(daemons, codes, strict=True):
            options = [_route(name, [_point(code), p]) for p in places]
            best = fastest_route(options)
            paths.append((d.udp_address, best, options.index(best)))
        address = await lab.emulate("clone", [a.address for a in agents], paths)
        results = await _measure_all(daemons, chip_key.id, address)
        answered_by = [a.counters.get("answered", 0) for a in agents]
    reports = _reports(results)
    checks.check(
        "both copies answered",
        len(reports) == len(codes) and all(n > 0 for n in answered_by),
        f"{_rtts(reports)}; answers per place {answered_by}",
    )
    result = _solve(chip_key.id, (r.raw for r in reports), registry, "country:DEU")
    checks.check(
        "INCONSISTENT",
        result.verdict.value == "INCONSISTENT",
        f"{_verdict(result)}: {result.message}",
    )
    return checks.outcome(
        name,
        "two places 9 000 km apart each answer some landmarks fast: their disks cannot "
        "intersect (solver INCONSISTENT names the conflicting landmarks)",
    )


async def revoked_landmark_attack(directory: Path) -> AttackOutcome:
    """A landmark keeps measuring after its revocation."""
    name = "revoked_landmark"
    checks = _Checks()
    chip_key, (lm_key,), before = _cast(name)
    after = before.with_revoked(lm_key.id)
    # the revoked landmark still runs with the registry it had
    async with _world(directory, before, [lm_key], chip_key, hello_timeout_ms=300) as world:
        _, (daemon,), agent = world
        old_report = await daemon.measure(chip_key.id, agent.address)
        agent.update_registry(after)
        refused = await _measure_refusal(daemon, chip_key.id, agent.address, ProbeTimeout)
        agent_counters = dict(agent.counters)
    checks.check(
        "agent refuses its hellos",
        agent_counters.get("revoked", 0) >= 1 and refused == "timeout",
        f"agent revoked={agent_counters.get('revoked', 0)}, round: {refused}",
    )
    verdict = _report_refusal(old_report.raw, after, RevokedIdentity)
    checks.check(
        "its reports are rejected",
        verdict == "revoked",
        f"verify_report (earlier report): {verdict}",
    )
    return checks.outcome(
        name,
        "registry revocation: the agent's verify_hello and verify_report look the landmark "
        "up in the signed registry and refuse revoked entries",
    )


async def revoked_chip_attack(directory: Path) -> AttackOutcome:
    """A revoked chip still runs its agent and asks to be measured."""
    name = "revoked_chip"
    checks = _Checks()
    chip_key, (lm_key,), before = _cast(name)
    after = before.with_revoked(chip_key.id)
    async with _world(directory, before, [lm_key], chip_key) as (_, (honest,), agent):
        old_report = await honest.measure(chip_key.id, agent.address)
    async with _world(directory / "after", after, [lm_key], chip_key) as (_, (daemon,), agent):
        refused = await _measure_refusal(daemon, chip_key.id, agent.address, RevokedIdentity)
        counters = dict(daemon.counters)
        status, body = await _post_round(daemon, chip_key.id, agent.address)
        opened = agent.counters.get("sessions_opened", 0)
    checks.check(
        "landmark refuses to measure",
        refused == "revoked" and status == 404 and opened == 0,
        f"measure: {refused}; HTTP {status} {body.get('reason')}; agent sessions {opened}",
    )
    checks.check(
        "refusal counted",
        counters.get("revoked", 0) >= 1,
        f"landmark counters {sorted(counters.items())}",
    )
    verdict = _report_refusal(old_report.raw, after, RevokedIdentity)
    checks.check(
        "its reports are unusable", verdict == "revoked", f"verify_report (earlier): {verdict}"
    )
    return checks.outcome(
        name,
        "registry revocation: the landmark looks the chip up before any hello; "
        "verify_report refuses reports naming a revoked chip",
    )


async def _post_round(
    daemon: LandmarkDaemon, chip_id: str, address: Address
) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=5.0)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{daemon.http_url}/v1/rounds",
            json={"chip_id": chip_id, "address": f"{address[0]}:{address[1]}", "probes": 2},
        ) as response,
    ):
        body = await response.json()
        return response.status, body if isinstance(body, dict) else {}


async def unenrolled_chip_attack(directory: Path) -> AttackOutcome:
    """A chip whose key is not in the registry asks to be measured."""
    name = "unenrolled_chip"
    checks = _Checks()
    _, lm_keys, registry = _cast(name)  # enrols chip-1
    stranger = _key(Role.CHIP, "chip-x", name)
    async with _world(directory, registry, lm_keys, stranger) as (_, (daemon,), agent):
        refused = await _measure_refusal(daemon, stranger.id, agent.address, UnknownIdentity)
        status, body = await _post_round(daemon, stranger.id, agent.address)
        counters = dict(daemon.counters)
        opened = agent.counters.get("sessions_opened", 0)
    checks.check(
        "landmark refuses to measure",
        refused == "unknown_identity" and status == 404 and opened == 0,
        f"measure: {refused}; HTTP {status} {body.get('reason')}; agent sessions {opened}",
    )
    checks.check(
        "refusal counted",
        counters.get("unknown_identity", 0) >= 2,
        f"landmark counters {sorted(counters.items())}",
    )
    from chiploc.solver import load_region, solve

    result = solve(stranger.id, [], load_region("country:DEU"))
    checks.check("verdict UNREACHABLE", result.verdict.value == "UNREACHABLE", result.message)
    return checks.outcome(
        name,
        "enrolment: the landmark looks the chip up in the signed registry before any hello; "
        "no report, so the solver says UNREACHABLE",
    )


class _Sniffer(_Recorder):
    """On-path observer for the impersonation attack: notes live sessions."""

    def __init__(self, upstream: Address) -> None:
        super().__init__(upstream)
        self.acked: asyncio.Event = asyncio.Event()

    def from_chip(self, data: bytes) -> None:
        super().from_chip(data)
        if len(data) >= 4 and data[3] == MessageType.HELLO_ACK:
            self.acked.set()


async def impersonated_landmark_attack(directory: Path) -> AttackOutcome:
    """Landmark lm-evil (enrolled) poses as lm-fra: its own key under lm-fra's id, and
    lm-fra's genuine HELLO / live session replayed from its own address."""
    name = "impersonated_landmark"
    checks = _Checks()
    chip_key, (fra, evil), registry = _cast(name, ("fra", "ams"))
    # lm-evil's own secret, under lm-fra's id
    posing = generate_private_key(Role.LANDMARK, fra.id, seed=_seed(name, Role.LANDMARK, evil.id))
    async with _world(directory, registry, [fra], chip_key, probe_timeout_ms=500) as world:
        lab, (honest,), agent = world
        sniffer = await lab.relay(_Sniffer(agent.address))
        evil_socket = await lab.relay(_Relay(agent.address))
        loop = asyncio.get_running_loop()
        base = dict(agent.counters)
        # 1. a HELLO under lm-fra's id, signed with lm-evil's key
        fake = Hello.create(
            posing, session_id=os.urandom(16), chip_id=chip_key.id, issued_at_unix_ns=time.time_ns()
        )
        evil_socket.to_chip(fake.to_bytes())
        await _settle(lambda: agent.counters.get("bad_signature", 0) > base.get("bad_signature", 0))
        # 2. lm-fra measures through the on-path sniffer; lm-evil probes lm-fra's live
        #    session from its own address while the round runs
        round_task = loop.create_task(honest.measure(chip_key.id, sniffer.address))
        await asyncio.wait_for(sniffer.acked.wait(), 5.0)
        sid = next(iter(sniffer.sessions))
        stolen = Probe(session_id=sid, seq=1_000_000, nonce=os.urandom(16))
        evil_socket.to_chip(stolen.to_bytes())
        report = await asyncio.wait_for(round_task, 10.0)
        # 3. lm-fra's genuine HELLO, replayed from lm-evil's address
        evil_socket.to_chip(sniffer.hellos[0])
        await _settle(lambda: agent.counters.get("replayed", 0) > base.get("replayed", 0))
        await _settle(lambda: agent.counters.get("wrong_source", 0) > base.get("wrong_source", 0))
        counters = dict(agent.counters)

    def rose(reason: str) -> int:
        return counters.get(reason, 0) - base.get(reason, 0)

    checks.check(
        "HELLO signed with another landmark's key refused",
        rose("bad_signature") == 1,
        f"agent bad_signature +{rose('bad_signature')}",
    )
    checks.check(
        "probe into another landmark's session refused",
        rose("wrong_source") == 1,
        f"agent wrong_source +{rose('wrong_source')} (session bound to the HELLO's source)",
    )
    checks.check(
        "replayed HELLO refused", rose("replayed") == 1, f"agent replayed +{rose('replayed')}"
    )
    checks.check(
        "the honest round was unaffected",
        verify_report(report.raw, registry).answered == report.answered == _PROBES,
        f"{report.answered}/{_PROBES} answered",
    )
    # 4. a report under lm-fra's id signed with lm-evil's key
    forged = _resign(posing, report, report.probes)
    verdict = _report_refusal(forged.raw, registry, BadSignature)
    checks.check(
        "report under another landmark's id rejected",
        verdict == "bad_signature",
        f"verify_report: {verdict}",
    )
    return checks.outcome(
        name,
        "landmark signatures are checked against the registry key of the claimed id "
        "(bad_signature); HELLO session ids are single-use (replayed); a session answers "
        "only its HELLO's source address (wrong_source)",
    )


#: Every attack, by name, in the order :func:`run_attacks` runs them.
ATTACKS: Final[Mapping[str, Callable[[Path], Awaitable[AttackOutcome]]]] = {
    "relay": relay_attack,
    "replay": replay_attack,
    "forged_signature": forged_signature_attack,
    "wrong_key_signature": wrong_key_signature_attack,
    "early_answer": early_answer_attack,
    "added_delay": added_delay_attack,
    "lying_landmark": lying_landmark_attack,
    "cloned_key": cloned_key_attack,
    "revoked_landmark": revoked_landmark_attack,
    "revoked_chip": revoked_chip_attack,
    "unenrolled_chip": unenrolled_chip_attack,
    "impersonated_landmark": impersonated_landmark_attack,
}


async def run_attacks(
    directory: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    timeout_s: float = 20.0,
    attacks: Mapping[str, Callable[[Path], Awaitable[AttackOutcome]]] = ATTACKS,
) -> list[AttackOutcome]:
    """Run ``attacks`` (all, or those in ``names``) one after another under ``directory``.

    An attack that fails to finish in ``timeout_s`` or raises is reported as not
    detected, with the error as its evidence (never silently dropped).
    """
    root = Path(directory)
    outcomes = []
    for name in names if names is not None else list(attacks):
        attack = attacks[name]
        try:
            outcome = await asyncio.wait_for(attack(root / name), timeout_s)
        except TimeoutError:
            outcome = AttackOutcome(
                name=name,
                detected=False,
                mechanism="(none)",
                evidence=f"timed out after {timeout_s} s",
            )
        except Exception as e:  # an attack that crashes is a result to report, not to hide
            outcome = AttackOutcome(
                name=name,
                detected=False,
                mechanism="(none)",
                evidence=f"attack raised {type(e).__name__}: {e}",
            )
        outcomes.append(outcome)
    return outcomes
