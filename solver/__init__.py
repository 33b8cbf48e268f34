"""Sound solver: from round-trip times to a proven region and a verdict.

Sans-I/O: numbers in, frozen dataclasses out (numpy, scipy, shapely, pyproj only).
See ``docs/solver.md`` for the models, the geometry and why each approximation
errs on the safe side.
"""

from __future__ import annotations

from ._csv import MEASUREMENT_COLUMNS, parse_measurements_csv
from ._estimate import DEFAULT_ESTIMATOR, estimate_many, estimate_position
from ._geodesy import (
    chord_to_geodesic_km,
    geodesic_disk,
    geodesic_disks,
    geodesic_km,
    geodesic_to_chord_km,
    inscribed_disk,
    polygon_area_km2,
)
from ._mesh import (
    CALIBRATION_COLUMNS,
    LinkCheck,
    MeshAssessment,
    MeshLink,
    assess_mesh,
    calibration_rows,
    check_link,
    check_links,
    suspects_of,
)
from ._models import Bestline, Calibration, Measurement, Model, fit_bestline, radius_km
from ._regions import (
    AuthorizedRegion,
    country_geometries,
    load_region,
    suggest_countries,
    swapped_lat_lon_warning,
)
from ._results import Estimate, Estimator, LandmarkBound, Settle, SolveResult, Verdict
from ._solve import prepare_zone, solve, solve_many

__all__ = [
    "CALIBRATION_COLUMNS",
    "DEFAULT_ESTIMATOR",
    "MEASUREMENT_COLUMNS",
    "AuthorizedRegion",
    "Bestline",
    "Calibration",
    "Estimate",
    "Estimator",
    "LandmarkBound",
    "LinkCheck",
    "Measurement",
    "MeshAssessment",
    "MeshLink",
    "Model",
    "Settle",
    "SolveResult",
    "Verdict",
    "assess_mesh",
    "calibration_rows",
    "check_link",
    "check_links",
    "chord_to_geodesic_km",
    "country_geometries",
    "estimate_many",
    "estimate_position",
    "fit_bestline",
    "geodesic_disk",
    "geodesic_disks",
    "geodesic_km",
    "geodesic_to_chord_km",
    "inscribed_disk",
    "load_region",
    "parse_measurements_csv",
    "polygon_area_km2",
    "prepare_zone",
    "radius_km",
    "solve",
    "solve_many",
    "suggest_countries",
    "suspects_of",
    "swapped_lat_lon_warning",
]
