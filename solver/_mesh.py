"""The landmark mesh checks the network itself (pure): who is not where the registry says.

Landmarks measure one another with the signed protocol (``docs/mesh.md``). For each measured
pair this module asks the one question light can answer for sure: could a signal have made
this round trip between the two **registered** sites? The vacuum bound is the solver's own
(:func:`~chiploc.solver._models.radius_km` under :attr:`Model.VACUUM`, with the same clock-rate
widening and the same overhead rule), so a pair is flagged only when the proof model itself
says the registry is wrong.

Invariants enforced here:

* A link is a **violation** only when the registered geodesic distance exceeds the vacuum
  radius of its minimum RTT: ``registered_km > radius_km(rtt, VACUUM)``. Never on an estimate
  (fibre, calibrated); never on a margin chosen by hand.
* A violating **pair** is an unordered pair of landmarks with at least one violating link
  (either direction). Then at least one of the two is not at its registered site (or its
  clock is off by more than the tolerance, or its key is used elsewhere): no honest pair can
  violate.
* The **suspect** of a violating pair is the member involved in more violating pairs; on a
  tie, both are. Excluding a landmark from proofs can only widen regions (fewer disks to
  intersect), never make a verdict unsound, so in doubt both are excluded.
* Calibration rows (the ``calibrated`` model's input) come only from links whose two ends
  are not suspect.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM

from ._geodesy import geodesic_km
from ._models import Measurement, Model, check_clock_tolerance_ppm, radii_km

__all__ = [
    "CALIBRATION_COLUMNS",
    "LinkCheck",
    "MeshAssessment",
    "MeshLink",
    "assess_mesh",
    "calibration_rows",
    "check_link",
    "check_links",
    "suspects_of",
]

#: Header of the calibration CSV (:meth:`~chiploc.solver.Calibration.from_csv`).
CALIBRATION_COLUMNS: Final = ("landmark", "lat", "lon", "peer", "peer_lat", "peer_lon", "rtt_ms")


def _site(sites: Mapping[str, tuple[float, float]], landmark: str) -> tuple[float, float]:
    try:
        return sites[landmark]
    except KeyError:
        raise ValueError(f"landmark {landmark!r} has no registered site") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshLink:
    """``landmark``'s minimum RTT to ``peer`` (ms, on ``landmark``'s clock) and its proven
    overhead lower bound (ms, 0 unless it has hardware stamps)."""

    landmark: str
    peer: str
    rtt_ms: float
    overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.landmark, str) or not isinstance(self.peer, str):
            raise ValueError("landmark and peer must be ids")
        if self.landmark == self.peer:
            raise ValueError(f"landmark {self.landmark!r} cannot be its own peer")
        for name in ("rtt_ms", "overhead_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if self.overhead_ms > self.rtt_ms:
            raise ValueError("overhead_ms exceeds rtt_ms")

    @property
    def pair(self) -> tuple[str, str]:
        a, b = sorted((self.landmark, self.peer))
        return a, b


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkCheck:
    """One link against the registry: the vacuum bound of its RTT vs the registered distance."""

    link: MeshLink
    registered_km: float
    bound_km: float

    @property
    def violation(self) -> bool:
        return self.registered_km > self.bound_km

    @property
    def margin_km(self) -> float:
        """``bound - registered``: negative for a violation (by how much light was beaten)."""
        return self.bound_km - self.registered_km

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "landmark": self.link.landmark,
            "peer": self.link.peer,
            "rtt_ms": self.link.rtt_ms,
            "registered_km": round(self.registered_km, 3),
            "vacuum_bound_km": None if math.isinf(self.bound_km) else round(self.bound_km, 3),
            "violation": self.violation,
        }


def check_link(
    link: MeshLink,
    sites: Mapping[str, tuple[float, float]],
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> LinkCheck:
    """Check one link against the registered ``sites`` (id -> (lat, lon))."""
    (check,) = check_links([link], sites, clock_tolerance_ppm=clock_tolerance_ppm)
    return check


def check_links(
    links: Sequence[MeshLink],
    sites: Mapping[str, tuple[float, float]],
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> tuple[LinkCheck, ...]:
    """:func:`check_link` for many links at once (vectorised distances and radii)."""
    if not links:
        return ()
    ends = np.array(
        [(*_site(sites, x.landmark), *_site(sites, x.peer)) for x in links], dtype=np.float64
    )
    registered = geodesic_km(ends[:, 0], ends[:, 1], ends[:, 2], ends[:, 3])
    measurements = [
        Measurement(
            landmark=x.landmark,
            lat=float(e[0]),
            lon=float(e[1]),
            rtt_ms=x.rtt_ms,
            overhead_ms=x.overhead_ms,
        )
        for x, e in zip(links, ends, strict=True)
    ]
    bounds = radii_km(measurements, Model.VACUUM, clock_tolerance_ppm=clock_tolerance_ppm)
    return tuple(
        LinkCheck(link=x, registered_km=float(d), bound_km=float(b))
        for x, d, b in zip(links, registered, bounds, strict=True)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshAssessment:
    """Every link checked, the violating pairs and the landmarks to keep out of proofs."""

    checks: tuple[LinkCheck, ...]
    violating_pairs: tuple[tuple[str, str], ...]  # sorted, each pair sorted
    pair_counts: Mapping[str, int] = field(default_factory=dict)  # violating pairs per landmark
    suspects: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pair_counts", MappingProxyType(dict(self.pair_counts)))

    @property
    def violations(self) -> tuple[LinkCheck, ...]:
        return tuple(c for c in self.checks if c.violation)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "links": len(self.checks),
            "violating_pairs": [list(p) for p in self.violating_pairs],
            "violations": [c.to_json_dict() for c in self.violations],
            "pair_counts": dict(sorted(self.pair_counts.items())),
            "suspects": sorted(self.suspects),
        }


def suspects_of(violating_pairs: Iterable[tuple[str, str]]) -> tuple[frozenset[str], Counter[str]]:
    """The suspect rule: per violating pair, the member in more violating pairs; both on a tie."""
    pairs = sorted(set(violating_pairs))
    counts: Counter[str] = Counter()
    for a, b in pairs:
        counts[a] += 1
        counts[b] += 1
    suspects: set[str] = set()
    for a, b in pairs:
        top = max(counts[a], counts[b])
        suspects.update(x for x in (a, b) if counts[x] == top)
    return frozenset(suspects), counts


def assess_mesh(
    links: Iterable[MeshLink],
    sites: Mapping[str, tuple[float, float]],
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> MeshAssessment:
    """Check every link (one per direction; several for one direction keep the minimum)."""
    check_clock_tolerance_ppm(clock_tolerance_ppm)
    best: dict[tuple[str, str], MeshLink] = {}
    for link in links:
        key = (link.landmark, link.peer)
        current = best.get(key)
        if current is None or (link.rtt_ms - link.overhead_ms) < (
            current.rtt_ms - current.overhead_ms
        ):
            best[key] = link
    checks = check_links(
        [best[k] for k in sorted(best)], sites, clock_tolerance_ppm=clock_tolerance_ppm
    )
    pairs = tuple(sorted({c.link.pair for c in checks if c.violation}))
    suspects, counts = suspects_of(pairs)
    return MeshAssessment(
        checks=checks, violating_pairs=pairs, pair_counts=counts, suspects=suspects
    )


def calibration_rows(
    links: Iterable[MeshLink],
    sites: Mapping[str, tuple[float, float]],
    *,
    exclude: Iterable[str] = (),
) -> list[tuple[str, float, float, str, float, float, float]]:
    """``(landmark, lat, lon, peer, peer_lat, peer_lon, rtt_ms)`` per direction, minimum RTT,
    sorted; links touching an ``exclude``d (suspect) landmark are left out."""
    excluded = set(exclude)
    best: dict[tuple[str, str], float] = {}
    for link in links:
        if link.landmark in excluded or link.peer in excluded:
            continue
        key = (link.landmark, link.peer)
        best[key] = min(best.get(key, math.inf), link.rtt_ms)
    rows = []
    for (landmark, peer), rtt in sorted(best.items()):
        lat, lon = _site(sites, landmark)
        plat, plon = _site(sites, peer)
        rows.append((landmark, lat, lon, peer, plat, plon, rtt))
    return rows
