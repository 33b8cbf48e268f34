"""chiploc maps: the evidence drawn with folium, as self-contained offline HTML.

Three maps, each a pure function from solver result dicts (the objects of
``SolveResult.to_json_dict()``, one per line of ``chiploc solve --json``) to one
HTML page as a string; writing it to disk is the caller's business:

- :func:`chip_map` — one chip: landmarks, their geodesic bounds, the proven
  region, the estimate (marked as such), the authorized region, a verdict banner.
- :func:`fleet_map` — many chips coloured by verdict, clustered past a few
  hundred, one toggleable layer per verdict, counts per verdict.
- :func:`coverage_map` — where a chip *could* be proven COMPLIANT with a
  landmark network (best case: vacuum-speed paths plus the software overhead).

Every page inlines Leaflet 1.9.4 (and Leaflet.markercluster 1.5.3 for large
fleets) from ``maps/_vendor/`` and references nothing on the network; web tiles
appear only when the caller passes ``tiles=`` explicitly.
"""

from chiploc.maps._basemap import BASEMAP_LAYER_NAME, basemap_geojson
from chiploc.maps._chip import ESTIMATE_LABEL, chip_map, chip_map_from_layers
from chiploc.maps._coverage import (
    CoverageGrid,
    CoverageLandmark,
    coverage_grid,
    coverage_map,
    read_landmarks_csv,
)
from chiploc.maps._fleet import DEFAULT_CLUSTER_THRESHOLD, fleet_map, fleet_map_from_points
from chiploc.maps._html import LEAFLET_VERSION, MARKERCLUSTER_VERSION, network_references
from chiploc.maps._layers import (
    VERDICT_COLOURS,
    VERDICTS,
    ChipLayers,
    FleetPoints,
    LandmarkLayer,
    chip_layers,
    fleet_points,
)

__all__ = [
    "BASEMAP_LAYER_NAME",
    "DEFAULT_CLUSTER_THRESHOLD",
    "ESTIMATE_LABEL",
    "LEAFLET_VERSION",
    "MARKERCLUSTER_VERSION",
    "VERDICTS",
    "VERDICT_COLOURS",
    "ChipLayers",
    "CoverageGrid",
    "CoverageLandmark",
    "FleetPoints",
    "LandmarkLayer",
    "basemap_geojson",
    "chip_layers",
    "chip_map",
    "chip_map_from_layers",
    "coverage_grid",
    "coverage_map",
    "fleet_map",
    "fleet_map_from_points",
    "fleet_points",
    "network_references",
    "read_landmarks_csv",
]
