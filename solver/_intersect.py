"""Intersect the landmarks' disks into a proven region (an outer approximation).

Invariants enforced here:

* The region is an OUTER approximation of the exact intersection of the model's
  geodesic disks: each disk polygon circumscribes its disk, and the intersection of
  supersets is a superset. An empty polygon intersection therefore proves an empty exact
  intersection.
* Disks are taken by increasing radius; one that seems to contain a smaller disk is not
  built at first (a guess), but the final region is tested against every disk left out,
  and one that does not provably contain it (every region edge AB within ``r`` by
  ``(d(A) + d(B) + |AB|) / 2`` with an upper bound of the geodesic distance, and its
  antipode outside the region) is intersected too: a disk that contains the region
  cannot change it. Landmarks whose disk is not proven to contain the final region are
  *binding*; the region equals the intersection of the binding disks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from ._geodesy import (
    R0_KM,
    R1_KM,
    WORLD,
    _polygonal,
    edge_length_bound_km,
    geodesic_disks,
    geodesic_km,
)
from ._models import (
    Calibration,
    Measurement,
    Model,
    radii_km,
)

#: Relative and absolute bound on how far a :func:`geodesic_disk` polygon reaches beyond its
#: radius (measured worst case 0.22 %; checked in tests/solver/test_geodesy.py).
DISK_REACH_REL: Final = 5e-3
DISK_REACH_KM: Final = 0.02
_BIG_DISK_KM: Final = 9000.0  # above this the region may be disconnected: all intersected bind


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
