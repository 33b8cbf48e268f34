"""The hostile UDP middlebox of the attacks: :class:`_Relay` sits between the
landmarks and a chip, forwards both ways by default (optionally holding answers),
and is subclassed by each attack that needs to record, inject or forge datagrams.

Invariants:

* It binds 127.0.0.1 port 0 and never sends anything early: a held answer is
  sent by ``call_later``, which only adds time; :meth:`_Relay.close` cancels what
  it still holds.
* It only uses what an attacker on the path has: the datagrams it sees and the
  public codec (:mod:`protocol`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from chiploc.protocol import MessageType

from ._delay import Address

__all__ = ["_Endpoint", "_Relay", "_sockname"]

_LOOPBACK: Final = "127.0.0.1"


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
