"""User-space delay emulator: a UDP relay on loopback that never delivers early.

This kernel has no netem, so geographic delay is added in user space. A
:class:`DelayEmulator` stands in front of one chip node (one agent's UDP
address, or two for a cloned key). A landmark sends to the emulator's public
address; the emulator holds each datagram for the path's one-way delay, then
forwards it to the agent from a socket dedicated to that landmark (so the agent
sees one stable source address per landmark), and holds each reply for the
reverse one-way delay before sending it back to the landmark.

One :class:`DelayScheduler` serves every emulator of a process with two
threads: an I/O thread that reads all sockets (epoll) and stamps each datagram
on arrival, and a sender thread that keeps a heap of ``(deadline_ns, ...)`` and
sends each datagram at its deadline. The sender sleeps (timer slack set to 1 ns
with ``prctl``) until shortly before the deadline, then spins on
``time.perf_counter_ns()`` for the last stretch; the spin margin adapts to the
wake-up overshoot it observes, so the CPU burnt stays small.

Invariants:

- Never early: a datagram is sent only once ``perf_counter_ns() >= deadline_ns``
  where ``deadline_ns = arrival_stamp_ns + delay_ns`` and the arrival stamp is
  read *after* the datagram was received (so it is never before the true
  arrival). The clock is read again at the moment of sending; a send before
  the deadline would be counted in ``early`` (it cannot happen by construction
  and the tests assert it stays 0).
- Lateness (send time minus deadline) is recorded for every datagram sent and
  reported as :class:`LatenessStats`. Lateness only adds delay (sound).
- Datagrams from unknown landmarks or foreign sources are dropped and counted,
  never forwarded.
- Bounded: the queue has a maximum size (excess is dropped and counted), stop
  joins the threads with a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import heapq
import itertools
import math
import random
import selectors
import socket
import statistics
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from chiploc.common.errors import InputError, TransportError

from ._paths import PathModel, Route

__all__ = [
    "Address",
    "DelayEmulator",
    "DelayScheduler",
    "DelaySource",
    "FixedDelay",
    "LatenessStats",
    "RouteDelay",
    "lateness_stats",
]

Address = tuple[str, int]

_MAX_DATAGRAM: Final = 65535
_MAX_SAMPLES: Final = 1_000_000
_PR_SET_TIMERSLACK: Final = 29


class DelaySource(Protocol):
    """What an emulated path needs: a floor and a per-packet draw (>= floor)."""

    @property
    def floor_ns(self) -> int: ...

    def draw_ns(self, rng: random.Random) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedDelay:
    """A constant one-way delay."""

    delay_ns: int

    def __post_init__(self) -> None:
        if self.delay_ns < 0:
            raise InputError("delay must be >= 0 ns", reason="bad_delay")

    @property
    def floor_ns(self) -> int:
        return self.delay_ns

    def draw_ns(self, rng: random.Random) -> int:
        return self.delay_ns


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDelay:
    """One-way delay of a modelled route: its floor plus per-packet jitter."""

    route: Route
    model: PathModel

    @property
    def floor_ns(self) -> int:
        return self.route.floor_ns

    def draw_ns(self, rng: random.Random) -> int:
        return self.route.one_way_ns(self.model, rng)


@dataclass(frozen=True, slots=True, kw_only=True)
class LatenessStats:
    """How late datagrams left the emulator compared with their deadline."""

    count: int
    early: int
    min_us: float
    median_us: float
    p99_us: float
    max_us: float

    def to_json_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "early": self.early,
            "min_us": self.min_us,
            "median_us": self.median_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
        }


def lateness_stats(samples_ns: Iterable[int], *, early: int = 0) -> LatenessStats:
    """Summary of lateness samples (ns) in µs; all zero when there are none."""
    ordered = sorted(samples_ns)
    if not ordered:
        return LatenessStats(
            count=0, early=early, min_us=0.0, median_us=0.0, p99_us=0.0, max_us=0.0
        )
    p99_index = min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)
    return LatenessStats(
        count=len(ordered),
        early=early,
        min_us=ordered[0] / 1000.0,
        median_us=statistics.median(ordered) / 1000.0,
        p99_us=ordered[p99_index] / 1000.0,
        max_us=ordered[-1] / 1000.0,
    )


def _set_thread_timer_slack_ns(slack_ns: int) -> bool:
    """Ask Linux to wake this thread's timers within ``slack_ns`` (default 50 µs)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_TIMERSLACK, slack_ns, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return False


@dataclass(slots=True)
class _Pending:
    emulator: DelayEmulator
    sock: socket.socket
    data: bytes
    dest: Address


class DelayScheduler:
    """The shared I/O and sender threads of every :class:`DelayEmulator`.

    ``rng`` draws the per-packet jitter. ``spin_min_ns``/``spin_max_ns`` bound
    the adaptive busy-wait margin before each deadline.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        spin_min_ns: int = 60_000,
        spin_max_ns: int = 2_000_000,
        max_queue: int = 100_000,
    ) -> None:
        if not 0 <= spin_min_ns <= spin_max_ns:
            raise InputError("need 0 <= spin_min_ns <= spin_max_ns", reason="bad_spin")
        if max_queue <= 0:
            raise InputError("max_queue must be positive", reason="bad_queue")
        self._rng = rng
        self._spin_min_ns = spin_min_ns
        self._spin_max_ns = spin_max_ns
        self._max_queue = max_queue
        self._heap: list[tuple[int, int, _Pending]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._started = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._commands: deque[Callable[[], None]] = deque()
        self._wake_overshoot_ns = spin_min_ns
        self._counters: Counter[str] = Counter()
        self._emulators: list[DelayEmulator] = []
        self._io_thread = threading.Thread(target=self._io_loop, name="sim-delay-io", daemon=True)
        self._send_thread = threading.Thread(
            target=self._send_loop, name="sim-delay-send", daemon=True
        )

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise InputError("scheduler already started", reason="already_started")
        self._started = True
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._io_thread.start()
        self._send_thread.start()

    def stop(self, *, timeout_s: float = 2.0) -> None:
        """Stop both threads (pending datagrams are dropped and counted)."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._wake_io()
        deadline = time.monotonic() + timeout_s
        for thread in (self._io_thread, self._send_thread):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in (self._io_thread, self._send_thread) if t.is_alive()]
        with self._cond:
            self._counters["dropped_at_stop"] += len(self._heap)
            self._heap.clear()
        for emulator in list(self._emulators):
            emulator._close_sockets()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        if alive:
            raise TransportError(f"delay scheduler threads did not stop: {alive}", reason="stop")

    def __enter__(self) -> DelayScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation -----------------------------------------------------

    @property
    def counters(self) -> Mapping[str, int]:
        merged: Counter[str] = Counter(self._counters)
        for emulator in self._emulators:
            merged.update(emulator.counters)
        return dict(merged)

    def stats(self) -> LatenessStats:
        """Lateness over every datagram sent by every emulator."""
        samples: list[int] = []
        early = 0
        for emulator in self._emulators:
            samples.extend(emulator._lateness_ns)
            early += emulator._early
        return lateness_stats(samples, early=early)

    @property
    def spin_margin_ns(self) -> int:
        return self._spin_margin()

    # -- used by emulators (any thread) ---------------------------------

    def _attach(self, emulator: DelayEmulator) -> None:
        self._emulators.append(emulator)

    def _run_in_io(self, command: Callable[[], None], *, timeout_s: float = 2.0) -> None:
        """Run ``command`` on the I/O thread and wait for it (or run it here if stopped)."""
        if not self._started or self._stopping or threading.current_thread() is self._io_thread:
            command()
            return
        done = threading.Event()
        errors: list[BaseException] = []

        def wrapped() -> None:
            try:
                command()
            except BaseException as exc:  # handed back to the caller below
                errors.append(exc)
            finally:
                done.set()

        self._commands.append(wrapped)
        self._wake_io()
        if not done.wait(timeout_s):
            raise TransportError("delay scheduler I/O thread did not respond", reason="stop")
        if errors:
            raise errors[0]

    def _register(self, sock: socket.socket, handler: Callable[[], None]) -> None:
        def command() -> None:
            self._selector.register(sock, selectors.EVENT_READ, handler)

        self._run_in_io(command)

    def _unregister_and_close(self, socks: Sequence[socket.socket]) -> None:
        def command() -> None:
            for sock in socks:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(sock)
                sock.close()

        self._run_in_io(command)

    def _schedule(self, deadline_ns: int, pending: _Pending) -> None:
        with self._cond:
            if self._stopping:
                return
            if len(self._heap) >= self._max_queue:
                pending.emulator.counters["dropped_queue_full"] += 1
                return
            heapq.heappush(self._heap, (deadline_ns, next(self._seq), pending))
            if self._heap[0][2] is pending:
                self._cond.notify()

    def _draw(self, source: DelaySource) -> int:
        return source.draw_ns(self._rng)

    def _wake_io(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    # -- threads ---------------------------------------------------------

    def _io_loop(self) -> None:
        while not self._stopping:
            events = self._selector.select(timeout=0.5)
            for key, _ in events:
                if key.data is None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        while self._wake_r.recv(4096):
                            pass
                else:
                    handler: Callable[[], None] = key.data
                    handler()
            while self._commands:
                self._commands.popleft()()

    def _spin_margin(self) -> int:
        return min(self._spin_max_ns, max(self._spin_min_ns, self._wake_overshoot_ns + 30_000))

    def _send_loop(self) -> None:
        _set_thread_timer_slack_ns(1)
        cond = self._cond
        heap = self._heap
        clock = time.perf_counter_ns
        while True:
            with cond:
                if self._stopping:
                    return
                if not heap:
                    cond.wait(0.5)
                    continue
                deadline_ns = heap[0][0]
                margin_ns = self._spin_margin()
                wake_at_ns = deadline_ns - margin_ns
                now_ns = clock()
                if now_ns < wake_at_ns:
                    notified = cond.wait((wake_at_ns - now_ns) / 1e9)
                    if not notified:
                        self._observe_wake(clock() - wake_at_ns)
                    continue
                _, _, pending = heapq.heappop(heap)
            # Outside the lock: spin to the deadline, then send.
            now_ns = clock()
            while now_ns < deadline_ns:
                now_ns = clock()
            self._send(pending, deadline_ns)

    def _observe_wake(self, overshoot_ns: int) -> None:
        # A decaying high-water mark of how late the sleeps wake up.
        decayed = self._wake_overshoot_ns - (self._wake_overshoot_ns >> 7)
        self._wake_overshoot_ns = max(overshoot_ns, decayed, 0)

    def _send(self, pending: _Pending, deadline_ns: int) -> None:
        emulator = pending.emulator
        sent_at_ns = time.perf_counter_ns()
        if sent_at_ns < deadline_ns:  # never true: the loop above spins past the deadline
            emulator._early += 1
        # Book-keeping first, so that whoever receives the datagram sees it counted.
        if len(emulator._lateness_ns) < _MAX_SAMPLES:
            emulator._lateness_ns.append(sent_at_ns - deadline_ns)
        emulator.counters["sent"] += 1
        try:
            pending.sock.sendto(pending.data, pending.dest)
        except OSError:
            emulator.counters["sent"] -= 1
            emulator.counters["send_failed"] += 1


@dataclass(slots=True)
class _Link:
    source: Address
    backend: Address
    delay: DelaySource
    inner: socket.socket


def _bind_udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot bind UDP on {host}: {exc}", reason="bind") from exc
    return sock


class DelayEmulator:
    """A delaying UDP relay in front of one chip node (one or more backends).

    ``backends`` are the agents' UDP addresses (two for a cloned key). Each
    landmark is configured with :meth:`set_path`: its source address, the
    backend it reaches, and the one-way delay of that path (applied in both
    directions, with a fresh jitter draw per datagram).
    """

    def __init__(
        self,
        scheduler: DelayScheduler,
        *,
        backends: Sequence[Address],
        name: str = "chip",
        host: str = "127.0.0.1",
    ) -> None:
        if not backends:
            raise InputError("an emulator needs at least one backend", reason="no_backend")
        self.name = name
        self._scheduler = scheduler
        self._host = host
        self._backends = tuple((str(h), int(p)) for h, p in backends)
        self._links: dict[Address, _Link] = {}
        self._lateness_ns: array[int] = array("q")
        self._early = 0
        self.counters: Counter[str] = Counter()
        self._closed = False
        self._public = _bind_udp(host)
        addr = self._public.getsockname()
        self.address: Address = (str(addr[0]), int(addr[1]))
        scheduler._attach(self)
        scheduler._register(self._public, self._on_public)

    @property
    def backends(self) -> tuple[Address, ...]:
        return self._backends

    def set_path(self, source: Address, *, delay: DelaySource, backend: int = 0) -> Address:
        """Route datagrams from ``source`` to backend ``backend`` with ``delay``.

        Returns the address the backend will see as this landmark's source.
        """
        if self._closed:
            raise InputError(f"emulator {self.name} is closed", reason="closed")
        if not 0 <= backend < len(self._backends):
            raise InputError(f"no backend #{backend} in emulator {self.name}", reason="no_backend")
        source = (str(source[0]), int(source[1]))
        old = self._links.get(source)
        if old is not None and old.backend == self._backends[backend]:
            self._links[source] = _Link(
                source=source, backend=old.backend, delay=delay, inner=old.inner
            )
            return _sockname(old.inner)
        inner = _bind_udp(self._host)
        link = _Link(source=source, backend=self._backends[backend], delay=delay, inner=inner)
        self._scheduler._register(inner, lambda: self._on_inner(link))
        self._links[source] = link
        if old is not None:
            self._scheduler._unregister_and_close([old.inner])
        return _sockname(inner)

    def delay_floor_ns(self, source: Address) -> int:
        """The configured one-way delay floor for ``source``."""
        return self._links[(str(source[0]), int(source[1]))].delay.floor_ns

    def stats(self) -> LatenessStats:
        return lateness_stats(self._lateness_ns, early=self._early)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        socks = [self._public, *(link.inner for link in self._links.values())]
        self._scheduler._unregister_and_close(socks)

    def _close_sockets(self) -> None:
        self._closed = True
        self._public.close()
        for link in self._links.values():
            link.inner.close()

    # -- I/O thread handlers --------------------------------------------

    def _on_public(self) -> None:
        for data, source, arrival_ns in _drain(self._public):
            link = self._links.get(source)
            if link is None:
                self.counters["dropped_unknown_source"] += 1
                continue
            self.counters["received_from_landmark"] += 1
            deadline_ns = arrival_ns + self._scheduler._draw(link.delay)
            pending = _Pending(emulator=self, sock=link.inner, data=data, dest=link.backend)
            self._scheduler._schedule(deadline_ns, pending)

    def _on_inner(self, link: _Link) -> None:
        for data, source, arrival_ns in _drain(link.inner):
            if source != link.backend:
                self.counters["dropped_foreign_source"] += 1
                continue
            self.counters["received_from_backend"] += 1
            current = self._links.get(link.source)
            delay = current.delay if current is not None else link.delay
            deadline_ns = arrival_ns + self._scheduler._draw(delay)
            pending = _Pending(emulator=self, sock=self._public, data=data, dest=link.source)
            self._scheduler._schedule(deadline_ns, pending)


def _sockname(sock: socket.socket) -> Address:
    host, port = sock.getsockname()[:2]
    return (str(host), int(port))


def _drain(sock: socket.socket, limit: int = 256) -> list[tuple[bytes, Address, int]]:
    """Up to ``limit`` waiting datagrams, each stamped just *after* it was read.

    The stamp is read after ``recvfrom`` returned, so it is never earlier than
    the datagram's arrival: deadlines computed from it are never early.
    """
    out: list[tuple[bytes, Address, int]] = []
    for _ in range(limit):
        try:
            data, addr = sock.recvfrom(_MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:  # e.g. ICMP port unreachable surfaced on a UDP socket
            continue
        out.append((data, (str(addr[0]), int(addr[1])), time.perf_counter_ns()))
    return out
