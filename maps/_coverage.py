"""The coverage map: where a chip *could* be proven COMPLIANT with a given landmark network.

For each cell of a grid over the authorized region, a chip is imagined at one
point of the cell inside the region; each landmark's best-case RTT to it is
``2 · geodesic distance / c + overhead`` (light in vacuum on the great-circle
path, plus the software overhead, which the solver does *not* subtract: a
landmark may only subtract what it proved about its own overhead); the real
:func:`solver.solve` decides under the vacuum model. Cells whose verdict is
COMPLIANT are shaded as covered.

Invariants enforced here:

- The verdict of every cell comes from :func:`solver.solve` (vacuum model),
  never from a shortcut; the map says "best case" (real paths are slower, so
  real coverage is at most what is shaded).
- The grid is bounded: at most ``max_cells`` cells (the resolution is
  coarsened to fit), so the map finishes in tens of seconds.
- A landmark CSV row that does not parse raises
  :class:`~chiploc.common.errors.MeasurementError` naming the source and line.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import folium

from chiploc.common.errors import ConfigError, MeasurementError
from chiploc.common.text import plural
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
from chiploc.maps._html import (
    GeoJsonLayer,
    OfflineMap,
    add_banner,
    add_basemap,
    attach,
    html_control,
    label_marker,
    render_html,
    tooltip,
    zoom_control,
)

__all__ = [
    "DEFAULT_MAX_CELLS",
    "CoverageGrid",
    "CoverageLandmark",
    "coverage_grid",
    "coverage_map",
    "read_landmarks_csv",
]

DEFAULT_MAX_CELLS = 1500
_KM_PER_DEG_LAT = 111.2
_COVERED = "#1a9850"
_UNCOVERED = "#d73027"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageLandmark:
    id: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not self.id:
            raise MeasurementError("landmark id is empty", reason="bad_landmark")
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise MeasurementError(
                f"landmark {self.id}: coordinates out of range ({self.lat}, {self.lon})",
                reason="bad_landmark",
            )


def read_landmarks_csv(text: str, *, source: str = "<csv>") -> tuple[CoverageLandmark, ...]:
    """Parse a CSV with the header ``landmark,lat,lon`` (extra columns are ignored)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = set(reader.fieldnames or ())
    missing = {"landmark", "lat", "lon"} - fields
    if missing:
        raise MeasurementError(
            f"{source}: header must name landmark,lat,lon (missing {', '.join(sorted(missing))})",
            reason="bad_header",
        )
    out: list[CoverageLandmark] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            lat = float(row["lat"])
            lon = float(row["lon"])
        except (TypeError, ValueError) as e:
            raise MeasurementError(
                f"{source}:{line}: lat/lon must be numbers", reason="bad_coordinates"
            ) from e
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise MeasurementError(f"{source}:{line}: lat/lon not finite", reason="bad_coordinates")
        name = (row["landmark"] or "").strip()
        if name in seen:
            raise MeasurementError(
                f"{source}:{line}: duplicate landmark {name!r}", reason="duplicate_landmark"
            )
        seen.add(name)
        try:
            out.append(CoverageLandmark(id=name, lat=lat, lon=lon))
        except MeasurementError as e:
            raise MeasurementError(f"{source}:{line}: {e}", reason=e.reason) from e
    if not out:
        raise MeasurementError(f"{source}: no landmarks", reason="no_landmarks")
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageGrid:
    """The solved grid. ``cells`` are ``(south, west, north, east, lat, lon, compliant)``:
    the cell's box in degrees, the point where a chip was imagined, and whether
    :func:`solver.solve` proved it COMPLIANT there."""

    region_spec: str
    overhead_ms: float
    resolution_km: float
    landmarks: tuple[CoverageLandmark, ...]
    cells: tuple[tuple[float, float, float, float, float, float, bool], ...]

    @property
    def covered(self) -> int:
        return sum(1 for c in self.cells if c[6])

    @property
    def fraction_covered(self) -> float:
        return self.covered / len(self.cells) if self.cells else 0.0


def _grid_steps(
    bounds: tuple[float, float, float, float], resolution_km: float
) -> tuple[float, float]:
    _, miny, _, maxy = bounds
    mid_lat = math.radians((miny + maxy) / 2.0)
    dlat = resolution_km / _KM_PER_DEG_LAT
    dlon = resolution_km / (_KM_PER_DEG_LAT * max(math.cos(mid_lat), 0.05))
    return dlat, dlon


def _count_cells(bounds: tuple[float, float, float, float], resolution_km: float) -> int:
    minx, miny, maxx, maxy = bounds
    dlat, dlon = _grid_steps(bounds, resolution_km)
    return max(1, math.ceil((maxy - miny) / dlat)) * max(1, math.ceil((maxx - minx) / dlon))


def coverage_grid(
    landmarks: Sequence[CoverageLandmark],
    region: Any,
    *,
    overhead_ms: float,
    resolution_km: float | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> CoverageGrid:
    """Solve the best case for a grid over ``region`` (a :class:`solver.AuthorizedRegion`).

    ``resolution_km`` None picks the finest resolution (≥ 1 km) whose grid over
    the region's bounding box has at most ``max_cells`` cells; an explicit
    resolution is coarsened to that bound too.
    """
    import numpy as np
    import shapely
    from pyproj import Geod

    from chiploc import solver

    if not landmarks:
        raise ConfigError("coverage needs at least one landmark", reason="no_landmarks")
    if not (math.isfinite(overhead_ms) and overhead_ms >= 0.0):
        raise ConfigError(f"overhead must be ≥ 0, got {overhead_ms} ms", reason="bad_overhead")
    if resolution_km is not None and not (math.isfinite(resolution_km) and resolution_km > 0):
        raise ConfigError(
            f"resolution must be > 0 km, got {resolution_km}", reason="bad_resolution"
        )
    if max_cells < 1:
        raise ConfigError("max_cells must be ≥ 1", reason="bad_resolution")
    zone = region.geometry
    b = zone.bounds
    bounds = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    res = max(resolution_km or 1.0, 1e-3)
    while _count_cells(bounds, res) > max_cells:
        res *= 1.1
    dlat, dlon = _grid_steps(bounds, res)
    minx, miny, maxx, maxy = bounds
    rows = max(1, math.ceil((maxy - miny) / dlat))
    cols = max(1, math.ceil((maxx - minx) / dlon))
    # Shared edges, so that neighbouring cells touch exactly and merge without seams.
    lat_edges = np.minimum(miny + dlat * np.arange(rows + 1), 90.0)
    lon_edges = np.minimum(minx + dlon * np.arange(cols + 1), 180.0)
    row_grid, col_grid = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    row, col = row_grid.ravel(), col_grid.ravel()
    ss, nn = lat_edges[row], lat_edges[row + 1]
    ww, ee = lon_edges[col], lon_edges[col + 1]
    boxes = shapely.box(ww, ss, ee, nn)
    shapely.prepare(zone)
    touching = shapely.intersects(boxes, zone)
    cx, cy = (ww + ee) / 2.0, (ss + nn) / 2.0
    inside = shapely.contains_xy(zone, cx, cy)

    geod = Geod(ellps="WGS84")
    lm_lat = np.array([lm.lat for lm in landmarks])
    lm_lon = np.array([lm.lon for lm in landmarks])
    cells: list[tuple[float, float, float, float, float, float, bool]] = []
    probes: list[tuple[str, list[solver.Measurement]]] = []
    where: list[tuple[int, float, float]] = []
    for i in np.flatnonzero(touching).tolist():
        if inside[i]:
            lat, lon = float(cy[i]), float(cx[i])
        else:
            point = shapely.intersection(boxes[i], zone).representative_point()
            lat, lon = float(point.y), float(point.x)
        _, _, dist_m = geod.inv(
            lm_lon, lm_lat, np.full_like(lm_lon, lon), np.full_like(lm_lat, lat)
        )
        rtt_ms = 2.0 * (np.asarray(dist_m) / 1000.0) / SPEED_OF_LIGHT_KM_PER_MS + overhead_ms
        measurements = [
            solver.Measurement(landmark=lm.id, lat=lm.lat, lon=lm.lon, rtt_ms=float(rtt))
            for lm, rtt in zip(landmarks, rtt_ms, strict=True)
        ]
        probes.append((f"cell-{i}", measurements))
        where.append((i, lat, lon))
    results = solver.solve_many(probes, region, model=solver.Model.VACUUM)
    for (i, lat, lon), result in zip(where, results, strict=True):
        cells.append(
            (
                float(ss[i]),
                float(ww[i]),
                float(nn[i]),
                float(ee[i]),
                lat,
                lon,
                result.verdict is solver.Verdict.COMPLIANT,
            )
        )
    return CoverageGrid(
        region_spec=region.spec,
        overhead_ms=overhead_ms,
        resolution_km=res,
        landmarks=tuple(landmarks),
        cells=tuple(cells),
    )


def _union_geojson(boxes: list[Any], zone: Any) -> Mapping[str, Any] | None:
    import shapely
    from shapely.geometry import mapping

    if not boxes:
        return None
    merged = shapely.intersection(shapely.union_all(boxes), zone)
    if merged.is_empty:
        return None
    return dict(mapping(merged))


def coverage_map(grid: CoverageGrid, authorized: Any, *, tiles: str | None = None) -> str:
    """Render a solved :class:`CoverageGrid` over ``authorized`` (shapely, lon/lat) as HTML."""
    import shapely
    from shapely.geometry import mapping

    m = OfflineMap(tiles=tiles)
    basemap = add_basemap(m, tiles=tiles)
    named: dict[str, Any] = {"basemap": basemap}

    covered = [shapely.box(c[1], c[0], c[3], c[2]) for c in grid.cells if c[6]]
    uncovered = [shapely.box(c[1], c[0], c[3], c[2]) for c in grid.cells if not c[6]]
    pct = 100.0 * grid.fraction_covered
    for key, boxes, colour, name in (
        ("covered", covered, _COVERED, "Could be proven COMPLIANT (best case)"),
        ("uncovered", uncovered, _UNCOVERED, "Cannot be proven COMPLIANT, even in the best case"),
    ):
        geo = _union_geojson(boxes, authorized)
        if geo is None:
            continue
        layer = GeoJsonLayer(
            geo,
            name=name,
            style={"color": colour, "weight": 0.5, "fillColor": colour, "fillOpacity": 0.45},
            tooltip_html=f"{escape(name)}<br>{len(boxes):,} cells of ≈{grid.resolution_km:.0f} km",
        )
        m.add_child(layer)
        named[key] = layer
    authorized_layer = GeoJsonLayer(
        dict(mapping(authorized)),
        name=f"Authorized region ({escape(grid.region_spec)})",
        style={"color": "#1f78b4", "weight": 2.5, "dashArray": "6 4", "fill": False},
        interactive=False,
    )
    m.add_child(authorized_layer)
    named["authorized"] = authorized_layer

    markers = folium.FeatureGroup(name="Landmarks")
    for lm in grid.landmarks:
        marker = folium.CircleMarker(
            location=[lm.lat, lm.lon],
            radius=6,
            color="#ffffff",
            weight=2,
            fill=True,
            fill_color="#2c5aa0",
            fill_opacity=1.0,
        )
        attach(marker, tooltip(f"<b>landmark {escape(lm.id)}</b><br>{lm.lat:.4f}, {lm.lon:.4f}"))
        markers.add_child(marker)
        if len(grid.landmarks) <= 40:
            markers.add_child(
                label_marker([lm.lat, lm.lon], f"<div class='chiploc-label'>{escape(lm.id)}</div>")
            )
    m.add_child(markers)
    named["landmarks"] = markers

    overhead_us = grid.overhead_ms * 1000.0
    banner = (
        f"<h3>Coverage of {escape(grid.region_spec)} — best case</h3>"
        f"<div><b>{pct:.0f}%</b> of the zone ({grid.covered:,} of {len(grid.cells):,} cells "
        f"of ≈{grid.resolution_km:.0f} km) could be proven COMPLIANT by "
        f"{plural(len(grid.landmarks), 'landmark')} with {overhead_us:,.0f} µs software "
        "overhead.</div>"
        "<div class='chiploc-small'>Best case: each RTT = 2 x great-circle distance / c "
        "(vacuum) + overhead, solved by the real solver. Real paths are slower, so real "
        "coverage is at most what is shaded green. Red: add a landmark near there.</div>"
    )
    add_banner(m, banner, colour=_COVERED)
    legend = (
        f"<span class='chiploc-swatch' style='background:{_COVERED}88;border-color:{_COVERED}'>"
        "</span>could be proven COMPLIANT (best case)<br>"
        f"<span class='chiploc-swatch' style='background:{_UNCOVERED}88;border-color:{_UNCOVERED}'>"
        "</span>cannot be proven COMPLIANT<br>"
        "<span class='chiploc-swatch' style='background:none;border-color:#1f78b4;"
        "border-style:dashed'></span>authorized region<br>"
        "<span class='chiploc-dot' style='background:#2c5aa0'></span>landmark<br>"
        "<span class='chiploc-small'>borders: Natural Earth, simplified, display only</span>"
    )
    m.add_child(html_control(legend, position="bottomright", cls="chiploc-legend"))
    minx, miny, maxx, maxy = authorized.bounds
    zone_bounds = [[miny, minx], [maxy, maxx]]
    lats = [lm.lat for lm in grid.landmarks] + [miny, maxy]
    lons = [lm.lon for lm in grid.landmarks] + [minx, maxx]
    all_bounds = [[min(lats), min(lons)], [max(lats), max(lons)]]
    m.add_child(
        zoom_control(
            [("Zoom to region", zone_bounds), ("Zoom to all", all_bounds)], initial=zone_bounds
        )
    )
    m.add_child(folium.LayerControl(position="topright", collapsed=True))
    return render_html(m, title=f"chiploc coverage — {grid.region_spec}", layers=named, tiles=tiles)
