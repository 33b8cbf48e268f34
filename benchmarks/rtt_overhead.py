"""RTT overhead of the chiploc timed exchange over a bare blocking UDP echo, on loopback.

    python benchmarks/rtt_overhead.py --json [--probes 5000]

Floor: two processes, the simplest blocking form — an echo process doing ``recvfrom`` /
``sendto`` (answering a 40-byte datagram with 88 bytes, the PROBE / RESPONSE sizes) and this
process timing ``sendto`` → ``recvfrom`` with ``perf_counter_ns``. No crypto, no event loop.

chiploc: a ``ChipAgent`` process (uvloop) and a ``LandmarkDaemon`` in this process (uvloop)
measuring one round of ``--probes`` timed probes: each response is Ed25519-signed by the chip
inside the window and verified by the landmark outside it; RTTs are the report's (kernel
receive timestamps where available). The report is then re-verified with ``verify_report``.

Prints one JSON object. Bounded: every socket has a timeout and child processes are killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

_ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(30)
print(s.getsockname()[1], flush=True)
reply = bytes(88)
while True:
    data, addr = s.recvfrom(2048)
    if data == b"quit":
        break
    s.sendto(reply, addr)
"""


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _summary_us(rtts_ns: list[int]) -> tuple[float, float]:
    values = sorted(r / 1000 for r in rtts_ns)
    return statistics.median(values), _percentile(values, 0.99)


def measure_floor(probes: int, warmup: int) -> list[int]:
    server = subprocess.Popen(
        [sys.executable, "-c", _ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2.0)
        payload = os.urandom(40)
        addr = ("127.0.0.1", port)
        rtts: list[int] = []
        for i in range(warmup + probes):
            t0 = time.perf_counter_ns()
            sock.sendto(payload, addr)
            sock.recvfrom(2048)
            t1 = time.perf_counter_ns()
            if i >= warmup:
                rtts.append(t1 - t0)
        sock.sendto(b"quit", addr)
        sock.close()
        return rtts
    finally:
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure_floor_kernel(probes: int, warmup: int) -> tuple[list[int], int]:
    """The same blocking echo, but the client takes chiploc's kernel receive timestamps
    (``landmarks.rtt_from_stamps``): a like-for-like floor for a kernel-stamped chiploc run."""
    import socket as _socket
    import struct

    from chiploc.landmarks import rtt_from_stamps

    server = subprocess.Popen(
        [sys.executable, "-c", _ECHO_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        sock.setsockopt(_socket.SOL_SOCKET, getattr(_socket, "SO_TIMESTAMPNS", 35), 1)
        sock.settimeout(2.0)
        payload = os.urandom(40)
        addr = ("127.0.0.1", port)
        rtts: list[int] = []
        kernel = 0
        for i in range(warmup + probes):
            send_off = time.time_ns() - time.perf_counter_ns()
            t0 = time.perf_counter_ns()
            sock.sendto(payload, addr)
            _, anc, _, _ = sock.recvmsg(2048, _socket.CMSG_SPACE(16))
            t1 = time.perf_counter_ns()
            recv_off = time.time_ns() - time.perf_counter_ns()
            k = None
            for _level, _kind, cdata in anc:
                sec, nsec = struct.unpack_from("@qq", cdata)
                k = sec * 1_000_000_000 + nsec
            rtt, source = rtt_from_stamps(
                sent_ns=t0,
                received_ns=t1,
                kernel_rx_realtime_ns=k,
                send_offset_lo_ns=send_off,
                receive_offset_lo_ns=recv_off,
            )
            if i >= warmup:
                rtts.append(rtt)
                kernel += source == "kernel"
        sock.sendto(b"quit", addr)
        sock.close()
        return rtts, kernel
    finally:
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _agent_main(directory: str) -> None:
    import uvloop

    from chiploc.chip_agent import AgentLimits, ChipAgent
    from chiploc.protocol import Role, load_private_key, load_registry_pinned

    key = load_private_key(Path(directory) / "chip.key", role=Role.CHIP)
    registry = load_registry_pinned(Path(directory) / "registry.json")

    async def main() -> None:
        limits = AgentLimits(probe_rate_per_s=1e6, probe_burst=1e6, max_probes_per_session=10_000)
        async with ChipAgent(key, registry, limits=limits) as agent:
            print(agent.address[1], flush=True)
            loop = asyncio.get_running_loop()
            # exit when the parent closes our stdin, or after 60 s at most
            done = loop.run_in_executor(None, sys.stdin.read)
            await asyncio.wait_for(done, timeout=60)

    uvloop.run(main())


def measure_chiploc(probes: int, warmup: int) -> dict[str, Any]:
    import uvloop

    from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
    from chiploc.protocol import (
        ChipEntry,
        LandmarkEntry,
        Registry,
        Role,
        generate_private_key,
        verify_report,
        write_keypair,
    )

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        authority = generate_private_key(Role.AUTHORITY, "authority")
        landmark = generate_private_key(Role.LANDMARK, "bench-lm")
        chip = generate_private_key(Role.CHIP, "chip")
        registry = Registry(
            authority_public_key=authority.public_key.key_bytes,
            landmarks={
                "bench-lm": LandmarkEntry(
                    id="bench-lm", lat=0.0, lon=0.0, public_key=landmark.public_key.key_bytes
                )
            },
            chips={"chip": ChipEntry(id="chip", public_key=chip.public_key.key_bytes, region="-")},
        )
        write_keypair(chip, d)
        (d / "registry.json").write_bytes(registry.to_signed_json(authority))
        (d / "authority.pub").write_text(json.dumps(authority.public_key.to_json_dict()))
        agent = subprocess.Popen(
            [sys.executable, __file__, "--agent-proc", str(d)],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        try:
            assert agent.stdout is not None
            port = int(agent.stdout.readline())
            config = LandmarkConfig(
                id="bench-lm",
                key_path=d / "unused.key",
                registry_path=d / "registry.json",
                db_path=d / "landmark.db",
                probe_timeout_ms=200,
            )

            async def run() -> dict[str, Any]:
                async with LandmarkDaemon(config, key=landmark, registry=registry) as daemon:
                    await daemon.measure("chip", ("127.0.0.1", port), probes=warmup)
                    t0 = time.perf_counter()
                    report = await daemon.measure("chip", ("127.0.0.1", port), probes=probes)
                    elapsed = time.perf_counter() - t0
                    counters = dict(daemon.counters)
                verified = verify_report(report.raw, registry)
                return {"report": verified, "elapsed_s": elapsed, "counters": counters}

            return uvloop.run(run())
        finally:
            if agent.stdin is not None:
                agent.stdin.close()
            try:
                agent.wait(timeout=5)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--probes", type=int, default=5000, help="probes per side (>= 5000)")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--agent-proc", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent_proc:
        _agent_main(args.agent_proc)
        return 0
    if not 1 <= args.probes <= 10_000:
        parser.error("--probes must be in 1..10000 (one report holds at most 10000)")

    started = time.perf_counter()
    floor = measure_floor(args.probes, args.warmup)
    floor_kernel, floor_kernel_stamped = measure_floor_kernel(args.probes, args.warmup)
    result = measure_chiploc(args.probes, args.warmup)
    report = result["report"]
    chiploc_rtts = [p.rtt_ns for p in report.probes if p.rtt_ns is not None]
    floor_median, floor_p99 = _summary_us(floor)
    floor_k_median, floor_k_p99 = _summary_us(floor_kernel)
    chip_median, chip_p99 = _summary_us(chiploc_rtts)
    overhead_us = chip_median - floor_median
    out = {
        "probes": args.probes,
        "floor_median_us": round(floor_median, 2),
        "floor_p99_us": round(floor_p99, 2),
        "chiploc_median_us": round(chip_median, 2),
        "chiploc_p99_us": round(chip_p99, 2),
        "chiploc_min_us": round(min(chiploc_rtts) / 1000, 2),
        "overhead_median_us": round(overhead_us, 2),
        "overhead_km": round(overhead_us / 1000 / 2 * SPEED_OF_LIGHT_KM_PER_MS, 2),
        "floor_kernel_ts_median_us": round(floor_k_median, 2),
        "floor_kernel_ts_p99_us": round(floor_k_p99, 2),
        "floor_kernel_ts_fraction": round(floor_kernel_stamped / len(floor_kernel), 3),
        "overhead_vs_kernel_ts_floor_median_us": round(chip_median - floor_k_median, 2),
        "verified_probes_per_s": round(len(chiploc_rtts) / result["elapsed_s"]),
        "chiploc_probes_answered": len(chiploc_rtts),
        "chiploc_probes_lost": len(report.probes) - len(chiploc_rtts),
        "timestamp_source": report.timestamp_source,
        "landmark_rejections": {
            k: v for k, v in result["counters"].items() if not k.startswith(("probes_", "round_"))
        },
        "targets": {"overhead_median_us": 40, "verified_probes_per_s": 5000},
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
