"""Signed measurement reports: the landmark's record of one timed burst (sans-I/O).

Invariants enforced here:

* A report is ``header(REPORT) | body | landmark Ed25519 signature`` where the signature covers
  ``REPORT_DOMAIN | header | body``. :func:`verify_report` checks that signature against the
  registry's (non-revoked) landmark key, **and** every answered probe's chip signature against
  the registry's chip key, **and** recomputes every derived field: the minimum RTT, the
  report-level timestamp source, strictly increasing sequence numbers, distinct nonces,
  ``finished >= started``. It trusts no field it can recompute.
* A lost probe has ``rtt_ns = None``, timestamp source ``none`` and an all-zero signature; an
  answered probe has ``rtt_ns > 0`` and a real timestamp source.
* RTTs are nanoseconds on the landmark's monotonic clock and are the raw measured values; the
  landmark-side overhead lower bound is a separate field (``overhead_lower_bound_ns``) that no
  RTT has been reduced by. It never exceeds the minimum RTT.
* A report names the role of what it measured: a chip (type REPORT 0x05, domain
  ``chiploc/report/v1``) or, in the landmark mesh, a peer landmark (type PEER_REPORT 0x08,
  domain ``chiploc/peer-report/v1``, every answer a ``chiploc/peer-response/v1`` signature by
  the peer's landmark key). :func:`verify_report` verifies one role only (default: chip), so a
  mesh report never enters a chip's evidence, nor a chip report the mesh.
* A report may instead be signed in a **batch** (type BATCH_REPORT 0x09, BATCH_PEER_REPORT
  0x0A): the same body under its own type byte is one leaf of a Merkle tree whose root the
  landmark signs once (``_batch.py``), followed by the leaf's proof (index, size, path, root,
  root signature) instead of a signature of its own. :func:`verify_report` then checks that
  the path joins this leaf at this index to the root (``batch_path_mismatch``) and that the
  root's signature verifies under the report's landmark key (``bad_batch_signature``), through
  a :class:`VerifiedRoots` cache when one is passed; everything else is checked as for a
  singly signed report.
* Parsing never raises anything but :class:`~chiploc.common.errors.DecodeError`; verification raises
  :class:`~chiploc.common.errors.VerificationError` subclasses.
"""

from __future__ import annotations

import base64
import hashlib
import operator
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, final, overload

from chiploc.common.errors import BadSignature, DecodeError, InputError
from chiploc.protocol._batch import (
    HASH_BYTES,
    MAX_BATCH_SIZE,
    BatchProof,
    VerifiedRoots,
    batch_depth,
    batch_statement,
    merkle_tree,
    root_from_path,
)
from chiploc.protocol._keys import PrivateKey, Role, validate_id, verify_signature
from chiploc.protocol._registry import ChipEntry, LandmarkEntry, Registry
from chiploc.protocol._wire import (
    HEADER_BYTES,
    NONCE_BYTES,
    SESSION_ID_BYTES,
    SIGNATURE_BYTES,
    MessageType,
    _Reader,
    check_header,
    check_target_role,
    encode_id,
    header,
    response_message,
)

__all__ = [
    "MAX_REPORT_BYTES",
    "MAX_REPORT_PROBES",
    "PEER_REPORT_DOMAIN",
    "REPORT_DOMAIN",
    "TIMESTAMP_SOURCES",
    "MeasurementReport",
    "ProbeBlock",
    "ProbeRecord",
    "decode_report",
    "draft_report",
    "sign_report",
    "sign_report_batch",
    "verify_report",
    "verify_report_lazy",
]

REPORT_DOMAIN: Final = b"chiploc/report/v1\x00"
PEER_REPORT_DOMAIN: Final = b"chiploc/peer-report/v1\x00"
MAX_REPORT_PROBES: Final = 10_000
_PROBE_RECORD_BYTES: Final = 4 + NONCE_BYTES + 8 + 1 + SIGNATURE_BYTES  # 93
_MAX_PROOF_BYTES: Final = 8 + (batch_depth(MAX_BATCH_SIZE) + 1) * HASH_BYTES + SIGNATURE_BYTES
MAX_REPORT_BYTES: Final = 1024 + _MAX_PROOF_BYTES + MAX_REPORT_PROBES * _PROBE_RECORD_BYTES
_LOST: Final = (1 << 64) - 1
_NO_SIGNATURE: Final = bytes(SIGNATURE_BYTES)

#: Timestamp source codes. Per probe: ``kernel`` (SO_TIMESTAMPNS receive stamp mapped onto the
#: monotonic clock), ``userspace`` (perf_counter_ns right after recvmsg), ``none`` (lost).
#: Per report: the common per-probe source, ``mixed`` if answered probes differ, ``none`` if all
#: were lost.
TIMESTAMP_SOURCES: Final = ("none", "kernel", "userspace", "mixed")
_SOURCE_CODE: Final = {name: i for i, name in enumerate(TIMESTAMP_SOURCES)}
_ANSWERED_SOURCES: Final = frozenset({"kernel", "userspace"})
#: One probe record on the wire: seq, nonce, rtt (all ones = lost), source, chip signature.
_PROBE_RECORD: Final = struct.Struct(">I16sQB64s")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRecord:
    """One probe of the burst: ``rtt_ns`` is None when lost (then the signature is all zero)."""

    seq: int
    nonce: bytes
    rtt_ns: int | None
    chip_signature: bytes
    timestamp_source: str

    def __post_init__(self) -> None:
        # ``type(x) is int`` (not isinstance): refuses bool and int subclasses, and is the
        # fast path of report decoding (32 probes a report).
        seq, rtt, signature = self.seq, self.rtt_ns, self.chip_signature
        if type(seq) is not int or not 0 <= seq < 2**32:
            raise ValueError("seq must be an unsigned 32-bit integer")
        if type(self.nonce) is not bytes or len(self.nonce) != NONCE_BYTES:
            raise ValueError("nonce must be 16 bytes")
        if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
            raise ValueError("chip_signature must be 64 bytes")
        if rtt is None:
            if self.timestamp_source != "none" or signature != _NO_SIGNATURE:
                raise ValueError("a lost probe has source 'none' and an all-zero signature")
        elif type(rtt) is not int or not 0 < rtt < _LOST:
            raise ValueError("rtt_ns must be a positive 64-bit integer or None")
        elif self.timestamp_source not in _ANSWERED_SOURCES:
            raise ValueError("an answered probe's source is 'kernel' or 'userspace'")

    @property
    def lost(self) -> bool:
        return self.rtt_ns is None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "nonce": self.nonce.hex(),
            "rtt_ns": self.rtt_ns,
            "timestamp_source": self.timestamp_source,
            "chip_signature": None if self.rtt_ns is None else self.chip_signature.hex(),
        }


def _min_rtt(probes: Sequence[ProbeRecord]) -> int | None:
    rtts = [p.rtt_ns for p in probes if p.rtt_ns is not None]
    return min(rtts) if rtts else None


def _report_source(probes: Sequence[ProbeRecord]) -> str:
    sources = {p.timestamp_source for p in probes if p.rtt_ns is not None}
    if not sources:
        return "none"
    if len(sources) == 1:
        return sources.pop()
    return "mixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasurementReport:
    """A parsed report. Obtain a *trusted* one only from :func:`verify_report`."""

    landmark_id: str
    chip_id: str
    session_id: bytes
    chip_address: str
    started_at_unix_ns: int
    finished_at_unix_ns: int
    timestamp_source: str
    #: A tuple when built, a :class:`ProbeBlock` (same records, decoded on use) when parsed.
    probes: tuple[ProbeRecord, ...] | ProbeBlock
    min_rtt_ns: int | None
    overhead_lower_bound_ns: int = 0
    target_role: Role = Role.CHIP
    raw: bytes = field(default=b"", repr=False, compare=False)
    #: The report's place in its landmark's signed batch; None when signed on its own.
    batch: BatchProof | None = field(default=None, repr=False, compare=False)
    _digest_hex: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_id(self.landmark_id, what="landmark_id")
        validate_id(self.chip_id, what="chip_id")
        check_target_role(self.target_role)
        if self.target_role is Role.LANDMARK and self.chip_id == self.landmark_id:
            raise ValueError("a landmark does not measure itself")
        if not isinstance(self.session_id, bytes) or len(self.session_id) != SESSION_ID_BYTES:
            raise ValueError("session_id must be 16 bytes")
        if not isinstance(self.chip_address, str) or len(self.chip_address.encode()) > 255:
            raise ValueError("chip_address must be a string of at most 255 bytes")
        for name in ("started_at_unix_ns", "finished_at_unix_ns", "overhead_lower_bound_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _LOST:
                raise ValueError(f"{name} must be a non-negative 64-bit integer")
        if self.finished_at_unix_ns < self.started_at_unix_ns:
            raise ValueError("finished_at_unix_ns precedes started_at_unix_ns")
        probes = self.probes
        if not isinstance(probes, tuple | ProbeBlock) or not 1 <= len(probes) <= MAX_REPORT_PROBES:
            raise ValueError(f"a report has 1..{MAX_REPORT_PROBES} probes")
        if isinstance(probes, ProbeBlock):  # decoded: checked and derived when parsed
            best, source = probes.min_rtt_ns, probes.timestamp_source
        else:
            seqs = [p.seq for p in probes]
            if not all(map(operator.lt, seqs, seqs[1:])):
                raise ValueError("probe sequence numbers must strictly increase")
            if len({p.nonce for p in probes}) != len(probes):
                raise ValueError("probe nonces must be distinct")
            best, source = _min_rtt(probes), _report_source(probes)
        if self.min_rtt_ns != best:
            raise ValueError("min_rtt_ns is not the minimum of the probes' RTTs")
        if self.timestamp_source != source:
            raise ValueError("timestamp_source does not match the probes")
        if self.min_rtt_ns is not None and self.overhead_lower_bound_ns > self.min_rtt_ns:
            raise ValueError("overhead lower bound exceeds the minimum RTT")
        if self.batch is not None and not isinstance(self.batch, BatchProof):
            raise ValueError("batch must be a BatchProof or None")

    @property
    def digest_hex(self) -> str:
        """SHA-256 of the exact signed bytes (the report's identity in stores and audit logs);
        computed once (screening, grouping and the batch result each ask for it)."""
        digest = self._digest_hex
        if not digest:
            digest = hashlib.sha256(self.raw).hexdigest()
            object.__setattr__(self, "_digest_hex", digest)
        return digest

    @property
    def answered(self) -> int:
        if isinstance(self.probes, ProbeBlock):
            return self.probes.answered
        return sum(1 for p in self.probes if p.rtt_ns is not None)

    def min_probe(self) -> ProbeRecord | None:
        """The first probe, in sequence order, whose RTT is ``min_rtt_ns`` (None: all lost)."""
        if isinstance(self.probes, ProbeBlock):
            return self.probes.min_probe()
        best = self.min_rtt_ns
        return None if best is None else next(p for p in self.probes if p.rtt_ns == best)

    def body_bytes(self) -> bytes:
        """``header(type) | body``: what the landmark signature covers after the domain (a
        single report), or the leaf of the landmark's batch tree (a batched one)."""
        return self._body_bytes(batched=self.batch is not None)

    def _body_bytes(self, *, batched: bool) -> bytes:
        parts = [
            header(_report_type(self.target_role, batched=batched)),
            self.session_id,
            encode_id(self.landmark_id),
            encode_id(self.chip_id),
            bytes((len(self.chip_address.encode()),)),
            self.chip_address.encode(),
            struct.pack(
                ">QQBQQH",
                self.started_at_unix_ns,
                self.finished_at_unix_ns,
                _SOURCE_CODE[self.timestamp_source],
                self.overhead_lower_bound_ns,
                _LOST if self.min_rtt_ns is None else self.min_rtt_ns,
                len(self.probes),
            ),
        ]
        if isinstance(self.probes, ProbeBlock):  # the records' own wire bytes
            parts.append(self.probes._block)
            return b"".join(parts)
        for p in self.probes:
            parts.append(
                struct.pack(
                    ">I16sQB",
                    p.seq,
                    p.nonce,
                    _LOST if p.rtt_ns is None else p.rtt_ns,
                    _SOURCE_CODE[p.timestamp_source],
                )
            )
            parts.append(p.chip_signature)
        return b"".join(parts)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON view (informational; the signed bytes are ``raw`` / ``report_b64``)."""
        return {
            "landmark_id": self.landmark_id,
            "chip_id": self.chip_id,
            "target_role": self.target_role.value,
            "session_id": self.session_id.hex(),
            "chip_address": self.chip_address,
            "started_at_unix_ns": self.started_at_unix_ns,
            "finished_at_unix_ns": self.finished_at_unix_ns,
            "timestamp_source": self.timestamp_source,
            "min_rtt_ns": self.min_rtt_ns,
            "overhead_lower_bound_ns": self.overhead_lower_bound_ns,
            "probes_sent": len(self.probes),
            "probes_answered": self.answered,
            "probes": [p.to_json_dict() for p in self.probes],
            "digest": self.digest_hex,
            "batch": None
            if self.batch is None
            else {
                "index": self.batch.index,
                "size": self.batch.size,
                "root": self.batch.root.hex(),
            },
            "report_b64": base64.b64encode(self.raw).decode("ascii"),
        }


def _report_type(role: Role, *, batched: bool) -> int:
    if batched:
        return MessageType.BATCH_PEER_REPORT if role is Role.LANDMARK else MessageType.BATCH_REPORT
    return MessageType.PEER_REPORT if role is Role.LANDMARK else MessageType.REPORT


_REPORT_TYPES: Final = {
    MessageType.REPORT: (Role.CHIP, False),
    MessageType.PEER_REPORT: (Role.LANDMARK, False),
    MessageType.BATCH_REPORT: (Role.CHIP, True),
    MessageType.BATCH_PEER_REPORT: (Role.LANDMARK, True),
}


def _report_domain(role: Role) -> bytes:
    return PEER_REPORT_DOMAIN if role is Role.LANDMARK else REPORT_DOMAIN


def sign_report(
    key: PrivateKey,
    *,
    chip_id: str,
    session_id: bytes,
    chip_address: str,
    started_at_unix_ns: int,
    finished_at_unix_ns: int,
    probes: Sequence[ProbeRecord],
    overhead_lower_bound_ns: int = 0,
    target_role: Role = Role.CHIP,
) -> MeasurementReport:
    """Build and sign a report; derived fields (minimum, source) are computed, not passed.

    ``target_role=Role.LANDMARK`` signs a mesh report (``chip_id`` is the peer landmark)."""
    return sign_draft(
        key,
        draft_report(
            landmark_id=key.id,
            chip_id=chip_id,
            session_id=session_id,
            chip_address=chip_address,
            started_at_unix_ns=started_at_unix_ns,
            finished_at_unix_ns=finished_at_unix_ns,
            probes=probes,
            overhead_lower_bound_ns=overhead_lower_bound_ns,
            target_role=target_role,
        ),
    )


def sign_draft(key: PrivateKey, draft: MeasurementReport) -> MeasurementReport:
    """Sign one unsigned report of this landmark on its own (a single-signed report); a
    draft naming another landmark is an InputError (``foreign_report``)."""
    if draft.landmark_id != key.id:
        raise InputError(f"a report of landmark {key.id!r} only", reason="foreign_report")
    body = draft._body_bytes(batched=False)
    return decode_report(body + key.sign(_report_domain(draft.target_role) + body))


def draft_report(
    *,
    landmark_id: str,
    chip_id: str,
    session_id: bytes,
    chip_address: str,
    started_at_unix_ns: int,
    finished_at_unix_ns: int,
    probes: Sequence[ProbeRecord],
    overhead_lower_bound_ns: int = 0,
    target_role: Role = Role.CHIP,
) -> MeasurementReport:
    """An unsigned report (``raw`` empty), for :func:`sign_draft` or
    :func:`sign_report_batch`; derived fields (minimum, source) are computed, not passed."""
    return MeasurementReport(
        landmark_id=landmark_id,
        chip_id=chip_id,
        session_id=session_id,
        chip_address=chip_address,
        started_at_unix_ns=started_at_unix_ns,
        finished_at_unix_ns=finished_at_unix_ns,
        timestamp_source=_report_source(probes),
        probes=tuple(probes),
        min_rtt_ns=_min_rtt(probes),
        overhead_lower_bound_ns=overhead_lower_bound_ns,
        target_role=target_role,
    )


def sign_report_batch(
    key: PrivateKey, drafts: Sequence[MeasurementReport]
) -> list[MeasurementReport]:
    """Sign ``drafts`` (unsigned reports of this landmark) with ONE signature over the Merkle
    root of their leaves; return them, in order, each carrying its proof.

    A batch is one landmark's and one role's: a draft naming another landmark, or a chip
    report beside a mesh report, is an InputError (``foreign_report``, ``mixed_batch``)."""
    if not 1 <= len(drafts) <= MAX_BATCH_SIZE:
        raise InputError(f"a batch has 1..{MAX_BATCH_SIZE} reports", reason="batch_size")
    roles = {d.target_role for d in drafts}
    if len(roles) != 1:
        raise InputError(
            "a batch holds chip reports or mesh reports, not both", reason="mixed_batch"
        )
    if any(d.landmark_id != key.id for d in drafts):
        raise InputError(
            f"a batch holds reports of landmark {key.id!r} only", reason="foreign_report"
        )
    leaves = [d._body_bytes(batched=True) for d in drafts]
    root, paths = merkle_tree(leaves)
    size = len(leaves)
    signature = key.sign(batch_statement(key.id, size, root))
    out = []
    for index, leaf in enumerate(leaves):
        proof = BatchProof(
            index=index, size=size, path=paths[index], root=root, signature=signature
        )
        out.append(decode_report(leaf + proof.to_bytes()))
    return out


_new = object.__new__
_SET_PROBE_FIELDS: Final = tuple(
    ProbeRecord.__dict__[name].__set__
    for name in ("seq", "nonce", "rtt_ns", "chip_signature", "timestamp_source")
)


def _decoded_probe(seq: int, nonce: bytes, rtt: int, code: int, signature: bytes) -> ProbeRecord:
    """A :class:`ProbeRecord` from one unpacked wire record, with exactly the checks of
    ``ProbeRecord.__post_init__`` that unpacked values can fail (the struct format already
    guarantees a u32 seq, a 16-byte nonce, a 64-byte signature and rtt < 2^64), set
    through the slots directly: the dataclass constructor costs ~3x more, and a report
    carries 32 of them (``tests/protocol/test_report_lazy.py`` checks both agree)."""
    source = TIMESTAMP_SOURCES[code]  # IndexError -> DecodeError in decode_report
    if rtt == _LOST:
        if source != "none" or signature != _NO_SIGNATURE:
            raise ValueError("a lost probe has source 'none' and an all-zero signature")
        rtt_ns: int | None = None
    elif rtt <= 0:
        raise ValueError("rtt_ns must be a positive 64-bit integer or None")
    elif source not in _ANSWERED_SOURCES:
        raise ValueError("an answered probe's source is 'kernel' or 'userspace'")
    else:
        rtt_ns = rtt
    probe: ProbeRecord = _new(ProbeRecord)
    set_seq, set_nonce, set_rtt, set_signature, set_source = _SET_PROBE_FIELDS
    set_seq(probe, seq)
    set_nonce(probe, nonce)
    set_rtt(probe, rtt_ns)
    set_signature(probe, signature)
    set_source(probe, source)
    return probe


_ANSWERED_CODES: Final = {_SOURCE_CODE[name]: name for name in _ANSWERED_SOURCES}


def _decoded_probes(block: bytes) -> tuple[ProbeRecord, ...]:
    """Every probe record of ``block``, as :func:`_decoded_probe` builds each: answered
    probes (the common case) inline, anything else through it (``test_report_lazy.py``
    checks both agree on every record)."""
    out: list[ProbeRecord] = []
    append = out.append
    answered = _ANSWERED_CODES.get
    set_seq, set_nonce, set_rtt, set_signature, set_source = _SET_PROBE_FIELDS
    for seq, nonce, rtt, code, signature in _PROBE_RECORD.iter_unpack(block):
        source = answered(code)
        if source is None or rtt == _LOST or rtt == 0:
            append(_decoded_probe(seq, nonce, rtt, code, signature))
            continue
        probe: ProbeRecord = _new(ProbeRecord)
        set_seq(probe, seq)
        set_nonce(probe, nonce)
        set_rtt(probe, rtt)
        set_signature(probe, signature)
        set_source(probe, source)
        append(probe)
    return tuple(out)


_CODES_ANSWERED: Final = frozenset(_ANSWERED_CODES)


@final
class ProbeBlock(Sequence[ProbeRecord]):
    """A decoded report's probe records, kept as their wire bytes: a read-only sequence of
    :class:`ProbeRecord` built on first use.

    Constructing one checks everything a report's probes must satisfy -- each record as
    :func:`_decoded_probe` does, strictly increasing sequence numbers, distinct nonces --
    and derives the minimum RTT, the report-level timestamp source and the answered count,
    without building 32 objects: lazy verification needs only the minimum probe
    (:meth:`min_probe`), and screening keeps thousands of reports alive. Equal to a tuple
    of the same records (and hashes like it), so a decoded report equals the report it
    was encoded from.
    """

    __slots__ = ("_answered", "_block", "_min_index", "_min_rtt_ns", "_records", "_source")

    _block: bytes
    _records: tuple[ProbeRecord, ...] | None
    _min_index: int
    _answered: int
    _min_rtt_ns: int | None
    _source: str

    # Read-only: a report trusts these (``MeasurementReport.__post_init__``).
    @property
    def answered(self) -> int:
        return self._answered

    @property
    def min_rtt_ns(self) -> int | None:
        return self._min_rtt_ns

    @property
    def timestamp_source(self) -> str:
        return self._source

    def __init__(self, block: bytes) -> None:
        """Parse ``block`` (whole 93-byte records); ValueError or IndexError if invalid."""
        if len(block) % _PROBE_RECORD.size:
            raise ValueError("a probe block is whole 93-byte records")
        rows = list(_PROBE_RECORD.iter_unpack(block))
        if not rows:  # a report's own refusal, word for word
            raise ValueError(f"a report has 1..{MAX_REPORT_PROBES} probes")
        self._block = bytes(block)
        self._records = None
        seqs, nonces, rtts, codes, _ = zip(*rows, strict=True)
        codes_seen = set(codes)
        if codes_seen <= _CODES_ANSWERED and _LOST not in rtts and 0 not in rtts:
            # every probe answered (the common case): each record is valid as it stands
            self._answered = len(rows)
            best: int | None = min(rtts)
            source = _ANSWERED_CODES[codes[0]] if len(codes_seen) == 1 else "mixed"
        else:  # lost probes or a bad record: build each one, with its exact checks
            records = self._records = _decoded_probes(self._block)
            self._answered = sum(1 for p in records if p.rtt_ns is not None)
            best = _min_rtt(records)
            source = _report_source(records)
        if not all(map(operator.lt, seqs, seqs[1:])):
            raise ValueError("probe sequence numbers must strictly increase")
        if len(set(nonces)) != len(nonces):
            raise ValueError("probe nonces must be distinct")
        self._min_rtt_ns = best
        self._source = source
        self._min_index = -1 if best is None else rtts.index(best)

    def _all(self) -> tuple[ProbeRecord, ...]:
        records = self._records
        if records is None:
            records = self._records = _decoded_probes(self._block)
        return records

    def min_probe(self) -> ProbeRecord | None:
        """The first probe, in sequence order, whose RTT is the minimum (None: all lost)."""
        if self._min_index < 0:
            return None
        if self._records is not None:
            return self._records[self._min_index]
        row = _PROBE_RECORD.unpack_from(self._block, self._min_index * _PROBE_RECORD.size)
        return _decoded_probe(*row)

    def __len__(self) -> int:
        return len(self._block) // _PROBE_RECORD.size

    @overload
    def __getitem__(self, index: int) -> ProbeRecord: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ProbeRecord, ...]: ...
    def __getitem__(self, index: int | slice) -> ProbeRecord | tuple[ProbeRecord, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[ProbeRecord]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ProbeBlock):
            return self._block == other._block  # the encoding is one-to-one
        if isinstance(other, tuple):
            return self._all() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"ProbeBlock({len(self)} probes, min_rtt_ns={self.min_rtt_ns})"

    def __reduce__(self) -> tuple[type[ProbeBlock], tuple[bytes]]:
        return (ProbeBlock, (self._block,))


def decode_report(data: bytes) -> MeasurementReport:
    """Parse report bytes (structure and derived fields only; signatures NOT checked)."""
    message_type = check_header(data, max_bytes=MAX_REPORT_BYTES)
    kind = _REPORT_TYPES.get(message_type)
    if kind is None:
        raise DecodeError("not a REPORT", reason="unexpected_type")
    role, batched = kind
    raw = bytes(data)
    r = _Reader(raw, HEADER_BYTES)
    session_id = r.take(SESSION_ID_BYTES)
    landmark_id = r.ident()
    chip_id = r.ident()
    try:
        chip_address = r.take(r.u8()).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("chip address is not UTF-8", reason="bad_field") from e
    started, finished, source_code, overhead, min_rtt, count = struct.unpack(">QQBQQH", r.take(35))
    if count > MAX_REPORT_PROBES:
        raise DecodeError("too many probes", reason="oversized")
    try:
        source = TIMESTAMP_SOURCES[source_code]
        probes = ProbeBlock(r.take(count * _PROBE_RECORD.size))
        batch = _decode_proof(r) if batched else None
        if batch is None:
            r.take(SIGNATURE_BYTES)
        r.end()
        return MeasurementReport(
            landmark_id=landmark_id,
            chip_id=chip_id,
            session_id=session_id,
            chip_address=chip_address,
            started_at_unix_ns=started,
            finished_at_unix_ns=finished,
            timestamp_source=source,
            probes=probes,
            min_rtt_ns=None if min_rtt == _LOST else min_rtt,
            overhead_lower_bound_ns=overhead,
            target_role=role,
            raw=raw,
            batch=batch,
        )
    except DecodeError:
        raise
    except (IndexError, ValueError) as e:
        raise DecodeError(f"invalid report: {e}", reason="bad_field") from e


def _decode_proof(r: _Reader) -> BatchProof:
    index, size = struct.unpack(">II", r.take(8))
    if index >= size or size > MAX_BATCH_SIZE:  # size 0: every index is refused
        raise DecodeError(
            f"leaf index {index} in a batch of {size} (1..{MAX_BATCH_SIZE})",
            reason="batch_bad_position",
        )
    path = r.take(batch_depth(size) * HASH_BYTES)
    return BatchProof(
        index=index,
        size=size,
        path=tuple(path[i : i + HASH_BYTES] for i in range(0, len(path), HASH_BYTES)),
        root=r.take(HASH_BYTES),
        signature=r.take(SIGNATURE_BYTES),
    )


def _verify_batch(
    report: MeasurementReport,
    batch: BatchProof,
    landmark: LandmarkEntry,
    roots: VerifiedRoots | None,
) -> None:
    """The leaf's path leads to the root, and the landmark signed that root."""
    leaf = report.raw[: len(report.raw) - 8 - (len(batch.path) + 1) * HASH_BYTES - SIGNATURE_BYTES]
    if root_from_path(leaf, batch.index, batch.path) != batch.root:
        raise BadSignature(
            f"the batch path of landmark {landmark.id!r} does not join this report at index "
            f"{batch.index} to the signed root",
            reason="batch_path_mismatch",
        )
    statement = batch_statement(landmark.id, batch.size, batch.root)
    try:
        if roots is None:
            verify_signature(landmark.public_key, statement, batch.signature)
        else:
            roots.check(landmark.public_key, statement, batch.signature)
    except BadSignature as e:
        raise BadSignature(
            f"landmark {landmark.id!r} signature over the batch root does not verify",
            reason="bad_batch_signature",
        ) from e


def _verify_landmark_signature(
    report: MeasurementReport,
    landmark: LandmarkEntry,
    target_role: Role,
    roots: VerifiedRoots | None = None,
) -> None:
    if report.batch is not None:
        _verify_batch(report, report.batch, landmark, roots)
        return
    raw = report.raw
    body, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    try:
        verify_signature(landmark.public_key, _report_domain(target_role) + body, signature)
    except BadSignature as e:
        raise BadSignature(
            f"landmark {landmark.id!r} signature over the report does not verify"
        ) from e


def _verify_chip_signature(
    report: MeasurementReport,
    chip: ChipEntry | LandmarkEntry,
    landmark: LandmarkEntry,
    probe: ProbeRecord,
    target_role: Role,
) -> None:
    message = response_message(
        session_id=report.session_id,
        chip_id=chip.id,
        landmark_id=landmark.id,
        seq=probe.seq,
        nonce=probe.nonce,
        target_role=target_role,
    )
    try:
        verify_signature(chip.public_key, message, probe.chip_signature)
    except BadSignature as e:
        raise BadSignature(
            f"chip {chip.id!r} signature for probe seq {probe.seq} does not verify",
            reason="bad_chip_signature",
        ) from e


def _decode_for_role(
    data: bytes, registry: Registry, target_role: Role
) -> tuple[MeasurementReport, LandmarkEntry, ChipEntry | LandmarkEntry]:
    """Decode, check the report is on a ``target_role``, look up both identities."""
    report = decode_report(data)
    if report.target_role is not check_target_role(target_role):
        raise DecodeError(
            f"a report on a {report.target_role.value}, expected one on a {target_role.value}",
            reason="wrong_role",
        )
    landmark = registry.landmark(report.landmark_id)
    target: ChipEntry | LandmarkEntry = (
        registry.landmark(report.chip_id)
        if target_role is Role.LANDMARK
        else registry.chip(report.chip_id)
    )
    return report, landmark, target


def verify_report(
    data: bytes,
    registry: Registry,
    *,
    target_role: Role = Role.CHIP,
    roots: VerifiedRoots | None = None,
) -> MeasurementReport:
    """Parse and fully verify a report against ``registry``; return the trusted report.

    Only reports of ``target_role`` are accepted: a chip report by default, a mesh report
    (a landmark measuring a peer landmark) with ``Role.LANDMARK``; the other kind is a
    DecodeError ``wrong_role``. Raises DecodeError (malformed; derived fields that do not
    recompute), UnknownIdentity / RevokedIdentity (landmark or chip/peer), BadSignature
    (landmark signature, or any chip/peer signature, naming the probe's seq).

    A batched report's root signature is checked through ``roots`` when given (a cache of
    signatures verified before, by their exact bytes; None checks it every time), its path
    always: BadSignature ``batch_path_mismatch`` or ``bad_batch_signature``.
    """
    report, landmark, chip = _decode_for_role(data, registry, target_role)
    _verify_landmark_signature(report, landmark, target_role, roots)
    for probe in report.probes:
        if probe.rtt_ns is not None:
            _verify_chip_signature(report, chip, landmark, probe, target_role)
    return report


def verify_report_lazy(
    data: bytes,
    registry: Registry,
    *,
    target_role: Role = Role.CHIP,
    roots: VerifiedRoots | None = None,
) -> MeasurementReport:
    """Verify what the distance bound rests on, at a cost independent of probes per report.

    Everything :func:`verify_report` checks, except the chip signatures of probes slower
    than the minimum: the bytes parse and every derived field recomputes (the minimum RTT
    among them), the report is on a ``target_role`` (else DecodeError ``wrong_role``), the
    landmark and the chip are enrolled and not revoked, the landmark's
    signature covers the whole transcript, and the chip signatures are checked in
    ascending RTT order (ties by seq) up to the first that holds -- which is the probe whose
    RTT *is* ``min_rtt_ns``, so the RTT the solver uses is that of a probe the chip
    provably answered. A bad chip signature on it raises BadSignature
    (``bad_chip_signature``), exactly as :func:`verify_report` does: it is never skipped
    for the next-slowest probe, because a landmark checks every chip signature before it
    signs, so a bad one in a signed report is the landmark's fault.

    What it does not prove -- that the slower probes were answered by the chip -- does not
    bound the region; a verifier backs it with :func:`verify_report` on a random sample of
    reports to catch a landmark that invents transcripts (``docs/protocol.md``, "Lazy
    verification"). Raises as :func:`verify_report`.
    """
    report, landmark, chip = _decode_for_role(data, registry, target_role)
    _verify_landmark_signature(report, landmark, target_role, roots)
    # Ascending RTT order (ties by seq), up to the first chip signature that holds: the
    # first is the minimum probe, and a failure there raises, so one check suffices.
    # The report's own invariants (checked when it was decoded) make that the first probe,
    # in seq order, whose RTT is min_rtt_ns: seqs strictly increase, and min_rtt_ns is the
    # minimum of the answered probes' RTTs (None when none answered).
    first = report.min_probe()
    if first is not None:
        _verify_chip_signature(report, chip, landmark, first, target_role)  # never skipped
    return report
