"""The chip agent: answers enrolled landmarks' timed probes with chip signatures.

Invariants enforced here:

* A session exists only after a HELLO that parses, names an enrolled, non-revoked landmark,
  is addressed to this chip, was issued within ``max_hello_skew_ns`` of the agent's wall clock,
  carries a valid landmark signature and a session id never seen before (replay cache kept for
  the freshness window). All of this happens outside any timed window.
* A byte-identical copy of the HELLO that opened a live session, from the session's address,
  before any probe of it was answered, is the landmark retransmitting a HELLO whose HELLO_ACK
  was lost: the cached HELLO_ACK is sent again (one token spent, counted
  ``hello_acks_resent``); no second session is opened and it is not counted as a replay. Any
  other copy of a seen session id (another address, a different body, or after probing
  began, when the landmark provably holds the ACK) is ``replayed``.
* A session is bound to the HELLO's source address; a PROBE is answered only if its session is
  live (not expired, under its probe budget), it comes from that address, its sequence number
  is higher than any answered before in the session, and the landmark's token bucket has a
  token. Nothing inside the PROBE is verified: the response path is parse-by-slice, sign,
  ``sendto``.
* Every dropped datagram increments exactly one per-reason counter; nothing a peer sends can
  raise out of the datagram handler.
* No global state: every agent owns its socket, sessions, buckets and counters.
* The agent answers in the role of its key: a chip key answers HELLOs (chip sessions); a
  landmark key answers PEER_HELLOs only (the landmark mesh: a landmark daemon's peers measure
  it with the same protocol, and it signs with its own landmark key under the peer domains).
  A HELLO for the other role is refused ``wrong_role``, so one process never answers as both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from nacl.bindings import crypto_sign

from chiploc.common.errors import ChiplocError, DecodeError, ReplayDetected, TransportError
from chiploc.protocol import (
    MAX_DATAGRAM_BYTES,
    PROBE_BYTES,
    Hello,
    HelloAck,
    MessageType,
    PrivateKey,
    Registry,
    Role,
    check_header,
    header,
    response_prefix,
    verify_hello,
)

__all__ = ["AgentLimits", "ChipAgent"]

_PROBE_HEADER = header(MessageType.PROBE)
_RESPONSE_HEADER = header(MessageType.RESPONSE)
_NOT_FOR_AGENTS = frozenset(
    {
        MessageType.HELLO_ACK,
        MessageType.RESPONSE,
        MessageType.REPORT,
        MessageType.PEER_HELLO_ACK,
        MessageType.PEER_REPORT,
    }
)


class AgentLimits:
    """Tunable limits (plain class with slots: read on the hot path)."""

    __slots__ = (
        "max_hello_skew_ns",
        "max_probes_per_session",
        "max_sessions",
        "probe_burst",
        "probe_rate_per_s",
        "session_lifetime_ns",
    )

    def __init__(
        self,
        *,
        max_hello_skew_ns: int = 30_000_000_000,
        session_lifetime_ns: int = 60_000_000_000,
        max_probes_per_session: int = 10_000,
        max_sessions: int = 1024,
        probe_rate_per_s: float = 20_000.0,
        probe_burst: float = 2_000.0,
    ) -> None:
        if min(max_hello_skew_ns, session_lifetime_ns, max_probes_per_session, max_sessions) <= 0:
            raise ValueError("agent limits must be positive")
        if probe_rate_per_s <= 0 or probe_burst < 1:
            raise ValueError("token bucket rate must be > 0 and burst >= 1")
        self.max_hello_skew_ns = max_hello_skew_ns
        self.session_lifetime_ns = session_lifetime_ns
        self.max_probes_per_session = max_probes_per_session
        self.max_sessions = max_sessions
        self.probe_rate_per_s = probe_rate_per_s
        self.probe_burst = probe_burst


class _Bucket:
    __slots__ = ("last_ns", "tokens")

    def __init__(self, tokens: float, now_ns: int) -> None:
        self.tokens = tokens
        self.last_ns = now_ns


class _Session:
    __slots__ = (
        "ack",
        "addr",
        "bucket",
        "expires_ns",
        "hello",
        "last_seq",
        "prefix",
        "remaining",
    )

    def __init__(
        self,
        addr: Any,
        prefix: bytes,
        expires_ns: int,
        remaining: int,
        bucket: _Bucket,
        hello: bytes,
        ack: bytes,
    ) -> None:
        self.addr = addr
        self.prefix = prefix
        self.expires_ns = expires_ns
        self.remaining = remaining
        self.last_seq = -1
        self.bucket = bucket
        self.hello = hello  # the exact HELLO that opened it (retransmissions compare equal)
        self.ack = ack  # the signed HELLO_ACK, re-sent verbatim to a retransmitted HELLO


class ChipAgent(asyncio.DatagramProtocol):
    """An embeddable chip agent on one UDP socket.

    ``clock_ns`` (monotonic) and ``wall_clock_ns`` (Unix) are injectable for tests.
    """

    def __init__(
        self,
        key: PrivateKey,
        registry: Registry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: AgentLimits | None = None,
        clock_ns: Any = time.monotonic_ns,
        wall_clock_ns: Any = time.time_ns,
    ) -> None:
        if key.role not in (Role.CHIP, Role.LANDMARK):
            raise ValueError(f"ChipAgent needs a chip or landmark key, got a {key.role.value} key")
        self._key = key
        self._role = key.role
        self._secret = key.secret_key_bytes
        self._registry = registry
        self._host = host
        self._port = port
        self._limits = limits if limits is not None else AgentLimits()
        self._clock_ns = clock_ns
        self._wall_clock_ns = wall_clock_ns
        self._sessions: dict[bytes, _Session] = {}
        self._seen_sessions: dict[bytes, int] = {}  # session id -> forget after (monotonic ns)
        self._buckets: dict[str, _Bucket] = {}
        self._counters: dict[str, int] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._answered = 0

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        if self._transport is not None:
            raise RuntimeError("agent already started")
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(self._host, self._port))
        except OSError as e:
            raise TransportError(f"cannot bind {self._host}:{self._port}: {e}") from e

    async def stop(self) -> None:
        transport, self._transport = self._transport, None
        self._sessions.clear()
        if transport is not None:
            transport.close()

    async def __aenter__(self) -> ChipAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def chip_id(self) -> str:
        return self._key.id

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("agent not started")
        sockname = self._transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    @property
    def counters(self) -> Mapping[str, int]:
        """Per-reason drop counters plus ``answered``, ``sessions_opened`` and
        ``hello_acks_resent`` (the three that are not drops)."""
        return {**self._counters, "answered": self._answered}

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    def update_registry(self, registry: Registry) -> None:
        """Swap in a new registry (e.g. after a revocation); open sessions are dropped."""
        self._registry = registry
        self._sessions.clear()

    # -- asyncio.DatagramProtocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        self._drop("socket_error")

    def _drop(self, reason: str) -> None:
        self._counters[reason] = self._counters.get(reason, 0) + 1

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # ---- hot path: a timed PROBE. Slices only; nothing inside is verified. ----
        if len(data) == PROBE_BYTES and data[:4] == _PROBE_HEADER:
            session = self._sessions.get(data[4:20])
            if session is None:
                self._drop("no_session")
                return
            if addr != session.addr:
                self._drop("wrong_source")
                return
            seq = int.from_bytes(data[20:24], "big")
            if seq <= session.last_seq:
                self._drop("replayed")
                return
            now = self._clock_ns()
            if now > session.expires_ns or session.remaining <= 0:
                del self._sessions[data[4:20]]
                self._drop("stale")
                return
            bucket = session.bucket
            limits = self._limits
            tokens = bucket.tokens + (now - bucket.last_ns) * limits.probe_rate_per_s * 1e-9
            bucket.last_ns = now
            if tokens > limits.probe_burst:
                tokens = limits.probe_burst
            if tokens < 1.0:
                bucket.tokens = tokens
                self._drop("rate_limited")
                return
            bucket.tokens = tokens - 1.0
            session.last_seq = seq
            session.remaining -= 1
            signature = crypto_sign(session.prefix + data[20:40], self._secret)[:64]
            transport = self._transport
            if transport is not None:
                transport.sendto(_RESPONSE_HEADER + data[4:24] + signature, addr)
                self._answered += 1
            return
        try:
            self._slow_path(data, addr)
        except ChiplocError as e:
            self._drop(e.reason)
        except Exception:  # a peer must never crash the agent; count it and carry on
            self._drop("internal_error")

    # -- slow path: everything but probes, outside any timed window ----------------
    def _slow_path(self, data: bytes, addr: Any) -> None:
        message_type = check_header(data, max_bytes=MAX_DATAGRAM_BYTES)
        if message_type == MessageType.PROBE:
            short = len(data) < PROBE_BYTES
            raise DecodeError(
                "probe of the wrong length", reason="truncated" if short else "trailing_bytes"
            )
        if message_type not in (MessageType.HELLO, MessageType.PEER_HELLO):
            if message_type in _NOT_FOR_AGENTS:
                raise DecodeError("not a message an agent accepts", reason="unexpected_type")
            raise DecodeError(f"unknown message type {message_type}", reason="unknown_type")
        raw = bytes(data)
        session = self._sessions.get(raw[4:20])
        if session is not None and self._retransmitted_hello(session, raw, addr):
            return
        hello = Hello.from_bytes(raw)
        self._accept_hello(hello, raw, addr)

    def _retransmitted_hello(self, session: _Session, raw: bytes, addr: Any) -> bool:
        """Re-send the cached HELLO_ACK if ``raw`` is the landmark retransmitting the HELLO
        of ``session`` (same bytes, same address, still live, no probe answered yet)."""
        now = self._clock_ns()
        if (
            raw != session.hello
            or addr != session.addr
            or session.last_seq >= 0
            or now > session.expires_ns
        ):
            return False  # not a retransmission: the replay cache decides
        self._take_token(session.bucket, now)
        self._counters["hello_acks_resent"] = self._counters.get("hello_acks_resent", 0) + 1
        if self._transport is not None:
            self._transport.sendto(session.ack, addr)
        return True

    def _take_token(self, bucket: _Bucket, now: int) -> None:
        """Spend one of the landmark's tokens on set-up traffic (raises ``rate_limited``)."""
        limits = self._limits
        tokens = min(
            limits.probe_burst,
            bucket.tokens + (now - bucket.last_ns) * limits.probe_rate_per_s * 1e-9,
        )
        bucket.last_ns = now
        if tokens < 1.0:
            bucket.tokens = tokens
            raise ChiplocError("landmark over its rate", reason="rate_limited")
        bucket.tokens = tokens - 1.0

    def _accept_hello(self, hello: Hello, raw: bytes, addr: Any) -> None:
        now = self._clock_ns()
        limits = self._limits
        if hello.session_id in self._seen_sessions:
            raise ReplayDetected("hello for a session already seen")
        verify_hello(
            hello,
            self._registry,
            chip_id=self._key.id,
            now_unix_ns=self._wall_clock_ns(),
            max_skew_ns=limits.max_hello_skew_ns,
            target_role=self._role,
        )
        self._prune(now)
        if len(self._sessions) >= limits.max_sessions:
            raise ChiplocError("too many live sessions", reason="too_many_sessions")
        bucket = self._buckets.get(hello.landmark_id)
        if bucket is None:
            bucket = self._buckets[hello.landmark_id] = _Bucket(limits.probe_burst, now)
        # hellos also spend a token: a landmark cannot flood session set-up either
        self._take_token(bucket, now)
        # remember the session id for twice the skew window: a replay is then either
        # caught here or stale
        self._seen_sessions[hello.session_id] = now + 2 * limits.max_hello_skew_ns
        ack = HelloAck.create(
            self._key, session_id=hello.session_id, landmark_id=hello.landmark_id
        ).to_bytes()
        self._sessions[hello.session_id] = _Session(
            addr,
            response_prefix(
                hello.session_id, self._key.id, hello.landmark_id, target_role=self._role
            ),
            now + limits.session_lifetime_ns,
            limits.max_probes_per_session,
            bucket,
            raw,
            ack,
        )
        self._counters["sessions_opened"] = self._counters.get("sessions_opened", 0) + 1
        if self._transport is not None:
            self._transport.sendto(ack, addr)

    def _prune(self, now: int) -> None:
        if len(self._seen_sessions) > 64:
            for sid in [s for s, until in self._seen_sessions.items() if until < now]:
                del self._seen_sessions[sid]
        for sid in [s for s, sess in self._sessions.items() if sess.expires_ns < now]:
            del self._sessions[sid]
