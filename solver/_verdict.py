"""Decide a proven region against an authorized zone, and bound the margin.

Invariants enforced here:

* COMPLIANT only if the region is covered by the zone's inner geometry; VIOLATION only
  if it misses the zone's outer geometry; otherwise INCONCLUSIVE.
* ``margin_km`` never overstates: for every border segment it takes
  ``(f(A) + f(B) - len) / 2`` with ``f(v) = max_i (dist(v, c_i) - r_i)``, a lower bound
  of the distance from ``v`` to the exact intersection (triangle inequality) and a
  1-Lipschitz function along the border. ``len`` is an upper bound of the length of the
  segment as drawn: a straight line in lon/lat (RFC 7946), not a great circle.
* ``margin_km`` is within ~1 km of the true distance however long the zone's edges: the
  segments near the region are cut into pieces of at most ``_MARGIN_STEP_KM`` along their
  own lon/lat line before the bound is taken (a piece's ends lie on the segment, so each
  piece's bound is a bound for that piece and the minimum over the pieces one for the
  segment; the loss of ``(f(A) + f(B) - len) / 2`` against the true minimum is at most
  ``len``). A 4-corner GeoJSON box has edges of hundreds of km: uncut, its margin was 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from ._geodesy import (
    R0_KM,
    R1_KM,
    edge_length_bound_km,
    geodesic_km,
)
from ._intersect import _Problem, _Shape, _sphere_km
from ._regions import AuthorizedRegion, BorderSegments
from ._results import Verdict

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


#: The longest piece of a border segment the margin bound is taken on (km): the bound
#: loses at most a piece's length against the true distance.
_MARGIN_STEP_KM = 0.5
#: At most this many pieces per margin (a longer step past it: still sound, less tight).
_MARGIN_MAX_PIECES = 200_000
#: Rounding room when a whole segment is ruled out before cutting (km; 1 m).
_PRUNE_SLACK_KM = 1e-3
#: Rounding allowance of an angle from arccos (radians; ~1e-8 near 0, with room).
_ANGLE_SLACK_RAD = 1e-7
#: Clusters whose vertices give the first upper bound of the margin.
_PROBE_CLUSTERS = 4


def _pieces(
    lat_a: npt.NDArray[np.float64],
    lon_a: npt.NDArray[np.float64],
    lat_b: npt.NDArray[np.float64],
    lon_b: npt.NDArray[np.float64],
    len_km: npt.NDArray[np.float64],
    step: float,
) -> tuple[npt.NDArray[np.float64], ...]:
    """Segments cut into pieces of at most ``step`` km along their lon/lat line.

    Returns the pieces' ends and upper bounds of their lengths (``edge_length_bound_km``
    of each piece: the bound of a straight lon/lat segment, as for the whole). Segments
    short enough already are returned as they are.
    """
    k = np.maximum(np.ceil(len_km / step), 1.0).astype(np.intp)
    if int(k.max(initial=1)) == 1:
        return lat_a, lon_a, lat_b, lon_b, len_km
    seg = np.repeat(np.arange(k.size), k)
    first = np.repeat(np.cumsum(k) - k, k)
    j = np.arange(seg.size) - first
    t0 = j / k[seg]
    t1 = (j + 1) / k[seg]
    dlat = lat_b[seg] - lat_a[seg]
    dlon = lon_b[seg] - lon_a[seg]
    pa_lat = lat_a[seg] + t0 * dlat
    pa_lon = lon_a[seg] + t0 * dlon
    last = t1 >= 1.0  # the last piece ends exactly at B (no rounding past it)
    pb_lat = np.where(last, lat_b[seg], lat_a[seg] + t1 * dlat)
    pb_lon = np.where(last, lon_b[seg], lon_a[seg] + t1 * dlon)
    return pa_lat, pa_lon, pb_lat, pb_lon, edge_length_bound_km(pa_lat, pa_lon, pb_lat, pb_lon)


def _margin_km(
    prob: _Problem, members: Iterable[int], region: BaseGeometry, border: BorderSegments
) -> float:
    """Lower bound (km) of the distance from the exact intersection to ``border``.

    The minimum over the border's pieces of ``(f(P) + f(Q) - |PQ|) / 2``, found without
    looking at most of the border (``region`` is not needed: ``f`` bounds the distance to
    the exact intersection of the disks ``members`` on its own):

    1. clusters: every point ``p`` of cluster ``k``'s cap (centre ``c_k``, radius
       ``rho_k``) has ``f(p) >= L_k = max_i (R0 (angle(c_k, c_i) - rho_k) - r_i)`` (the
       spherical triangle inequality; R0 times an angle never exceeds the geodesic), so
       every segment of the cluster has a whole-segment bound of at least
       ``L_k - maxlen_k / 2``;
    2. ``U``, an upper bound of the minimum: ``f`` (on the larger sphere) at the ends of
       the segments of the clusters with the smallest ``L_k`` (the piece at a vertex V
       bounds at most ``f(V)``);
    3. only clusters with ``L_k - maxlen_k / 2 <= U`` can hold the minimum: their segments
       go through the whole-segment pruning and the cutting below, exactly as before.
    """
    idx = np.array(sorted(members), dtype=np.int64)
    if idx.size == 0 or border.lat_a.size == 0:
        return 0.0
    seg_len = border.len_km
    lat_c, lon_c, r_c = prob.lat[idx, None], prob.lon[idx, None], prob.r[idx, None]

    def f_bound(
        lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``max_i (dist(v, c_i) - r_i)`` on the spheres of radius R0 and R1."""
        angle = _sphere_km(lat_c, lon_c, lat[None, :], lon[None, :], 1.0)
        return (R0_KM * angle - r_c).max(axis=0), (R1_KM * angle - r_c).max(axis=0)

    # 1. a lower bound of f over each cluster's cap
    cos_k = np.clip(border.cluster_unit @ prob.unit[idx].T, -1.0, 1.0)  # (clusters, disks)
    low_k = (R0_KM * (np.arccos(cos_k) - border.cluster_rho[:, None]) - r_c.T).max(axis=1)
    low_k -= R0_KM * _ANGLE_SLACK_RAD  # arccos rounds by ~1e-8 rad near 0
    floor_k = low_k - border.cluster_max_len_km / 2
    # 2. an upper bound of the minimum, at the vertices of the most promising clusters
    probe = border.segments_of(np.argsort(low_k)[:_PROBE_CLUSTERS])
    upper = float(f_bound(border.lat_a[probe], border.lon_a[probe])[1].min())
    # 3. every segment of a cluster that may hold the minimum
    keep = np.flatnonzero(floor_k <= upper + _PRUNE_SLACK_KM)
    sel = border.segments_of(keep)
    step = max(_MARGIN_STEP_KM, float(seg_len[sel].sum()) / _MARGIN_MAX_PIECES)
    # Whole segments first: a piece PQ of segment AB has (f(P) + f(Q) - |PQ|) / 2
    # >= (f(A) + f(B) - |AB|) / 2 (f is 1-Lipschitz and the pieces' length bounds
    # add up to at most |AB|'s), and the piece at a vertex V gives at most f(V).
    # So a segment whose whole-segment lower bound exceeds the smallest upper
    # bound of f at a vertex holds no piece that can be the minimum: cutting
    # only the others gives the same minimum, at a fraction of the pieces.
    (lo_a, hi_a), (lo_b, hi_b) = (
        f_bound(border.lat_a[sel], border.lon_a[sel]),
        f_bound(border.lat_b[sel], border.lon_b[sel]),
    )
    upper = min(upper, float(hi_a.min()), float(hi_b.min()))
    sel = sel[(lo_a + lo_b - seg_len[sel]) / 2 <= upper + _PRUNE_SLACK_KM]
    la, loa, lb, lob, ln = _pieces(
        border.lat_a[sel],
        border.lon_a[sel],
        border.lat_b[sel],
        border.lon_b[sel],
        seg_len[sel],
        step,
    )
    (lo_a, hi_a), (lo_b, hi_b) = f_bound(la, loa), f_bound(lb, lob)
    lo = (lo_a + lo_b - ln) / 2
    hi = (hi_a + hi_b - ln) / 2
    cand = lo <= float(hi.min())
    ea = _f_exact(lat_c, lon_c, r_c, la[cand], loa[cand])
    eb = _f_exact(lat_c, lon_c, r_c, lb[cand], lob[cand])
    return max(0.0, float(((ea + eb - ln[cand]) / 2).min()))


#: Rounding room when a disk is ruled out of the maximum at a point (km).
_MAX_SLACK_KM = 1e-6


def _f_exact(
    lat_c: npt.NDArray[np.float64],
    lon_c: npt.NDArray[np.float64],
    r_c: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """``f(v) = max_i (geodesic(v, c_i) - r_i)`` at each point, exactly (WGS84).

    A geodesic is computed only for the disks that can attain the maximum at the point:
    disk ``i`` cannot if even its largest value, ``R1 angle_i - r_i``, is below another
    disk's smallest, ``R0 angle_j - r_j`` (the true ``geodesic - r`` lies between the two
    for every disk). Usually one disk of the 8 or more is left.
    """
    angle = _sphere_km(lat_c, lon_c, lat[None, :], lon[None, :], 1.0)  # (disks, points)
    floor = (R0_KM * angle - r_c).max(axis=0)
    ii, jj = np.nonzero(R1_KM * angle - r_c >= floor - _MAX_SLACK_KM)
    exact = np.full(angle.shape, -np.inf)
    exact[ii, jj] = geodesic_km(lat_c[ii, 0], lon_c[ii, 0], lat[jj], lon[jj]) - r_c[ii, 0]
    return np.asarray(exact.max(axis=0))


_WHOLE_PLANE_DEG2 = 360.0 * 180.0 * (1.0 - 1e-9)


def _center(shape: _Shape) -> tuple[float, float] | None:
    """A point of the region, inside it by construction (the fleet map's dot, the estimate's seed).

    The region is a polygon in the lon/lat plane, split at the antimeridian and closed along
    the poles' edges, and it is in that plane that it is drawn and decided; so shapely's
    ``point_on_surface`` of its largest part (area in that plane, weighted by the cosine of
    the part's mid-latitude) lies inside it: the middle of the widest run of the part along
    the line of latitude halfway up its bounding box. A centroid of the boundary would not:
    for a disk larger than a hemisphere it lands on the far side of the Earth.
    """
    geom = shape.geom
    if geom.is_empty or geom.area >= _WHOLE_PLANE_DEG2:
        return None  # the whole Earth: no point says more than any other
    parts = [p for p in shapely.get_parts(geom) if not p.is_empty and p.area > 0.0]
    if not parts:
        return None

    def weight(part: BaseGeometry) -> float:
        _, lat_s, _, lat_n = part.bounds
        return float(part.area) * max(math.cos(math.radians((lat_s + lat_n) / 2)), 1e-6)

    point = max(parts, key=weight).point_on_surface()
    if point.is_empty:  # pragma: no cover - a part of positive area always has one
        return None
    return float(point.y), float(point.x)
