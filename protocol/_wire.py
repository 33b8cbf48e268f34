"""The chiploc wire format: session set-up, timed probes and responses (sans-I/O).

Invariants enforced here:

* Every datagram starts with the 4-byte header ``MAGIC (2) | VERSION (1) | TYPE (1)`` and is
  at most :data:`MAX_DATAGRAM_BYTES` long; every message type has an exact length (or an
  exact length given its length-prefixed ids). Anything else raises
  :class:`~chiploc.common.errors.DecodeError` with a reason code: ``truncated``, ``oversized``,
  ``bad_magic``, ``wrong_version``, ``unknown_type``, ``trailing_bytes``, ``bad_field``.
  Decoding never raises anything else.
* Every signature covers a domain-separation prefix (``chiploc/<kind>/v1\\x00``) followed by
  the exact bytes it protects, so a signature for one message kind never verifies as another.
* A PROBE is unsigned and carries a fresh 16-byte nonce; the chip's RESPONSE signature covers
  ``RESPONSE_DOMAIN | session_id | len(chip_id) chip_id | len(landmark_id) landmark_id | seq |
  nonce`` (see :func:`response_message`), binding nonce, session, chip, landmark and sequence.
* HELLO freshness, enrolment and signatures are checked by :func:`verify_hello` /
  :func:`verify_hello_ack`, which raise :class:`~chiploc.common.errors.VerificationError`
  subclasses.
* The target of a session has a role, bound into every signature: a chip (``HELLO`` 0x01,
  ``HELLO_ACK`` 0x02, ``chiploc/response/v1``) or, in the landmark mesh, a peer landmark
  answering with its own landmark key (``PEER_HELLO`` 0x06, ``PEER_HELLO_ACK`` 0x07,
  ``chiploc/peer-response/v1``). The type byte is inside the signed header and the
  response domain differs, so a landmark's mesh answer never verifies as a chip's answer
  (nor the reverse), even if an operator enrolled one key in both roles.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from chiploc.common.errors import (
    BindingError,
    DecodeError,
    LocalProtocolError,
    StaleMessage,
)
from chiploc.protocol._keys import PrivateKey, Role, validate_id, verify_signature
from chiploc.protocol._registry import ChipEntry, LandmarkEntry, Registry

__all__ = [
    "HEADER_BYTES",
    "HELLO_ACK_DOMAIN",
    "HELLO_DOMAIN",
    "MAGIC",
    "MAX_DATAGRAM_BYTES",
    "NONCE_BYTES",
    "PEER_HELLO_ACK_DOMAIN",
    "PEER_HELLO_DOMAIN",
    "PEER_RESPONSE_DOMAIN",
    "PROBE_BYTES",
    "RESPONSE_BYTES",
    "RESPONSE_DOMAIN",
    "SESSION_ID_BYTES",
    "SIGNATURE_BYTES",
    "TARGET_ROLES",
    "VERSION",
    "Hello",
    "HelloAck",
    "MessageType",
    "Probe",
    "Response",
    "check_header",
    "check_target_role",
    "decode_datagram",
    "encode_id",
    "header",
    "response_message",
    "response_prefix",
    "verify_hello",
    "verify_hello_ack",
    "verify_response",
]

MAGIC: Final = b"\xc1\x0c"
VERSION: Final = 1
HEADER_BYTES: Final = 4
SESSION_ID_BYTES: Final = 16
NONCE_BYTES: Final = 16
SIGNATURE_BYTES: Final = 64
MAX_DATAGRAM_BYTES: Final = 512

HELLO_DOMAIN: Final = b"chiploc/hello/v1\x00"
HELLO_ACK_DOMAIN: Final = b"chiploc/hello-ack/v1\x00"
RESPONSE_DOMAIN: Final = b"chiploc/response/v1\x00"
PEER_HELLO_DOMAIN: Final = b"chiploc/peer-hello/v1\x00"
PEER_HELLO_ACK_DOMAIN: Final = b"chiploc/peer-hello-ack/v1\x00"
PEER_RESPONSE_DOMAIN: Final = b"chiploc/peer-response/v1\x00"

#: Who answers a session: a chip (the product) or a peer landmark (the mesh).
TARGET_ROLES: Final = (Role.CHIP, Role.LANDMARK)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U64_MAX = (1 << 64) - 1


class MessageType:
    """Type bytes (plain ints: the hot paths compare bytes, not enums)."""

    HELLO: Final = 0x01
    HELLO_ACK: Final = 0x02
    PROBE: Final = 0x03
    RESPONSE: Final = 0x04
    REPORT: Final = 0x05
    PEER_HELLO: Final = 0x06
    PEER_HELLO_ACK: Final = 0x07
    PEER_REPORT: Final = 0x08
    BATCH_REPORT: Final = 0x09
    BATCH_PEER_REPORT: Final = 0x0A


def check_target_role(role: object) -> Role:
    """``role`` if a session may target it (chip or landmark); ValueError otherwise."""
    if role not in TARGET_ROLES:
        raise ValueError(f"a session targets a chip or a landmark, not {role!r}")
    return role


def _hello_type(role: Role) -> int:
    return MessageType.PEER_HELLO if role is Role.LANDMARK else MessageType.HELLO


def _hello_ack_type(role: Role) -> int:
    return MessageType.PEER_HELLO_ACK if role is Role.LANDMARK else MessageType.HELLO_ACK


def _check_distinct(landmark_id: str, target_id: str, role: Role) -> None:
    if role is Role.LANDMARK and landmark_id == target_id:
        raise ValueError("a landmark does not measure itself")


def header(message_type: int) -> bytes:
    """The 4-byte header for ``message_type``."""
    return MAGIC + bytes((VERSION, message_type))


PROBE_BYTES: Final = HEADER_BYTES + SESSION_ID_BYTES + 4 + NONCE_BYTES  # 40
RESPONSE_BYTES: Final = HEADER_BYTES + SESSION_ID_BYTES + 4 + SIGNATURE_BYTES  # 88


def encode_id(identity: str) -> bytes:
    """``u8 length | ASCII`` for a validated identity."""
    try:
        validate_id(identity)
    except ValueError as e:
        raise LocalProtocolError(str(e), reason="bad_id") from e
    raw = identity.encode("ascii")
    return bytes((len(raw),)) + raw


def _check_bytes(value: object, length: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise ValueError(f"{name} must be {length} bytes")


def _check_u(value: object, bits: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be an unsigned {bits}-bit integer")


class _Reader:
    """Bounds-checked cursor over a message body; every failure is a DecodeError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise DecodeError("message truncated", reason="truncated")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "big")

    def ident(self) -> str:
        n = self.u8()
        raw = self.take(n)
        try:
            return validate_id(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DecodeError("invalid identity field", reason="bad_field") from e

    def end(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError("trailing bytes after message", reason="trailing_bytes")


def check_header(data: bytes, *, max_bytes: int = MAX_DATAGRAM_BYTES) -> int:
    """Validate size and header of a peer's bytes; return the type byte (DecodeError otherwise)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("not bytes", reason="bad_field")
    if len(data) > max_bytes:
        raise DecodeError(f"message longer than {max_bytes} bytes", reason="oversized")
    if len(data) < HEADER_BYTES:
        raise DecodeError("message shorter than its header", reason="truncated")
    if bytes(data[:2]) != MAGIC:
        raise DecodeError("bad magic", reason="bad_magic")
    if data[2] != VERSION:
        raise DecodeError(f"wire version {data[2]} is not {VERSION}", reason="wrong_version")
    return data[3]


# --------------------------------------------------------------------------- HELLO
@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Landmark → agent: opens a session. Signed by the landmark over HELLO_DOMAIN + body.

    ``target_role`` is ``Role.CHIP`` (type HELLO) or ``Role.LANDMARK`` (type PEER_HELLO, the
    mesh: ``chip_id`` then names the peer landmark, domain ``PEER_HELLO_DOMAIN``)."""

    session_id: bytes
    issued_at_unix_ns: int
    landmark_id: str
    chip_id: str
    signature: bytes
    target_role: Role = Role.CHIP

    def __post_init__(self) -> None:
        _check_bytes(self.session_id, SESSION_ID_BYTES, "session_id")
        _check_u(self.issued_at_unix_ns, 64, "issued_at_unix_ns")
        validate_id(self.landmark_id, what="landmark_id")
        validate_id(self.chip_id, what="chip_id")
        _check_bytes(self.signature, SIGNATURE_BYTES, "signature")
        check_target_role(self.target_role)
        _check_distinct(self.landmark_id, self.chip_id, self.target_role)

    @staticmethod
    def body(
        session_id: bytes,
        issued_at_unix_ns: int,
        landmark_id: str,
        chip_id: str,
        target_role: Role = Role.CHIP,
    ) -> bytes:
        return (
            header(_hello_type(target_role))
            + session_id
            + _U64.pack(issued_at_unix_ns)
            + encode_id(landmark_id)
            + encode_id(chip_id)
        )

    @staticmethod
    def domain(target_role: Role) -> bytes:
        return PEER_HELLO_DOMAIN if target_role is Role.LANDMARK else HELLO_DOMAIN

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        *,
        session_id: bytes,
        chip_id: str,
        issued_at_unix_ns: int,
        target_role: Role = Role.CHIP,
    ) -> Hello:
        role = check_target_role(target_role)
        body = cls.body(session_id, issued_at_unix_ns, key.id, chip_id, role)
        return cls(
            session_id=session_id,
            issued_at_unix_ns=issued_at_unix_ns,
            landmark_id=key.id,
            chip_id=chip_id,
            signature=key.sign(cls.domain(role) + body),
            target_role=role,
        )

    def _body(self) -> bytes:
        return self.body(
            self.session_id,
            self.issued_at_unix_ns,
            self.landmark_id,
            self.chip_id,
            self.target_role,
        )

    def signed_message(self) -> bytes:
        return self.domain(self.target_role) + self._body()

    def to_bytes(self) -> bytes:
        return self._body() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Hello:
        message_type = check_header(data)
        if message_type not in (MessageType.HELLO, MessageType.PEER_HELLO):
            raise DecodeError("not a HELLO", reason="unexpected_type")
        r = _Reader(bytes(data), HEADER_BYTES)
        session_id = r.take(SESSION_ID_BYTES)
        issued = r.u64()
        landmark_id = r.ident()
        chip_id = r.ident()
        signature = r.take(SIGNATURE_BYTES)
        r.end()
        if message_type == MessageType.PEER_HELLO and landmark_id == chip_id:
            raise DecodeError("a landmark does not measure itself", reason="bad_field")
        return cls(
            session_id=session_id,
            issued_at_unix_ns=issued,
            landmark_id=landmark_id,
            chip_id=chip_id,
            signature=signature,
            target_role=Role.LANDMARK if message_type == MessageType.PEER_HELLO else Role.CHIP,
        )


def verify_hello(
    hello: Hello,
    registry: Registry,
    *,
    chip_id: str,
    now_unix_ns: int,
    max_skew_ns: int,
    target_role: Role = Role.CHIP,
) -> LandmarkEntry:
    """Check a HELLO for ``chip_id`` (in ``target_role``): enrolled landmark, addressed to us
    in our role, fresh, signed.

    Raises UnknownIdentity / RevokedIdentity / BindingError (``wrong_chip``, ``wrong_role``) /
    StaleMessage / BadSignature. Returns the landmark's registry entry.
    """
    landmark = registry.landmark(hello.landmark_id)
    if hello.target_role is not target_role:
        raise BindingError(
            f"hello targets a {hello.target_role.value}, this agent answers as a"
            f" {target_role.value}",
            reason="wrong_role",
        )
    if hello.chip_id != chip_id:
        raise BindingError(
            f"hello is for chip {hello.chip_id!r}, not {chip_id!r}", reason="wrong_chip"
        )
    if abs(now_unix_ns - hello.issued_at_unix_ns) > max_skew_ns:
        raise StaleMessage("hello issued outside the freshness window")
    verify_signature(landmark.public_key, hello.signed_message(), hello.signature)
    return landmark


# ----------------------------------------------------------------------- HELLO_ACK
@dataclass(frozen=True, slots=True, kw_only=True)
class HelloAck:
    """Agent → landmark: accepts a session. Signed by the chip over HELLO_ACK_DOMAIN + body
    (a peer landmark: type PEER_HELLO_ACK over PEER_HELLO_ACK_DOMAIN, with its landmark key)."""

    session_id: bytes
    landmark_id: str
    chip_id: str
    signature: bytes
    target_role: Role = Role.CHIP

    def __post_init__(self) -> None:
        _check_bytes(self.session_id, SESSION_ID_BYTES, "session_id")
        validate_id(self.landmark_id, what="landmark_id")
        validate_id(self.chip_id, what="chip_id")
        _check_bytes(self.signature, SIGNATURE_BYTES, "signature")
        check_target_role(self.target_role)
        _check_distinct(self.landmark_id, self.chip_id, self.target_role)

    @staticmethod
    def body(
        session_id: bytes, landmark_id: str, chip_id: str, target_role: Role = Role.CHIP
    ) -> bytes:
        return (
            header(_hello_ack_type(target_role))
            + session_id
            + encode_id(landmark_id)
            + encode_id(chip_id)
        )

    @staticmethod
    def domain(target_role: Role) -> bytes:
        return PEER_HELLO_ACK_DOMAIN if target_role is Role.LANDMARK else HELLO_ACK_DOMAIN

    @classmethod
    def create(cls, key: PrivateKey, *, session_id: bytes, landmark_id: str) -> HelloAck:
        """Signed by ``key``: a chip key answers as a chip, a landmark key as a mesh peer."""
        role = check_target_role(key.role)
        body = cls.body(session_id, landmark_id, key.id, role)
        return cls(
            session_id=session_id,
            landmark_id=landmark_id,
            chip_id=key.id,
            signature=key.sign(cls.domain(role) + body),
            target_role=role,
        )

    def _body(self) -> bytes:
        return self.body(self.session_id, self.landmark_id, self.chip_id, self.target_role)

    def signed_message(self) -> bytes:
        return self.domain(self.target_role) + self._body()

    def to_bytes(self) -> bytes:
        return self._body() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> HelloAck:
        message_type = check_header(data)
        if message_type not in (MessageType.HELLO_ACK, MessageType.PEER_HELLO_ACK):
            raise DecodeError("not a HELLO_ACK", reason="unexpected_type")
        r = _Reader(bytes(data), HEADER_BYTES)
        session_id = r.take(SESSION_ID_BYTES)
        landmark_id = r.ident()
        chip_id = r.ident()
        signature = r.take(SIGNATURE_BYTES)
        r.end()
        if message_type == MessageType.PEER_HELLO_ACK and landmark_id == chip_id:
            raise DecodeError("a landmark does not measure itself", reason="bad_field")
        return cls(
            session_id=session_id,
            landmark_id=landmark_id,
            chip_id=chip_id,
            signature=signature,
            target_role=(
                Role.LANDMARK if message_type == MessageType.PEER_HELLO_ACK else Role.CHIP
            ),
        )


def verify_hello_ack(
    ack: HelloAck, chip: ChipEntry | LandmarkEntry, *, session_id: bytes, landmark_id: str
) -> None:
    """Check a HELLO_ACK answers our session, from ``chip`` (a peer landmark's entry in the
    mesh) in that role; raise BindingError/BadSignature."""
    role = Role.LANDMARK if isinstance(chip, LandmarkEntry) else Role.CHIP
    if (
        ack.session_id != session_id
        or ack.landmark_id != landmark_id
        or ack.chip_id != chip.id
        or ack.target_role is not role
    ):
        raise BindingError("hello-ack does not match the session", reason="wrong_session")
    verify_signature(chip.public_key, ack.signed_message(), ack.signature)


# --------------------------------------------------------------------------- PROBE
@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """Landmark → agent, timed: ``session_id | seq u32 | nonce (16)``. Unsigned by design."""

    session_id: bytes
    seq: int
    nonce: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.session_id, SESSION_ID_BYTES, "session_id")
        _check_u(self.seq, 32, "seq")
        _check_bytes(self.nonce, NONCE_BYTES, "nonce")

    def to_bytes(self) -> bytes:
        return header(MessageType.PROBE) + self.session_id + _U32.pack(self.seq) + self.nonce

    @classmethod
    def from_bytes(cls, data: bytes) -> Probe:
        if check_header(data) != MessageType.PROBE:
            raise DecodeError("not a PROBE", reason="unexpected_type")
        r = _Reader(bytes(data), HEADER_BYTES)
        session_id = r.take(SESSION_ID_BYTES)
        seq = r.u32()
        nonce = r.take(NONCE_BYTES)
        r.end()
        return cls(session_id=session_id, seq=seq, nonce=nonce)


def response_prefix(
    session_id: bytes, chip_id: str, landmark_id: str, *, target_role: Role = Role.CHIP
) -> bytes:
    """The per-session constant head of :func:`response_message` (precomputed by the agent).

    A peer landmark answering in the mesh signs under ``PEER_RESPONSE_DOMAIN``."""
    domain = (
        PEER_RESPONSE_DOMAIN if check_target_role(target_role) is Role.LANDMARK else RESPONSE_DOMAIN
    )
    return domain + session_id + encode_id(chip_id) + encode_id(landmark_id)


def response_message(
    *,
    session_id: bytes,
    chip_id: str,
    landmark_id: str,
    seq: int,
    nonce: bytes,
    target_role: Role = Role.CHIP,
) -> bytes:
    """What the chip signs: prefix | seq u32 | nonce (the tail equals PROBE bytes 20..40)."""
    prefix = response_prefix(session_id, chip_id, landmark_id, target_role=target_role)
    return prefix + _U32.pack(seq) + nonce


# ------------------------------------------------------------------------ RESPONSE
@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """Agent → landmark, timed: ``session_id | seq u32 | chip signature (64)``."""

    session_id: bytes
    seq: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.session_id, SESSION_ID_BYTES, "session_id")
        _check_u(self.seq, 32, "seq")
        _check_bytes(self.signature, SIGNATURE_BYTES, "signature")

    def to_bytes(self) -> bytes:
        return header(MessageType.RESPONSE) + self.session_id + _U32.pack(self.seq) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Response:
        if check_header(data) != MessageType.RESPONSE:
            raise DecodeError("not a RESPONSE", reason="unexpected_type")
        r = _Reader(bytes(data), HEADER_BYTES)
        session_id = r.take(SESSION_ID_BYTES)
        seq = r.u32()
        signature = r.take(SIGNATURE_BYTES)
        r.end()
        return cls(session_id=session_id, seq=seq, signature=signature)


def verify_response(
    chip_public_key: bytes,
    *,
    session_id: bytes,
    chip_id: str,
    landmark_id: str,
    seq: int,
    nonce: bytes,
    signature: bytes,
    target_role: Role = Role.CHIP,
) -> None:
    """Raise BadSignature unless ``signature`` is the chip's over (nonce, session, ids, seq)."""
    message = response_message(
        session_id=session_id,
        chip_id=chip_id,
        landmark_id=landmark_id,
        seq=seq,
        nonce=nonce,
        target_role=target_role,
    )
    verify_signature(chip_public_key, message, signature)


_Message = Hello | HelloAck | Probe | Response
_DECODERS: dict[int, Callable[[bytes], _Message]] = {
    MessageType.HELLO: Hello.from_bytes,
    MessageType.HELLO_ACK: HelloAck.from_bytes,
    MessageType.PROBE: Probe.from_bytes,
    MessageType.RESPONSE: Response.from_bytes,
    MessageType.PEER_HELLO: Hello.from_bytes,
    MessageType.PEER_HELLO_ACK: HelloAck.from_bytes,
}


def decode_datagram(data: bytes) -> Hello | HelloAck | Probe | Response:
    """Decode any datagram; raise DecodeError (never anything else) if it is not valid."""
    message_type = check_header(data)
    decoder = _DECODERS.get(message_type)
    if decoder is None:
        raise DecodeError(f"unknown message type 0x{message_type:02x}", reason="unknown_type")
    try:
        return decoder(bytes(data))
    except DecodeError:
        raise
    except ValueError as e:  # a field the reader accepted but the dataclass refuses
        raise DecodeError(f"invalid field: {e}", reason="bad_field") from e
