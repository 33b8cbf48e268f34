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
def basemap_geojson(tolerance_deg: float = 0.05) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of every country, simplified by ``tolerance_deg``."""
    from shapely.geometry import mapping

    from chiploc import solver

    features = []
    for iso3, (name, geometry) in sorted(solver.country_geometries().items()):
        simple = geometry.simplify(tolerance_deg, preserve_topology=True)
        if simple.is_empty:
            continue
        geo = mapping(simple)
        features.append(
            {
                "type": "Feature",
                "properties": {"iso3": iso3, "name": name},
                "geometry": {
                    "type": geo["type"],
                    "coordinates": _round_coords(geo["coordinates"], 3),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
