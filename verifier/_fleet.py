"""Fleet verification in batches: the unit of work that runs in-process or on Dask.

A fleet is cut into :class:`WorkBatch` es: chips grouped by authorized zone
(one zone per batch, so a worker builds each zone's geometry once and
:func:`solver.solve_many` solves the batch together), at most ``max_chips``
chips each, with every raw report of those chips. :func:`verify_batch` is
the whole per-batch computation (screen, group, solve) and returns a small,
picklable :class:`BatchOutcome` (results as JSON dicts, report digests; no
geometry objects, no report bytes). :func:`run_fleet` drives batches
through an executor (in-process, or :mod:`verifier._dask`) and hands each
finished batch to a :class:`FleetSink` (the store edge) as it arrives.

Invariants:

- the worker verifies (``screen_reports`` with the registry it loaded
  itself) and solves; the driver signs certificates and writes the store:
  the verifier's signing key never leaves the driver;
- a batch is written with one ``Store.add_batch`` (one transaction), keyed
  so that writing it twice changes nothing: rounds by report digest,
  verdicts by (chip, verdict round), the round being the run's
  :attr:`BatchParams.round_key`;
- every chip of the fleet is in exactly one batch; a batch's result names
  exactly its chips (checked by the driver before anything is written);
- time is an argument: one ``now_unix_ns`` per run.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

from chiploc.common.errors import ChiplocError, InputError, StoreUnavailable
from chiploc.protocol import Registry
from chiploc.solver import Calibration, Model, load_region, prepare_zone
from chiploc.store import BatchRound, BatchVerdict, Store
from chiploc.verifier._certificate import (
    CERTIFIED_KEYS,
    DEFAULT_VALIDITY_S,
    EncodedResult,
    encode_result,
    issue_certificate,
)
from chiploc.verifier._lazy import LazyVerification
from chiploc.verifier._pipeline import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_SKEW_S,
    ChipJudgement,
    judge_all,
    screen_reports,
)
from chiploc.verifier._types import Signer

__all__ = [
    "DEFAULT_BATCH_CHIPS",
    "BatchOutcome",
    "BatchParams",
    "Executor",
    "FleetRun",
    "FleetSink",
    "JudgedChip",
    "StoreSink",
    "VerifiedRound",
    "WorkBatch",
    "make_batches",
    "prepare_zones",
    "run_fleet",
    "verify_batch",
]

#: Chips per batch: thousands, so that per-task overhead (scheduling,
#: pickling, one store transaction) is paid per thousands of chips.
DEFAULT_BATCH_CHIPS: Final = 2000
_NS_PER_S: Final = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkBatch:
    """Chips (sorted by authorized zone, then id), each zone's spec, every raw report of theirs."""

    batch_id: str
    chip_ids: tuple[str, ...]
    region_specs: tuple[str, ...]  # per chip, same order
    reports: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.chip_ids or len(set(self.chip_ids)) != len(self.chip_ids):
            raise InputError("a batch needs distinct chips", reason="bad_batch")
        if len(self.region_specs) != len(self.chip_ids):
            raise InputError("one region spec per chip", reason="bad_batch")
        if not isinstance(self.reports, tuple):
            raise InputError("reports must be a tuple of bytes", reason="bad_batch")

    @property
    def zones(self) -> int:
        return len(set(self.region_specs))


def make_batches(
    chip_regions: Mapping[str, str],
    reports: Mapping[str, Sequence[bytes]],
    *,
    max_chips: int = DEFAULT_BATCH_CHIPS,
) -> tuple[WorkBatch, ...]:
    """Sort chips by region spec (then id) and cut the sequence into batches of ``max_chips``.

    A zone's chips are contiguous, so a zone spans as few batches (and
    workers) as possible and a batch holds few zones: each worker builds a
    zone's geometry once, and solves its chips together.
    ``chip_regions``: every chip to judge -> the region spec it is judged
    against; ``reports``: chip -> its raw reports (a chip with none comes out
    UNREACHABLE). A report filed under a chip not in ``chip_regions`` is an
    error (it would silently vanish otherwise).
    """
    if isinstance(max_chips, bool) or not isinstance(max_chips, int) or max_chips < 1:
        raise InputError("max_chips must be a positive integer", reason="bad_batch")
    stray = set(reports) - set(chip_regions)
    if stray:
        raise InputError(
            f"reports for chips not being judged: {sorted(stray)[:5]}", reason="bad_batch"
        )
    order = sorted(chip_regions, key=lambda c: (chip_regions[c], c))
    out: list[WorkBatch] = []
    for lo in range(0, len(order), max_chips):
        part = tuple(order[lo : lo + max_chips])
        h = hashlib.sha256()
        for c in part:
            h.update(c.encode() + b"\0" + chip_regions[c].encode() + b"\0")
        out.append(
            WorkBatch(
                batch_id=f"b{len(out):05d}-{h.hexdigest()[:16]}",
                chip_ids=part,
                region_specs=tuple(chip_regions[c] for c in part),
                reports=tuple(bytes(r) for c in part for r in reports.get(c, ())),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchParams:
    """What every batch of a run is judged with (one verdict round: ``now_unix_ns``)."""

    now_unix_ns: int
    model: Model = Model.VACUUM
    tolerate: int = 0
    calibration: Calibration | None = None
    max_age_s: int = DEFAULT_MAX_AGE_S
    max_skew_s: int = DEFAULT_MAX_SKEW_S
    verdict_round: str | None = None
    lazy: LazyVerification | None = None  # None: every chip signature of every report

    @property
    def round_key(self) -> str:
        """The verdict round: (chip, round) is a verdict's key in the store."""
        return self.verdict_round or f"fleet-{self.now_unix_ns}"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedRound:
    """A verified report as the store needs it (``store.ReportLike``)."""

    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgedChip:
    """One chip's result as stored and certified (no geometry objects: cheap to ship)."""

    chip_id: str
    verdict: str
    #: The result's fields its certificate states (``CERTIFIED_KEYS``; the verdict row's
    #: columns are among them).
    summary: Mapping[str, Any]
    #: ``encode_result`` of the whole ``SolveResult.to_json_dict()``, done on the worker:
    #: the stored row's bytes and the certificate's region digest. The driver, one process
    #: for the whole cluster, neither encodes every region again nor unpickles it.
    encoded: EncodedResult
    region_digest_hex: str  # the AUTHORIZED zone's digest (the certificate names it)
    evidence_digests: tuple[str, ...]

    @property
    def result(self) -> dict[str, Any]:
        """The whole ``SolveResult.to_json_dict()`` (decoded from ``encoded``)."""
        result: dict[str, Any] = json.loads(self.encoded.json)
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOutcome:
    """What a worker sends back for one batch."""

    batch_id: str
    chips: tuple[JudgedChip, ...]
    accepted: tuple[tuple[str, str, str, int | None], ...]  # digest, landmark, chip, min_rtt
    rejected: Mapping[str, int]
    duplicates: int
    flagged: Mapping[str, str] = field(default_factory=dict)  # landmark -> why (sampled check)
    worker_pid: int = 0
    cpu_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rejected", MappingProxyType(dict(self.rejected)))
        object.__setattr__(self, "flagged", MappingProxyType(dict(self.flagged)))


def verify_batch(batch: WorkBatch, registry: Registry, params: BatchParams) -> BatchOutcome:
    """Screen (verify every report against ``registry``), group, solve one batch."""
    import os

    cpu0 = time.process_time()
    screened = screen_reports(
        batch.reports,
        registry,
        now_unix_ns=params.now_unix_ns,
        max_age_s=params.max_age_s,
        max_skew_s=params.max_skew_s,
        lazy=params.lazy,
    )
    chips = set(batch.chip_ids)
    foreign = Counter(r.chip_id for r in screened.reports if r.chip_id not in chips)
    judgements = judge_all(
        batch.chip_ids,
        screened,
        registry,
        region_specs=dict(zip(batch.chip_ids, batch.region_specs, strict=True)),
        model=params.model,
        tolerate=params.tolerate,
        calibration=params.calibration,
    )
    rejected = Counter(screened.rejected)
    if foreign:
        rejected["other_chip"] += sum(foreign.values())
    return BatchOutcome(
        batch_id=batch.batch_id,
        chips=tuple(_judged(j) for j in judgements),
        accepted=tuple(
            (r.digest_hex, r.landmark_id, r.chip_id, r.min_rtt_ns)
            for r in screened.reports
            if r.chip_id in chips
        ),
        rejected=rejected,
        duplicates=screened.duplicates,
        flagged=screened.flagged,
        worker_pid=os.getpid(),
        cpu_s=time.process_time() - cpu0,
    )


def _judged(j: ChipJudgement) -> JudgedChip:
    result = j.result.to_json_dict()
    return JudgedChip(
        chip_id=j.chip_id,
        verdict=j.result.verdict.value,
        summary={k: result[k] for k in CERTIFIED_KEYS},
        encoded=encode_result(result),
        region_digest_hex=j.region.digest_hex,
        evidence_digests=j.evidence_digests,
    )


# -- the store edge -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkWrite:
    """Rows one batch added (0 when it had landed before)."""

    rounds: int
    verdicts: int
    rows: int = 0  # every row written, audit entries and evidence links included


class FleetSink(Protocol):
    """Where finished batches go. ``write`` must be idempotent per batch."""

    def write(self, batch: WorkBatch, result: BatchOutcome, params: BatchParams) -> SinkWrite: ...


@dataclass(slots=True, kw_only=True)
class StoreSink:
    """Writes each batch into a :class:`store.Store` with one ``add_batch`` (one transaction),
    after signing a certificate per verdict.

    Idempotent: rounds by digest, verdicts by (chip, verdict round) with the
    run's :attr:`BatchParams.round_key`. A transient store failure
    (``StoreUnavailable``: the server restarting, after the store's own
    reconnect budget) is retried with backoff for up to ``retry_s`` seconds:
    the transaction either landed whole or not at all, and a retry of one
    that landed writes nothing.
    """

    store: Store
    signer: Signer
    validity_s: int = DEFAULT_VALIDITY_S
    retry_s: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    certificates: dict[str, bytes] | None = None  # chip -> certificate, when kept
    retries: int = 0

    def write(self, batch: WorkBatch, result: BatchOutcome, params: BatchParams) -> SinkWrite:
        rounds, verdicts = self._rows(batch, result, params)
        deadline = time.monotonic() + self.retry_s
        delay = 0.2
        while True:
            try:
                done = self.store.add_batch(rounds, verdicts)
                break
            except StoreUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                self.retries += 1
                self.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self.certificates is not None:
            for v in verdicts:
                if v.certificate is not None:
                    self.certificates[str(v.result["target"])] = v.certificate
        return SinkWrite(
            rounds=done.rounds_inserted,
            verdicts=done.verdicts_inserted,
            rows=done.rows_written,
        )

    def _rows(
        self, batch: WorkBatch, result: BatchOutcome, params: BatchParams
    ) -> tuple[list[BatchRound], list[BatchVerdict]]:
        raw_by_digest = {hashlib.sha256(r).hexdigest(): r for r in batch.reports}
        rounds = [
            BatchRound(
                report=VerifiedRound(raw=raw_by_digest[d], landmark_id=lm, chip_id=c, min_rtt_ns=m),
                received_at_unix_ns=params.now_unix_ns,
            )
            for d, lm, c, m in result.accepted
        ]
        issued_s = params.now_unix_ns // _NS_PER_S
        verdicts = [
            BatchVerdict(
                result=chip.summary,
                result_json=chip.encoded.json,  # encoded once, on the worker
                evidence_digests=chip.evidence_digests,
                certificate=issue_certificate(
                    chip.summary,
                    authorized_region_digest_hex=chip.region_digest_hex,
                    evidence_digests=chip.evidence_digests,
                    signer=self.signer,
                    issued_at_unix_s=issued_s,
                    validity_s=self.validity_s,
                    encoded=chip.encoded,
                ),
                issued_at_unix_ns=params.now_unix_ns,
                verdict_round=params.round_key,
            )
            for chip in result.chips
        ]
        return rounds, verdicts


# -- driving batches ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetRun:
    """What a run did: verdicts per chip, counts, where the work ran."""

    verdicts: Mapping[str, str]  # chip -> verdict
    batches: int
    reports_verified: int
    rejected: Mapping[str, int]
    rounds_written: int
    verdicts_written: int
    rows_written: int
    worker_pids: frozenset[int]
    worker_cpu_s: float
    elapsed_s: float
    store_retries: int = 0
    flagged: Mapping[str, str] = field(default_factory=dict)
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # with keep=True

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdicts", MappingProxyType(dict(self.verdicts)))
        object.__setattr__(self, "rejected", MappingProxyType(dict(self.rejected)))
        object.__setattr__(self, "flagged", MappingProxyType(dict(self.flagged)))
        object.__setattr__(self, "results", MappingProxyType(dict(self.results)))


Executor = Callable[[Sequence[WorkBatch], BatchParams], Iterator[tuple[WorkBatch, BatchOutcome]]]


def in_process(registry: Registry) -> Executor:
    """Run every batch here, in order (the default without ``--cluster``)."""

    def run(
        batches: Sequence[WorkBatch], params: BatchParams
    ) -> Iterator[tuple[WorkBatch, BatchOutcome]]:
        for batch in batches:
            yield batch, verify_batch(batch, registry, params)

    return run


def run_fleet(
    batches: Sequence[WorkBatch],
    params: BatchParams,
    *,
    executor: Executor,
    sink: FleetSink,
    progress: Callable[[int, int], None] | None = None,
    keep: bool = False,
) -> FleetRun:
    """Run every batch through ``executor``; write each to ``sink`` as it finishes.

    A result that does not name exactly its batch's chips, or a batch that
    comes back twice, is refused (``InputError`` ``bad_batch``) before writing.
    ``progress(chips_done, chips_total)`` is called after each batch lands.
    ``keep``: also return every chip's result (``FleetRun.results``; off at fleet scale).
    """
    started = time.perf_counter()
    total = sum(len(b.chip_ids) for b in batches)
    ids = [b.batch_id for b in batches]
    if len(set(ids)) != len(ids):
        raise InputError("batch ids must be unique", reason="bad_batch")
    pending = set(ids)
    verdicts: dict[str, str] = {}
    rejected: Counter[str] = Counter()
    verified = rounds = written = rows = 0
    pids: set[int] = set()
    flagged: dict[str, str] = {}
    results: dict[str, Mapping[str, Any]] = {}
    cpu = 0.0
    done = 0
    for batch, result in executor(batches, params):
        if result.batch_id != batch.batch_id or batch.batch_id not in pending:
            raise InputError(
                f"batch {result.batch_id} came back twice or unasked", reason="bad_batch"
            )
        if tuple(c.chip_id for c in result.chips) != batch.chip_ids:
            raise InputError(
                f"batch {batch.batch_id}: result names other chips", reason="bad_batch"
            )
        w = sink.write(batch, result, params)
        pending.discard(batch.batch_id)
        rounds += w.rounds
        written += w.verdicts
        rows += w.rows
        verified += len(result.accepted)
        rejected.update(result.rejected)
        flagged.update(result.flagged)
        pids.add(result.worker_pid)
        cpu += result.cpu_s
        verdicts.update((c.chip_id, c.verdict) for c in result.chips)
        if keep:
            results.update((c.chip_id, c.result) for c in result.chips)
        done += len(batch.chip_ids)
        if progress is not None:
            progress(done, total)
    if pending:
        raise ChiplocError(f"{len(pending)} batches never came back", reason="incomplete")
    return FleetRun(
        verdicts=verdicts,
        batches=len(batches),
        reports_verified=verified,
        rejected=rejected,
        rounds_written=rounds,
        verdicts_written=written,
        rows_written=rows,
        worker_pids=frozenset(pids),
        worker_cpu_s=cpu,
        elapsed_s=time.perf_counter() - started,
        store_retries=int(getattr(sink, "retries", 0)),
        flagged=flagged,
        results=results,
    )


#: Zones a worker prepares at start-up: the most common ones, as many as the solver keeps.
MAX_PREPARED_ZONES: Final = 16


def prepare_zones(registry: Registry, *, limit: int = MAX_PREPARED_ZONES) -> tuple[str, ...]:
    """Build the geometry of the ``limit`` zones most chips of ``registry`` are licensed for
    (:func:`solver.prepare_zone`), so that batches do not pay for it. Returns their specs.

    A spec that does not load is skipped: the batch judging its chips reports the error.
    """
    counts = Counter(chip.region for chip in registry.chips.values())
    prepared = []
    for spec, _ in counts.most_common(limit):
        try:
            prepare_zone(load_region(spec))
        except (ChiplocError, ValueError):
            continue
        prepared.append(spec)
    return tuple(prepared)


def chip_regions_of(
    chip_ids: Iterable[str], registry: Registry, claimed: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Chip -> region spec: the claimed one for an unenrolled chip, else the registry's."""
    claimed = claimed or {}
    out: dict[str, str] = {}
    for chip_id in chip_ids:
        if chip_id in claimed:
            out[chip_id] = claimed[chip_id]
        elif chip_id in registry.chips:
            out[chip_id] = registry.chips[chip_id].region
        else:
            raise InputError(
                f"chip {chip_id}: no region to judge it against", reason="unknown_chip"
            )
    return out
