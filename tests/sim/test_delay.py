from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chiploc.common.errors import InputError
from chiploc.sim import (
    Address,
    DelayEmulator,
    DelayScheduler,
    EmulatorHost,
    FixedDelay,
    LatenessStats,
    PathModel,
    Point,
    RouteDelay,
    draw_route,
    lateness_stats,
)

LOOPBACK = "127.0.0.1"


# -- pure -----------------------------------------------------------------


def test_lateness_stats_summary() -> None:
    stats = lateness_stats([3000, 1000, 2000, 100_000], early=0)
    assert stats == LatenessStats(
        count=4, early=0, min_us=1.0, median_us=2.5, p99_us=100.0, max_us=100.0
    )
    assert lateness_stats([]).count == 0
    assert lateness_stats([], early=2).early == 2
    assert stats.to_json_dict()["p99_us"] == 100.0


def test_fixed_delay_rejects_negative() -> None:
    with pytest.raises(InputError):
        FixedDelay(delay_ns=-1)


# -- real sockets on loopback --------------------------------------------


class EchoServer:
    """A plain UDP echo backend that records which source addresses it saw."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.05)
        self.address: Address = self.sock.getsockname()
        self.sources: list[Address] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.sources.append(src)
            self.sock.sendto(data, src)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        assert not self._thread.is_alive()
        self.sock.close()


class Landmark:
    """A UDP client that times round trips on its own clock."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(1.0)
        self.address: Address = self.sock.getsockname()

    def rtt_ns(self, target: Address, payload: bytes) -> int:
        sent = time.perf_counter_ns()
        self.sock.sendto(payload, target)
        data, _ = self.sock.recvfrom(65535)
        received = time.perf_counter_ns()
        assert data == payload
        return received - sent

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scheduler() -> Iterator[DelayScheduler]:
    sched = DelayScheduler(rng=random.Random(42))
    sched.start()
    try:
        yield sched
    finally:
        sched.stop(timeout_s=2.0)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.slow
def test_never_early_measured_at_the_landmark(scheduler: DelayScheduler, echo: EchoServer) -> None:
    emulator = DelayEmulator(scheduler, backends=[echo.address], name="chip-1")
    landmarks = [Landmark() for _ in range(3)]
    delays_ns = [1_000_000, 2_500_000, 4_321_000]
    try:
        for lm, d in zip(landmarks, delays_ns, strict=True):
            emulator.set_path(lm.address, delay=FixedDelay(delay_ns=d))
        for i in range(20):
            for lm, d in zip(landmarks, delays_ns, strict=True):
                rtt = lm.rtt_ns(emulator.address, b"probe-%d" % i)
                assert rtt >= 2 * d
                assert emulator.delay_floor_ns(lm.address) == d
        stats = emulator.stats()
        assert stats.count == 2 * 20 * 3
        assert stats.early == 0
        assert stats.min_us >= 0.0
        assert scheduler.stats().early == 0
        assert emulator.counters["sent"] == 120
    finally:
        for lm in landmarks:
            lm.close()


@pytest.mark.slow
def test_route_delay_with_jitter_is_never_below_the_floor(
    scheduler: DelayScheduler, echo: EchoServer
) -> None:
    model = PathModel(jitter_mean_ms=0.2)
    route = draw_route(
        model, [Point(lat=50.11, lon=8.68), Point(lat=48.86, lon=2.35)], random.Random(1)
    )
    emulator = DelayEmulator(scheduler, backends=[echo.address])
    lm = Landmark()
    try:
        emulator.set_path(lm.address, delay=RouteDelay(route=route, model=model))
        rtts = [lm.rtt_ns(emulator.address, b"x%d" % i) for i in range(15)]
        assert min(rtts) >= 2 * route.floor_ns
        assert emulator.stats().early == 0
    finally:
        lm.close()


@pytest.mark.slow
def test_each_landmark_gets_its_own_stable_source(
    scheduler: DelayScheduler, echo: EchoServer
) -> None:
    emulator = DelayEmulator(scheduler, backends=[echo.address])
    a, b = Landmark(), Landmark()
    try:
        src_a = emulator.set_path(a.address, delay=FixedDelay(delay_ns=100_000))
        src_b = emulator.set_path(b.address, delay=FixedDelay(delay_ns=100_000))
        assert src_a != src_b
        for i in range(3):
            a.rtt_ns(emulator.address, b"a%d" % i)
            b.rtt_ns(emulator.address, b"b%d" % i)
        assert echo.sources == [src_a, src_b] * 3
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_unknown_landmarks_are_dropped_and_counted(
    scheduler: DelayScheduler, echo: EchoServer
) -> None:
    emulator = DelayEmulator(scheduler, backends=[echo.address])
    stranger = Landmark()
    stranger.sock.settimeout(0.2)
    try:
        with pytest.raises(TimeoutError):
            stranger.rtt_ns(emulator.address, b"hello")
        assert emulator.counters["dropped_unknown_source"] == 1
        assert echo.sources == []
    finally:
        stranger.close()


@pytest.mark.slow
def test_clone_routes_each_landmark_to_its_backend(scheduler: DelayScheduler) -> None:
    near, far = EchoServer(), EchoServer()
    emulator = DelayEmulator(scheduler, backends=[near.address, far.address], name="clone")
    a, b = Landmark(), Landmark()
    try:
        src_a = emulator.set_path(a.address, delay=FixedDelay(delay_ns=200_000), backend=0)
        src_b = emulator.set_path(b.address, delay=FixedDelay(delay_ns=300_000), backend=1)
        a.rtt_ns(emulator.address, b"a")
        b.rtt_ns(emulator.address, b"b")
        assert near.sources == [src_a]
        assert far.sources == [src_b]
        with pytest.raises(InputError):
            emulator.set_path(a.address, delay=FixedDelay(delay_ns=1), backend=2)
    finally:
        a.close()
        b.close()
        near.close()
        far.close()


@pytest.mark.slow
def test_many_emulators_share_one_scheduler_and_stop_cleanly(echo: EchoServer) -> None:
    sched = DelayScheduler(rng=random.Random(0))
    sched.start()
    landmarks = [Landmark() for _ in range(4)]
    try:
        emulators = [DelayEmulator(sched, backends=[echo.address]) for _ in range(10)]
        for em in emulators:
            for lm in landmarks:
                em.set_path(lm.address, delay=FixedDelay(delay_ns=300_000))
        # Fire one datagram per (landmark, emulator) pair, then collect the replies.
        for lm in landmarks:
            for em in emulators:
                lm.sock.sendto(b"burst", em.address)
        for lm in landmarks:
            for _ in emulators:
                data, _ = lm.sock.recvfrom(100)
                assert data == b"burst"
        emulators[0].close()
        assert sched.stats().count == 2 * 4 * 10
        assert sched.stats().early == 0
        # Leave datagrams in flight: stop must still return promptly.
        for lm in landmarks:
            lm.sock.sendto(b"late", emulators[1].address)
    finally:
        started = time.monotonic()
        sched.stop(timeout_s=2.0)
        assert time.monotonic() - started < 2.5
        for lm in landmarks:
            lm.close()
    sched.stop()  # idempotent


@pytest.mark.slow
def test_emulator_host_runs_emulators_in_a_child_process(echo: EchoServer) -> None:
    host = EmulatorHost(seed=5, timeout_s=10.0)
    host.start()
    lm = Landmark()
    try:
        emulator = host.emulator("chip-x", backends=[echo.address])
        source = emulator.set_path(lm.address, delay=FixedDelay(delay_ns=1_500_000))
        assert emulator.delay_floor_ns(lm.address) == 1_500_000
        for i in range(10):
            assert lm.rtt_ns(emulator.address, b"h%d" % i) >= 3_000_000
        assert echo.sources == [source] * 10
        stats = emulator.stats()
        assert (stats.count, stats.early) == (20, 0)
        assert emulator.counters["sent"] == 20
        assert host.stats().count == 20
        with pytest.raises(InputError):
            host.emulator("chip-x", backends=[echo.address])
        with pytest.raises(InputError):
            emulator.set_path(lm.address, delay=FixedDelay(delay_ns=1), backend=3)
        emulator.close()
    finally:
        started = time.monotonic()
        host.stop(timeout_s=5.0)
        assert time.monotonic() - started < 6.0
        lm.close()
    assert not host.is_alive()


@pytest.mark.slow
def test_emulator_host_child_exits_when_the_parent_goes_away() -> None:
    host = EmulatorHost(seed=1)
    host.start()
    assert host.is_alive()
    assert host._conn is not None
    host._conn.close()  # what the parent's death looks like from the child
    deadline = time.monotonic() + 10.0
    while host.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = host.is_alive()
    host.stop(timeout_s=2.0)
    assert not alive
