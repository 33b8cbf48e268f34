"""The verification pipeline: signed report bytes in, judged chips and certificates out.

Three pure steps and one thin edge:

1. :func:`screen_reports` - every report's bytes go through
   :func:`protocol.verify_report` against the registry (landmark signature,
   every chip signature, recomputed minimum) and a freshness window on the
   report's own timestamps. A report that fails is counted under its reason
   and never used; the JSON view a landmark serves beside the bytes is never
   read. With ``lazy=LazyVerification(...)`` each report gets
   :func:`protocol.verify_report_lazy` (landmark signature and the chip
   signature of the minimum-RTT probe: what the bound rests on) and a keyed
   random sample the full check; a sampled report that fails it is rejected
   (``forged_transcript``), its landmark is flagged, and every other report
   of a flagged landmark is rejected too (``landmark_flagged``).
2. :func:`group_evidence` - per chip, per landmark, the report with the
   smallest ``min_rtt_ns - overhead_lower_bound_ns`` (answered probes only:
   ``min_rtt_ns`` is None when every probe was lost). The landmark's
   coordinates come from the registry, never from the report.
3. :func:`judge_chip` - :func:`solver.solve` against the chip's authorized
   region from the registry. A chip with no usable report is UNREACHABLE; an
   unenrolled or revoked chip is UNREACHABLE with the reason in the message.
4. :func:`record_judgement` (edge) - sign a certificate with the verifier key
   and store the verdict with the digests of its evidence reports.

Invariants: only reports that :func:`screen_reports` accepted reach the
solver; each measurement is one landmark's minimum over its verified
reports; a report's ``overhead_lower_bound_ns`` is the only thing ever
subtracted (the landmark's own proven bound); time is an argument
(``now_unix_ns``); the evidence named in a certificate and in the store is
exactly the set of reports whose minimum entered the solve.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chiploc.common.errors import ChiplocError, InputError
from chiploc.protocol import (
    MeasurementReport,
    Registry,
    VerifiedRoots,
    verify_report,
    verify_report_lazy,
)
from chiploc.solver import (
    AuthorizedRegion,
    Calibration,
    Measurement,
    Model,
    SolveResult,
    load_region,
    solve_many,
)
from chiploc.store import Store, VerdictRecord
from chiploc.verifier._certificate import DEFAULT_VALIDITY_S, issue_certificate
from chiploc.verifier._lazy import LazyVerification
from chiploc.verifier._types import Signer

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_SKEW_S",
    "ChipEvidence",
    "ChipJudgement",
    "IssuedVerdict",
    "Screened",
    "group_evidence",
    "judge_all",
    "judge_chip",
    "record_judgement",
    "screen_reports",
]

#: A report whose round started longer ago than this is stale (the chip may have moved).
DEFAULT_MAX_AGE_S = 3600
#: A report claiming to finish this far after ``now`` is refused (clock error or forgery).
DEFAULT_MAX_SKEW_S = 60

_NS_PER_S = 1_000_000_000
#: Landmark batch signatures verified by this process, by their exact bytes
#: (``protocol.VerifiedRoots``): each distinct (key, root, signature) is checked once.
PROCESS_ROOTS: VerifiedRoots = VerifiedRoots()
_NS_PER_MS = 1_000_000


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counts.items())))


@dataclass(frozen=True, slots=True, kw_only=True)
class Screened:
    """Reports that verified (unique by digest, in input order) and why others did not.

    ``full_checked`` counts reports that got the full check (all of them without lazy
    verification; the sample with it). ``flagged`` maps a landmark caught signing a
    transcript whose chip signatures do not all verify to why: none of its reports in
    the batch is used, and the caller must raise the alarm.
    """

    reports: tuple[MeasurementReport, ...]
    rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    duplicates: int = 0
    full_checked: int = 0
    flagged: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.reports, tuple):
            raise TypeError("reports must be a tuple")
        if any(v < 0 for v in self.rejected.values()) or self.duplicates < 0:
            raise ValueError("counts must be non-negative")
        if self.full_checked < 0:
            raise ValueError("counts must be non-negative")
        if any(r.landmark_id in self.flagged for r in self.reports):
            raise ValueError("a flagged landmark's reports are never accepted")
        object.__setattr__(self, "rejected", _frozen_counts(self.rejected))
        object.__setattr__(self, "flagged", MappingProxyType(dict(sorted(self.flagged.items()))))

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def merged(self, other: Screened) -> Screened:
        """Both batches, the second's reports already in the first counted as duplicates."""
        seen = {r.digest_hex for r in self.reports}
        extra = tuple(r for r in other.reports if r.digest_hex not in seen)
        flagged = {**self.flagged, **other.flagged}
        rejected = Counter(self.rejected) + Counter(other.rejected)
        kept = tuple(r for r in self.reports + extra if r.landmark_id not in flagged)
        dropped = len(self.reports) + len(extra) - len(kept)
        if dropped:
            rejected["landmark_flagged"] += dropped
        return Screened(
            reports=kept,
            rejected=rejected,
            duplicates=self.duplicates + other.duplicates + len(other.reports) - len(extra),
            full_checked=self.full_checked + other.full_checked,
            flagged=flagged,
        )


def screen_reports(
    raw_reports: Iterable[bytes],
    registry: Registry,
    *,
    now_unix_ns: int,
    max_age_s: int = DEFAULT_MAX_AGE_S,
    max_skew_s: int = DEFAULT_MAX_SKEW_S,
    lazy: LazyVerification | None = None,
    roots: VerifiedRoots | None = None,
) -> Screened:
    """Verify each report's bytes against ``registry``; count and drop every failure.

    Reasons are the ``reason`` of the error :func:`protocol.verify_report`
    raised (``bad_signature``, ``bad_chip_signature``, ``unknown_identity``,
    ``revoked``, a decode reason, ...), plus ``stale`` (started more than
    ``max_age_s`` before ``now_unix_ns``) and ``from_future`` (finished more
    than ``max_skew_s`` after it).

    ``lazy`` (None: every report is fully verified) switches to
    :func:`protocol.verify_report_lazy` plus the full check on ``lazy``'s
    sample; a sampled report failing it counts as ``forged_transcript``, flags
    its landmark (``Screened.flagged``) and rejects that landmark's other
    reports in the batch as ``landmark_flagged``.

    A batch-signed report's root signature is checked through ``roots`` (default: this
    process's :data:`PROCESS_ROOTS`), so a landmark's batch costs one Ed25519 check however
    many of its reports arrive; its path is checked for every report
    (``batch_path_mismatch``, ``bad_batch_signature``, ``batch_bad_position``).
    """
    if roots is None:
        roots = PROCESS_ROOTS
    if max_age_s <= 0 or max_skew_s < 0:
        raise InputError("max_age_s must be positive and max_skew_s non-negative")
    oldest_ns = now_unix_ns - max_age_s * _NS_PER_S
    latest_ns = now_unix_ns + max_skew_s * _NS_PER_S
    accepted: dict[str, MeasurementReport] = {}
    rejected: Counter[str] = Counter()
    flagged: dict[str, str] = {}
    duplicates = full_checked = 0
    with _cyclic_gc_paused():  # every accepted report stays alive: see the helper
        for raw in raw_reports:
            try:
                if lazy is None:
                    report = verify_report(bytes(raw), registry, roots=roots)
                    full_checked += 1
                else:
                    report = verify_report_lazy(bytes(raw), registry, roots=roots)
            except ChiplocError as e:
                rejected[e.reason] += 1
                continue
            except ValueError:  # a structural check outside the codec's own errors
                rejected["malformed"] += 1
                continue
            digest = report.digest_hex  # SHA-256 of the raw bytes: computed once
            if lazy is not None and lazy.selects(digest):
                full_checked += 1
                try:
                    verify_report(report.raw, registry, roots=roots)
                except ChiplocError as e:
                    rejected["forged_transcript"] += 1
                    flagged.setdefault(
                        report.landmark_id,
                        f"report {digest} for chip {report.chip_id} passed the lazy "
                        f"check but failed the sampled full check: {e} [{e.reason}]",
                    )
                    continue
            if report.started_at_unix_ns < oldest_ns:
                rejected["stale"] += 1
            elif report.finished_at_unix_ns > latest_ns:
                rejected["from_future"] += 1
            elif digest in accepted:
                duplicates += 1
            else:
                accepted[digest] = report
    kept = tuple(r for r in accepted.values() if r.landmark_id not in flagged)
    if len(kept) < len(accepted):
        rejected["landmark_flagged"] += len(accepted) - len(kept)
    return Screened(
        reports=kept,
        rejected=rejected,
        duplicates=duplicates,
        full_checked=full_checked,
        flagged=flagged,
    )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a batch is screened.

    Screening keeps every accepted report alive: 34 GC-tracked objects each (the report,
    its probe tuple and 32 probe records). The collector's young generations are rescanned
    as they accumulate, which measured ≈ 25-30 % of screening time on 2,000 reports
    (``docs/benchmarks.md``, "Batch signatures"). Reference counting still frees everything
    screening drops; the rare cyclic garbage (an exception's traceback) waits for the next
    collection after the batch. The collector is re-enabled on exit only by the call that
    paused it, so overlapping calls in threads never leave it off."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipEvidence:
    """One chip's measurements: per landmark, the best verified report."""

    chip_id: str
    measurements: tuple[Measurement, ...]  # sorted by landmark id
    evidence: tuple[MeasurementReport, ...]  # the report behind each measurement, same order
    reports_seen: int  # verified reports of this chip, answered or not

    def __post_init__(self) -> None:
        if len(self.measurements) != len(self.evidence):
            raise ValueError("one evidence report per measurement")
        for m, r in zip(self.measurements, self.evidence, strict=True):
            if m.landmark != r.landmark_id or r.chip_id != self.chip_id:
                raise ValueError("evidence does not match its measurement")
        if self.reports_seen < len(self.evidence):
            raise ValueError("reports_seen counts every report")

    @property
    def evidence_digests(self) -> tuple[str, ...]:
        return tuple(sorted(r.digest_hex for r in self.evidence))


def _effective_ns(report: MeasurementReport) -> tuple[int, int, str]:
    min_rtt_ns = report.min_rtt_ns if report.min_rtt_ns is not None else 2**64
    return (min_rtt_ns - report.overhead_lower_bound_ns, min_rtt_ns, report.digest_hex)


def group_evidence(screened: Screened, registry: Registry) -> Mapping[str, ChipEvidence]:
    """Per chip: one :class:`~solver.Measurement` per landmark from its best report.

    The best report is the one with the smallest ``min_rtt_ns -
    overhead_lower_bound_ns`` (ties: smaller ``min_rtt_ns``, then digest), so
    the result does not depend on the order reports arrived in. Reports of a
    landmark the registry no longer accepts are skipped (``screen_reports``
    with the same registry never lets one through).
    """
    seen: Counter[str] = Counter()
    best: dict[str, dict[str, MeasurementReport]] = {}
    for report in screened.reports:
        seen[report.chip_id] += 1
        per_landmark = best.setdefault(report.chip_id, {})
        if report.min_rtt_ns is None:
            continue  # every probe lost: the round proves nothing
        current = per_landmark.get(report.landmark_id)
        if current is None or _effective_ns(report) < _effective_ns(current):
            per_landmark[report.landmark_id] = report
    out: dict[str, ChipEvidence] = {}
    for chip_id in sorted(best):
        measurements: list[Measurement] = []
        evidence: list[MeasurementReport] = []
        for landmark_id in sorted(best[chip_id]):
            report = best[chip_id][landmark_id]
            try:
                entry = registry.landmark(landmark_id)
            except ChiplocError:
                continue
            if report.min_rtt_ns is None:  # never chosen: lost rounds are skipped above
                continue
            measurements.append(
                Measurement(
                    landmark=landmark_id,
                    lat=entry.lat,
                    lon=entry.lon,
                    rtt_ms=report.min_rtt_ns / _NS_PER_MS,
                    overhead_ms=report.overhead_lower_bound_ns / _NS_PER_MS,
                )
            )
            evidence.append(report)
        out[chip_id] = ChipEvidence(
            chip_id=chip_id,
            measurements=tuple(measurements),
            evidence=tuple(evidence),
            reports_seen=seen[chip_id],
        )
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipJudgement:
    """A chip's solve result, the authorized region it was judged against, its evidence."""

    chip_id: str
    result: SolveResult
    region: AuthorizedRegion
    evidence_digests: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.result.target != self.chip_id:
            raise ValueError("result is for another chip")
        if self.evidence_digests != tuple(sorted(set(self.evidence_digests))):
            raise ValueError("evidence digests must be sorted and unique")

    def to_json_dict(self) -> dict[str, Any]:
        """``chiploc solve --json``'s object plus ``chip``."""
        return {**self.result.to_json_dict(), "chip": self.chip_id}


def judge_chip(
    chip_id: str,
    evidence: ChipEvidence | None,
    registry: Registry,
    *,
    region_spec: str | None = None,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
) -> ChipJudgement:
    """Solve one chip against its authorized region from the registry.

    ``region_spec`` is used only for a chip the registry does not hold (an
    unenrolled node someone claims is in that region); it then comes out
    UNREACHABLE whatever ``evidence`` says, as does a revoked chip. A chip
    whose region is neither in the registry nor given raises InputError.
    """
    case = _Case.of(chip_id, evidence, registry, region_spec)
    (result,) = solve_many(
        [case.target()], case.region, model=model, tolerate=tolerate, calibration=calibration
    )
    return case.judgement(result)


@dataclass(frozen=True, slots=True)
class _Case:
    """A chip to judge: its zone, why it may not be solved (refusal), its evidence."""

    chip_id: str
    region: AuthorizedRegion
    refusal: str | None
    evidence: ChipEvidence | None

    @classmethod
    def of(
        cls,
        chip_id: str,
        evidence: ChipEvidence | None,
        registry: Registry,
        region_spec: str | None,
        zones: dict[str, AuthorizedRegion] | None = None,
    ) -> _Case:
        """``zones`` (spec -> zone) lets many cases share one load of each spec (a GeoJSON
        file is otherwise read again for every chip)."""
        refusal: str | None = None
        try:
            spec = registry.chip(chip_id).region
        except ChiplocError as e:
            refusal = f"chip {chip_id} is not usable: {e} [{e.reason}]"
            if region_spec is None:
                raise InputError(
                    f"chip {chip_id}: not in the registry and no region given",
                    reason="unknown_chip",
                ) from e
            spec = region_spec
        zones = {} if zones is None else zones
        region = zones.get(spec)
        if region is None:
            region = zones[spec] = load_region(spec)
        return cls(chip_id, region, refusal, evidence)

    @property
    def usable(self) -> bool:
        return (
            self.refusal is None and self.evidence is not None and bool(self.evidence.measurements)
        )

    def target(self) -> tuple[str, Sequence[Measurement]]:
        """What to solve: the measurements, or none (UNREACHABLE) when refused or silent."""
        if self.usable and self.evidence is not None:
            return self.chip_id, self.evidence.measurements
        return self.chip_id, ()

    def judgement(self, result: SolveResult) -> ChipJudgement:
        ev = self.evidence
        if self.usable and ev is not None:
            return ChipJudgement(
                chip_id=self.chip_id,
                result=result,
                region=self.region,
                evidence_digests=ev.evidence_digests,
            )
        if self.refusal is not None:
            result = dataclasses.replace(result, message=f"{self.refusal}; {result.message}")
        elif ev is not None and ev.reports_seen:
            result = dataclasses.replace(
                result,
                message=f"{result.message} ({ev.reports_seen} verified reports, every probe lost)",
            )
        return ChipJudgement(
            chip_id=self.chip_id, result=result, region=self.region, evidence_digests=()
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedVerdict:
    """A judgement, its signed certificate (file bytes) and the stored verdict row."""

    judgement: ChipJudgement
    certificate: bytes
    record: VerdictRecord


def record_judgement(
    store: Store,
    judgement: ChipJudgement,
    *,
    signer: Signer,
    now_unix_ns: int,
    validity_s: int = DEFAULT_VALIDITY_S,
) -> IssuedVerdict:
    """Sign a certificate for ``judgement`` and store the verdict (audited) with it.

    Every evidence report must already be stored (``store.add_round``);
    otherwise the store refuses the verdict (``StoreError`` ``unknown_evidence``).
    """
    result = judgement.result.to_json_dict()
    certificate = issue_certificate(
        result,
        authorized_region_digest_hex=judgement.region.digest_hex,
        evidence_digests=judgement.evidence_digests,
        signer=signer,
        issued_at_unix_s=now_unix_ns // _NS_PER_S,
        validity_s=validity_s,
    )
    record = store.add_verdict(
        result,
        evidence_digests=judgement.evidence_digests,
        certificate=certificate,
        issued_at_unix_ns=now_unix_ns,
    )
    return IssuedVerdict(judgement=judgement, certificate=certificate, record=record)


def judge_all(
    chip_ids: Sequence[str],
    screened: Screened,
    registry: Registry,
    *,
    region_specs: Mapping[str, str] | None = None,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
) -> tuple[ChipJudgement, ...]:
    """:func:`judge_chip` for each of ``chip_ids`` (in order) from one screened batch.

    Chips with the same authorized zone are solved together (:func:`solver.solve_many`:
    the same results, built in batches).
    """
    grouped = group_evidence(screened, registry)
    specs = region_specs or {}
    zones: dict[str, AuthorizedRegion] = {}  # each spec loaded once per call
    cases = [
        _Case.of(chip_id, grouped.get(chip_id), registry, specs.get(chip_id), zones)
        for chip_id in chip_ids
    ]
    by_zone: dict[str, list[int]] = {}
    for k, case in enumerate(cases):
        by_zone.setdefault(case.region.digest_hex, []).append(k)
    results: dict[int, SolveResult] = {}
    for members in by_zone.values():
        solved = solve_many(
            [cases[k].target() for k in members],
            cases[members[0]].region,
            model=model,
            tolerate=tolerate,
            calibration=calibration,
        )
        results.update(zip(members, solved, strict=True))
    return tuple(case.judgement(results[k]) for k, case in enumerate(cases))
