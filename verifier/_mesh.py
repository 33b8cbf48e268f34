"""The verifier's side of the landmark mesh (``docs/mesh.md``).

1. :func:`screen_mesh_reports` - every mesh report's bytes go through
   :func:`protocol.verify_report` with ``target_role=Role.LANDMARK`` (the prober's landmark
   signature, every answer signed by the **peer's** landmark key under the peer domain);
   failures are counted by reason, never used.
2. The store keeps the verified mesh rounds (``Store.add_mesh_round``) and derives each
   direction's minimum RTT (``Store.mesh_minimums``).
3. :func:`assess_and_flag` - :func:`solver.assess_mesh` over the minimums against the
   registered sites; a landmark it names suspect is written to the flag log
   (``Store.add_mesh_flag``, audited) once, and stays suspect until an operator clears it
   (:func:`clear_suspect`, audited with the operator's name and reason).
4. :func:`without_landmarks` - the suspects' reports are removed before any chip is judged:
   a suspect landmark is out of every proof. Excluding a landmark can only widen a region
   (one disk fewer in the intersection), so it never makes a verdict unsound.

After a clear, the pairs of the cleared landmark are judged only on mesh rounds received
after the clear, so a clear is not undone by the very rounds the operator looked at; a new
violation after it flags the landmark again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chiploc.common.errors import ChiplocError, InputError
from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM
from chiploc.protocol import MeasurementReport, MessageType, Registry, Role, verify_report
from chiploc.solver import MeshAssessment, MeshLink, assess_mesh
from chiploc.store import MeshFlagRecord, MeshMinimum, Store
from chiploc.verifier._pipeline import DEFAULT_MAX_SKEW_S, Screened

__all__ = [
    "MeshStatus",
    "assess_and_flag",
    "clear_suspect",
    "is_mesh_report",
    "mesh_links",
    "screen_mesh_reports",
    "without_landmarks",
]

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000


def is_mesh_report(raw: bytes) -> bool:
    """True if ``raw`` carries the PEER_REPORT type byte (routing only; nothing is trusted)."""
    return len(raw) >= 4 and raw[3] == MessageType.PEER_REPORT


def screen_mesh_reports(
    raw_reports: Iterable[bytes],
    registry: Registry,
    *,
    now_unix_ns: int,
    max_skew_s: int = DEFAULT_MAX_SKEW_S,
) -> tuple[tuple[MeasurementReport, ...], Counter[str]]:
    """Verify mesh reports; return the unique verified ones and the rejections by reason.

    No age limit: landmarks do not move, and an old round is still a true statement about
    two sites (a relocated landmark is re-enrolled and cleared; see ``docs/mesh.md``). A
    report finishing more than ``max_skew_s`` after ``now_unix_ns`` is ``from_future``."""
    latest_ns = now_unix_ns + max_skew_s * _NS_PER_S
    accepted: dict[str, MeasurementReport] = {}
    rejected: Counter[str] = Counter()
    for raw in raw_reports:
        try:
            report = verify_report(bytes(raw), registry, target_role=Role.LANDMARK)
        except ChiplocError as e:
            rejected[e.reason] += 1
            continue
        except ValueError:
            rejected["malformed"] += 1
            continue
        if report.finished_at_unix_ns > latest_ns:
            rejected["from_future"] += 1
        else:
            accepted.setdefault(report.digest_hex, report)
    return tuple(accepted.values()), rejected


def _link(m: MeshMinimum) -> MeshLink:
    return MeshLink(
        landmark=m.landmark_id,
        peer=m.peer_id,
        rtt_ms=m.min_rtt_ns / _NS_PER_MS,
        overhead_ms=m.overhead_ns / _NS_PER_MS,
    )


def mesh_links(store: Store) -> list[MeshLink]:
    """Each direction's minimum from the store; a pair with a cleared landmark counts only
    rounds received after its latest clear."""
    cleared = store.mesh_cleared_at()
    by_pair = {(m.landmark_id, m.peer_id): m for m in store.mesh_minimums()}
    for when in sorted(set(cleared.values())):
        later = {
            (m.landmark_id, m.peer_id): m for m in store.mesh_minimums(received_after_unix_ns=when)
        }
        for key in list(by_pair):
            since = max(cleared.get(key[0], -1), cleared.get(key[1], -1))
            if since == when:
                if key in later:
                    by_pair[key] = later[key]
                else:
                    del by_pair[key]
    return [_link(by_pair[k]) for k in sorted(by_pair)]


def _sites(registry: Registry) -> dict[str, tuple[float, float]]:
    return {lid: (e.lat, e.lon) for lid, e in registry.landmarks.items() if not e.revoked}


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshStatus:
    """One mesh check: the assessment, who is out of proofs, and who was flagged just now."""

    assessment: MeshAssessment
    suspects: frozenset[str]  # flagged and not cleared: excluded from proofs
    newly_flagged: tuple[str, ...]
    flags: Mapping[str, MeshFlagRecord] = field(default_factory=dict)
    #: landmarks whose latest flag-log entry is an operator's clear
    cleared: Mapping[str, MeshFlagRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", MappingProxyType(dict(self.flags)))
        object.__setattr__(self, "cleared", MappingProxyType(dict(self.cleared)))

    @property
    def shown(self) -> bool:
        """Whether there is anything to say: links checked, suspects or clears."""
        return bool(self.assessment.checks or self.suspects or self.cleared)

    def why(self, landmark: str) -> str:
        """Why ``landmark`` is a suspect, in one sentence (the suspect rule of docs/mesh.md)."""
        a = self.assessment
        pairs = [p for p in a.violating_pairs if landmark in p]
        if not pairs:
            flag = self.flags.get(landmark)
            earlier = flag.details.get("pairs") if flag is not None else None
            named = (
                ", ".join("-".join(map(str, p)) for p in earlier if isinstance(p, list))
                if isinstance(earlier, list)
                else ""
            )
            return (
                "flagged earlier"
                + (f" (violating pairs {named})" if named else "")
                + "; stays out of proofs until an operator clears it"
            )
        partners = [b if a_ == landmark else a_ for a_, b in pairs]
        mine = a.pair_counts.get(landmark, len(pairs))
        tied = sorted(p for p in partners if a.pair_counts.get(p, 0) == mine)
        names = ", ".join(f"{x}-{y}" for x, y in pairs)
        head = f"beats light with {len(pairs)} peer{'s' if len(pairs) != 1 else ''} ({names})"
        if tied:
            return f"{head}; tied with {', '.join(tied)}: nothing tells which moved, both out"
        return f"{head}, more than any of them: the one not where the registry says"

    def to_json_dict(self) -> dict[str, Any]:
        """The ``mesh`` object of ``chiploc verifier run --json`` and ``chiploc mesh check
        --json``: what was checked, each flagged pair with its links' measured RTT, vacuum
        bound and registered distance, the suspects and why, and the cleared landmarks."""
        a = self.assessment
        by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for check in a.checks:
            if check.link.pair in a.violating_pairs:
                link = check.to_json_dict()
                link["light_beaten_by_km"] = round(-check.margin_km, 3) if check.violation else None
                by_pair.setdefault(check.link.pair, []).append(link)
        return {
            "links_checked": len(a.checks),
            "pairs_checked": len({c.link.pair for c in a.checks}),
            "flagged_pairs": [
                {"pair": list(pair), "links": by_pair.get(pair, [])} for pair in a.violating_pairs
            ],
            "suspects": [
                {
                    "landmark": x,
                    "why": self.why(x),
                    "violating_pairs": a.pair_counts.get(x, 0),
                    "flagged_at_unix_ns": (
                        self.flags[x].recorded_at_unix_ns if x in self.flags else None
                    ),
                    "new": x in self.newly_flagged,
                }
                for x in sorted(self.suspects)
            ],
            "cleared": [
                {
                    "landmark": x,
                    "operator": str(f.details.get("operator", "")),
                    "reason": str(f.details.get("reason", "")),
                    "cleared_at_unix_ns": f.recorded_at_unix_ns,
                }
                for x, f in sorted(self.cleared.items())
            ],
            "newly_flagged": list(self.newly_flagged),
        }

    def summary(self) -> str:
        pairs = ", ".join(f"{a}-{b}" for a, b in self.assessment.violating_pairs)
        return (
            f"mesh: {len(self.assessment.checks)} links, "
            f"{len(self.assessment.violating_pairs)} violating pairs"
            + (f" ({pairs})" if pairs else "")
            + "; excluded from proofs: "
            + (", ".join(sorted(self.suspects)) or "none")
        )


def assess_and_flag(
    store: Store,
    registry: Registry,
    *,
    now_unix_ns: int,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> MeshStatus:
    """Check the stored mesh against the registry; flag new suspects (audited)."""
    sites = _sites(registry)
    links = [x for x in mesh_links(store) if x.landmark in sites and x.peer in sites]
    assessment = assess_mesh(links, sites, clock_tolerance_ppm=clock_tolerance_ppm)
    flags = dict(store.mesh_suspects())
    new = []
    for landmark in sorted(assessment.suspects - set(flags)):
        details = {
            "reason": "mesh_violation",
            "pairs": [list(p) for p in assessment.violating_pairs if landmark in p],
            "violations": [
                c.to_json_dict()
                for c in assessment.violations
                if landmark in (c.link.landmark, c.link.peer)
            ],
        }
        flags[landmark] = store.add_mesh_flag(
            landmark, action="suspect", details=details, now_unix_ns=now_unix_ns
        )
        new.append(landmark)
    latest: dict[str, MeshFlagRecord] = {}
    for flag in store.mesh_flags():
        latest[flag.landmark_id] = flag
    return MeshStatus(
        assessment=assessment,
        suspects=frozenset(flags),
        newly_flagged=tuple(new),
        flags=flags,
        cleared={k: f for k, f in latest.items() if f.action == "clear"},
    )


def clear_suspect(
    store: Store, landmark_id: str, *, operator: str, reason: str, now_unix_ns: int
) -> MeshFlagRecord:
    """An operator vouches for a suspect landmark (audited). Only a suspect can be cleared."""
    if not operator.strip() or not reason.strip():
        raise InputError(
            "clearing a suspect needs an operator name and a reason", reason="bad_argument"
        )
    if landmark_id not in store.mesh_suspects():
        raise InputError(f"landmark {landmark_id} is not a mesh suspect", reason="not_suspect")
    return store.add_mesh_flag(
        landmark_id,
        action="clear",
        details={"operator": operator, "reason": reason},
        now_unix_ns=now_unix_ns,
    )


def without_landmarks(screened: Screened, landmark_ids: Collection[str]) -> Screened:
    """``screened`` without the reports of ``landmark_ids`` (counted ``mesh_suspect``)."""
    excluded = set(landmark_ids)
    if not excluded:
        return screened
    kept = tuple(r for r in screened.reports if r.landmark_id not in excluded)
    dropped = len(screened.reports) - len(kept)
    rejected = Counter(screened.rejected)
    if dropped:
        rejected["mesh_suspect"] += dropped
    return Screened(
        reports=kept,
        rejected=rejected,
        duplicates=screened.duplicates,
        full_checked=screened.full_checked,
        flagged=screened.flagged,
    )
