"""Fleet points from result dicts: every chip is placed or listed, never dropped."""

from __future__ import annotations

from typing import Any

import pytest

from chiploc.common.errors import InputError
from chiploc.maps import VERDICTS, fleet_points


def _result(target: str, verdict: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"target": target, "verdict": verdict, "region_center": None}
    base.update(kw)
    return base


def test_places_by_region_centre_then_estimate_and_lists_the_rest() -> None:
    points = fleet_points(
        [
            _result("a", "COMPLIANT", region_center={"lat": 50.0, "lon": 8.0}, margin_km=12.34),
            _result("b", "INCONCLUSIVE", estimate={"lat": 40.0, "lon": -3.0, "model": "fiber"}),
            _result("c", "UNREACHABLE", estimate=None),
            _result("d", "INCONSISTENT"),
        ]
    )
    assert points.rows == (
        (50.0, 8.0, VERDICTS.index("COMPLIANT"), "a", 12.3, "r"),
        (40.0, -3.0, VERDICTS.index("INCONCLUSIVE"), "b", None, "e"),
    )
    assert points.unplaced == (("c", "UNREACHABLE"), ("d", "INCONSISTENT"))
    assert points.total == 4
    assert dict(points.counts) == {
        "COMPLIANT": 1,
        "VIOLATION": 0,
        "INCONCLUSIVE": 1,
        "INCONSISTENT": 1,
        "UNREACHABLE": 1,
    }


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"verdict": "COMPLIANT"}, "missing field 'target'"),
        ({"target": "x", "verdict": "MAYBE"}, "unknown verdict"),
        ({"target": "x", "verdict": "COMPLIANT", "region_center": {"lat": 91, "lon": 0}}, "range"),
        (
            {"target": "x", "verdict": "COMPLIANT", "region_center": {"lat": "n", "lon": 0}},
            "number",
        ),
        ({"target": "x", "verdict": "COMPLIANT", "margin_km": float("nan")}, "finite"),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_results_raise_input_error(bad: Any, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        fleet_points([bad])
    assert info.value.reason == "bad_result"
