"""The offline basemap: the bundled Natural Earth country borders, simplified for display only.

Invariants: the basemap is never decision geometry (verdicts use
:func:`solver.load_region`, unsimplified); it is drawn non-interactive, under
everything else, and labelled "display only" in the layer control.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["BASEMAP_LAYER_NAME", "basemap_geojson"]

BASEMAP_LAYER_NAME = "Country borders (simplified, display only)"


def _round_coords(value: Any, ndigits: int) -> Any:
    if isinstance(value, float):
        return round(value, ndigits)
    if isinstance(value, list | tuple):
        return [_round_coords(v, ndigits) for v in value]
    return value


@cache
def _country_feature(iso3: str, tolerance_deg: float) -> dict[str, Any] | None:
    """One country's feature, simplified by ``tolerance_deg`` (None when nothing is left).

    Kept per country and tolerance: a page opening on a new view re-simplifies only the
    countries that meet it, not all of them."""
    from shapely.geometry import mapping

    from chiploc import solver

    name, geometry = solver.country_geometries()[iso3]
    simple = geometry.simplify(tolerance_deg, preserve_topology=True)
    if simple.is_empty:
        return None
    geo = mapping(simple)
    return {
        "type": "Feature",
        "properties": {"iso3": iso3, "name": name},
        "geometry": {
            "type": geo["type"],
            "coordinates": _round_coords(geo["coordinates"], 4 if tolerance_deg < 0.01 else 3),
        },
    }


@cache
def basemap_geojson(
    tolerance_deg: float = 0.05,
    *,
    detail_bbox: tuple[float, float, float, float] | None = None,
    detail_tolerance_deg: float | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of every country, simplified by ``tolerance_deg``.

    Countries that meet ``detail_bbox`` (lon/lat: west, south, east, north) are simplified
    by ``detail_tolerance_deg`` instead, so that where the page opens their borders lie
    within a pixel of the authorized zone drawn from the same data, unsimplified.

    The features are shared between calls (cached): treat the result as read-only.
    """
    from shapely.geometry import box

    from chiploc import solver

    detail = box(*detail_bbox) if detail_bbox is not None else None
    features = []
    for iso3, (_, geometry) in sorted(solver.country_geometries().items()):
        tolerance = tolerance_deg
        near = detail is not None and geometry.intersects(detail)
        if near and detail_tolerance_deg is not None:
            tolerance = min(tolerance_deg, detail_tolerance_deg)
        feature = _country_feature(iso3, tolerance)
        if feature is not None:
            features.append(feature)
    return {"type": "FeatureCollection", "features": features}
