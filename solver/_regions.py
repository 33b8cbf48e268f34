"""Authorized regions: where a chip may be, from a spec string.

Specs: ``country:DEU``, ``countries:DEU,FRA,NLD``, ``not:<spec>`` (anywhere
except), ``circle:LAT,LON,KM`` (a geodesic disk) or a path to a GeoJSON file
(Feature, FeatureCollection or a Polygon/MultiPolygon geometry).

Invariants enforced here:

* Every region carries two lon/lat geometries: ``geometry`` (the INNER zone,
  a subset of the true zone) and ``outer_geometry`` (a superset). A verdict of
  COMPLIANT needs the computed region inside ``geometry``; VIOLATION needs it
  disjoint from ``outer_geometry``. For borders and GeoJSON (polygons with
  straight lon/lat edges, as the data defines them) both are the same; for a
  circle the inner one is an INSCRIBED polygon and the outer one circumscribes;
  ``not:X`` swaps them (inner = world - outer(X), outer = world - inner(X)).
* An empty zone, an unknown country code or a broken file raises
  :class:`~chiploc.common.errors.RegionSpecError` naming the code or file.
* Borders are Natural Earth admin-0 1:10m v5.1.1 (public domain), float64,
  unsimplified, packaged in ``solver/data/borders.npz``; loaded lazily once.
* ``digest_hex`` = SHA-256 over a canonical spec and both geometries' WKB.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiLineString, MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from chiploc.common.errors import RegionSpecError

from ._geodesy import (
    R0_KM,
    WORLD,
    _polygonal,
    edge_length_bound_km,
    geodesic_disk,
    inscribed_disk,
)

__all__ = [
    "AuthorizedRegion",
    "BorderSegments",
    "CoarseZone",
    "coarse_zone",
    "country_geometries",
    "load_region",
    "suggest_countries",
    "swapped_lat_lon_warning",
]

_CODE = re.compile(r"^[A-Z]{3}$")
_MAX_GEOJSON_BYTES = 64 * 1024 * 1024


#: Consecutive border segments per cluster of :class:`BorderSegments` (a ring's neighbours
#: lie close together, so a cluster's cap is small).
CLUSTER_SEGMENTS = 32


@dataclass(frozen=True, slots=True)
class BorderSegments:
    """Border segments of a zone (artificial cuts at +-180 and +-90 removed): endpoints,
    the endpoints as unit vectors (geodetic latitude), upper bounds of the lengths (km).

    The segments are also grouped, in order, into clusters of :data:`CLUSTER_SEGMENTS`
    (``cluster_start[k]:cluster_start[k + 1]``), each with a cap that holds every point of
    its segments as drawn: centre ``cluster_unit[k]`` (a unit vector), angular radius
    ``cluster_rho[k]`` (radians). A point of a drawn segment is within half the segment's
    length bound of one of its ends (the two parts add up to at most that bound), and a
    geodesic of ``d`` km spans at most ``d / R0`` radians between geodetic unit vectors;
    so the cap's radius is the farthest end's angle plus the cluster's longest half
    length over R0 (and a rounding allowance). ``cluster_max_len_km[k]`` is the longest
    length bound in the cluster. The margin bound prunes whole clusters with these
    (``_verdict._margin_km``) before it looks at a single segment.
    """

    lat_a: npt.NDArray[np.float64]
    lon_a: npt.NDArray[np.float64]
    lat_b: npt.NDArray[np.float64]
    lon_b: npt.NDArray[np.float64]
    unit_a: npt.NDArray[np.float64]
    unit_b: npt.NDArray[np.float64]
    len_km: npt.NDArray[np.float64]
    cluster_start: npt.NDArray[np.intp] = field(init=False, repr=False)
    cluster_unit: npt.NDArray[np.float64] = field(init=False, repr=False)
    cluster_rho: npt.NDArray[np.float64] = field(init=False, repr=False)
    cluster_max_len_km: npt.NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:  # derived from the segments, always
        for name, value in _clusters(self.unit_a, self.unit_b, self.len_km).items():
            object.__setattr__(self, name, value)

    def segments_of(self, clusters: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """The indices of the segments of these clusters, in order."""
        start = self.cluster_start
        if clusters.size == 0:
            return np.zeros(0, np.intp)
        return np.concatenate([np.arange(start[k], start[k + 1]) for k in clusters])

    @classmethod
    def of(cls, geom: BaseGeometry) -> BorderSegments:
        rings = shapely.get_rings(shapely.get_parts(geom))
        coords, idx = shapely.get_coordinates(rings, return_index=True)
        same = idx[1:] == idx[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        on_antimeridian = (np.abs(a[:, 0]) == 180.0) & (a[:, 0] == b[:, 0])
        cut = on_antimeridian | ((np.abs(a[:, 1]) == 90.0) & (a[:, 1] == b[:, 1]))
        real = _antimeridian_border(a[on_antimeridian], b[on_antimeridian])
        a = np.concatenate([a[~cut], real[0]])
        b = np.concatenate([b[~cut], real[1]])
        lat_a, lon_a, lat_b, lon_b = a[:, 1], a[:, 0], b[:, 1], b[:, 0]
        return cls(
            lat_a=lat_a,
            lon_a=lon_a,
            lat_b=lat_b,
            lon_b=lon_b,
            unit_a=_unit_xy(a),
            unit_b=_unit_xy(b),
            len_km=edge_length_bound_km(lat_a, lon_a, lat_b, lon_b),
        )


def _antimeridian_border(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The parts of a zone's edges along lon +180 and -180 that are a real border.

    A zone that crosses the antimeridian is split there, and the two halves meet along
    matching edges at +180 and -180: those are not a border. But a zone may also END at
    the antimeridian (a GeoJSON box from lon 170 to 180): that edge is a border, and
    dropping it would let a margin overstate by the distance to the next real edge. So an
    edge at +180 is a border over the latitudes that no edge at -180 covers, and the reverse
    (lines along one meridian, compared as intervals of latitude).
    """
    east = [((0.0, p[1]), (0.0, q[1])) for p, q in zip(a, b, strict=True) if p[0] > 0]
    west = [((0.0, p[1]), (0.0, q[1])) for p, q in zip(a, b, strict=True) if p[0] < 0]
    side = {180.0: MultiLineString(east), -180.0: MultiLineString(west)}
    ends: list[tuple[float, float, float]] = []
    for lon, other in ((180.0, -180.0), (-180.0, 180.0)):
        rest = shapely.difference(shapely.line_merge(side[lon]), side[other])
        for line in shapely.get_parts(shapely.line_merge(rest) if not rest.is_empty else rest):
            xy = shapely.get_coordinates(line)
            ends.extend((lon, float(p[1]), float(q[1])) for p, q in itertools.pairwise(xy))
    out_a = np.array([(lon, y0) for lon, y0, _ in ends], dtype=np.float64).reshape(-1, 2)
    out_b = np.array([(lon, y1) for lon, _, y1 in ends], dtype=np.float64).reshape(-1, 2)
    return out_a, out_b


#: Rounding allowance of a cluster's cap (radians; arccos near 0 is good to ~1e-8).
_CAP_SLACK_RAD = 1e-7


def _clusters(
    unit_a: npt.NDArray[np.float64],
    unit_b: npt.NDArray[np.float64],
    len_km: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[Any]]:
    """The clusters of :class:`BorderSegments`: consecutive runs of segments and their caps."""
    n = len_km.size
    if n == 0:  # no border at all (a zone of the whole Earth)
        return {
            "cluster_start": np.zeros(1, np.intp),
            "cluster_unit": np.zeros((0, 3)),
            "cluster_rho": np.zeros(0),
            "cluster_max_len_km": np.zeros(0),
        }
    start = np.arange(0, n, CLUSTER_SEGMENTS, dtype=np.intp)
    summed = np.add.reduceat(unit_a + unit_b, start, axis=0)
    norm = np.linalg.norm(summed, axis=1)
    centre = np.where(norm[:, None] > 1e-9, summed / np.maximum(norm, 1e-300)[:, None], 0.0)
    centre[norm <= 1e-9] = (1.0, 0.0, 0.0)  # ends cancel out: any centre, the cap says how far
    owner = np.repeat(np.arange(start.size), np.diff(np.append(start, n)))
    ang = np.maximum(
        np.arccos(np.clip(np.einsum("ij,ij->i", unit_a, centre[owner]), -1.0, 1.0)),
        np.arccos(np.clip(np.einsum("ij,ij->i", unit_b, centre[owner]), -1.0, 1.0)),
    )
    max_len = np.maximum.reduceat(len_km, start)
    rho = np.maximum.reduceat(ang, start) + max_len / (2 * R0_KM) + _CAP_SLACK_RAD
    return {
        "cluster_start": np.append(start, n).astype(np.intp),
        "cluster_unit": centre,
        "cluster_rho": rho,
        "cluster_max_len_km": max_len,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizedRegion:
    """A zone a chip is allowed to be in. Build with :func:`load_region`."""

    spec: str
    canonical: str
    geometry: BaseGeometry
    outer_geometry: BaseGeometry
    digest_hex: str = field(default="")

    def __post_init__(self) -> None:
        for name in ("geometry", "outer_geometry"):
            g = getattr(self, name)
            if not isinstance(g, Polygon | MultiPolygon) or g.is_empty:
                raise RegionSpecError(f"{self.spec}: the authorized zone is empty", reason="empty")
        if not self.digest_hex:
            h = hashlib.sha256()
            h.update(self.canonical.encode())
            h.update(b"\0")
            h.update(shapely.to_wkb(self.geometry, output_dimension=2))
            h.update(b"\0")
            h.update(shapely.to_wkb(self.outer_geometry, output_dimension=2))
            object.__setattr__(self, "digest_hex", h.hexdigest())
        shapely.prepare(self.geometry)
        shapely.prepare(self.outer_geometry)

    @property
    def inner_border(self) -> BorderSegments:
        return _segments(self, inner=True)

    @property
    def outer_border(self) -> BorderSegments:
        return _segments(self, inner=False)


_SEGMENTS: dict[tuple[str, bool], BorderSegments] = {}
_COARSE: dict[str, tuple[BaseGeometry, BaseGeometry]] = {}
_COARSE_DEG = 0.01


def coarse_geometries(region: AuthorizedRegion) -> tuple[BaseGeometry, BaseGeometry]:
    """Simplified (inner subset, outer superset) of the zone, for advice (settle) only.

    ``simplify(buffer(g, -2t), t)`` lies inside ``g`` and ``simplify(buffer(g, 2t), t)``
    contains it (Douglas-Peucker moves a boundary by at most ``t``; planar lon/lat).
    """
    got = _COARSE.get(region.digest_hex)
    if got is None:
        t = _COARSE_DEG
        inner = _polygonal(shapely.simplify(shapely.buffer(region.geometry, -2 * t), t))
        outer = _polygonal(shapely.simplify(shapely.buffer(region.outer_geometry, 2 * t), t))
        shapely.prepare(inner)
        shapely.prepare(outer)
        got = (inner, outer)
        if len(_COARSE) > 16:
            _COARSE.clear()
        _COARSE[region.digest_hex] = got
    return got


@dataclass(frozen=True, slots=True)
class CoarseZone:
    """The simplified zone geometries (prepared) and their boundary segments, for advice only.

    ``inner`` and ``outer`` are :func:`coarse_geometries`. Their boundary segments lie
    in one set of arrays, the inner geometry's first (``[0, split)``), then the outer's,
    ring by ring and in ring order (``ring_first`` marks each ring's first segment);
    ``tree`` indexes them (one LineString each) in that order. ``lon_a``/``lat_a`` are
    the first endpoints, ``unit_a``/``unit_b`` the endpoints as unit vectors (geodetic
    latitude), ``len_km`` upper bounds of the segments' lengths.
    """

    inner: BaseGeometry
    outer: BaseGeometry
    split: int
    tree: shapely.STRtree
    ring_first: npt.NDArray[np.bool_]
    lon_a: npt.NDArray[np.float64]
    lat_a: npt.NDArray[np.float64]
    unit_a: npt.NDArray[np.float64]
    unit_b: npt.NDArray[np.float64]
    len_km: npt.NDArray[np.float64]

    @classmethod
    def of(cls, inner: BaseGeometry, outer: BaseGeometry) -> CoarseZone:
        a_parts, b_parts, first_parts = [], [], []
        for geom in (inner, outer):
            rings = shapely.get_rings(shapely.get_parts(geom))
            coords, idx = shapely.get_coordinates(rings, return_index=True)
            same = idx[1:] == idx[:-1]
            ring = idx[:-1][same]
            first = np.ones(ring.size, dtype=bool)
            first[1:] = ring[1:] != ring[:-1]
            a_parts.append(coords[:-1][same])
            b_parts.append(coords[1:][same])
            first_parts.append(first)
        a, b = np.concatenate(a_parts), np.concatenate(b_parts)
        lines = shapely.linestrings(np.stack([a, b], axis=1))
        return cls(
            inner=inner,
            outer=outer,
            split=len(a_parts[0]),
            tree=shapely.STRtree(lines),
            ring_first=np.concatenate(first_parts),
            lon_a=np.ascontiguousarray(a[:, 0]),
            lat_a=np.ascontiguousarray(a[:, 1]),
            unit_a=_unit_xy(a),
            unit_b=_unit_xy(b),
            len_km=edge_length_bound_km(a[:, 1], a[:, 0], b[:, 1], b[:, 0]),
        )


def _unit_xy(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


_COARSE_ZONES: dict[str, CoarseZone] = {}


def coarse_zone(region: AuthorizedRegion) -> CoarseZone:
    """:func:`coarse_geometries` with boundary segments and an index, built once per zone."""
    got = _COARSE_ZONES.get(region.digest_hex)
    if got is None:
        got = CoarseZone.of(*coarse_geometries(region))
        if len(_COARSE_ZONES) > 16:
            _COARSE_ZONES.clear()
        _COARSE_ZONES[region.digest_hex] = got
    return got


def _segments(region: AuthorizedRegion, *, inner: bool) -> BorderSegments:
    key = (region.digest_hex, inner)
    seg = _SEGMENTS.get(key)
    if seg is None:
        seg = BorderSegments.of(region.geometry if inner else region.outer_geometry)
        if len(_SEGMENTS) > 64:
            _SEGMENTS.clear()
        _SEGMENTS[key] = seg
    return seg


@cache
def _borders() -> dict[str, tuple[str, BaseGeometry]]:
    ref = resources.files("chiploc.solver") / "data" / "borders.npz"
    with resources.as_file(ref) as path, np.load(path) as data:
        coords = np.array(data["coords"], dtype=np.float64)
        # Natural Earth stores Antarctica's pole edge at lat -89.99999999999994 and its
        # cut at lon -179.99999999999991 (rounding); they mean the pole and the
        # antimeridian, and anything short of them would keep a region holding the pole
        # or crossing 180 from ever lying inside the zone (a sliver of 1e-13 degrees).
        for col, edge in ((0, 180.0), (1, 90.0)):
            v = coords[:, col]
            at = np.abs(v) >= edge - 1e-9
            v[at] = np.copysign(edge, v[at])
        geoms = shapely.from_ragged_array(
            shapely.GeometryType.MULTIPOLYGON,
            coords,
            (data["offsets_rings"], data["offsets_polygons"], data["offsets_multi"]),
        )
        codes = [str(c) for c in data["codes"]]
        names = [str(n) for n in data["names"]]
    out = {}
    for code, name, geom in zip(codes, names, geoms, strict=True):
        out[code] = (name, geom)
    return out


def country_geometries() -> Mapping[str, tuple[str, BaseGeometry]]:
    """ISO 3166 alpha-3 (or Natural Earth ADM0_A3) code -> (name, lon/lat MultiPolygon)."""
    return _borders()


#: Codes people type for a country that are not its ISO 3166 alpha-3 code (alpha-2, IOC,
#: common usage): suggestions only, never accepted in a spec (a zone is spelled exactly).
_ALIASES: Mapping[str, str] = {
    "AE": "ARE", "AT": "AUT", "AU": "AUS", "BE": "BEL", "BR": "BRA", "CA": "CAN",
    "CH": "CHE", "SUI": "CHE", "CN": "CHN", "PRC": "CHN", "CZ": "CZE", "DE": "DEU",
    "GER": "DEU", "DK": "DNK", "DEN": "DNK", "ES": "ESP", "FI": "FIN", "FR": "FRA",
    "GB": "GBR", "UK": "GBR", "ENG": "GBR", "IE": "IRL", "IL": "ISR", "IN": "IND",
    "IT": "ITA", "JP": "JPN", "KR": "KOR", "MX": "MEX", "NL": "NLD", "HOL": "NLD",
    "NED": "NLD", "NO": "NOR", "NZ": "NZL", "PL": "POL", "PT": "PRT", "POR": "PRT",
    "RU": "RUS", "SA": "SAU", "SE": "SWE", "SG": "SGP", "TW": "TWN", "US": "USA",
    "ZA": "ZAF", "RSA": "ZAF",
}  # fmt: skip


def suggest_countries(typed: str, *, limit: int = 3) -> list[str]:
    """Country codes a user may have meant by ``typed`` (an alpha-2 code, another scheme's
    code, the start of a name): ``"DEU (Germany)"`` strings, best first."""
    import difflib

    table = _borders()
    t = typed.strip().upper()
    if not t:
        return []
    hits: list[str] = []
    alias = _ALIASES.get(t)
    if alias in table:
        hits.append(alias)
    hits += [c for c in sorted(table) if c.startswith(t)]  # DE -> DEU
    hits += [c for c, (name, _) in sorted(table.items()) if name.upper().startswith(t)]  # GER
    hits += difflib.get_close_matches(t, sorted(table), n=limit, cutoff=0.6)
    hits += [c for c, (name, _) in sorted(table.items()) if t in name.upper().split()]
    seen: list[str] = []
    for code in hits:
        if code not in seen:
            seen.append(code)
    return [f"{c} ({table[c][0]})" for c in seen[:limit]]


def _countries(codes_text: str, spec: str) -> tuple[str, BaseGeometry]:
    entries = [c.strip().upper() for c in codes_text.split(",")]
    if not any(entries):
        raise RegionSpecError(f"{spec!r}: no country code given", reason="no_code")
    if not all(entries):
        raise RegionSpecError(
            f"{spec!r}: an empty entry in the list of country codes", reason="empty_entry"
        )
    codes = entries
    table = _borders()
    for code in codes:
        if not _CODE.match(code) or code not in table:
            hint = suggest_countries(code)
            raise RegionSpecError(
                f"{spec!r}: unknown country code {code!r}; codes are ISO 3166 alpha-3"
                + (f", did you mean {' or '.join(hint)}?" if hint else "")
                + " (chiploc regions lists them)",
                reason="unknown_country",
            )
    # The zone is built from the codes it names, once each and in canonical order: a
    # repeated code (countries:DEU,DEU) is the same zone as the code alone, with the same
    # geometry and so the same digest.
    unique = sorted(set(codes))
    geoms = [table[code][1] for code in unique]
    geom = geoms[0] if len(geoms) == 1 else _polygonal(shapely.union_all(geoms))
    return "countries:" + ",".join(unique), geom


def _circle(text: str, spec: str) -> tuple[str, BaseGeometry, BaseGeometry]:
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError("expected LAT,LON,KM")
        lat, lon, km = (float(p) for p in parts)
        if not all(math.isfinite(v) for v in (lat, lon, km)):
            raise ValueError("not finite")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and km > 0):
            raise ValueError("lat in [-90, 90], lon in [-180, 180] and KM > 0 required")
    except ValueError as e:
        raise RegionSpecError(f"{spec!r}: bad circle: {e}", reason="bad_circle") from e
    inner = inscribed_disk(lat, lon, km)
    outer = geodesic_disk(lat, lon, km)
    return f"circle:{lat!r},{lon!r},{km!r}", inner, outer


def _unclosed_ring(g: Mapping[str, Any]) -> int | None:
    """The index of the first ring of a GeoJSON Polygon/MultiPolygon that is not closed."""
    coords = g.get("coordinates")
    polygons = [coords] if g.get("type") == "Polygon" else coords
    if not isinstance(polygons, list):
        return None  # malformed: shapely's error says how
    k = 0
    for polygon in polygons:
        if not isinstance(polygon, list):
            return None
        for ring in polygon:
            if not isinstance(ring, list) or not ring:
                return None
            if len(ring) < 4 or ring[0] != ring[-1]:
                return k
            k += 1
    return None


def swapped_lat_lon_warning(region: AuthorizedRegion) -> str | None:
    """A warning when a GeoJSON zone looks like [lat, lon] instead of RFC 7946's [lon, lat]:
    every position valid both ways, no land in the zone as given, land once swapped."""
    if not region.canonical.startswith("geojson:"):
        return None
    geom = region.geometry
    xy = shapely.get_coordinates(geom)
    if xy.size == 0 or np.any(np.abs(xy[:, 0]) > 90):
        return None  # a longitude beyond 90: it cannot be a latitude
    swapped = shapely.transform(geom, lambda c: c[:, ::-1])
    land = [g for _, g in _borders().values()]
    if any(shapely.intersects(g, geom) for g in land):
        return None
    if not any(shapely.intersects(g, swapped) for g in land):
        return None
    return (
        f"{region.spec}: the zone covers no land as [lon, lat] (RFC 7946 order) but does as "
        "[lat, lon]: are the coordinates swapped?"
    )


def _geojson(path: Path, spec: str) -> tuple[str, BaseGeometry]:
    def fail(why: str, reason: str = "bad_geojson") -> RegionSpecError:
        return RegionSpecError(f"GeoJSON file {str(path)!r}: {why}", reason=reason)

    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise fail(f"cannot read ({getattr(e, 'strerror', None) or e})", "unreadable") from e
    if len(raw) > _MAX_GEOJSON_BYTES:
        raise fail("larger than 64 MiB")
    try:
        doc: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise fail(f"not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise fail("top level is not a JSON object")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list) or not feats:
            raise fail("FeatureCollection has no features")
        geoms_json = []
        for i, f in enumerate(feats):
            if not isinstance(f, dict) or f.get("type") != "Feature":
                raise fail(f"features[{i}] is not a Feature")
            geoms_json.append(f.get("geometry"))
    elif kind == "Feature":
        geoms_json = [doc.get("geometry")]
    elif kind in ("Polygon", "MultiPolygon"):
        geoms_json = [doc]
    else:
        raise fail(f"type {kind!r} is not a Feature, FeatureCollection, Polygon or MultiPolygon")
    geoms = []
    for i, g in enumerate(geoms_json):
        if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
            got = g.get("type") if isinstance(g, dict) else g
            raise fail(f"geometry {i} is {got!r}, not a Polygon or MultiPolygon")
        unclosed = _unclosed_ring(g)
        if unclosed is not None:
            raise fail(
                f"geometry {i}: ring {unclosed} is not closed (RFC 7946: a linear ring has at "
                "least 4 positions and its last position equals its first)",
                "unclosed_ring",
            )
        try:
            # NaN coordinates (JSON's NaN, which Python reads) are refused just below, by
            # name; shapely's "invalid value" warning would escape first (an error under -W).
            with np.errstate(invalid="ignore"):
                geom = shape(g)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise fail(f"geometry {i} is malformed ({e})") from e
        xy = shapely.get_coordinates(geom)
        if xy.size == 0 or geom.is_empty:
            raise fail(f"geometry {i} is empty", "empty")
        if not np.all(np.isfinite(xy)):
            raise fail(f"geometry {i} has non-finite coordinates")
        if np.any(np.abs(xy[:, 0]) > 180) or np.any(np.abs(xy[:, 1]) > 90):
            raise fail(f"geometry {i} has coordinates outside lon [-180, 180] / lat [-90, 90]")
        if not geom.is_valid:
            why = shapely.is_valid_reason(geom)
            raise fail(f"geometry {i} is not a valid polygon ({why})")
        geoms.append(geom)
    geom = _polygonal(shapely.union_all(geoms))
    if geom.is_empty or geom.area == 0:
        raise fail("the zone has no area", "empty")
    digest = hashlib.sha256(raw).hexdigest()
    return f"geojson:{digest}", geom


def _parse(spec: str, typed: str | None = None) -> tuple[str, BaseGeometry, BaseGeometry]:
    """``typed``: the whole spec as the user typed it (errors name it), ``spec`` a part of it."""
    typed = spec if typed is None else typed
    text = spec.strip()
    low = text.lower()
    if low.startswith("not:"):
        rest = text[4:].strip()
        if re.fullmatch(r"[A-Za-z]{3}(\s*,\s*[A-Za-z]{3})*", rest):
            rest = "countries:" + rest  # not:CHN, not:CHN,RUS
        canon, inner, outer = _parse(rest, typed)
        new_inner = _polygonal(shapely.difference(WORLD, outer))
        new_outer = _polygonal(shapely.difference(WORLD, inner))
        return f"not:{canon}", new_inner, new_outer
    if low.startswith(("country:", "countries:")):
        canon, geom = _countries(text.split(":", 1)[1], typed)
        return canon, geom, geom
    if low.startswith("circle:"):
        return _circle(text[7:], typed)
    path = Path(text)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # name too long, NUL byte: not a file we can name
        exists = False
    if text and (path.suffix.lower() in (".geojson", ".json") or exists):
        canon, geom = _geojson(path, spec)
        return canon, geom, geom
    raise RegionSpecError(
        f"{typed!r}: not a region spec (country:XXX, countries:A,B, not:SPEC, circle:LAT,LON,KM "
        "or a GeoJSON file)",
        reason="bad_spec",
    )


def load_region(spec: str) -> AuthorizedRegion:
    """Parse an authorized-region spec; raises RegionSpecError naming the spec, code or file.

    Built-in specs (``country:``, ``countries:``, ``circle:`` and ``not:`` of those) are a
    pure function of their text, so each is built once and shared: a fleet of chips with
    the same zone does not redo the unions, the digest and the preparation per chip. A
    spec naming a GeoJSON file is read every time (the file may have changed).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise RegionSpecError("empty region spec", reason="bad_spec")
    if _is_builtin(spec):
        return _load_builtin(spec)
    return _build(spec)


_BUILTIN_PREFIXES = ("country:", "countries:", "circle:")
_CODE_LIST = re.compile(r"[a-z]{3}(\s*,\s*[a-z]{3})*")


def _is_builtin(spec: str) -> bool:
    text = spec.strip().lower()
    while text.startswith("not:"):
        text = text[4:].strip()
        if _CODE_LIST.fullmatch(text):  # not:CHN, not:CHN,RUS
            return True
    return text.startswith(_BUILTIN_PREFIXES)


@lru_cache(maxsize=256)
def _load_builtin(spec: str) -> AuthorizedRegion:
    return _build(spec)


def _build(spec: str) -> AuthorizedRegion:
    canon, inner, outer = _parse(spec)
    return AuthorizedRegion(spec=spec, canonical=canon, geometry=inner, outer_geometry=outer)
