"""Attacks that forge the chip's answers: random bytes or another chip's key in
place of its signature (:func:`forged_signature_attack`,
:func:`wrong_key_signature_attack`), and answers signed with the real chip key but
sent before the probe arrives (:func:`early_answer_attack`).

Invariants:

* Forged answers reach the landmark before the real ones; detection is read from
  the landmark's drop counters and from :func:`protocol.verify_report`, never
  assumed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from chiploc.common.errors import BadSignature
from chiploc.protocol import (
    MessageType,
    PrivateKey,
    Probe,
    ProbeRecord,
    Response,
    Role,
    response_message,
    verify_report,
)

from ._attack_evidence import _report_refusal, _resign
from ._attack_lab import _PROBES, AttackOutcome, _cast, _Checks, _key, _world
from ._attack_middlebox import _Relay
from ._delay import Address

__all__ = ["early_answer_attack", "forged_signature_attack", "wrong_key_signature_attack"]


class _Forger(_Relay):
    """Answers every probe first with ``signer(probe)`` signatures, then forwards it."""

    def __init__(self, upstream: Address, signer: Callable[[Probe], bytes]) -> None:
        super().__init__(upstream)
        self.signer = signer
        self.forged: list[bytes] = []

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            signature = self.signer(probe)
            self.forged.append(signature)
            answer = Response(session_id=probe.session_id, seq=probe.seq, signature=signature)
            self.to_landmark(answer.to_bytes(), addr)
        self.to_chip(data)


async def _signature_attack(
    directory: Path, name: str, make_signer: Callable[[str, str], Callable[[Probe], bytes]]
) -> AttackOutcome:
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name, also=["chip-2"])
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        forger = await lab.relay(_Forger(agent.address, make_signer(chip_key.id, lm_key.id)))
        before = daemon.counters.get("bad_signature", 0)
        report = await daemon.measure(chip_key.id, forger.address, probes=_PROBES)
        rose = daemon.counters.get("bad_signature", 0) - before
    checks.check(
        "forged answers rejected at the landmark",
        rose >= _PROBES,
        f"landmark bad_signature +{rose} for {_PROBES} forged answers",
    )
    verified = verify_report(report.raw, registry)
    forged = set(forger.forged)
    checks.check(
        "the real answers were kept",
        verified.answered == _PROBES and not any(p.chip_signature in forged for p in report.probes),
        f"{verified.answered}/{_PROBES} answered with the chip's own signatures",
    )
    # a landmark that signs the forged answers into its report: verify_report refuses it
    tampered = _resign(
        lm_key,
        report,
        [
            ProbeRecord(
                seq=p.seq,
                nonce=p.nonce,
                rtt_ns=p.rtt_ns,
                chip_signature=sig,
                timestamp_source=p.timestamp_source,
            )
            for p, sig in zip(report.probes, forger.forged, strict=True)
            if p.rtt_ns is not None
        ],
    )
    refused = _report_refusal(tampered.raw, registry, BadSignature)
    checks.check(
        "no report accepts them (even one the landmark signs)",
        refused == "bad_chip_signature",
        f"verify_report: {refused}",
    )
    return checks.outcome(
        name,
        "landmark RoundCore verifies the chip's Ed25519 signature against the registry key "
        "(bad_signature, the probe stays outstanding); verify_report re-checks every chip "
        "signature (bad_chip_signature)",
    )


async def forged_signature_attack(directory: Path) -> AttackOutcome:
    """Answers with random bytes in place of the chip's signature."""

    def make(chip_id: str, landmark_id: str) -> Callable[[Probe], bytes]:
        return lambda probe: os.urandom(64)

    return await _signature_attack(directory, "forged_signature", make)


async def wrong_key_signature_attack(directory: Path) -> AttackOutcome:
    """Answers signed over the right message by another (enrolled) chip's key."""
    other = _key(Role.CHIP, "chip-2", "wrong_key_signature")

    def make(chip_id: str, landmark_id: str) -> Callable[[Probe], bytes]:
        def sign(probe: Probe) -> bytes:
            message = response_message(
                session_id=probe.session_id,
                chip_id=chip_id,
                landmark_id=landmark_id,
                seq=probe.seq,
                nonce=probe.nonce,
            )
            return other.sign(message)

        return sign

    return await _signature_attack(directory, "wrong_key_signature", make)


class _EarlyResponder(_Relay):
    """The chip's operator holds the chip key and answers before probes arrive.

    Right after the HELLO_ACK it sends, for every upcoming seq, a response signed by the
    real chip key over a guessed nonce; on each probe it pre-sends guesses for the next
    seq, then forwards the probe to the (distant) chip."""

    def __init__(self, upstream: Address, key: PrivateKey, landmark_id: str) -> None:
        super().__init__(upstream)
        self.key = key
        self.landmark_id = landmark_id
        self.guesses: list[bytes] = []

    def _guess(self, session_id: bytes, seq: int, addr: Address) -> None:
        message = response_message(
            session_id=session_id,
            chip_id=self.key.id,
            landmark_id=self.landmark_id,
            seq=seq,
            nonce=os.urandom(16),  # the probe's nonce is not known yet
        )
        signature = self.key.sign(message)
        self.guesses.append(signature)
        self.to_landmark(
            Response(session_id=session_id, seq=seq, signature=signature).to_bytes(), addr
        )

    def from_chip(self, data: bytes) -> None:
        super().from_chip(data)
        if len(data) >= 20 and data[3] == MessageType.HELLO_ACK:
            sid = bytes(data[4:20])
            addr = self.sessions.get(sid)
            if addr is not None:
                for seq in range(_PROBES):
                    self._guess(sid, seq, addr)

    def from_landmark(self, data: bytes, addr: Address) -> None:
        if len(data) == 40 and data[3] == MessageType.PROBE:
            probe = Probe.from_bytes(bytes(data))
            self._guess(probe.session_id, probe.seq, addr)  # the outstanding seq
            self._guess(probe.session_id, probe.seq + 1, addr)  # the next one
        self.to_chip(data)


async def early_answer_attack(directory: Path) -> AttackOutcome:
    """Answers sent before the probe arrives, to cut the round trip short."""
    name = "early_answer"
    checks = _Checks()
    chip_key, (lm_key,), registry = _cast(name)
    far_ms = 20.0
    async with _world(directory, registry, [lm_key], chip_key, probe_timeout_ms=500) as world:
        lab, (daemon,), agent = world
        # the real chip sits 20 ms (round trip) behind the early responder
        far = await lab.relay(_Relay(agent.address))
        far.hold_answers_s = far_ms / 1000
        early = await lab.relay(_EarlyResponder(far.address, chip_key, lm_key.id))
        before = dict(daemon.counters)
        report = await daemon.measure(chip_key.id, early.address, probes=_PROBES)
        after = dict(daemon.counters)
    reasons = ("wrong_seq", "bad_signature", "unsolicited")
    rose = {k: after.get(k, 0) - before.get(k, 0) for k in reasons}
    checks.check(
        "guesses for the outstanding seq rejected (nonce unknown)",
        rose["bad_signature"] >= _PROBES,
        f"landmark bad_signature +{rose['bad_signature']}",
    )
    checks.check(
        "answers for a seq not yet probed rejected",
        rose["wrong_seq"] >= _PROBES - 1,
        f"landmark wrong_seq +{rose['wrong_seq']}",
    )
    checks.check(
        "every early answer counted",
        sum(rose.values()) == len(early.guesses),
        f"{len(early.guesses)} sent, {rose}",
    )
    verified = verify_report(report.raw, registry)
    guessed = set(early.guesses)
    min_ms = (verified.min_rtt_ns or 0) / 1e6
    checks.check(
        "no early answer accepted: every RTT includes the real path",
        verified.answered == _PROBES
        and min_ms >= far_ms
        and not any(p.chip_signature in guessed for p in verified.probes),
        f"{verified.answered}/{_PROBES} answered, min RTT {min_ms:.2f} ms >= {far_ms} ms held",
    )
    return checks.outcome(
        name,
        "the chip signs the landmark's fresh 16-byte nonce, unknown before the probe "
        "(bad_signature); only the outstanding seq is accepted (wrong_seq); the RTT is "
        "timed on the landmark's clock from its own send",
    )
