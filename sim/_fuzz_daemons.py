"""Fuzzing live daemons on 127.0.0.1: :func:`fuzz_http` sends hostile requests to a
landmark's HTTP API (tallied in a :class:`HttpFuzzTally`), :func:`fuzz_agent` sends
hostile datagrams to a chip agent.

Invariants:

* Every HTTP answer must be a 4xx (or 2xx) with a JSON body, and the daemon must
  still answer ``/healthz`` afterwards; every datagram sent to an agent must be
  counted by exactly one of its counters.
* Every wait is bounded; datagrams are sent in batches far below the socket
  buffer, so a kernel drop is not counted against the agent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import aiohttp

from chiploc.chip_agent import ChipAgent

from ._fault_lab import _LOOPBACK

__all__ = ["HttpFuzzTally", "fuzz_agent", "fuzz_http"]

_MAX_UDP_BYTES: Final = 65_000


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFuzzTally:
    sent: int
    client_errors: int
    server_errors: int
    not_json: int
    healthy_after: bool
    examples: tuple[str, ...] = ()

    @property
    def crashes(self) -> int:
        return self.server_errors + self.not_json + (0 if self.healthy_after else 1)


async def fuzz_http(
    url: str, requests: Iterable[tuple[str, str, bytes]], *, timeout_s: float = 10.0
) -> HttpFuzzTally:
    """Send ``(method, path_and_query, body)`` requests to a landmark's HTTP API. Every
    answer must be a 4xx (or 2xx) with a JSON body; then ``/healthz`` must still be 200."""
    sent = client = server = not_json = 0
    examples: list[str] = []
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for method, target, body in requests:
            sent += 1
            async with session.request(
                method, url + target, data=body, headers={"Content-Type": "application/json"}
            ) as r:
                raw = await r.read()
                status = r.status
            try:
                doc = json.loads(raw)
                ok_json = isinstance(doc, dict) and (status < 400 or "error" in doc)
            except ValueError:
                ok_json = False
            if status >= 500:
                server += 1
                examples.append(f"{status} {method} {target[:80]} {body[:80]!r}")
            elif status >= 400:
                client += 1
            if not ok_json:
                not_json += 1
                examples.append(f"not JSON: {status} {method} {target[:80]} {body[:80]!r}")
        async with session.get(url + "/healthz") as r:
            healthy = r.status == 200
    return HttpFuzzTally(
        sent=sent,
        client_errors=client,
        server_errors=server,
        not_json=not_json,
        healthy_after=healthy,
        examples=tuple(examples[:5]),
    )


async def fuzz_agent(agent: ChipAgent, datagrams: Iterable[bytes]) -> tuple[int, int]:
    """Send ``datagrams`` to ``agent`` from one socket; return (sent, counted): every one
    must be counted by exactly one of the agent's counters (drops or ``answered``).
    Datagrams are cut to 65,000 bytes (a UDP datagram cannot be longer)."""
    before = sum(agent.counters.values())
    # a plain socket: asyncio's sendto silently skips empty datagrams
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0

    async def caught_up(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(agent.counters.values()) - before < sent and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    try:
        sock.bind((_LOOPBACK, 0))
        batch_bytes = 0
        for data in datagrams:
            datagram = data[:_MAX_UDP_BYTES]
            sock.sendto(datagram, agent.address)
            sent += 1
            batch_bytes += len(datagram) + 64
            if sent % 32 == 0 or batch_bytes > 64_000:
                # stay far below the socket buffer: a kernel drop is not the agent's
                await caught_up(1.0)
                batch_bytes = 0
        await caught_up(5.0)
    finally:
        sock.close()
    return sent, sum(agent.counters.values()) - before
