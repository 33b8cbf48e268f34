"""Real sockets on 127.0.0.1: daemon + agent end to end, HTTP plane, bad input, drain, restart."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import ProbeTimeout, TransportError, UnknownIdentity
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon, ReportStore
from chiploc.protocol import (
    HelloAck,
    PrivateKey,
    Registry,
    Response,
    Role,
    VerifiedRoots,
    generate_private_key,
    response_message,
    verify_report,
    write_keypair,
)


def config(tmp_path: Path, **kw: Any) -> LandmarkConfig:
    args: dict[str, Any] = {
        "id": "lm-fra",
        "key_path": tmp_path / "unused.key",
        "registry_path": tmp_path / "unused.json",
        "db_path": tmp_path / "landmark.db",
        "probe_timeout_ms": 300,
        "hello_timeout_ms": 300,
    }
    args.update(kw)
    return LandmarkConfig(**args)


@pytest.fixture
async def agent(chip_key: PrivateKey, registry: Registry) -> AsyncIterator[ChipAgent]:
    async with ChipAgent(chip_key, registry) as a:
        yield a


@pytest.fixture
async def daemon(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry
) -> AsyncIterator[LandmarkDaemon]:
    async with LandmarkDaemon(config(tmp_path), key=landmark_key, registry=registry) as d:
        yield d


async def test_end_to_end_report_verifies(
    daemon: LandmarkDaemon, agent: ChipAgent, registry: Registry
) -> None:
    report = await daemon.measure("chip-1", agent.address, probes=30)
    verified = verify_report(report.raw, registry)
    rtts = [p.rtt_ns for p in verified.probes]
    assert all(r is not None and r > 0 for r in rtts)
    assert verified.min_rtt_ns is not None
    assert all(verified.min_rtt_ns <= r for r in rtts if r is not None)
    assert verified.min_rtt_ns < 1_000_000_000
    assert verified.timestamp_source in ("kernel", "userspace", "mixed")
    assert verified.overhead_lower_bound_ns == 0
    assert verified.chip_address == f"127.0.0.1:{agent.address[1]}"
    assert agent.counters["answered"] == 30
    assert daemon.counters["probes_answered"] == 30


async def test_http_control_plane(
    daemon: LandmarkDaemon, agent: ChipAgent, registry: Registry
) -> None:
    address = f"127.0.0.1:{agent.address[1]}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{daemon.http_url}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["status"] == "ok"
        body = {"chip_id": "chip-1", "address": address, "probes": 5}
        async with http.post(f"{daemon.http_url}/v1/rounds", json=body) as r:
            assert r.status == 200
            doc = await r.json()
        verified = verify_report(base64.b64decode(doc["report_b64"]), registry)
        assert doc["report"]["min_rtt_ns"] == verified.min_rtt_ns
        targets = {"targets": [{"chip_id": "chip-1", "address": address}] * 3, "probes": 4}
        async with http.post(f"{daemon.http_url}/v1/rounds", json=targets) as r:
            results = (await r.json())["results"]
        assert [len(x["report"]["probes"]) for x in results] == [4, 4, 4]
        async with http.post(
            f"{daemon.http_url}/v1/rounds", json={"chip_id": "nobody", "address": address}
        ) as r:
            assert r.status == 404
            assert (await r.json())["reason"] == "unknown_identity"
        async with http.post(f"{daemon.http_url}/v1/rounds", data=b"{nope") as r:
            assert r.status == 400
        async with http.post(
            f"{daemon.http_url}/v1/rounds", json={"chip_id": "chip-1", "address": "nohost"}
        ) as r:
            assert r.status == 400
        async with http.get(f"{daemon.http_url}/v1/reports?since=0&limit=2") as r:
            page = await r.json()
        assert [x["cursor"] for x in page["reports"]] == [1, 2]
        async with http.get(f"{daemon.http_url}/v1/reports?since={page['next']}") as r:
            rest = await r.json()
        assert [x["cursor"] for x in rest["reports"]] == [3, 4]
        for item in page["reports"] + rest["reports"]:
            verify_report(base64.b64decode(item["report_b64"]), registry)
        async with http.get(f"{daemon.http_url}/v1/reports?since=x") as r:
            assert r.status == 400
        async with http.get(f"{daemon.http_url}/metrics") as r:
            text = await r.text()
        assert 'chiploc_landmark_rounds_total{outcome="measured"} 4' in text
        assert 'chiploc_landmark_probes_total{outcome="answered"} 17' in text


async def test_several_targets_are_uploaded_under_one_batch_signature(
    daemon: LandmarkDaemon, agent: ChipAgent, registry: Registry
) -> None:
    """A landmark asked for several rounds signs one Merkle root over their reports: each
    report verifies alone (its path and the root's signature), all share one root, an
    unreachable target stays an error beside them, and what is returned was stored."""
    address = f"127.0.0.1:{agent.address[1]}"
    targets = {
        "targets": [
            {"chip_id": "chip-1", "address": address},
            {"chip_id": "nobody", "address": address},
            {"chip_id": "chip-1", "address": address},
            {"chip_id": "chip-1", "address": address},
        ],
        "probes": 3,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{daemon.http_url}/v1/rounds", json=targets) as r:
            assert r.status == 200
            results = (await r.json())["results"]
        assert results[1]["reason"] == "unknown_identity"
        raws = [base64.b64decode(x["report_b64"]) for i, x in enumerate(results) if i != 1]
        roots = VerifiedRoots()
        reports = [verify_report(raw, registry, roots=roots) for raw in raws]
        assert [r.batch.index if r.batch else None for r in reports] == [0, 1, 2]
        assert {r.batch.root if r.batch else None for r in reports} == {
            bytes.fromhex(results[0]["report"]["batch"]["root"])
        }
        assert (roots.misses, roots.hits) == (1, 2)  # one landmark signature for three
        async with http.get(f"{daemon.http_url}/v1/reports?since=0") as r:
            stored = [base64.b64decode(x["report_b64"]) for x in (await r.json())["reports"]]
        assert stored == raws
        # one target alone keeps the single-signature format
        async with http.post(
            f"{daemon.http_url}/v1/rounds", json={"chip_id": "chip-1", "address": address}
        ) as r:
            single = verify_report(base64.b64decode((await r.json())["report_b64"]), registry)
        assert single.batch is None
    assert daemon.counters["probes_answered"] == 3 * 3 + single.answered


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\xc1\x0c\x01", "truncated"),
        (b"\xc1\x0c\x01\x04" + bytes(600), "oversized"),
        (b"\xc1\x0c\x07\x04" + bytes(84), "wrong_version"),
        (b"\x00\x00\x01\x04" + bytes(84), "bad_magic"),
        (b"\xc1\x0c\x01\x66" + bytes(84), "unknown_type"),
        (b"\xc1\x0c\x01\x04" + bytes(84), "unknown_session"),
    ],
)
async def test_landmark_counts_malformed_datagrams(
    daemon: LandmarkDaemon, datagram: bytes, reason: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(datagram, daemon.udp_address)
    for _ in range(100):
        if daemon.counters.get(reason):
            break
        await asyncio.sleep(0.01)
    assert daemon.counters == {reason: 1}
    async with aiohttp.ClientSession() as http, http.get(f"{daemon.http_url}/metrics") as r:
        assert f'chiploc_landmark_rejected_total{{reason="{reason}"}} 1' in await r.text()


class ScriptedChip(asyncio.DatagramProtocol):
    """A hostile-but-enrolled agent: for each probe it first sends a replay of the previous
    answer, a forged signature, and the real answer from a second socket, then the real one."""

    def __init__(self, key: PrivateKey, other: socket.socket) -> None:
        self.key = key
        self.other = other
        self.transport: asyncio.DatagramTransport | None = None
        self.previous: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        sid = data[4:20]
        if data[3] == 0x01:
            lm_len = data[28]
            landmark = data[29 : 29 + lm_len].decode()
            self.landmark = landmark
            ack = HelloAck.create(self.key, session_id=sid, landmark_id=landmark)
            self.transport.sendto(ack.to_bytes(), addr)
            return
        seq = int.from_bytes(data[20:24], "big")
        message = response_message(
            session_id=sid, chip_id=self.key.id, landmark_id=self.landmark, seq=seq,
            nonce=data[24:40],
        )  # fmt: skip
        real = Response(session_id=sid, seq=seq, signature=self.key.sign(message)).to_bytes()
        if self.previous is not None:
            self.transport.sendto(self.previous, addr)  # replayed
        self.transport.sendto(real[:24] + bytes(64), addr)  # bad_signature
        self.other.sendto(real, addr)  # wrong_source
        self.transport.sendto(real, addr)
        self.previous = real


async def test_landmark_rejects_replayed_forged_and_wrong_source(
    daemon: LandmarkDaemon, chip_key: PrivateKey, registry: Registry
) -> None:
    loop = asyncio.get_running_loop()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    transport, _ = await loop.create_datagram_endpoint(
        lambda: ScriptedChip(chip_key, other), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        report = await daemon.measure("chip-1", ("127.0.0.1", port), probes=3)
    finally:
        transport.close()
        other.close()
    verify_report(report.raw, registry)
    assert report.answered == 3
    counters = daemon.counters
    assert counters["replayed"] == 2
    assert counters["bad_signature"] == 3
    assert counters["wrong_source"] == 3


async def test_unknown_chip_and_unreachable(daemon: LandmarkDaemon) -> None:
    with pytest.raises(UnknownIdentity):
        await daemon.measure("nobody", ("127.0.0.1", 9), probes=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(ProbeTimeout):
            await daemon.measure("chip-1", silent.getsockname(), probes=1)
    assert daemon.counters["round_unreachable"] == 1


async def test_lost_probes_are_recorded(
    daemon: LandmarkDaemon, agent: ChipAgent, registry: Registry, chip_key: PrivateKey
) -> None:
    """An agent that stops answering mid-burst: the rest are recorded lost, the report verifies."""
    from chiploc.chip_agent import AgentLimits

    async with ChipAgent(chip_key, registry, limits=AgentLimits(max_probes_per_session=2)) as a:
        report = await daemon.measure("chip-1", a.address, probes=4)
    assert [p.rtt_ns is None for p in report.probes] == [False, False, True, True]
    assert verify_report(report.raw, registry).answered == 2


async def test_stop_drains_in_flight_rounds_and_restart_keeps_reports(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry, agent: ChipAgent
) -> None:
    cfg = config(tmp_path)
    first = LandmarkDaemon(cfg, key=landmark_key, registry=registry)
    await first.start()
    await first.measure("chip-1", agent.address, probes=3)
    in_flight = asyncio.ensure_future(first.measure("chip-1", agent.address, probes=400))
    await asyncio.sleep(0.01)
    await first.stop()  # must wait for the 400-probe round and its store
    assert in_flight.done()
    drained = in_flight.result()
    assert len(drained.probes) == 400
    with pytest.raises(TransportError):
        await first.measure("chip-1", agent.address, probes=1)
    async with (
        LandmarkDaemon(cfg, key=landmark_key, registry=registry) as second,
        aiohttp.ClientSession() as http,
        http.get(f"{second.http_url}/v1/reports?since=0") as r,
    ):
        stored = (await r.json())["reports"]
    assert len(stored) == 2
    assert base64.b64decode(stored[1]["report_b64"]) == drained.raw


def test_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "landmark.toml"
    path.write_text(
        '[landmark]\nid = "lm-fra"\nkey = "k/lm.key"\nregistry = "r.json"\ndb = "l.db"\n'
        'udp_listen = "[::1]:7400"\nprobes_per_round = 8\n'
    )
    cfg = LandmarkConfig.from_toml(path)
    assert cfg.key_path == tmp_path / "k" / "lm.key"
    assert (cfg.udp_host, cfg.udp_port) == ("::1", 7400)
    assert cfg.probes_per_round == 8
    from chiploc.common.errors import ConfigError

    path.write_text('[landmark]\nid = "lm"\nkey = "k"\nregistry = "r"\ndb = "d"\nbogus = 1\n')
    with pytest.raises(ConfigError, match="bogus"):
        LandmarkConfig.from_toml(path)


@pytest.mark.slow
async def test_serve_subprocess_sigterm_drains(
    tmp_path: Path, authority: PrivateKey, landmark_key: PrivateKey, chip_key: PrivateKey,
    registry: Registry,
) -> None:  # fmt: skip
    write_keypair(landmark_key, tmp_path / "keys")
    (tmp_path / "registry.json").write_bytes(registry.to_signed_json(authority))
    (tmp_path / "authority.pub").write_text(json.dumps(authority.public_key.to_json_dict()))
    (tmp_path / "landmark.toml").write_text(
        '[landmark]\nid = "lm-fra"\nkey = "keys/lm-fra.key"\nregistry = "registry.json"\n'
        'db = "landmark.db"\nudp_listen = "127.0.0.1:0"\nhttp_listen = "127.0.0.1:0"\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chiploc", "landmark", "serve", "--config",
        str(tmp_path / "landmark.toml"), stdout=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        http_url = line.rsplit("http ", 1)[1].strip()
        async with ChipAgent(chip_key, registry) as agent, aiohttp.ClientSession() as http:
            body = {"chip_id": "chip-1", "address": f"127.0.0.1:{agent.address[1]}", "probes": 3000}
            post = asyncio.ensure_future(http.post(f"{http_url}/v1/rounds", json=body))
            await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(post, 20)
            assert response.status == 200
            response.release()
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    store = ReportStore(tmp_path / "landmark.db")
    try:
        assert store.count() == 1
    finally:
        store.close()


def test_landmark_key_must_match(tmp_path: Path, registry: Registry) -> None:
    from chiploc.common.errors import InputError

    other = generate_private_key(Role.LANDMARK, "lm-ber", seed=b"\x05" * 32)
    with pytest.raises(InputError):
        LandmarkDaemon(config(tmp_path), key=other, registry=registry)


class _LossyLink(asyncio.DatagramProtocol):
    """One side of a relay that loses the first ``drop[type]`` datagrams of each type."""

    def __init__(self, drop: dict[int, int]) -> None:
        self.drop = drop
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: _LossyLink | None = None
        self.dest: Any = None
        self.last_source: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last_source = addr
        kind = data[3] if len(data) > 3 else -1
        if self.drop.get(kind, 0) > 0:
            self.drop[kind] -= 1
            return
        assert self.peer is not None
        assert self.peer.transport is not None
        self.peer.transport.sendto(data, self.dest if self.dest else self.peer.last_source)


async def test_hello_retransmitted_until_acknowledged(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry, agent: ChipAgent
) -> None:
    """Two HELLOs and one HELLO_ACK lost: the landmark sends the same HELLO again, the agent
    opens one session and re-sends the same ack; the round is measured."""
    loop = asyncio.get_running_loop()
    down_link = _LossyLink({0x01: 2})  # landmark -> relay: lose HELLO #1, #2
    up_link = _LossyLink({0x02: 1})  # agent -> relay: lose the first HELLO_ACK
    down_link.peer, up_link.peer = up_link, down_link
    down_link.dest = agent.address
    down, _ = await loop.create_datagram_endpoint(lambda: down_link, local_addr=("127.0.0.1", 0))
    up, _ = await loop.create_datagram_endpoint(lambda: up_link, local_addr=("127.0.0.1", 0))
    cfg = config(tmp_path, hello_timeout_ms=600, hello_retries=3)
    try:
        async with LandmarkDaemon(cfg, key=landmark_key, registry=registry) as d:
            report = await d.measure("chip-1", down.get_extra_info("sockname")[:2], probes=5)
            async with aiohttp.ClientSession() as http, http.get(f"{d.http_url}/metrics") as r:
                metrics = await r.text()
            counters = d.counters
    finally:
        down.close()
        up.close()
    assert verify_report(report.raw, registry).answered == 5
    assert counters["hello_retransmit"] == 3  # HELLO sent 4 times: lost, lost, acked, re-acked
    assert counters.get("hello_timeout", 0) == 0
    assert agent.counters["sessions_opened"] == 1
    assert agent.counters["hello_acks_resent"] == 1
    assert agent.counters.get("replayed", 0) == 0  # a retransmission is not an attack
    assert "chiploc_landmark_hello_retransmits_total 3" in metrics
    assert "hello_retransmit" not in metrics.replace("hello_retransmits_total", "")


@pytest.mark.parametrize("retries", [0, 3])
async def test_hello_sent_one_plus_retries_times_to_a_silent_peer(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry, retries: int
) -> None:
    cfg = config(tmp_path, hello_timeout_ms=150, hello_retries=retries)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        async with LandmarkDaemon(cfg, key=landmark_key, registry=registry) as d:
            with pytest.raises(ProbeTimeout):
                await d.measure("chip-1", silent.getsockname(), probes=1)
        hellos = []
        with contextlib.suppress(BlockingIOError):
            while True:
                hellos.append(silent.recv(1024))
    assert d.counters.get("hello_retransmit", 0) == retries
    assert d.counters["round_unreachable"] == 1
    assert len(hellos) == 1 + retries
    assert len(set(hellos)) == 1  # every copy is the same signed HELLO (same session)


async def test_injected_clocks_are_the_only_clocks(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry, chip_key: PrivateKey
) -> None:
    """A landmark whose wall clock is an hour behind and whose monotonic clock has another
    origin: reports carry the injected wall time, RTTs stay sound and kernel stamps (on the
    system clock) are carried into the injected frame, so they remain usable."""
    import time

    hour_ns = 3600 * 10**9

    def realtime_ns() -> int:
        return time.time_ns() - hour_ns

    def monotonic_ns() -> int:
        return time.perf_counter_ns() + 10**15

    before = time.time_ns()
    async with (
        LandmarkDaemon(
            config(tmp_path), key=landmark_key, registry=registry,
            monotonic_ns=monotonic_ns, realtime_ns=realtime_ns,
        ) as d,
        ChipAgent(chip_key, registry, wall_clock_ns=realtime_ns) as agent,  # same hour behind
    ):  # fmt: skip
        report = await d.measure("chip-1", agent.address, probes=20)
        kernel = d.kernel_timestamps
    after = time.time_ns()
    verify_report(report.raw, registry)
    assert before - hour_ns <= report.started_at_unix_ns <= after - hour_ns
    assert all(0 < p.rtt_ns < 1_000_000_000 for p in report.probes if p.rtt_ns is not None)
    assert report.answered == 20
    if kernel:
        assert any(p.timestamp_source == "kernel" for p in report.probes)
