"""Margins against the world: never more than the true clearance, and not much less.

A circular zone has an exact border (geodesic distance R from its centre), so the true
clearance of a proven region is computable without the solver: the feasible set of one
landmark's chord bound is sampled on its exact boundary (``tests/solver/_world.py``) and
its distances to the zone's centre taken with an independent geodesic engine. The
solver's margin must not exceed that clearance (soundness) and must come within the
slack its polygons admit (half a border segment, about 5 % of the zone radius; tightness): a
margin stuck at zero or at an arbitrary cap is as wrong as a margin that overstates.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chiploc.solver import Measurement, Verdict, load_region, solve

from ._world import chord_bound_km, dist_km, feasible_boundary, fwd, rtt_ms

lats = st.floats(-89.0, 89.0)
lons = st.floats(-180.0, 180.0)


def _case(
    lat0: float, lon0: float, zone_km: float, off_km: float, az: float, reach_km: float
) -> tuple[float, float, list[Measurement]]:
    """A chip ``off_km`` from the zone centre; one landmark ``reach_km`` from the chip,
    measuring at light speed (its feasible set is a cap about ``reach_km`` wide)."""
    la, lo = fwd(lat0, lon0, az, off_km)
    lat, lon = float(la[0]), float(lo[0])
    lla, llo = fwd(lat, lon, (az + 90.0) % 360.0, reach_km)
    m = Measurement(
        landmark="l",
        lat=float(lla[0]),
        lon=float(llo[0]),
        rtt_ms=rtt_ms(lat, lon, float(lla[0]), float(llo[0]), 1.0),
    )
    return lat, lon, [m]


def _check(lat0: float, lon0: float, zone_km: float, ms: list[Measurement]) -> Verdict:
    zone = load_region(f"circle:{lat0!r},{lon0!r},{zone_km!r}")
    res = solve("t", ms, zone, estimate=False)
    m = ms[0]
    f_lat, f_lon = feasible_boundary([(m.lat, m.lon, chord_bound_km(m.rtt_ms))], n_az=48)
    d = dist_km(lat0, lon0, f_lat, f_lon)
    inside_clear = zone_km - float(d.max())  # the region's clearance from the border, inside
    outside_clear = float(d.min()) - zone_km  # ... outside
    reach = float(dist_km(m.lat, m.lon, f_lat, f_lon).max())
    # The margin's lower bound gives up about half a border segment (segments of the
    # inscribed polygon are up to ~9 % of R long) plus the polygons' inflation (~0.1 %).
    slack = 0.05 * zone_km + 3e-3 * reach + 0.05
    if res.verdict is Verdict.COMPLIANT:
        assert res.margin_km is not None
        assert res.margin_km <= inside_clear + 1e-6, (res.margin_km, inside_clear)
        assert res.margin_km >= inside_clear - slack, (res.margin_km, inside_clear, slack)
    elif res.verdict is Verdict.VIOLATION:
        assert res.margin_km is not None
        assert res.margin_km <= outside_clear + 1e-6, (res.margin_km, outside_clear)
        assert res.margin_km >= outside_clear - slack, (res.margin_km, outside_clear, slack)
    else:  # undecided only where the region reaches within the slack of the border
        assert res.margin_km is None
        assert inside_clear <= slack
        assert outside_clear <= slack
    return res.verdict


@settings(max_examples=min(40, settings.default.max_examples))
@given(
    lat0=lats,
    lon0=lons,
    zone_km=st.one_of(st.floats(1.0, 50.0), st.floats(50.0, 3000.0)),
    frac=st.floats(0.0, 3.0),
    az=st.floats(0.0, 360.0),
    reach_frac=st.floats(0.001, 0.5),
)
def test_margin_is_the_true_clearance_within_the_polygons_slack(
    lat0: float, lon0: float, zone_km: float, frac: float, az: float, reach_frac: float
) -> None:
    _, _, ms = _case(lat0, lon0, zone_km, frac * zone_km, az, reach_frac * zone_km)
    _check(lat0, lon0, zone_km, ms)


@pytest.mark.parametrize(
    ("lat0", "lon0", "zone_km", "frac", "want"),
    [
        (48.0, 11.0, 800.0, 0.2, Verdict.COMPLIANT),
        (48.0, 11.0, 800.0, 2.0, Verdict.VIOLATION),
        (-17.0, 179.9, 300.0, 0.5, Verdict.COMPLIANT),  # across the antimeridian
        (-17.0, 179.9, 300.0, 1.8, Verdict.VIOLATION),
        (88.0, 0.0, 400.0, 0.3, Verdict.COMPLIANT),  # holds the pole
        (0.0, 0.0, 5.0, 0.1, Verdict.COMPLIANT),  # tiny
        (10.0, 20.0, 3000.0, 2.5, Verdict.VIOLATION),
    ],
)
def test_margins_in_each_zone_kind(
    lat0: float, lon0: float, zone_km: float, frac: float, want: Verdict
) -> None:
    for az in np.linspace(0.0, 360.0, 5, endpoint=False):
        _, _, ms = _case(lat0, lon0, zone_km, frac * zone_km, float(az), 0.05 * zone_km)
        assert _check(lat0, lon0, zone_km, ms) is want
