"""The landmark's UDP edge: one non-blocking socket, kernel receive timestamps, timed probes.

This is the only place the landmark reads clocks for a measurement. Order inside the window:
the probe is encoded and the realtime/monotonic offset is read *before* the send clock;
``perf_counter_ns()`` is read immediately before ``sendto``. On receive, ``recvmsg`` returns the
datagram with its ``SO_TIMESTAMPNS`` stamp, ``perf_counter_ns()`` is read immediately after,
then the offset. Signatures are verified afterwards, outside the window.

Clocks are injectable (``monotonic_ns``, default ``time.perf_counter_ns``; ``realtime_ns``,
default ``time.time_ns``) and bound to locals before each loop. The kernel stamp is always on
the system's CLOCK_REALTIME; when another realtime clock is injected (a test modelling a
wall-clock step at the landmark), the stamp is carried into that clock's frame by adding
``injected - system`` read in that order right after the receive (an over-estimate of the
difference, so the mapped stamp can only be later and the RTT only longer). A real step moves
the kernel's stamps too; without this a persistent injected offset smaller than the RTT would
shorten every kernel-derived RTT by that offset, a thing no real clock can do.

Session set-up is retransmitted (the same HELLO bytes, at :func:`hello_schedule_ns`), timed
probes never are.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable
from time import perf_counter_ns, time_ns
from typing import Any

from chiploc.common.errors import ChiplocError, TransportError
from chiploc.landmarks._core import RoundCore, hello_schedule_ns
from chiploc.landmarks._timing import rtt_from_stamps
from chiploc.protocol import (
    HEADER_BYTES,
    MAGIC,
    MAX_DATAGRAM_BYTES,
    SESSION_ID_BYTES,
    VERSION,
    MessageType,
)

__all__ = ["UdpProber"]

_SO_TIMESTAMPNS = getattr(
    socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None
)
_CMSG_SPACE = socket.CMSG_SPACE(16)
_TIMESPEC = struct.Struct("@qq")
_RECV_BYTES = MAX_DATAGRAM_BYTES + 1  # one more, so an oversized datagram is detectable


Clock = Callable[[], int]

_Item = tuple[bytes, int, int | None, int]  # data, received_ns, kernel_ns, offset_lo
_MAX_QUEUED = 64
_ACCEPTED_TYPES = frozenset(
    (MessageType.RESPONSE, MessageType.HELLO_ACK, MessageType.PEER_HELLO_ACK)
)
_SESSION_END = HEADER_BYTES + SESSION_ID_BYTES  # every reply starts header | session id


class _Slot:
    """A round's inbox: datagrams of its session from its chip's address, with their stamps.

    A queue, not a single future: a forged datagram arriving in the same batch as the real
    answer must not displace it."""

    __slots__ = ("address", "future", "queue")

    def __init__(self, address: Any) -> None:
        self.address = address
        self.future: asyncio.Future[None] | None = None
        self.queue: deque[_Item] = deque()


class UdpProber:
    """Shared socket for all rounds of one landmark; demultiplexes by session id."""

    def __init__(
        self,
        host: str,
        port: int,
        count: Callable[[str], None],
        *,
        monotonic_ns: Clock = perf_counter_ns,
        realtime_ns: Clock = time_ns,
    ) -> None:
        self._count = count
        self._monotonic_ns = monotonic_ns
        self._realtime_ns = realtime_ns
        # kernel stamps are on the system realtime clock; another injected realtime clock
        # needs them carried into its frame (see the module docstring)
        self._system_realtime = realtime_ns is time_ns
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            self._sock.bind((host, port))
        except OSError as e:
            self._sock.close()
            raise TransportError(f"cannot bind UDP {host}:{port}: {e}") from e
        self.kernel_timestamps = False
        if _SO_TIMESTAMPNS is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.kernel_timestamps = True
            except OSError:
                self.kernel_timestamps = False
        self._slots: dict[bytes, _Slot] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def address(self) -> tuple[str, int]:
        name = self._sock.getsockname()
        return (str(name[0]), int(name[1]))

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop = None
        self._sock.close()

    # -- receive ---------------------------------------------------------------------
    def _on_readable(self) -> None:
        sock = self._sock
        mono = self._monotonic_ns
        real = self._realtime_ns
        system_realtime = self._system_realtime
        while True:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(_RECV_BYTES, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._count("socket_error")
                return
            received_ns = mono()
            shift_ns = 0 if system_realtime else -time_ns()  # system first, injected after
            wall = real()
            offset_lo = wall - mono()  # w - b: a lower bound of realtime - monotonic
            kernel_ns: int | None = None
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = _TIMESPEC.unpack_from(cdata)
                    kernel_ns = sec * 1_000_000_000 + nsec
                    if not system_realtime:
                        kernel_ns += wall + shift_ns  # + (injected - system), over-estimated
            self._dispatch(data, addr, received_ns, kernel_ns, offset_lo)

    def _dispatch(
        self, data: bytes, addr: Any, received_ns: int, kernel_ns: int | None, offset_lo: int
    ) -> None:
        n = len(data)
        if n > MAX_DATAGRAM_BYTES:
            self._count("oversized")
            return
        if n < _SESSION_END:
            self._count("truncated")
            return
        if data[:2] != MAGIC:
            self._count("bad_magic")
            return
        if data[2] != VERSION:
            self._count("wrong_version")
            return
        if data[3] not in _ACCEPTED_TYPES:
            self._count("unknown_type" if data[3] > MessageType.PEER_REPORT else "unexpected_type")
            return
        slot = self._slots.get(data[HEADER_BYTES:_SESSION_END])
        if slot is None:
            self._count("unknown_session")
            return
        if addr[:2] != slot.address[:2]:
            self._count("wrong_source")
            return
        if len(slot.queue) >= _MAX_QUEUED:
            self._count("queue_full")
            return
        slot.queue.append((data, received_ns, kernel_ns, offset_lo))
        future = slot.future
        if future is not None and not future.done():
            future.set_result(None)

    # -- rounds ------------------------------------------------------------------------
    def _count_leftovers(self, slot: _Slot, core: RoundCore) -> None:
        """Drop and count what arrived while no probe was outstanding: a copy of the
        hello-ack, a late duplicate, or an answer sent before its probe."""
        for queued in slot.queue:
            self._count("duplicate_hello_ack" if core.is_ack_copy(queued[0]) else "unsolicited")
        slot.queue.clear()

    @staticmethod
    def _expire(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)

    async def _next(self, slot: _Slot, deadline: float) -> _Item | None:
        """The next queued datagram, waiting until ``deadline`` (loop time); None on timeout."""
        if slot.queue:
            return slot.queue.popleft()
        loop = self._loop
        if loop is None:
            raise TransportError("prober stopped")
        future: asyncio.Future[None] = loop.create_future()
        slot.future = future
        handle = loop.call_at(deadline, self._expire, future)
        try:
            await future
        finally:
            handle.cancel()
            slot.future = None
        return slot.queue.popleft() if slot.queue else None

    async def run_round(
        self,
        core: RoundCore,
        address: tuple[str, int],
        *,
        probe_timeout_s: float,
        hello_timeout_s: float,
        hello_retries: int = 0,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> bool:
        """Drive ``core`` against ``address``. False if the hello was never acknowledged.

        The HELLO is sent up to ``1 + hello_retries`` times (same bytes) within
        ``hello_timeout_s``; each re-send is counted ``hello_retransmit``."""
        loop = self._loop
        if loop is None:
            raise TransportError("prober not started")
        sock = self._sock
        mono = self._monotonic_ns
        real = self._realtime_ns
        slot = _Slot(address)
        self._slots[core.session_id] = slot
        try:
            # -- set-up, outside any timed window: the same HELLO, with backoff
            schedule = hello_schedule_ns(max(1, round(hello_timeout_s * 1e9)), hello_retries)
            try:
                sock.sendto(core.hello, address)
            except OSError as e:
                raise TransportError(f"cannot send hello to {address}: {e}") from e
            first_sent = loop.time()
            deadline = first_sent + hello_timeout_s
            sends = 1
            while not core.acked:
                wake = first_sent + schedule[sends] / 1e9 if sends < len(schedule) else deadline
                item = await self._next(slot, wake)
                if item is None:
                    if sends >= len(schedule):
                        return False
                    sends += 1
                    self._count("hello_retransmit")
                    try:
                        sock.sendto(core.hello, address)
                    except OSError:
                        self._count("hello_send_error")
                    continue
                try:
                    core.accept_hello_ack(item[0])
                except ChiplocError as e:
                    self._count(e.reason)
            # -- the timed burst: one probe outstanding at a time
            while not core.done:
                # anything still queued arrived while no probe was outstanding (a copy of
                # the hello-ack, a late duplicate, or an answer sent before its probe):
                # dropped, and counted
                self._count_leftovers(slot, core)
                datagram = core.next_probe(random_bytes(16))
                send_offset_lo = real() - mono()  # w - b, read before the send clock
                sent_ns = mono()
                try:
                    sock.sendto(datagram, address)
                except OSError:
                    self._count("send_error")
                    core.record_lost()
                    continue
                deadline = loop.time() + probe_timeout_s
                while True:
                    item = await self._next(slot, deadline)
                    if item is None:
                        self._count("probe_timeout")
                        core.record_lost()
                        break
                    data, received_ns, kernel_ns, recv_offset_lo = item
                    rtt_ns, source = rtt_from_stamps(
                        sent_ns=sent_ns,
                        received_ns=received_ns,
                        kernel_rx_realtime_ns=kernel_ns,
                        send_offset_lo_ns=send_offset_lo,
                        receive_offset_lo_ns=recv_offset_lo,
                    )
                    try:
                        core.accept_response(data, rtt_ns=rtt_ns, timestamp_source=source)
                        break
                    except ChiplocError as e:  # forged/corrupt/late: keep waiting for the real one
                        self._count(e.reason)
            return True
        finally:
            self._count_leftovers(slot, core)
            del self._slots[core.session_id]
