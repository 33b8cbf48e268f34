"""The landmark's sans-I/O round: hello, a burst of timed probes, a signed report.

The edge drives a :class:`RoundCore`: it sends :attr:`RoundCore.hello` (again, byte for byte,
at the offsets :func:`hello_schedule_ns` gives, until a HELLO_ACK is accepted or the hello
timeout passes), feeds back the agent's HELLO_ACK, then for each probe asks
:meth:`RoundCore.next_probe` for the datagram (built before the send clock is read), times it,
and feeds back the response with its RTT, or declares it lost. :meth:`RoundCore.finish`
signs the report.

Invariants enforced here:

* No probe is issued before a HELLO_ACK for this session, signed by the enrolled chip, has been
  accepted (outside the timed window).
* Each probe has a fresh caller-supplied 16-byte nonce (distinct within the round) and the
  next sequence number; only one probe is outstanding at a time.
* A response is recorded only if it is exactly a RESPONSE for this session and the outstanding
  sequence number and its chip signature verifies over (nonce, session, chip, landmark, seq);
  otherwise the matching error is raised and the probe stays outstanding (a forged or corrupt
  answer cannot cancel the real one).
* RTTs are recorded exactly as measured; the report's overhead lower bound is a separate field.
* The target is a chip (:class:`ChipEntry`) or, in the landmark mesh, a peer landmark
  (:class:`LandmarkEntry`): the role comes from the entry's type and is bound into the HELLO,
  the accepted HELLO_ACK, every verified answer and the signed report.
* Set-up is retransmitted, timed probes never are: a HELLO is re-sent as the same signed bytes
  (same session, same ``issued_at``), so every copy is one session at the agent and every
  HELLO_ACK is the same bytes; a copy of the accepted HELLO_ACK is recognised
  (:meth:`RoundCore.is_ack_copy`) and counted ``duplicate_hello_ack``, never used. A lost probe
  is recorded lost and followed by the next sequence number with a fresh nonce; a nonce is
  never sent twice.
"""

from __future__ import annotations

from chiploc.common.errors import BindingError, DecodeError, LocalProtocolError, ReplayDetected
from chiploc.protocol import (
    NONCE_BYTES,
    RESPONSE_BYTES,
    ChipEntry,
    Hello,
    HelloAck,
    LandmarkEntry,
    MeasurementReport,
    MessageType,
    PrivateKey,
    Probe,
    ProbeRecord,
    Role,
    draft_report,
    header,
    response_message,
    sign_draft,
    verify_hello_ack,
    verify_signature,
)

__all__ = ["RoundCore", "hello_schedule_ns"]

_RESPONSE_HEADER = header(MessageType.RESPONSE)
_HELLO_ACK_HEADER = header(MessageType.HELLO_ACK)
_NO_SIGNATURE = bytes(64)


def hello_schedule_ns(timeout_ns: int, retries: int) -> tuple[int, ...]:
    """When to send the HELLO, in ns after the first send: ``(0, t1, ..., t_retries)``.

    Exponential backoff inside the timeout: the timeout is split into ``2**(retries+1) - 1``
    units and the waits after successive sends are 1, 2, 4, ... units, so the last copy has
    the longest wait (half the timeout) and every send happens before the deadline. With
    ``retries = 3`` and 1 s: sends at 0, 67, 200 and 467 ms, give up at 1 000 ms.
    """
    if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int) or timeout_ns <= 0:
        raise LocalProtocolError("hello timeout must be a positive integer", reason="bad_timeout")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 16:
        raise LocalProtocolError("hello retries must be an integer in 0..16", reason="bad_retries")
    units = (1 << (retries + 1)) - 1
    return tuple(timeout_ns * ((1 << i) - 1) // units for i in range(retries + 1))


class RoundCore:
    """One measurement round of one chip (mutable state machine, no I/O, no clocks)."""

    __slots__ = (
        "_ack",
        "_acked",
        "_key",
        "_nonces",
        "_outstanding",
        "_records",
        "_seq",
        "chip",
        "chip_address",
        "hello",
        "probes",
        "session_id",
        "started_at_unix_ns",
        "target_role",
    )

    def __init__(
        self,
        *,
        key: PrivateKey,
        chip: ChipEntry | LandmarkEntry,
        chip_address: str,
        session_id: bytes,
        probes: int,
        started_at_unix_ns: int,
    ) -> None:
        if key.role is not Role.LANDMARK:
            raise LocalProtocolError("a round needs a landmark key", reason="bad_key")
        if not 1 <= probes <= 10_000:
            raise LocalProtocolError("probes per round must be 1..10000", reason="bad_probes")
        self._key = key
        self.chip = chip
        self.target_role = Role.LANDMARK if isinstance(chip, LandmarkEntry) else Role.CHIP
        if self.target_role is Role.LANDMARK and chip.id == key.id:
            raise LocalProtocolError("a landmark does not measure itself", reason="self_peer")
        self.chip_address = chip_address
        self.session_id = session_id
        self.probes = probes
        self.started_at_unix_ns = started_at_unix_ns
        self.hello = Hello.create(
            key,
            session_id=session_id,
            chip_id=chip.id,
            issued_at_unix_ns=started_at_unix_ns,
            target_role=self.target_role,
        ).to_bytes()
        self._acked = False
        self._ack = b""
        self._seq = 0
        self._outstanding: tuple[int, bytes] | None = None
        self._nonces: set[bytes] = set()
        self._records: list[ProbeRecord] = []

    @property
    def acked(self) -> bool:
        return self._acked

    @property
    def done(self) -> bool:
        return len(self._records) >= self.probes

    @property
    def outstanding_seq(self) -> int | None:
        return None if self._outstanding is None else self._outstanding[0]

    def accept_hello_ack(self, data: bytes) -> None:
        """Accept the chip's signed HELLO_ACK (DecodeError / BindingError / BadSignature)."""
        ack = HelloAck.from_bytes(data)
        verify_hello_ack(ack, self.chip, session_id=self.session_id, landmark_id=self._key.id)
        self._ack = bytes(data)
        self._acked = True

    def is_ack_copy(self, data: bytes) -> bool:
        """True if ``data`` is a byte-identical copy of the HELLO_ACK already accepted (the
        answer to a retransmitted HELLO, or a network duplicate): counted, never used."""
        return self._acked and data == self._ack

    def next_probe(self, nonce: bytes) -> bytes:
        """The next PROBE datagram, with ``nonce`` (16 fresh random bytes from the edge)."""
        if not self._acked:
            raise LocalProtocolError("no probe before an accepted hello-ack", reason="not_acked")
        if self._outstanding is not None:
            raise LocalProtocolError("a probe is still outstanding", reason="outstanding")
        if self.done:
            raise LocalProtocolError("the burst is complete", reason="done")
        if len(nonce) != NONCE_BYTES or nonce in self._nonces:
            raise LocalProtocolError("nonce must be 16 fresh bytes", reason="bad_nonce")
        seq = self._seq
        self._seq += 1
        self._nonces.add(nonce)
        self._outstanding = (seq, nonce)
        return Probe(session_id=self.session_id, seq=seq, nonce=nonce).to_bytes()

    def accept_response(self, data: bytes, *, rtt_ns: int, timestamp_source: str) -> None:
        """Record the outstanding probe as answered, after checking framing and signature."""
        if self._outstanding is None:
            raise ReplayDetected("no probe outstanding", reason="unexpected_response")
        if self.is_ack_copy(data):
            raise ReplayDetected("a copy of the accepted hello-ack", reason="duplicate_hello_ack")
        if len(data) != RESPONSE_BYTES or data[:4] != _RESPONSE_HEADER:
            raise DecodeError("not a RESPONSE datagram", reason="bad_field")
        if data[4:20] != self.session_id:
            raise BindingError("response for another session", reason="wrong_session")
        seq, nonce = self._outstanding
        got_seq = int.from_bytes(data[20:24], "big")
        if got_seq != seq:
            reason = "replayed" if got_seq < seq else "wrong_seq"
            raise ReplayDetected(
                f"response seq {got_seq} while {seq} is outstanding", reason=reason
            )
        signature = bytes(data[24:88])
        message = response_message(
            session_id=self.session_id,
            chip_id=self.chip.id,
            landmark_id=self._key.id,
            seq=seq,
            nonce=nonce,
            target_role=self.target_role,
        )
        verify_signature(self.chip.public_key, message, signature)
        self._records.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=rtt_ns,
                chip_signature=signature,
                timestamp_source=timestamp_source,
            )
        )
        self._outstanding = None

    def record_lost(self) -> None:
        """The outstanding probe timed out (or could not be sent)."""
        if self._outstanding is None:
            raise LocalProtocolError("no probe outstanding", reason="not_outstanding")
        seq, nonce = self._outstanding
        self._records.append(
            ProbeRecord(
                seq=seq,
                nonce=nonce,
                rtt_ns=None,
                chip_signature=_NO_SIGNATURE,
                timestamp_source="none",
            )
        )
        self._outstanding = None

    def finish(self, *, finished_at_unix_ns: int) -> MeasurementReport:
        """Sign the report over every probe issued (at least one)."""
        return sign_draft(self._key, self.finish_draft(finished_at_unix_ns=finished_at_unix_ns))

    def finish_draft(self, *, finished_at_unix_ns: int) -> MeasurementReport:
        """The unsigned report over every probe issued (at least one), for a batch signature
        (``protocol.sign_report_batch``)."""
        if self._outstanding is not None:
            self.record_lost()
        if not self._records:
            raise LocalProtocolError("no probe was issued", reason="empty_round")
        return draft_report(
            landmark_id=self._key.id,
            chip_id=self.chip.id,
            session_id=self.session_id,
            chip_address=self.chip_address,
            started_at_unix_ns=self.started_at_unix_ns,
            finished_at_unix_ns=max(finished_at_unix_ns, self.started_at_unix_ns),
            probes=self._records,
            overhead_lower_bound_ns=0,
            target_role=self.target_role,
        )
