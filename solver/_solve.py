"""Solve: intersect the landmarks' disks into a region and decide against a zone.

Invariants enforced here:

* The region is an OUTER approximation of the exact intersection of the
  model's geodesic disks: each disk polygon circumscribes its disk, and the
  intersection of supersets is a superset. An empty polygon intersection
  therefore proves an empty exact intersection (INCONSISTENT).
* COMPLIANT only if the region is covered by the zone's inner geometry;
  VIOLATION only if it misses the zone's outer geometry; otherwise
  INCONCLUSIVE. No landmark -> UNREACHABLE; empty region -> INCONSISTENT.
  Nothing but vacuum is a proof.
* Disks are taken by increasing radius; one that seems to contain a smaller
  disk is not built at first (a guess), but the final region is tested against
  every disk left out, and one that does not provably contain it (every region
  edge AB within ``r`` by ``(d(A) + d(B) + |AB|) / 2`` with an upper bound of
  the geodesic distance, and its antipode outside the region) is intersected
  too: a disk that contains the region cannot change it. Landmarks whose disk is
  not proven to contain the final region are *binding*; the region equals the
  intersection of the binding disks, so ``tolerate=N`` only branches on binding
  landmarks.
* ``margin_km`` never overstates: for every border segment it takes
  ``(f(A) + f(B) - len) / 2`` with ``f(v) = max_i (dist(v, c_i) - r_i)``, a lower
  bound of the distance from ``v`` to the exact intersection (triangle
  inequality) and a 1-Lipschitz function along the border.
* The point estimate is labelled and never affects the verdict.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon, mapping
from shapely.geometry.base import BaseGeometry

from chiploc.common.errors import MeasurementError
from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM

from ._estimate import estimate_positions
from ._geodesy import (
    R0_KM,
    R1_KM,
    WORLD,
    _polygonal,
    edge_length_bound_km,
    geodesic_disks,
    geodesic_km,
    polygon_area_km2,
)
from ._models import (
    Calibration,
    Measurement,
    Model,
    check_clock_tolerance_ppm,
    radii_km,
    rtts_for_radii_ms,
)
from ._regions import AuthorizedRegion, BorderSegments, CoarseZone, coarse_zone

__all__ = ["Estimate", "LandmarkBound", "Settle", "SolveResult", "Verdict", "solve", "solve_many"]

_BIG_DISK_KM: Final = 9000.0  # above this the region may be disconnected: all intersected bind
_MAX_SETTLE_CANDIDATES: Final = 3
_MAX_TOLERATE: Final = 8


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    lat: float
    lon: float
    model: Model

    def to_json_dict(self) -> dict[str, Any]:
        return {"lat": round(self.lat, 6), "lon": round(self.lon, 6), "model": self.model.value}


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

    def __post_init__(self) -> None:
        if self.proof and self.model is not Model.VACUUM:
            raise ValueError("only the vacuum model yields a proof")

    def to_json_dict(self) -> dict[str, Any]:
        region = None
        if self.region is not None and not self.region.is_empty:
            region = _lists(mapping(self.region))
        return {
            "target": self.target,
            "verdict": self.verdict.value,
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
            "margin_km": None if self.margin_km is None else round(self.margin_km, 3),
            "binding_landmarks": list(self.binding_landmarks),
            "conflicting_landmarks": list(self.conflicting_landmarks),
            "settle": [s.to_json_dict() for s in self.settle],
            "tolerate": self.tolerate,
            "estimate": None if self.estimate is None else self.estimate.to_json_dict(),
            "landmarks": [b.to_json_dict() for b in self.landmarks],
            "message": self.message,
            "clock_tolerance_ppm": self.clock_tolerance_ppm,
        }


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_lists(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- geometry helpers


def _unit(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
    la, lo = (
        np.radians(np.asarray(lat, dtype=np.float64)),
        np.radians(np.asarray(lon, dtype=np.float64)),
    )
    out = np.empty((*la.shape, 3))
    cl = np.cos(la)
    np.multiply(cl, np.cos(lo), out=out[..., 0])
    np.multiply(cl, np.sin(lo), out=out[..., 1])
    np.sin(la, out=out[..., 2])
    return out


def _sphere_km(
    lat: float | npt.NDArray[np.float64],
    lon: float | npt.NDArray[np.float64],
    plat: npt.NDArray[np.float64],
    plon: npt.NDArray[np.float64],
    radius: float,
) -> npt.NDArray[np.float64]:
    """Great-circle distance on a sphere of ``radius`` with geodetic coordinates
    (broadcast).

    With ``radius = R0`` it never exceeds the WGS84 geodesic distance; with ``R1``
    it is never below it (all curvature radii of WGS84 lie in [R0, R1]).
    """
    p1, l1 = np.radians(lat), np.radians(lon)
    p2, l2 = np.radians(plat), np.radians(plon)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return np.asarray(2 * radius * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


_ARC_SLACK_KM: Final = 1e-3  # rounding of arccos near 0 (~1e-8 rad) with room to spare


def _arc_km(
    u: npt.NDArray[np.float64], v: npt.NDArray[np.float64], radius: float
) -> npt.NDArray[np.float64]:
    """Great-circle distances (km) on a sphere of ``radius`` between rows of u and of v.

    Geodetic coordinates on a sphere: with R0 never above the WGS84 geodesic
    distance, with R1 never below it (up to ``_ARC_SLACK_KM`` of rounding).
    """
    return np.asarray(radius * np.arccos(np.clip(u @ v.T, -1.0, 1.0)))


@dataclass(slots=True)
class _Shape:
    """Vertices of a region (also as unit vectors) and half its longest edge (km, upper bound).

    ``seg_a``/``seg_b`` are the boundary segments' endpoints (lon, lat rows: vertices
    ``[:-1][same]`` and ``[1:][same]``), ``seg_len_km`` upper bounds of their lengths.
    """

    geom: BaseGeometry
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    unit: npt.NDArray[np.float64]
    half_edge_km: float
    seg_a: npt.NDArray[np.float64]
    seg_b: npt.NDArray[np.float64]
    same: npt.NDArray[np.bool_]
    seg_len_km: npt.NDArray[np.float64]

    @classmethod
    def of(cls, geom: BaseGeometry) -> _Shape:
        if isinstance(geom, Polygon) and shapely.get_num_interior_rings(geom) == 0:
            coords = shapely.get_coordinates(geom)  # one ring
            same = np.ones(max(len(coords) - 1, 0), dtype=bool)
        else:
            rings = shapely.get_rings(shapely.get_parts(geom))
            coords, idx = shapely.get_coordinates(rings, return_index=True)
            same = idx[1:] == idx[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        lens = edge_length_bound_km(a[:, 1], a[:, 0], b[:, 1], b[:, 0])
        half = float(lens.max()) / 2 if lens.size else 0.0
        lat, lon = coords[:, 1], coords[:, 0]
        return cls(
            geom=geom,
            lat=lat,
            lon=lon,
            unit=_unit(lat, lon),
            half_edge_km=half,
            seg_a=a,
            seg_b=b,
            same=same,
            seg_len_km=lens,
        )


def _edge_reach_km(shape: _Shape, d_vertex: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per row of vertex distances (upper bounds): a bound of the farthest point of any edge."""
    d_a, d_b = d_vertex[:, :-1][:, shape.same], d_vertex[:, 1:][:, shape.same]
    reach: npt.NDArray[np.float64] = ((d_a + d_b + shape.seg_len_km) / 2).max(axis=1)
    return reach


def _inside_disks(
    shape: _Shape,
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    unit: npt.NDArray[np.float64],
    r_km: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Per disk: True only if the whole region provably lies within ``r_km`` of its centre.

    Every point of an edge AB lies within ``(d(A) + d(B) + |AB|) / 2`` of the centre
    (triangle inequality along the edge). Tried in turn: the farthest vertex plus
    half the longest edge, on the sphere of radius R1 (an upper bound); the same
    per edge; exact ``Geod.inv`` distances when the sphere of radius R0 (a lower
    bound) does not rule it out. And the disk's antipode (inside its complement)
    must lie outside the region.
    """
    out = ~np.isfinite(r_km)
    test = np.flatnonzero(~out)
    if test.size == 0 or shape.lat.size == 0:
        return out
    r = r_km[test]
    need = r - shape.half_edge_km
    dots = unit[test] @ shape.unit.T
    # The farthest vertex has the smallest dot product: one arccos per disk, and the
    # same angle serves both spheres (R1: upper bound, R0: lower bound).
    angle = np.arccos(np.clip(dots.min(axis=1), -1.0, 1.0))
    ok = R1_KM * angle + _ARC_SLACK_KM <= need
    lb = R0_KM * angle - _ARC_SLACK_KM
    edges = np.flatnonzero(~ok & (lb <= r))  # no vertex provably outside: try each edge
    if edges.size and shape.seg_len_km.size:
        up = R1_KM * np.arccos(np.clip(dots[edges], -1.0, 1.0)) + _ARC_SLACK_KM
        ok[edges] = _edge_reach_km(shape, up) <= r[edges]
    for k in np.flatnonzero(~ok & (lb <= need) & bool(shape.seg_len_km.size)).tolist():
        i = test[k]
        exact = geodesic_km(lat[i], lon[i], shape.lat, shape.lon)[None, :]
        ok[k] = float(_edge_reach_km(shape, exact)[0]) <= r[k]
    cand = test[ok]
    if cand.size:
        alon = np.where(lon[cand] <= 0, lon[cand] + 180.0, lon[cand] - 180.0)
        out[cand] = ~shapely.intersects_xy(shape.geom, alon, -lat[cand])
    return out


@dataclass(frozen=True, slots=True)
class _SetResult:
    region: BaseGeometry  # empty when inconsistent
    binding: frozenset[int]
    conflict: tuple[int, ...]  # minimal conflicting set when empty


@dataclass(frozen=True, slots=True)
class _Cut:
    """An intersection under way (:meth:`_Problem.begin`): the region so far, the disks
    cut (in order), the one that emptied it, and the disks still to cut."""

    region: BaseGeometry
    used: list[int]
    failed: int | None
    more: list[int]


class _Problem:
    """The landmarks of one target under one model: disks, cached per landmark."""

    def __init__(
        self,
        ms: Sequence[Measurement],
        model: Model,
        cal: Calibration | None,
        clock_tolerance_ppm: float,
    ) -> None:
        self.ms = ms
        self.clock_tolerance_ppm = clock_tolerance_ppm
        self.r = radii_km(ms, model, cal, clock_tolerance_ppm=clock_tolerance_ppm)
        self.lat = np.array([m.lat for m in ms], dtype=np.float64)
        self.lon = np.array([m.lon for m in ms], dtype=np.float64)
        self.unit = _unit(self.lat, self.lon)
        self._disks: dict[int, BaseGeometry] = {}
        self._shape: _Shape | None = None  # of the latest region
        self._inside: dict[int, bool] = {}  # disk -> provably contains the latest shape
        self._sets: dict[frozenset[int], _SetResult] = {}
        self._likely: dict[tuple[int, ...], list[int]] = {}

    def disk(self, i: int) -> BaseGeometry:
        d = self._disks.get(i)
        if d is None:
            self.build([i])
            d = self._disks[i]
        return d

    def build(self, idx: Sequence[int]) -> None:
        """Build the disks of ``idx`` not built yet, all in one batch."""
        _build_many([self], [idx])

    def has_disk(self, i: int) -> bool:
        return i in self._disks

    def add_disk(self, i: int, disk: BaseGeometry) -> None:
        """A disk built by :func:`_build_many`."""
        self._disks[i] = disk

    def shape(self, region: BaseGeometry) -> _Shape:
        """:meth:`_Shape.of`, reusing the latest one when asked about the same region."""
        last = self._shape
        if last is None or last.geom is not region:
            last = self._shape = _Shape.of(region)
            self._inside = {}
        return last

    def order(self, members: Iterable[int]) -> list[int]:
        """The members with a finite radius, by increasing radius (ties by index)."""
        idx = np.fromiter(members, dtype=np.int64)
        idx = np.sort(idx[np.isfinite(self.r[idx])])
        out: list[int] = idx[np.argsort(self.r[idx], kind="stable")].tolist()
        return out

    def likely_needed(self, order: Sequence[int]) -> list[int]:
        """The disks of ``order`` (by increasing radius) worth building at once: a guess.

        A disk is left out when it seems to contain a smaller disk kept before it
        (centre distance on the sphere of radius R1, an upper bound, plus the
        smaller polygon's usual reach). Only a guess: :meth:`intersect` checks the
        final region against every disk left out, so a wrong guess costs time only.
        """
        key = tuple(order)
        got = self._likely.get(key)
        if got is not None:
            return got
        idx = np.array(order, dtype=np.int64)
        r = self.r[idx]
        reach = r * (1 + DISK_REACH_REL) + DISK_REACH_KM
        if idx.size <= 64:  # all pairs at once: (p, q) means disk p's polygon lies in disk q
            u = self.unit[idx]
            inside = R1_KM * np.arccos(np.clip(u @ u.T, -1.0, 1.0)) + reach[:, None] <= r
            kept = [True] * idx.size
            for p, row in enumerate(inside.tolist()):
                if kept[p]:
                    for q in range(p + 1, idx.size):
                        if row[q]:
                            kept[q] = False
            out: list[int] = idx[np.array(kept, dtype=bool)].tolist()
        else:  # many landmarks: one row per disk kept
            keep = np.ones(idx.size, dtype=bool)
            for p in range(idx.size - 1):
                if not keep[p]:
                    continue
                later = idx[p + 1 :]
                angle = np.arccos(np.clip(self.unit[later] @ self.unit[idx[p]], -1.0, 1.0))
                keep[p + 1 :] &= R1_KM * angle + reach[p] > self.r[later]
            out = idx[keep].tolist()
        self._likely[key] = out
        return out

    def begin(self, members: Iterable[int]) -> _Cut:
        """The first part of :meth:`intersect`: the likely disks cut, the others tested.

        The disks that seem needed (:meth:`likely_needed`) are built in one batch and
        intersected by increasing radius; then every disk left out is tested against
        the region, and those that do not provably contain it (a disk that contains
        the region cannot change it) are named in ``more``, to be built (by the
        caller, with other problems' disks if it likes) and cut by :meth:`finish`.
        """
        order = self.order(members)
        if not order:
            return _Cut(WORLD, [], None, [])
        first = self.likely_needed(order)
        self.build(first)
        used = [first[0]]
        region, failed = self._cut(self.disk(first[0]), first[1:], used)
        left_out = set(order) - set(first)
        more: list[int] = []
        if failed is None and left_out:
            # One test for all disks (the used ones too, for binding_of): those left
            # out that may not contain the region are intersected as well.
            probe = np.array(order, dtype=np.int64)
            contains = dict(
                zip(order, self.inside(self.shape(region), probe).tolist(), strict=True)
            )
            more = [i for i in order if i in left_out and not contains[i]]  # by radius
        return _Cut(region, used, failed, more)

    def finish(self, cut: _Cut) -> tuple[BaseGeometry, list[int], int | None]:
        """Region of a :meth:`begin`; the disks actually intersected; the index that emptied it."""
        if not cut.more:
            return cut.region, cut.used, cut.failed
        self.build(cut.more)
        used = list(cut.used)
        region, failed = self._cut(cut.region, cut.more, used)
        return region, used, failed

    def intersect(self, members: Iterable[int]) -> tuple[BaseGeometry, list[int], int | None]:
        """Region of ``members``; the disks actually intersected; the index that emptied it."""
        return self.finish(self.begin(members))

    def _cut(
        self, region: BaseGeometry, idx: Sequence[int], used: list[int]
    ) -> tuple[BaseGeometry, int | None]:
        """Intersect ``region`` with the disks ``idx`` in turn (appended to ``used``)."""
        for j in idx:
            region = _polygonal(shapely.intersection(region, self.disk(j)))
            used.append(j)
            if region.is_empty:
                return region, j
        return region, None

    def inside(self, shape: _Shape, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """:func:`_inside_disks` for the disks ``idx``, remembered for the latest shape."""
        self.shape(shape.geom)
        known = self._inside
        todo = np.array([i for i in idx.tolist() if i not in known], dtype=np.int64)
        if todo.size:
            got = _inside_disks(
                shape, self.lat[todo], self.lon[todo], self.unit[todo], self.r[todo]
            )
            known.update(zip(todo.tolist(), got.tolist(), strict=True))
        return np.array([known[i] for i in idx.tolist()], dtype=bool)

    def binding_of(self, region: BaseGeometry, used: Sequence[int]) -> frozenset[int]:
        if any(self.r[i] > _BIG_DISK_KM for i in used) or len(used) <= 1:
            return frozenset(used)
        idx = np.array(used, dtype=np.int64)
        return frozenset(idx[~self.inside(self.shape(region), idx)].tolist())

    def solve_set(self, members: frozenset[int], cut: _Cut | None = None) -> _SetResult:
        """The region of ``members`` with its binding (or conflicting) landmarks, cached;
        from ``cut`` (:meth:`begin` of the same members) when given."""
        cached = self._sets.get(members)
        if cached is not None:
            return cached
        region, used, failed = self.finish(cut if cut is not None else self.begin(members))
        if failed is None:
            result = _SetResult(region, self.binding_of(region, used), ())
        else:
            before, used_before, _ = self.intersect(u for u in used if u != failed)
            candidates = set(self.binding_of(before, used_before)) | {failed}
            result = _SetResult(region, frozenset(), self.minimal_conflict(candidates))
        self._sets[members] = result
        return result

    def minimal_conflict(self, candidates: set[int]) -> tuple[int, ...]:
        idx = sorted(candidates)
        best: tuple[float, int, int] | None = None
        for a_pos, a in enumerate(idx):
            rest = np.array(idx[a_pos + 1 :], dtype=np.int64)
            if rest.size == 0:
                continue
            d = geodesic_km(self.lat[a], self.lon[a], self.lat[rest], self.lon[rest])
            gap = d - (self.r[a] + self.r[rest])
            k = int(np.argmax(gap))
            if gap[k] > 0 and (best is None or gap[k] > best[0]):
                best = (float(gap[k]), a, int(rest[k]))
        if best is not None:
            return tuple(sorted((best[1], best[2])))
        current = set(idx)
        for e in sorted(idx, key=lambda i: -self.r[i]):
            trial = current - {e}
            region, _, _ = self.intersect(trial)
            if region.is_empty:
                current = trial
        return tuple(sorted(current))


# --------------------------------------------------------------------------- verdicts


def _decide(region: BaseGeometry, zone: AuthorizedRegion) -> Verdict:
    if region.is_empty:
        return Verdict.INCONSISTENT
    if shapely.covers(zone.geometry, region):
        return Verdict.COMPLIANT
    # A cheap proof that the region meets the outer zone before the full predicate: a
    # vertex of the zone's border (in the closed zone) inside the region.
    border = zone.outer_border
    if border.lat_a.size and shapely.intersects_xy(region, border.lon_a[0], border.lat_a[0]):
        return Verdict.INCONCLUSIVE
    if not shapely.intersects(zone.outer_geometry, region):
        return Verdict.VIOLATION
    return Verdict.INCONCLUSIVE


def _margin_km(
    prob: _Problem, members: Iterable[int], region: BaseGeometry, border: BorderSegments
) -> float:
    """Lower bound (km) of the distance from the exact intersection to ``border``."""
    idx = np.array(sorted(members), dtype=np.int64)
    if idx.size == 0 or border.lat_a.size == 0:
        return 0.0
    shape = prob.shape(region)
    u = shape.unit
    u0 = u.mean(axis=0)
    norm = float(np.linalg.norm(u0))
    if norm < 1e-6:
        return 0.0
    u0 /= norm
    alpha = float(np.arccos(np.clip(u @ u0, -1, 1)).max()) + shape.half_edge_km / R0_KM
    ang_a = np.arccos(np.clip(border.unit_a @ u0, -1, 1))
    ang_b = np.arccos(np.clip(border.unit_b @ u0, -1, 1))
    seg_len = border.len_km
    lat_c, lon_c, r_c = prob.lat[idx, None], prob.lon[idx, None], prob.r[idx, None]

    def f_bound(
        lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``max_i (dist(v, c_i) - r_i)`` on the spheres of radius R0 and R1."""
        angle = _sphere_km(lat_c, lon_c, lat[None, :], lon[None, :], 1.0)
        return (R0_KM * angle - r_c).max(axis=0), (R1_KM * angle - r_c).max(axis=0)

    beta_km = 250.0
    while True:
        sel = np.minimum(ang_a, ang_b) <= alpha + (beta_km + seg_len) / R0_KM
        if not sel.any():
            best = math.inf
        else:
            la, loa, lb, lob, ln = (
                border.lat_a[sel],
                border.lon_a[sel],
                border.lat_b[sel],
                border.lon_b[sel],
                seg_len[sel],
            )
            (lo_a, hi_a), (lo_b, hi_b) = f_bound(la, loa), f_bound(lb, lob)
            lo = (lo_a + lo_b - ln) / 2
            hi = (hi_a + hi_b - ln) / 2
            cand = lo <= float(hi.min())
            ea = (geodesic_km(lat_c, lon_c, la[None, cand], loa[None, cand]) - r_c).max(axis=0)
            eb = (geodesic_km(lat_c, lon_c, lb[None, cand], lob[None, cand]) - r_c).max(axis=0)
            best = float(((ea + eb - ln[cand]) / 2).min())
        if best <= beta_km or beta_km >= 40000.0:
            return max(0.0, min(best, beta_km))
        beta_km *= 4


def _center(shape: _Shape) -> tuple[float, float] | None:
    """Centre of the region's boundary: its edge midpoints weighted by length (unit vectors)."""
    if shape.geom.is_empty or shape.seg_len_km.size == 0:
        return None
    mid = shape.unit[:-1][shape.same] + shape.unit[1:][shape.same]
    v = shape.seg_len_km @ mid
    n = float(np.linalg.norm(v))
    if n < 1e-9 * 2 * float(shape.seg_len_km.sum()):
        return None
    v /= n
    lat = math.degrees(math.asin(max(-1.0, min(1.0, float(v[2])))))
    lon = math.degrees(math.atan2(float(v[1]), float(v[0])))
    return lat, lon


#: Relative and absolute bound on how far a :func:`geodesic_disk` polygon reaches beyond its
#: radius (measured worst case 0.22 %; checked in tests/solver/test_geodesy.py).
DISK_REACH_REL: Final = 5e-3
DISK_REACH_KM: Final = 0.02
_NEAR_OTHERS: Final = 3  # non-binding landmarks of each kind also asked (see _settle_candidates)


def _segments_lower_km(
    p: npt.NDArray[np.float64], z: CoarseZone, use: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Per point (row of ``p``) and zone geometry (column: inner, outer): the smallest
    ``(d(A) + d(B) - |AB|) / 2`` over that geometry's boundary segments marked in ``use``.

    ``d`` is the great-circle distance on the sphere of radius R0 (never above the
    WGS84 geodesic), less the rounding slack. Exact, with pruning: the segment at
    the nearest endpoint (distance ``m``) gives at most ``m``, and a segment whose
    nearer end lies at ``e`` gives at least ``e - |AB|/2``, so only segments with
    ``e <= m + max|AB|/2`` are evaluated. ``inf`` where no segment is used.
    """
    dot_a, dot_b = p @ z.unit_a.T, p @ z.unit_b.T
    near = np.maximum(dot_a, dot_b)  # the nearer end of each segment
    if not use.all():
        near[:, ~use] = -2.0  # below any cosine: never evaluated
    keep = np.zeros(near.shape, dtype=bool)
    for part in (slice(0, z.split), slice(z.split, None)):
        used = use[part]
        if not used.any():
            continue
        half = float(z.len_km[part][used].max()) / 2 / R0_KM + 1e-6
        nearest = np.arccos(np.clip(near[:, part].max(axis=1), -1.0, 1.0))
        lim = np.cos(np.minimum(nearest + half, math.pi))
        np.greater_equal(near[:, part], lim[:, None], out=keep[:, part])
    rows, cols = np.divmod(np.flatnonzero(keep), use.size)  # 2-D nonzero is slow
    d_a = np.arccos(np.clip(dot_a[rows, cols], -1.0, 1.0))
    d_a += np.arccos(np.clip(dot_b[rows, cols], -1.0, 1.0))
    bound = (R0_KM * d_a - z.len_km[cols]) / 2 - _ARC_SLACK_KM
    best = np.full((p.shape[0], 2), np.inf)
    np.minimum.at(best, (rows, (cols >= z.split).astype(np.intp)), bound)
    return best


_MEETING_CELLS: Final = 1 << 22  # regions x zone segments per block in _meeting


def _meeting(
    lines: npt.NDArray[np.object_],
    line_job: npt.NDArray[np.intp],
    regions: npt.NDArray[np.object_],
    z: CoarseZone,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Region boundary segments (``lines``, of the regions ``regions[line_job]``) that
    meet the inner / the outer zone's boundary; per region (row), the zone segments
    (of both) that meet it.

    A zone segment meets the polygon R iff it meets R's boundary (one of its lines:
    the pairs of the one query) or lies inside R. A run of consecutive segments of a
    zone ring that all miss R's boundary is a connected path disjoint from it, so
    it lies wholly inside or wholly outside R: one point test per run decides.
    """
    ia, ja = z.tree.query(lines, predicate="intersects")
    outer = ja >= z.split
    cross_inner = np.zeros(len(lines), dtype=bool)
    cross_inner[ia[~outer]] = True
    cross_outer = np.zeros(len(lines), dtype=bool)
    cross_outer[ia[outer]] = True
    n_zone = z.lon_a.size
    meets = np.zeros((regions.size, n_zone), dtype=bool)
    meets[line_job[ia], ja] = True
    # The runs, a block of regions at a time: the (regions x zone segments) temporaries of
    # a big zone (100,000+ coarse segments) would otherwise take hundreds of MB.
    block = max(1, _MEETING_CELLS // max(n_zone, 1))
    for lo in range(0, regions.size, block):
        hit = meets[lo : lo + block]
        start = np.repeat(z.ring_first[None, :], hit.shape[0], axis=0)  # each run's first
        start[:, 1:] |= hit[:, :-1]
        start &= ~hit
        job, first = np.divmod(np.flatnonzero(start), n_zone)
        if first.size:  # each row starts a run (a ring's first segment): runs stay in their row
            inside = shapely.intersects_xy(regions[lo + job], z.lon_a[first], z.lat_a[first])
            # int32: numpy's bool -> int64 running sum is ~20x slower than bool -> int32
            run = np.cumsum(start, dtype=np.int32) - 1
            hit |= ~hit & inside[run.reshape(hit.shape)]
    return cross_inner, cross_outer, meets


@dataclass(frozen=True, slots=True)
class _SettleJob:
    """An INCONCLUSIVE result waiting for its advice (:func:`_settle_many`), and the
    message that will name it."""

    prob: _Problem
    root: frozenset[int]
    res: _SetResult
    center: tuple[float, float] | None
    message: Callable[[tuple[Settle, ...]], str]


def _settle_candidates(job: _SettleJob) -> npt.NDArray[np.int64]:
    """The landmarks asked: the binding ones (by radius), then two kinds of others: the
    nearest to the region's centre, and those that nearly bind (the farthest vertex
    nearest their radius)."""
    prob, res = job.prob, job.res
    binding = sorted(res.binding, key=lambda i: prob.r[i])
    oi = np.sort(np.fromiter(job.root - res.binding, dtype=np.int64))
    oi = oi[np.isfinite(prob.r[oi])]
    others: list[int] = oi.tolist()
    if len(others) > _NEAR_OTHERS:
        shape = prob.shape(res.region)
        far = np.arccos(np.clip((prob.unit[oi] @ shape.unit.T).min(axis=1), -1.0, 1.0))
        near = np.argsort(-far * R0_KM / prob.r[oi], kind="stable")[:_NEAR_OTHERS]
        if job.center is not None:
            c_lat, c_lon = job.center
            dist = _sphere_km(c_lat, c_lon, prob.lat[oi], prob.lon[oi], R0_KM)
            near = np.array(sorted({*np.argsort(dist)[:_NEAR_OTHERS].tolist(), *near.tolist()}))
        others = oi[near].tolist()
    return np.array(binding + others, dtype=np.int64)


def _starts(counts: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Where each run of ``counts`` items laid end to end starts."""
    out: npt.NDArray[np.intp] = np.cumsum(counts) - counts
    return out


def _runs(counts: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For runs of ``counts`` items laid end to end: each run's start, each item's offset."""
    starts = _starts(counts)
    offset = np.arange(int(counts.sum()), dtype=np.intp) - np.repeat(starts, counts)
    return starts, offset


def _settle_many(
    jobs: Sequence[_SettleJob],
    zone: AuthorizedRegion,
    model: Model,
    cal: Calibration | None,
    clock_tolerance_ppm: float,
) -> list[tuple[Settle, ...]]:
    """Per job: landmarks whose lower RTT would settle its INCONCLUSIVE region, and at
    which RTT; all jobs' arrays end to end, one call per step.

    For landmark i with a radius r' < r_i the new region is inside the current
    region R (a polygonised disk reaches at most ``r'(1 + DISK_REACH_REL) +
    DISK_REACH_KM`` from its centre, within the exact disk of radius r_i, within
    R's own polygon for i). It is COMPLIANT if that reach stays below the distance
    from landmark i to ``R - inner`` and VIOLATION if below the distance to
    ``R ∩ outer``, and not INCONSISTENT if some vertex of R is closer than r'.
    Both distances are bounded from below, with zone geometries that err on the
    safe side (:func:`coarse_geometries`), over a superset of the boundary of
    the set: boundary segments of R that leave the inner zone (resp. touch the
    outer one), and zone boundary segments that meet R. Each segment AB counts
    ``(d(A) + d(B) - |AB|) / 2`` (distance is 1-Lipschitz), with d the
    great-circle distance on the sphere of radius R0 (never above the WGS84
    geodesic). So the advice errs towards asking for a lower RTT than needed.
    """
    out: list[tuple[Settle, ...]] = [()] * len(jobs)
    cands = [_settle_candidates(job) for job in jobs]
    shapes = [job.prob.shape(job.res.region) for job in jobs]
    # Every live job has a candidate and a segment (so a vertex): the reduceat calls below
    # need non-empty runs (an empty run would read the next run's first element).
    live = [k for k, c in enumerate(cands) if c.size and shapes[k].seg_len_km.size]
    if not live:
        return out
    z = coarse_zone(zone)
    shapes = [shapes[k] for k in live]
    regions = np.array([s.geom for s in shapes], dtype=object)
    shapely.prepare(regions)  # point tests on arrays of geometries do not prepare them
    # Every region's vertices and boundary segments, end to end.
    n_v = np.array([s.lat.size for s in shapes], dtype=np.intp)
    n_s = np.array([s.seg_len_km.size for s in shapes], dtype=np.intp)
    v_start = _starts(n_v)
    lon_v = np.concatenate([s.lon for s in shapes])
    lat_v = np.concatenate([s.lat for s in shapes])
    unit_v = np.concatenate([s.unit for s in shapes])
    seg_av = np.concatenate([np.flatnonzero(s.same) for s in shapes]) + np.repeat(v_start, n_s)
    seg_len = np.concatenate([s.seg_len_km for s in shapes])
    lines = shapely.linestrings(
        np.stack(
            [np.concatenate([s.seg_a for s in shapes]), np.concatenate([s.seg_b for s in shapes])],
            axis=1,
        )
    )
    in_ci = shapely.contains_xy(z.inner, lon_v, lat_v)  # per vertex, once
    in_co = shapely.intersects_xy(z.outer, lon_v, lat_v)
    cross_ci, cross_co, meets = _meeting(lines, np.repeat(np.arange(len(live)), n_s), regions, z)
    # Superset of the boundary of R - inner (goal COMPLIANT) and of R ∩ outer (VIOLATION):
    # own segments that leave the inner zone (touch the outer one), and zone segments in R.
    own_c = ~(in_ci[seg_av] & in_ci[seg_av + 1]) | cross_ci
    own_v = in_co[seg_av] | in_co[seg_av + 1] | cross_co

    # One row per candidate landmark; (row, vertex) and (row, segment) pairs of its region.
    probs = [jobs[k].prob for k in live]
    live_cands = [cands[k] for k in live]
    n_c = np.array([c.size for c in live_cands], dtype=np.intp)
    row_job = np.repeat(np.arange(len(live)), n_c)

    def per_row(of: Callable[[_Problem], npt.NDArray[Any]]) -> npt.NDArray[Any]:
        """A per-landmark array of each live problem, at its candidates, end to end."""
        return np.concatenate([of(p)[c] for p, c in zip(probs, live_cands, strict=True)])

    cand = np.concatenate(live_cands)
    pu = per_row(lambda p: p.unit)
    pv_start, pv_off = _runs(n_v[row_job])
    pair_v = pv_off + np.repeat(v_start[row_job], n_v[row_job])
    d = np.einsum("ij,ij->i", np.repeat(pu, n_v[row_job], axis=0), unit_v[pair_v])
    np.clip(d, -1.0, 1.0, out=d)
    d = R0_KM * np.arccos(d)  # every vertex ends some segment
    ps_start, ps_off = _runs(n_s[row_job])
    pair_s = ps_off + np.repeat(_starts(n_s)[row_job], n_s[row_job])
    pa = np.repeat(pv_start - v_start[row_job], n_s[row_job]) + seg_av[pair_s]
    own_bound = (d[pa] + d[pa + 1] - seg_len[pair_s]) / 2 - _ARC_SLACK_KM
    reach = np.empty((cand.size, 2))  # columns: goal COMPLIANT, goal VIOLATION
    for col, own in enumerate((own_c, own_v)):
        reach[:, col] = np.minimum.reduceat(np.where(own[pair_s], own_bound, np.inf), ps_start)
    r_start = _starts(n_c)
    for j in np.flatnonzero(meets.any(axis=1)).tolist():
        rows = slice(int(r_start[j]), int(r_start[j] + n_c[j]))
        np.minimum(reach[rows], _segments_lower_km(pu[rows], z, meets[j]), out=reach[rows])
    # A vertex of R within r' keeps the new region non-empty (upper bound: sphere R1).
    nearest_vertex = np.minimum.reduceat(d, pv_start) * (R1_KM / R0_KM) + 2 * _ARC_SLACK_KM
    # A landmark inside the set it should keep away from can never settle it.
    c_lat, c_lon, r_c = per_row(lambda p: p.lat), per_row(lambda p: p.lon), per_row(lambda p: p.r)
    in_r = shapely.intersects_xy(regions[row_job], c_lon, c_lat)
    inside_rest = np.stack(
        [
            in_r & ~shapely.contains_xy(z.inner, c_lon, c_lat),
            in_r & shapely.intersects_xy(z.outer, c_lon, c_lat),
        ],
        axis=1,
    )
    with np.errstate(invalid="ignore"):
        r_new = np.minimum(reach, r_c[:, None])
        r_new -= DISK_REACH_KM
        r_new /= 1 + DISK_REACH_REL
        r_new *= 1 - 1e-9
    # Never from inside the set to keep away from, nor when no vertex of R lies within
    # r' (the lower RTT might leave nothing: INCONSISTENT, not a settlement).
    r_new[inside_rest | ~np.isfinite(reach) | (r_new <= nearest_vertex[:, None])] = -np.inf
    goal = (r_new[:, 1] > r_new[:, 0]).astype(np.intp)  # COMPLIANT on a tie
    best = r_new[np.arange(cand.size), goal]
    rows_ok = np.flatnonzero(np.isfinite(best))
    row_ms = [
        probs[j].ms[i]
        for j, i in zip(row_job[rows_ok].tolist(), cand[rows_ok].tolist(), strict=True)
    ]
    needed = rtts_for_radii_ms(
        row_ms, best[rows_ok], model, cal, clock_tolerance_ppm=clock_tolerance_ppm
    )
    found: list[list[tuple[float, float, Measurement, int]]] = [[] for _ in live]
    for j, m, rtt_needed, g in zip(
        row_job[rows_ok].tolist(), row_ms, needed.tolist(), goal[rows_ok].tolist(), strict=True
    ):
        if m.overhead_ms < rtt_needed < m.rtt_ms:
            found[j].append((rtt_needed / m.rtt_ms, rtt_needed, m, g))
    for j, k in enumerate(live):
        found[j].sort(key=lambda t: -t[0])
        out[k] = tuple(
            Settle(
                landmark=m.landmark,
                rtt_ms=m.rtt_ms,
                rtt_needed_ms=rtt_needed,
                would_give=(Verdict.COMPLIANT, Verdict.VIOLATION)[g],
            )
            for _, rtt_needed, m, g in found[j][:_MAX_SETTLE_CANDIDATES]
        )
    return out


# --------------------------------------------------------------------------- solve


def _tolerant_nodes(
    prob: _Problem, root: frozenset[int], budget: int
) -> dict[frozenset[int], frozenset[int]]:
    """Every distinct ``root - X`` (|X| <= budget) whose region may differ, mapped to X."""
    seen: dict[frozenset[int], frozenset[int]] = {}

    def visit(node: frozenset[int], removed: frozenset[int], left: int) -> None:
        if node in seen:
            return
        seen[node] = removed
        if left == 0:
            return
        res = prob.solve_set(node)
        branch = res.binding if not res.region.is_empty else frozenset(res.conflict)
        for b in sorted(branch):
            visit(node - {b}, removed | {b}, left - 1)

    visit(root, frozenset(), budget)
    return seen


def solve(
    target: str,
    measurements: Sequence[Measurement],
    region: AuthorizedRegion,
    *,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
    estimate: bool = True,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> SolveResult:
    """Locate ``target`` from its landmarks' minimum RTTs and decide against ``region``.

    ``clock_tolerance_ppm`` bounds the landmark clocks' rate error; every RTT is
    widened accordingly before it becomes a distance (see ``docs/solver.md``).
    Expected outcomes (including INCONSISTENT and UNREACHABLE) are values;
    only malformed input raises (MeasurementError / ValueError).
    """
    return solve_many(
        [(target, measurements)],
        region,
        model=model,
        tolerate=tolerate,
        calibration=calibration,
        estimate=estimate,
        clock_tolerance_ppm=clock_tolerance_ppm,
    )[0]


_BATCH: Final = 256  # targets whose first disks are built together


def solve_many(
    targets: Iterable[tuple[str, Sequence[Measurement]]],
    region: AuthorizedRegion,
    *,
    model: Model = Model.VACUUM,
    tolerate: int = 0,
    calibration: Calibration | None = None,
    estimate: bool = True,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> list[SolveResult]:
    """:func:`solve` for each ``(target, measurements)`` against one zone, in order.

    The same results as one :func:`solve` per target, up to rounding (disk vertices
    built in a batch may differ by 1e-9 deg; estimates of 16 or more targets run in
    lockstep). The disks each target is likely to need are built for up to 256 targets
    at once: every vectorised step of the disk construction (plan, ``Geod.fwd``,
    certificate, polygons) is then paid once per batch instead of once per target.
    """
    clock_tolerance_ppm = check_clock_tolerance_ppm(clock_tolerance_ppm)
    if not isinstance(model, Model):
        raise ValueError(f"model must be a Model, got {model!r}")
    if (
        isinstance(tolerate, bool)
        or not isinstance(tolerate, int)
        or not 0 <= tolerate <= _MAX_TOLERATE
    ):
        raise ValueError(f"tolerate must be an int in [0, {_MAX_TOLERATE}], got {tolerate!r}")
    opts = _Options(
        model=model,
        tolerate=tolerate,
        calibration=calibration,
        estimate=estimate,
        clock_tolerance_ppm=clock_tolerance_ppm,
    )
    out: list[SolveResult] = []
    batch: list[tuple[str, _Problem | None]] = []
    for target, measurements in targets:
        ms = tuple(measurements)
        ids = [m.landmark for m in ms]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise MeasurementError(
                f"{target}: duplicate landmark(s) {', '.join(dup)}", reason="duplicate"
            )
        prob = _Problem(ms, model, calibration, clock_tolerance_ppm) if ms else None
        batch.append((target, prob))
        if len(batch) == _BATCH:
            out.extend(_solve_batch(batch, region, opts))
            batch = []
    out.extend(_solve_batch(batch, region, opts))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    model: Model
    tolerate: int
    calibration: Calibration | None
    estimate: bool
    clock_tolerance_ppm: float


def _solve_batch(
    batch: Sequence[tuple[str, _Problem | None]], region: AuthorizedRegion, opts: _Options
) -> list[SolveResult]:
    """Solve the problems' full sets in phases, each phase's disks in one batch (the
    likely ones, then those that the first regions could not prove redundant), then
    finish each problem in turn."""
    probs = [p for _, p in batch if p is not None]
    roots = [frozenset(range(len(p.ms))) for p in probs]
    likely = [p.likely_needed(p.order(root)) for p, root in zip(probs, roots, strict=True)]
    _build_many(probs, likely)
    cuts = [p.begin(root) for p, root in zip(probs, roots, strict=True)]
    _build_many(probs, [cut.more for cut in cuts])
    for p, root, cut in zip(probs, roots, cuts, strict=True):
        p.solve_set(root, cut)
    solved = [_solve_one(target, prob, region, opts) for target, prob in batch]
    results = [result for result, _, _ in solved]
    settling = [(k, job) for k, (_, _, job) in enumerate(solved) if job is not None]
    if settling:
        advice = _settle_many(
            [job for _, job in settling],
            region,
            opts.model,
            opts.calibration,
            opts.clock_tolerance_ppm,
        )
        for (k, job), settle in zip(settling, advice, strict=True):
            if settle:
                results[k] = dataclasses.replace(
                    results[k], settle=settle, message=job.message(settle)
                )
    asked = [k for k, (_, want, _) in enumerate(solved) if want is not None]
    wanted = [want for _, want, _ in solved if want is not None]
    if wanted:
        est_model = Model.CALIBRATED if opts.model is Model.CALIBRATED else Model.FIBER
        positions = estimate_positions(
            wanted, est_model, opts.calibration, opts.clock_tolerance_ppm
        )
        for k, pos in zip(asked, positions, strict=True):
            if pos is not None:
                est = Estimate(lat=pos[0], lon=pos[1], model=est_model)
                results[k] = dataclasses.replace(results[k], estimate=est)
    return results


def _build_many(probs: Sequence[_Problem], wanted: Sequence[Sequence[int]]) -> None:
    """Build the disks ``wanted[k]`` of ``probs[k]`` (those not built yet), all in one call."""
    todo = [[i for i in want if not p.has_disk(i)] for p, want in zip(probs, wanted, strict=True)]
    sizes = [len(t) for t in todo]
    if not any(sizes):
        return
    owner = np.repeat(np.arange(len(probs)), sizes)
    idx = np.concatenate([np.array(t, dtype=np.int64) for t in todo])
    offset = np.cumsum([0] + [len(p.ms) for p in probs[:-1]])
    flat = idx + offset[owner]
    disks = geodesic_disks(
        np.concatenate([p.lat for p in probs])[flat],
        np.concatenate([p.lon for p in probs])[flat],
        np.concatenate([p.r for p in probs])[flat],
    )
    for k, i, geom in zip(owner.tolist(), idx.tolist(), disks, strict=True):
        probs[k].add_disk(i, geom)


#: What an estimate starts from: the landmarks to fit and a start (lat, lon).
_EstimateRequest = tuple[list[Measurement], tuple[float, float]]


def _solve_one(
    target: str, prob: _Problem | None, region: AuthorizedRegion, opts: _Options
) -> tuple[SolveResult, _EstimateRequest | None, _SettleJob | None]:
    """The result without its estimate and settle advice (both made for the whole batch
    at once, :func:`_solve_batch`): what the estimate should start from, if one is
    wanted, and the advice to give, if the result is INCONCLUSIVE."""
    model, tolerate = opts.model, opts.tolerate
    clock_tolerance_ppm, estimate = opts.clock_tolerance_ppm, opts.estimate
    proof = model is Model.VACUUM

    def make(**kw: Any) -> SolveResult:
        return SolveResult(
            target=target,
            proof=proof,
            model=model,
            region_spec=region.spec,
            tolerate=tolerate,
            clock_tolerance_ppm=clock_tolerance_ppm,
            **kw,
        )

    if prob is None:
        return make(
            verdict=Verdict.UNREACHABLE, region=None, region_center=None, area_km2=None,
            margin_km=None, binding_landmarks=(), conflicting_landmarks=(), settle=(),
            estimate=None,
            landmarks=(), message=f"{target}: no measurement from any landmark",
        ), None, None  # fmt: skip
    ms = prob.ms
    root = frozenset(range(len(ms)))
    res = prob.solve_set(root)
    nodes = _tolerant_nodes(prob, root, tolerate) if tolerate else {root: frozenset()}
    names = [m.landmark for m in ms]

    def bounds(binding: frozenset[int]) -> tuple[LandmarkBound, ...]:
        return tuple(
            LandmarkBound(measurement=m, radius_km=r, binding=i in binding)
            for i, (m, r) in enumerate(zip(ms, prob.r.tolist(), strict=True))
        )

    consistent = {n: x for n, x in nodes.items() if not prob.solve_set(n).region.is_empty}
    if not consistent:
        conflict = tuple(names[i] for i in res.conflict)
        return make(
            verdict=Verdict.INCONSISTENT, region=None, region_center=None, area_km2=None,
            margin_km=None, binding_landmarks=(), conflicting_landmarks=conflict, settle=(),
            estimate=None, landmarks=bounds(frozenset()),
            message=(
                f"no location satisfies all bounds under the {model.value} model: "
                f"{', '.join(conflict)} conflict"
                + (f" (even with any {tolerate} left out)" if tolerate else "")
            ),
        ), None, None  # fmt: skip

    verdicts = {n: _decide(prob.solve_set(n).region, region) for n in consistent}
    kinds = set(verdicts.values())
    verdict = kinds.pop() if len(kinds) == 1 else Verdict.INCONCLUSIVE
    if len(consistent) == 1:
        out_region = prob.solve_set(next(iter(consistent))).region
    else:
        out_region = _polygonal(shapely.union_all([prob.solve_set(n).region for n in consistent]))
    liars: tuple[tuple[str, ...], ...] = ()
    if res.region.is_empty:
        smallest = min(len(x) for x in consistent.values())
        liars = tuple(
            sorted(
                {
                    tuple(sorted(names[i] for i in x))
                    for x in consistent.values()
                    if len(x) == smallest
                }
            )
        )
    root_binding = res.binding if not res.region.is_empty else frozenset()

    margin: float | None = None
    if verdict in (Verdict.COMPLIANT, Verdict.VIOLATION):
        border = region.inner_border if verdict is Verdict.COMPLIANT else region.outer_border
        margin = min(
            _margin_km(prob, prob.solve_set(n).binding, prob.solve_set(n).region, border)
            for n in consistent
        )
    center = _center(prob.shape(out_region))
    want: _EstimateRequest | None = None
    if estimate:
        largest: frozenset[int] = max(consistent, key=len)
        use = [ms[i] for i in sorted(largest)]
        want = (use, center if center is not None else (use[0].lat, use[0].lon))

    def message(settle: tuple[Settle, ...]) -> str:
        return _message(
            verdict, region.spec, margin, model, settle, names, verdicts, consistent, liars, res
        )

    job: _SettleJob | None = None
    if verdict is Verdict.INCONCLUSIVE and verdicts.get(root) is Verdict.INCONCLUSIVE:
        job = _SettleJob(prob, root, res, center, message)
    return make(
        verdict=verdict, region=out_region, region_center=center,
        area_km2=polygon_area_km2(out_region), margin_km=margin,
        binding_landmarks=tuple(names[i] for i in sorted(root_binding, key=lambda i: prob.r[i])),
        conflicting_landmarks=tuple(names[i] for i in res.conflict), settle=(), estimate=None,
        landmarks=bounds(root_binding), message=message(()), likely_liars=liars,
    ), want, job  # fmt: skip


def _message(
    verdict: Verdict,
    spec: str,
    margin: float | None,
    model: Model,
    settle: tuple[Settle, ...],
    names: list[str],
    verdicts: dict[frozenset[int], Verdict],
    consistent: dict[frozenset[int], frozenset[int]],
    liars: tuple[tuple[str, ...], ...],
    res: _SetResult,
) -> str:
    label = (
        ""
        if model is Model.VACUUM
        else f" (under the {model.value} model: an estimate, not a proof)"
    )
    if verdict is Verdict.COMPLIANT:
        text = f"region lies {margin or 0.0:.1f} km inside {spec}{label}"
    elif verdict is Verdict.VIOLATION:
        text = f"region lies {margin or 0.0:.1f} km outside {spec}{label}"
    else:
        text = f"region overlaps the border of {spec}{label}"
        if settle:
            s = settle[0]
            text += (
                f"; {s.landmark} at <= {s.rtt_needed_ms:.3f} ms (now {s.rtt_ms:.3f} ms) "
                f"would give {s.would_give.value}"
            )
        flips = sorted(
            {
                ", ".join(sorted(names[i] for i in consistent[n]))
                for n, v in verdicts.items()
                if consistent[n]
            }
        )
        if len(set(verdicts.values())) > 1 and flips:
            text += f"; the verdict changes when leaving out {' or '.join(flips[:3])}"
    if liars:
        text += (
            "; all landmarks together are inconsistent ("
            + ", ".join(names[i] for i in res.conflict)
            + f" conflict); likely liar(s): {' or '.join('+'.join(x) for x in liars)}"
        )
    return text
