"""The mesh check (pure): properties of the world, not of the code.

* Honest landmarks (RTT never faster than light between their true, registered sites) are
  never flagged, whatever the path inflation.
* A landmark registered 300 km from where it is, moved towards some of its peers, makes those
  pairs beat light; it alone is the suspect.
* The flag threshold is the vacuum bound, computed here independently (ECEF chord, c, the
  500 ppm clock widening).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
from chiploc.solver import (
    CALIBRATION_COLUMNS,
    Calibration,
    MeshLink,
    assess_mesh,
    calibration_rows,
    check_link,
    suspects_of,
)

GEOD = Geod(ellps="WGS84")
C = SPEED_OF_LIGHT_KM_PER_MS


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[1], a[0], b[1], b[0])[2]) / 1000.0


def _moved(site: tuple[float, float], azimuth_deg: float, km: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(site[1], site[0], azimuth_deg, km * 1000.0)
    return (float(lat), float(lon))


def _ecef_km(lat: float, lon: float) -> np.ndarray:
    a, f = 6378.137, 1 / 298.257223563
    e2 = f * (2 - f)
    la, lo = math.radians(lat), math.radians(lon)
    n = a / math.sqrt(1 - e2 * math.sin(la) ** 2)
    return np.array(
        [
            n * math.cos(la) * math.cos(lo),
            n * math.cos(la) * math.sin(lo),
            n * (1 - e2) * math.sin(la),
        ]
    )


# A small European mesh (true sites).
TRUE = {
    "lm-fra": (50.11, 8.68),
    "lm-par": (48.86, 2.35),
    "lm-ams": (52.37, 4.90),
    "lm-ber": (52.52, 13.40),
    "lm-mil": (45.46, 9.19),
    "lm-vie": (48.21, 16.37),
}


def _links(true: dict[str, tuple[float, float]], stretch: float, extra_ms: float) -> list[MeshLink]:
    out = []
    for a in true:
        for b in true:
            if a != b:
                rtt = 2 * _km(true[a], true[b]) * stretch / C + extra_ms
                out.append(MeshLink(landmark=a, peer=b, rtt_ms=rtt))
    return out


@given(stretch=st.floats(1.0, 3.0), extra_ms=st.floats(0.0, 5.0))
def test_an_honest_mesh_is_never_flagged(stretch: float, extra_ms: float) -> None:
    assessment = assess_mesh(_links(TRUE, stretch, extra_ms), TRUE)
    assert assessment.violating_pairs == ()
    assert assessment.suspects == frozenset()
    assert len(assessment.checks) == 30


@pytest.mark.parametrize("stretch", [1.0, 1.2])
def test_a_landmark_registered_300_km_away_is_the_suspect(stretch: float) -> None:
    # Milan really sits 300 km north of its registered site: towards Frankfurt, Vienna, Paris.
    true = dict(TRUE)
    true["lm-mil"] = _moved(TRUE["lm-mil"], 0.0, 300.0)
    registered = dict(TRUE)
    assert _km(true["lm-mil"], registered["lm-mil"]) == pytest.approx(300.0, rel=1e-6)
    assessment = assess_mesh(_links(true, stretch, 0.05), registered)
    assert assessment.violating_pairs, "the move must beat light on some pair"
    assert all("lm-mil" in pair for pair in assessment.violating_pairs)
    assert assessment.suspects == frozenset({"lm-mil"})
    assert assessment.to_json_dict()["suspects"] == ["lm-mil"]
    # calibration from the mesh leaves the suspect out
    rows = calibration_rows(_links(true, stretch, 0.05), registered, exclude=assessment.suspects)
    assert rows
    assert all("lm-mil" not in (r[0], r[3]) for r in rows)
    assert len(CALIBRATION_COLUMNS) == len(rows[0])


def test_threshold_is_the_vacuum_bound_computed_independently() -> None:
    a, b = TRUE["lm-fra"], TRUE["lm-par"]
    chord = float(np.linalg.norm(_ecef_km(*a) - _ecef_km(*b)))
    e = 500e-6
    # An RTT whose clock-widened straight-line reach is 0.5 % short of the chord: light
    # cannot do it between the registered sites; 0.5 % over the geodesic: it can.
    too_fast = 2 * chord * 0.995 / C * (1 - e)
    fine = 2 * _km(a, b) * 1.005 / C * (1 - e)
    sites = {"lm-fra": a, "lm-par": b}
    assert check_link(MeshLink(landmark="lm-fra", peer="lm-par", rtt_ms=too_fast), sites).violation
    assert not check_link(MeshLink(landmark="lm-fra", peer="lm-par", rtt_ms=fine), sites).violation
    # the clock widening protects a link measured exactly at the geodesic light time
    exact = 2 * _km(a, b) / C
    assert not check_link(MeshLink(landmark="lm-fra", peer="lm-par", rtt_ms=exact), sites).violation
    # a proven overhead is subtracted (and only that)
    with_overhead = MeshLink(landmark="lm-fra", peer="lm-par", rtt_ms=exact, overhead_ms=0.1)
    assert check_link(with_overhead, sites).violation


def test_suspect_rule_ties_exclude_both_and_counts_decide() -> None:
    assert suspects_of([("a", "b")])[0] == {"a", "b"}
    # x is in three violating pairs, each peer in one: x alone
    assert suspects_of([("a", "x"), ("b", "x"), ("c", "x")])[0] == {"x"}
    # a chain a-b, b-c: b has 2, a and c have 1: b alone
    assert suspects_of([("a", "b"), ("b", "c")])[0] == {"b"}
    # two disjoint pairs: all four (a tie in each)
    assert suspects_of([("a", "b"), ("c", "d")])[0] == {"a", "b", "c", "d"}


def test_links_are_validated() -> None:
    with pytest.raises(ValueError, match="own peer"):
        MeshLink(landmark="a", peer="a", rtt_ms=1.0)
    with pytest.raises(ValueError):
        MeshLink(landmark="a", peer="b", rtt_ms=math.nan)
    with pytest.raises(ValueError):
        MeshLink(landmark="a", peer="b", rtt_ms=1.0, overhead_ms=2.0)
    with pytest.raises(ValueError, match="no registered site"):
        check_link(MeshLink(landmark="a", peer="b", rtt_ms=1.0), {"a": (0.0, 0.0)})


def test_mesh_rows_feed_the_calibrated_model(tmp_path: object) -> None:
    rows = calibration_rows(_links(TRUE, 1.5, 0.2), TRUE)
    assert len(rows) == 30
    calibration = Calibration.fit([(r[0], r[1], r[2], r[4], r[5], r[6]) for r in rows])
    line = calibration.bestline("lm-fra")
    assert line.points == 5
    # the fitted line lies below every calibration point of lm-fra
    for r in rows:
        if r[0] == "lm-fra":
            assert line.rtt_ms(_km((r[1], r[2]), (r[4], r[5]))) <= r[6] + 1e-9


@given(
    who=st.sampled_from(sorted(TRUE)),
    azimuth=st.floats(0.0, 360.0),
    km=st.floats(50.0, 600.0),
    stretch=st.floats(1.0, 2.0),
)
def test_one_displaced_landmark_is_always_excluded(
    who: str, azimuth: float, km: float, stretch: float
) -> None:
    """Honest pairs never violate, so every violating pair contains the displaced landmark;
    with two or more pairs it has the unique highest count, with one it ties: either way
    it is a suspect, and no honest landmark is suspect unless it tied with it."""
    true = dict(TRUE)
    true[who] = _moved(TRUE[who], azimuth, km)
    assessment = assess_mesh(_links(true, stretch, 0.0), TRUE)
    for pair in assessment.violating_pairs:
        assert who in pair
    if assessment.violating_pairs:
        assert who in assessment.suspects
        if len(assessment.violating_pairs) >= 2:
            assert assessment.suspects == {who}
