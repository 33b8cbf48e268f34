"""The faulty relay: :class:`FaultyRelay`, a seeded UDP relay between one landmark
and one chip agent that drops, duplicates and reorders datagrams as its
:class:`FaultPlan` says, and never delivers one early.

Invariants:

* The relay only ever adds delay: a datagram's deadline is its arrival stamp
  (``perf_counter_ns()`` read after the datagram was received) plus a
  non-negative delay, and the clock is read again before sending.
* The random draws per datagram do not depend on their outcomes: a seed gives
  the same faults for the same traffic.
* It binds 127.0.0.1 port 0; :meth:`FaultyRelay.close` drops what it still holds
  (counted as ``dropped_at_close``).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from chiploc.protocol import MessageType

from ._fault_lab import _LOOPBACK, _NS_PER_S

__all__ = ["FaultPlan", "FaultyRelay"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """What :class:`FaultyRelay` does to each datagram (probabilities in [0, 1]).

    ``delay_ns`` is a fixed one-way delay added in each direction (the true
    floor of every RTT through the relay is ``2 * delay_ns``); a reordered
    datagram is held a further U(0, ``reorder_extra_ns``) so later ones
    overtake it. With ``timed_only`` the faults hit PROBE and RESPONSE
    datagrams only (session set-up passes clean but still delayed)."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_ns: int = 1_000_000
    reorder_extra_ns: int = 3_000_000
    timed_only: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not isinstance(p, float | int) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if self.delay_ns < 0 or self.reorder_extra_ns < 0:
            raise ValueError("delays must be >= 0 (the relay never delivers early)")


_KINDS: Final = {
    MessageType.HELLO: "hello",
    MessageType.HELLO_ACK: "hello_ack",
    MessageType.PROBE: "probe",
    MessageType.RESPONSE: "response",
}


def _kind(data: bytes) -> str:
    return _KINDS.get(data[3], "other") if len(data) >= 4 else "other"


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address, int], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        stamp_ns = time.perf_counter_ns()  # after arrival: a deadline from it is never early
        self.on_datagram(data, (str(addr[0]), int(addr[1])), stamp_ns)


class FaultyRelay:
    """A seeded UDP relay between one landmark and one chip agent.

    The landmark sends to :attr:`address`; the relay forwards to ``upstream``
    from one socket of its own (so the agent sees one stable source) and
    back. Counters (``counters``) are ``<direction>_<kind>_<event>`` with
    direction ``to_chip`` / ``to_landmark``, kind ``hello``, ``hello_ack``,
    ``probe``, ``response`` or ``other`` and event ``received``,
    ``dropped``, ``duplicated``, ``reordered``, ``delivered`` or ``early``
    (always 0: checked at the moment of sending)."""

    def __init__(self, upstream: Address, plan: FaultPlan) -> None:
        self.upstream = upstream
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._down = _Endpoint(self._from_landmark)
        self._up = _Endpoint(self._from_chip)
        self._landmark: Address | None = None
        self._counters: dict[str, int] = {}
        self._pending: list[tuple[int, int, bytes, str, str]] = []  # deadline, n, data, dir, kind
        self._n = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._loop.create_datagram_endpoint(lambda: self._down, local_addr=(_LOOPBACK, 0))
        await self._loop.create_datagram_endpoint(lambda: self._up, local_addr=(_LOOPBACK, 0))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._counters["dropped_at_close"] = len(self._pending)
        self._pending.clear()
        for endpoint in (self._down, self._up):
            if endpoint.transport is not None:
                endpoint.transport.close()

    async def __aenter__(self) -> FaultyRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> Address:
        if self._down.transport is None:
            raise RuntimeError("relay not started")
        name = self._down.transport.get_extra_info("sockname")
        return (str(name[0]), int(name[1]))

    @property
    def counters(self) -> Mapping[str, int]:
        return dict(self._counters)

    def count(self, direction: str, kind: str, event: str) -> int:
        return self._counters.get(f"{direction}_{kind}_{event}", 0)

    def total(self, event: str) -> int:
        """Sum of ``event`` over directions and kinds."""
        return sum(v for k, v in self._counters.items() if k.endswith(f"_{event}"))

    @property
    def idle(self) -> bool:
        return not self._pending

    def _bump(self, direction: str, kind: str, event: str, n: int = 1) -> None:
        key = f"{direction}_{kind}_{event}"
        self._counters[key] = self._counters.get(key, 0) + n

    def _from_landmark(self, data: bytes, addr: Address, stamp_ns: int) -> None:
        self._landmark = addr
        self._inject(data, "to_chip", stamp_ns)

    def _from_chip(self, data: bytes, addr: Address, stamp_ns: int) -> None:
        if addr == self.upstream:
            self._inject(data, "to_landmark", stamp_ns)

    def _inject(self, data: bytes, direction: str, stamp_ns: int) -> None:
        plan, rng = self.plan, self._rng
        kind = _kind(data)
        self._bump(direction, kind, "received")
        faulty = not plan.timed_only or kind in ("probe", "response")
        # draw all three every time: the sequence of draws does not depend on the outcomes
        lose, dup, reorder = rng.random(), rng.random(), rng.random()
        extra = [rng.randrange(plan.reorder_extra_ns + 1) for _ in range(2)]
        if faulty and lose < plan.loss:
            self._bump(direction, kind, "dropped")
            return
        copies = 2 if faulty and dup < plan.duplicate else 1
        if copies == 2:
            self._bump(direction, kind, "duplicated")
        for i in range(copies):
            delay = plan.delay_ns
            if faulty and reorder < plan.reorder and i == 0:
                delay += extra[i]
                self._bump(direction, kind, "reordered")
            self._schedule(stamp_ns + delay, data, direction, kind)

    def _schedule(self, deadline_ns: int, data: bytes, direction: str, kind: str) -> None:
        self._n += 1
        heapq.heappush(self._pending, (deadline_ns, self._n, data, direction, kind))
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or not self._pending:
            return
        if self._timer is not None:
            self._timer.cancel()
        wait_s = max(0.0, (self._pending[0][0] - time.perf_counter_ns()) / _NS_PER_S)
        self._timer = loop.call_later(wait_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        while self._pending:
            now = time.perf_counter_ns()
            deadline, _, data, direction, kind = self._pending[0]
            if now < deadline:  # the loop woke early: wait again, never send early
                break
            heapq.heappop(self._pending)
            self._send(data, direction, kind, deadline)
        self._arm()

    def _send(self, data: bytes, direction: str, kind: str, deadline_ns: int) -> None:
        if time.perf_counter_ns() < deadline_ns:
            self._bump(direction, kind, "early")  # impossible by construction; asserted 0
        dest: Address | None
        if direction == "to_chip":
            transport, dest = self._up.transport, self.upstream
        else:
            transport, dest = self._down.transport, self._landmark
        if transport is None or dest is None:
            self._bump(direction, kind, "undeliverable")
            return
        transport.sendto(data, dest)
        self._bump(direction, kind, "delivered")

    async def settle(self, timeout_s: float = 2.0) -> None:
        """Wait until nothing is held any more (bounded), then one loop pass more."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.02)
