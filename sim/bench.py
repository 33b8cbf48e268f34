"""Benchmark of the delay emulator: ``python -m sim.bench [--chips N] [--landmarks M]``.

Starts N emulators (one per chip, each in front of a UDP echo backend) and M
landmark sockets in one asyncio process, all on 127.0.0.1. Every landmark
probes every chip in turn (one chip at a time, like a landmark daemon), a
burst of ``--probes`` probes ``--spacing-ms`` apart, with a
fixed one-way delay per (landmark, chip) path drawn from 1-20 ms. Prints the
emulator's lateness statistics, the RTT excess the landmarks measured
(``rtt - 2 * delay``, which also includes loopback and event-loop costs) and
the CPU time the process used. Never early: the excess must be >= 0.

``--world`` instead runs a whole :class:`SimulatedWorld` (real landmark
daemons and chip agents, emulators in a child process), every landmark
measuring every enrolled chip, landmarks concurrently, and prints the
emulator's lateness and each report's min-RTT excess over twice the modelled
one-way floor.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from typing import cast

from ._delay import DelayEmulator, DelayScheduler, FixedDelay, lateness_stats
from ._host import EmulatorHost, RemoteEmulator
from ._scenario import FleetScenario
from ._world import SimulatedWorld


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.transport.sendto(data, addr)


class _Landmark(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[bytes, asyncio.Future[int]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        received = time.perf_counter_ns()
        waiter = self.waiters.pop(data, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(received)


async def _run(
    chips: int, landmarks: int, probes: int, seed: int, spacing_s: float, in_child: bool
) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    scheduler = DelayScheduler(rng=random.Random(seed + 1))
    host = EmulatorHost(seed=seed + 1) if in_child else None
    if host is not None:
        host.start()
    else:
        scheduler.start()
    transports: list[asyncio.DatagramTransport] = []
    excess_ns: list[int] = []
    lost = 0
    try:
        emulators: list[DelayEmulator | RemoteEmulator] = []
        for i in range(chips):
            t, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
            transports.append(t)
            backend = t.get_extra_info("sockname")
            if host is not None:
                emulators.append(host.emulator(f"c{i}", backends=[backend]))
            else:
                emulators.append(DelayEmulator(scheduler, backends=[backend], name=f"c{i}"))
        lms: list[tuple[_Landmark, tuple[str, int]]] = []
        delays: dict[tuple[int, int], int] = {}
        for j in range(landmarks):
            t, proto = await loop.create_datagram_endpoint(_Landmark, local_addr=("127.0.0.1", 0))
            transports.append(t)
            addr = t.get_extra_info("sockname")
            lms.append((proto, addr))
            for i, em in enumerate(emulators):
                delays[j, i] = rng.randrange(1_000_000, 20_000_000)
                em.set_path(addr, delay=FixedDelay(delay_ns=delays[j, i]))

        async def landmark_rounds(j: int) -> None:
            # Like a landmark daemon: one chip at a time, a burst of probes each.
            for i in range(chips):
                await probe(j, i)

        async def probe(j: int, i: int) -> None:
            nonlocal lost
            proto, _ = lms[j]
            for k in range(probes):
                payload = b"%d/%d/%d" % (j, i, k)
                fut: asyncio.Future[int] = loop.create_future()
                proto.waiters[payload] = fut
                sent = time.perf_counter_ns()
                proto.transport.sendto(payload, emulators[i].address)
                try:
                    received = await asyncio.wait_for(fut, 1.0)
                except TimeoutError:
                    lost += 1
                    continue
                excess_ns.append(received - sent - 2 * delays[j, i])
                await asyncio.sleep(spacing_s)

        started = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(landmark_rounds(j) for j in range(landmarks)))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - started
    finally:
        for t in transports:
            t.close()
        stats = host.stats() if host is not None else scheduler.stats()
        spin_note = (
            "(in child)" if host is not None else f"{scheduler.spin_margin_ns / 1000:.0f} us"
        )
        if host is not None:
            host.stop()
        else:
            scheduler.stop()
    excess = lateness_stats(excess_ns)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"chips={chips} landmarks={landmarks} probes={probes} paths={chips * landmarks}")
    print(f"wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / wall:.0%} of one core), lost {lost}")
    print(f"emulator in {'a child process' if host else 'this process'}; spin margin {spin_note}")
    print(
        f"emulator lateness: n={stats.count} early={stats.early} min={stats.min_us:.1f} "
        f"median={stats.median_us:.1f} p99={stats.p99_us:.1f} max={stats.max_us:.1f} us"
    )
    print(
        f"landmark RTT excess (rtt - 2*delay): n={excess.count} min={excess.min_us:.1f} "
        f"median={excess.median_us:.1f} p99={excess.p99_us:.1f} max={excess.max_us:.1f} us"
    )
    if excess_ns and min(excess_ns) < 0:
        raise SystemExit("EARLY DELIVERY OBSERVED")


async def _run_world(chips: int, landmarks: int, probes: int, seed: int) -> None:
    """A whole :class:`SimulatedWorld`: every landmark measures every enrolled chip."""
    scenario = FleetScenario.generate(seed=seed, chips=chips, landmarks=landmarks)
    excess_ns: list[int] = []
    with tempfile.TemporaryDirectory() as directory:
        t0 = time.perf_counter()
        async with SimulatedWorld(scenario, directory, probes_per_round=probes) as world:
            t1 = time.perf_counter()

            async def rounds(landmark_id: str) -> None:
                for chip in scenario.chips:
                    if chip.enrolled:
                        report = await world.measure(landmark_id, chip.id)
                        if report.min_rtt_ns is not None:
                            floor_ns = world.delay_floor_ns(landmark_id, chip.id)
                            excess_ns.append(report.min_rtt_ns - 2 * floor_ns)

            await asyncio.gather(*(rounds(lm.id) for lm in scenario.landmarks))
            t2 = time.perf_counter()
            stats = await world.lateness()
        t3 = time.perf_counter()
    excess = lateness_stats(excess_ns)
    print(f"world: chips={chips} landmarks={landmarks} probes={probes} (landmarks concurrent)")
    print(f"start {t1 - t0:.2f} s, measure {t2 - t1:.2f} s, stop {t3 - t2:.2f} s")
    print(
        f"emulator lateness: n={stats.count} early={stats.early} median={stats.median_us:.1f} "
        f"p99={stats.p99_us:.1f} max={stats.max_us:.1f} us"
    )
    print(
        f"report min-RTT excess over 2*floor: n={excess.count} min={excess.min_us:.0f} "
        f"median={excess.median_us:.0f} p99={excess.p99_us:.0f} max={excess.max_us:.0f} us"
    )
    if excess_ns and min(excess_ns) < 0:
        raise SystemExit("EARLY DELIVERY OBSERVED")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__)
    parser.add_argument("--chips", type=int, default=30)
    parser.add_argument("--landmarks", type=int, default=16)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spacing-ms", type=float, default=2.0, help="gap between probes")
    parser.add_argument("--world", action="store_true", help="a whole SimulatedWorld instead")
    parser.add_argument("--child", action="store_true", help="emulators in a child process")
    parser.add_argument("--switch-interval-us", type=float, default=None)
    args = parser.parse_args()
    if args.world:
        asyncio.run(_run_world(args.chips, args.landmarks, args.probes, args.seed))
        return
    if args.switch_interval_us is not None:
        sys.setswitchinterval(args.switch_interval_us / 1e6)
    asyncio.run(
        _run(args.chips, args.landmarks, args.probes, args.seed, args.spacing_ms / 1000, args.child)
    )


if __name__ == "__main__":
    main()
