"""What a solve returns: the verdict enum and the frozen result dataclasses.

Expected outcomes are values: every verdict, including INCONSISTENT and UNREACHABLE, is a
:class:`SolveResult`; only malformed input raises.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM

from ._models import (
    Measurement,
    Model,
)

__all__ = ["Estimate", "Estimator", "LandmarkBound", "Settle", "SolveResult", "Verdict"]


class Verdict(enum.Enum):
    COMPLIANT = "COMPLIANT"
    VIOLATION = "VIOLATION"
    INCONCLUSIVE = "INCONCLUSIVE"
    INCONSISTENT = "INCONSISTENT"
    UNREACHABLE = "UNREACHABLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settle:
    """A lower RTT from ``landmark`` (at most ``rtt_needed_ms``) would give ``would_give``."""

    landmark: str
    rtt_ms: float
    rtt_needed_ms: float
    would_give: Verdict

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "landmark": self.landmark,
            "rtt_ms": self.rtt_ms,
            "rtt_needed_ms": round(self.rtt_needed_ms, 6),
            "would_give": self.would_give.value,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkBound:
    measurement: Measurement
    radius_km: float  # inf: the whole Earth
    binding: bool

    def to_json_dict(self) -> dict[str, Any]:
        m = self.measurement
        return {
            "id": m.landmark,
            "lat": m.lat,
            "lon": m.lon,
            "rtt_ms": m.rtt_ms,
            "overhead_ms": m.overhead_ms,
            "radius_km": round(self.radius_km, 6) if math.isfinite(self.radius_km) else None,
            "binding": self.binding,
        }


class Estimator(enum.Enum):
    """How a point estimate is made (never a proof; see ``docs/solver.md``, "Estimates").

    * ``nearest``: the landmark with the smallest RTT.
    * ``cbg``: Constraint-Based Geolocation (Gueye et al. 2006): the centroid of the
      intersection of the disks from each landmark's calibration bestline, or the
      conservative default line (2/3 c through the origin) for a landmark with too few
      calibration points.
    * ``least-squares``: the model distances fitted by least squares
      (:func:`estimate_position`).
    * ``min-max-ratio``: the point ``x`` that minimises ``max_i d(x, L_i) / r_i`` over the
      landmarks' model radii ``r_i``: every disk shrunk by one common factor until they just
      meet. If every path were inflated by the same factor, this is the target itself.
    * ``cbg-depth`` (the default): between the two. The centroid of the CBG region with
      each point weighted by its depth, ``(1 - max_i d(x, L_i) / r_i) ** 2``: a point on
      the edge of some disk (a path no slower than the model) weighs nothing, a point well
      inside every disk (every path inflated, as real ones are) weighs most. The exponent 2
      was chosen on simulated worlds (docs/benchmarks.md), never on real data.
    """

    NEAREST = "nearest"
    CBG = "cbg"
    LEAST_SQUARES = "least-squares"
    MIN_MAX_RATIO = "min-max-ratio"
    CBG_DEPTH = "cbg-depth"


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A point estimate, never a proof: where, how (``method``, on the ``model``'s radii),
    and ``error_radius_km``, a radius its error stayed within in at least 90 % of the cases
    it was evaluated on (docs/benchmarks.md)."""

    lat: float
    lon: float
    model: Model
    method: Estimator = Estimator.LEAST_SQUARES
    error_radius_km: float = math.inf

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon)):
            raise ValueError("an estimate must be finite")
        if self.model is Model.VACUUM:
            raise ValueError("an estimate never uses the vacuum (proof) model")
        if not self.error_radius_km >= 0.0:
            raise ValueError("an error radius must be >= 0")

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "basis": "estimate",
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "method": self.method.value,
            "model": self.model.value,
            "error_radius_km": (
                round(self.error_radius_km, 1) if math.isfinite(self.error_radius_km) else None
            ),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveResult:
    """Outcome of :func:`solve`. ``region`` is a lon/lat shapely geometry or None."""

    target: str
    verdict: Verdict
    proof: bool
    model: Model
    region_spec: str
    region: BaseGeometry | None
    region_center: tuple[float, float] | None  # (lat, lon)
    area_km2: float | None
    margin_km: float | None
    binding_landmarks: tuple[str, ...]
    conflicting_landmarks: tuple[str, ...]
    settle: tuple[Settle, ...]
    tolerate: int
    estimate: Estimate | None
    landmarks: tuple[LandmarkBound, ...]
    message: str
    likely_liars: tuple[tuple[str, ...], ...] = field(default=())
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM
    #: Why an INCONCLUSIVE is one: ``"border"`` (the region overlaps the zone's border) or
    #: ``"model_miss"`` (an estimate model's disks do not meet); None for other verdicts.
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.proof and self.model is not Model.VACUUM:
            raise ValueError("only the vacuum model yields a proof")
        if self.verdict is Verdict.INCONSISTENT and not self.proof:
            raise ValueError("only the vacuum proof model can find the bounds inconsistent")
        if self.reason not in (None, "border", "model_miss"):
            raise ValueError(f"unknown reason {self.reason!r}")

    @property
    def basis(self) -> str:
        """``"proof"`` (vacuum model: the region must hold the target) or ``"estimate"``."""
        return "proof" if self.proof else "estimate"

    def to_json_dict(self) -> dict[str, Any]:
        region = None
        if self.region is not None and not self.region.is_empty:
            region = _region_geojson(self.region)
        return {
            "target": self.target,
            "verdict": self.verdict.value,
            "basis": self.basis,
            "reason": self.reason,
            "proof": self.proof,
            "model": self.model.value,
            "region_spec": self.region_spec,
            "region": region,
            "region_center": (
                None
                if self.region_center is None
                else {
                    "lat": round(self.region_center[0], 6),
                    "lon": round(self.region_center[1], 6),
                }
            ),
            "area_km2": None if self.area_km2 is None else round(self.area_km2, 3),
            # down to the metre, never up: the figure is a lower bound a regulator relies on
            "margin_km": None if self.margin_km is None else math.floor(self.margin_km * 1e3) / 1e3,
            "binding_landmarks": list(self.binding_landmarks),
            "conflicting_landmarks": list(self.conflicting_landmarks),
            "settle": [s.to_json_dict() for s in self.settle],
            "tolerate": self.tolerate,
            "estimate": None if self.estimate is None else self.estimate.to_json_dict(),
            "landmarks": [b.to_json_dict() for b in self.landmarks],
            "message": self.message,
            "clock_tolerance_ppm": self.clock_tolerance_ppm,
        }


def _region_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """``mapping(geom)`` with lists for tuples (JSON's shape), built from coordinate arrays:
    the same floats, in the same order, as the generic path below (a test holds them equal),
    several times faster for the solver's regions (Polygon / MultiPolygon, 2-D)."""
    if not geom.has_z:
        if isinstance(geom, Polygon):
            return {"type": "Polygon", "coordinates": _rings(geom)}
        if isinstance(geom, MultiPolygon):
            return {"type": "MultiPolygon", "coordinates": [_rings(p) for p in geom.geoms]}
    result: dict[str, Any] = _lists(mapping(geom))
    return result


def _rings(polygon: Polygon) -> list[list[list[float]]]:
    if polygon.is_empty:
        return []
    return [
        shapely.get_coordinates(ring).tolist() for ring in (polygon.exterior, *polygon.interiors)
    ]


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_lists(v) for v in obj]
    return obj
