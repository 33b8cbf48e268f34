"""What each map shows, as plain data built from solver result dicts (no folium, no browser).

Input is the JSON object of ``SolveResult.to_json_dict()`` (one line of ``chiploc
solve --json``), so a result read back from a file or from the store draws the
same as a fresh one.

Invariants enforced here:

- A landmark's bound is drawn as :func:`solver.geodesic_disk` of its
  ``radius_km``: the same circumscribing polygon the proof used, never
  Leaflet's approximate ``L.circle``.
- The authorized region is :func:`solver.load_region` of the result's
  ``region_spec`` (or a geometry the caller passes), the decision geometry, drawn
  unsimplified; only the basemap is simplified, and it is labelled as display
  only.
- The estimate is kept apart from the proof: its own marker, labelled
  "estimate — not a proof"; a non-vacuum result is labelled as an estimate in
  the banner.
- A malformed result raises :class:`~chiploc.common.errors.InputError` naming the
  field (reason ``bad_result``); a fleet chip with no position is counted and
  listed, never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chiploc.common.errors import InputError

__all__ = [
    "VERDICTS",
    "VERDICT_COLOURS",
    "ChipLayers",
    "FleetPoints",
    "LandmarkLayer",
    "chip_layers",
    "fleet_points",
]

VERDICTS: tuple[str, ...] = (
    "COMPLIANT",
    "VIOLATION",
    "INCONCLUSIVE",
    "INCONSISTENT",
    "UNREACHABLE",
)
#: Colour-blind-friendly enough, and each verdict distinct in greyscale too.
VERDICT_COLOURS: Mapping[str, str] = {
    "COMPLIANT": "#1a9850",
    "VIOLATION": "#d73027",
    "INCONCLUSIVE": "#f29e20",
    "INCONSISTENT": "#7b3294",
    "UNREACHABLE": "#6e6e6e",
}

GeoJson = dict[str, Any]
LatLonBounds = tuple[tuple[float, float], tuple[float, float]]


def _bad(message: str) -> InputError:
    return InputError(message, reason="bad_result")


def _field(d: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(d, Mapping):
        raise _bad(f"{where}: expected a JSON object, got {type(d).__name__}")
    if key not in d:
        raise _bad(f"{where}: missing field {key!r}")
    return d[key]


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _opt_num(value: Any, what: str) -> float | None:
    return None if value is None else _num(value, what)


def _point(d: Any, what: str) -> tuple[float, float]:
    lat = _num(_field(d, "lat", what), f"{what}.lat")
    lon = _num(_field(d, "lon", what), f"{what}.lon")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise _bad(f"{what}: coordinates out of range ({lat}, {lon})")
    return lat, lon


def _opt_point(d: Any, what: str) -> tuple[float, float] | None:
    return None if d is None else _point(d, what)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{what}: expected a string, got {value!r}")
    return value


def _verdict(d: Mapping[str, Any], where: str) -> str:
    verdict = _str(_field(d, "verdict", where), f"{where}.verdict")
    if verdict not in VERDICTS:
        raise _bad(f"{where}: unknown verdict {verdict!r}")
    return verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkLayer:
    """One landmark: its marker and the geodesic bound the solver used."""

    id: str
    lat: float
    lon: float
    rtt_ms: float
    overhead_ms: float
    radius_km: float | None  # None: the bound covers the whole Earth (no constraint)
    binding: bool
    conflicting: bool
    bound: GeoJson | None  # solver.geodesic_disk(lat, lon, radius_km); None for the whole Earth

    def __post_init__(self) -> None:
        if self.radius_km is None:
            if self.bound is not None:
                raise _bad(f"landmark {self.id}: a whole-Earth bound has no polygon")
        elif not self.radius_km >= 0.0:
            raise _bad(f"landmark {self.id}: negative radius_km {self.radius_km}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipLayers:
    """Everything the chip map draws, in drawing order."""

    target: str
    verdict: str
    proof: bool
    model: str
    tolerate: int
    margin_km: float | None
    area_km2: float | None
    message: str
    region_spec: str
    authorized: GeoJson | None
    landmarks: tuple[LandmarkLayer, ...]
    region: GeoJson | None
    region_center: tuple[float, float] | None
    region_extent_km: float | None  # diagonal of the region's bounding box
    estimate: tuple[float, float] | None
    estimate_model: str | None
    settle: tuple[Mapping[str, Any], ...]
    #: the opening view: the region and the authorized zone together; for INCONSISTENT
    #: every conflicting landmark's whole bound; else the landmarks (and estimate)
    focus_bounds: LatLonBounds
    #: the proven region alone ("zoom to region"), None without a region
    region_bounds: LatLonBounds | None
    #: everything drawn, for "zoom to all"
    all_bounds: LatLonBounds

    @property
    def small_region(self) -> bool:
        """A region too small to see at the overview zoom (drawn with a halo and zoom control)."""
        return self.region_extent_km is not None and self.region_extent_km < 50.0


def _bounds_of(points: Iterable[tuple[float, float]]) -> LatLonBounds | None:
    pts = list(points)
    if not pts:
        return None
    lats = [p[0] for p in pts]
    lons = [p[1] for p in pts]
    return (min(lats), min(lons)), (max(lats), max(lons))


def _geometry_bounds(geojson: GeoJson) -> LatLonBounds:
    from shapely.geometry import shape

    minx, miny, maxx, maxy = shape(geojson).bounds
    return (miny, minx), (maxy, maxx)


def _union_bounds(*boxes: LatLonBounds | None) -> LatLonBounds | None:
    real = [b for b in boxes if b is not None]
    if not real:
        return None
    return (
        (min(b[0][0] for b in real), min(b[0][1] for b in real)),
        (max(b[1][0] for b in real), max(b[1][1] for b in real)),
    )


def _extent_km(bounds: LatLonBounds) -> float:
    from pyproj import Geod

    (s, w), (n, e) = bounds
    _, _, dist_m = Geod(ellps="WGS84").inv(w, s, e, n)
    return float(dist_m) / 1000.0


def _check_geojson(value: Any, what: str) -> GeoJson | None:
    if value is None:
        return None
    from shapely.geometry import shape

    try:
        geometry = shape(value)
    except Exception as e:  # shapely raises several unrelated types on bad GeoJSON
        raise _bad(f"{what}: not a GeoJSON geometry ({e})") from e
    if geometry.is_empty:
        return None
    return dict(value)


def chip_layers(result: Mapping[str, Any], *, authorized: Any = None) -> ChipLayers:
    """The layers of a chip map for one result dict.

    ``authorized`` is the authorized region's shapely geometry (lon/lat); when
    None it is loaded with :func:`solver.load_region` from ``region_spec``.
    """
    from shapely.geometry import mapping

    from chiploc import solver

    target = _str(_field(result, "target", "result"), "result.target")
    where = f"result for {target!r}"
    verdict = _verdict(result, where)
    region_spec = _str(_field(result, "region_spec", where), f"{where}.region_spec")
    if authorized is None:
        authorized = solver.load_region(region_spec).geometry
    authorized_geojson = dict(mapping(authorized)) if not authorized.is_empty else None
    conflicting = set(result.get("conflicting_landmarks") or ())
    binding_ids = set(result.get("binding_landmarks") or ())

    landmarks: list[LandmarkLayer] = []
    for i, lm in enumerate(_field(result, "landmarks", where) or ()):
        what = f"{where}.landmarks[{i}]"
        lm_id = _str(_field(lm, "id", what), f"{what}.id")
        pos = _point(lm, what)
        # radius_km null: the solver's bound covers the whole Earth (RTT too long to
        # constrain anything); there is no polygon to draw, only the marker.
        radius_km = _opt_num(_field(lm, "radius_km", what), f"{what}.radius_km")
        rtt_ms = _opt_num(lm.get("rtt_ms"), f"{what}.rtt_ms")
        overhead_ms = _num(lm.get("overhead_ms", 0.0), f"{what}.overhead_ms")
        if radius_km is not None and radius_km < 0.0:
            raise _bad(f"{what}: negative radius_km {radius_km}")
        bound = (
            None
            if radius_km is None
            else dict(mapping(solver.geodesic_disk(pos[0], pos[1], radius_km)))
        )
        landmarks.append(
            LandmarkLayer(
                id=lm_id,
                lat=pos[0],
                lon=pos[1],
                rtt_ms=math.nan if rtt_ms is None else rtt_ms,
                overhead_ms=overhead_ms,
                radius_km=radius_km,
                binding=bool(lm.get("binding")) or lm_id in binding_ids,
                conflicting=lm_id in conflicting,
                bound=bound,
            )
        )

    region = _check_geojson(result.get("region"), f"{where}.region")
    center = _opt_point(result.get("region_center"), f"{where}.region_center")
    estimate_d = result.get("estimate")
    estimate = _opt_point(estimate_d, f"{where}.estimate")
    estimate_model = None
    if estimate_d is not None:
        estimate_model = str(estimate_d.get("model") or "unknown")
        if estimate_d.get("method"):  # shown as "best guess (cbg-depth on the fiber model)"
            estimate_model = f"{estimate_d['method']} on the {estimate_model}"

    region_bounds = _geometry_bounds(region) if region is not None else None
    landmark_bounds = _bounds_of((lm.lat, lm.lon) for lm in landmarks)
    estimate_bounds = _bounds_of([estimate] if estimate else [])
    authorized_bounds = (
        _geometry_bounds(authorized_geojson) if authorized_geojson is not None else None
    )
    conflict_bounds = _union_bounds(
        *(_geometry_bounds(lm.bound) for lm in landmarks if lm.conflicting and lm.bound)
    )
    if region_bounds is not None:
        focus = _union_bounds(region_bounds, authorized_bounds)
    elif verdict == "INCONSISTENT" and conflict_bounds is not None:
        focus = _union_bounds(conflict_bounds, landmark_bounds)
    else:
        focus = _union_bounds(landmark_bounds, estimate_bounds)
    everything = _union_bounds(
        region_bounds, landmark_bounds, estimate_bounds, authorized_bounds, conflict_bounds
    )
    world: LatLonBounds = ((-60.0, -170.0), (75.0, 170.0))

    return ChipLayers(
        target=target,
        verdict=verdict,
        proof=bool(result.get("proof")),
        model=str(result.get("model") or "unknown"),
        tolerate=int(result.get("tolerate") or 0),
        margin_km=_opt_num(result.get("margin_km"), f"{where}.margin_km"),
        area_km2=_opt_num(result.get("area_km2"), f"{where}.area_km2"),
        message=str(result.get("message") or ""),
        region_spec=region_spec,
        authorized=authorized_geojson,
        landmarks=tuple(landmarks),
        region=region,
        region_center=center,
        region_extent_km=_extent_km(region_bounds) if region_bounds else None,
        estimate=estimate,
        estimate_model=estimate_model,
        settle=tuple(result.get("settle") or ()),
        focus_bounds=focus or authorized_bounds or world,
        region_bounds=region_bounds,
        all_bounds=everything or world,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetPoints:
    """Fleet map data: one compact row per placed chip, plus the chips with no position.

    ``rows`` are ``[lat, lon, verdict_index, target, margin_km_or_None, source]``
    with ``verdict_index`` into :data:`VERDICTS` and ``source`` ``"r"`` (region
    centre) or ``"e"`` (estimate).
    """

    rows: tuple[tuple[float, float, int, str, float | None, str], ...]
    counts: Mapping[str, int]  # every chip, placed or not, by verdict
    unplaced: tuple[tuple[str, str], ...]  # (target, verdict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def fleet_points(results: Iterable[Mapping[str, Any]]) -> FleetPoints:
    """Place every chip at its ``region_center``, else its ``estimate``; count the rest."""
    rows: list[tuple[float, float, int, str, float | None, str]] = []
    counts = dict.fromkeys(VERDICTS, 0)
    unplaced: list[tuple[str, str]] = []
    for i, result in enumerate(results):
        where = f"result #{i + 1}"
        target = _str(_field(result, "target", where), f"{where}.target")
        verdict = _verdict(result, f"{where} ({target!r})")
        counts[verdict] += 1
        margin = _opt_num(result.get("margin_km"), f"{where}.margin_km")
        pos = _opt_point(result.get("region_center"), f"{where}.region_center")
        source = "r"
        if pos is None:
            pos = _opt_point(result.get("estimate"), f"{where}.estimate")
            source = "e"
        if pos is None:
            unplaced.append((target, verdict))
            continue
        rows.append(
            (
                round(pos[0], 5),
                round(pos[1], 5),
                VERDICTS.index(verdict),
                target,
                None if margin is None else round(margin, 1),
                source,
            )
        )
    return FleetPoints(rows=tuple(rows), counts=counts, unplaced=tuple(unplaced))


def _ms(value: Any) -> str:
    """Milliseconds at the one precision every map uses for RTTs (3 decimals: 1 µs)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:,.3f} ms"
    return "—"


def settle_lines(settle: Sequence[Mapping[str, Any]]) -> list[str]:
    """Human lines for the INCONCLUSIVE hint: which landmark would settle it."""
    lines = []
    for s in settle:
        lm = s.get("landmark")
        need = s.get("rtt_needed_ms")
        gives = s.get("would_give")
        have = s.get("rtt_ms")
        if lm is None:
            continue
        text = f"{lm}: RTT {_ms(have)}"
        if need is not None:
            text += f" → needs ≤ {_ms(need)}"
        if gives:
            text += f" for {gives}"
        lines.append(text)
    return lines
