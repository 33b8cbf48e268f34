"""Chip-map layers from real solver results: the map shows what the proof used."""

from __future__ import annotations

import copy

import pytest

from chiploc import solver
from chiploc.common.errors import InputError
from chiploc.maps import ESTIMATE_LABEL, chip_layers, chip_map, network_references

from ._scenarios import scenario


def test_bounds_are_the_solvers_circumscribing_polygons() -> None:
    from shapely.geometry import shape

    result = scenario("compliant")
    layers = chip_layers(result)
    assert [lm.id for lm in layers.landmarks] == [lm["id"] for lm in result["landmarks"]]
    for lm, src in zip(layers.landmarks, result["landmarks"], strict=True):
        expected = solver.geodesic_disk(src["lat"], src["lon"], src["radius_km"])
        assert shape(lm.bound).equals_exact(expected, 1e-9)
    assert layers.region is not None
    assert layers.verdict == "COMPLIANT"
    assert layers.proof is True
    # The view opens on the proven region and the authorized zone together; "zoom to
    # region" is the region alone; "zoom to all" covers every landmark too.
    (s, w), (n, e) = layers.focus_bounds
    zone = solver.load_region("country:DEU").geometry
    assert shape(result["region"]).union(zone).bounds == pytest.approx((w, s, e, n))
    assert layers.region_bounds is not None
    (s1, w1), (n1, e1) = layers.region_bounds
    assert shape(result["region"]).bounds == pytest.approx((w1, s1, e1, n1))
    (s2, w2), (n2, e2) = layers.all_bounds
    for lm in layers.landmarks:
        assert s2 <= lm.lat <= n2
        assert w2 <= lm.lon <= e2


def test_authorized_region_is_the_decision_geometry() -> None:
    from shapely.geometry import shape

    layers = chip_layers(scenario("compliant"))
    assert layers.authorized is not None
    assert shape(layers.authorized).equals(solver.load_region("country:DEU").geometry)


def test_small_region_is_flagged_for_the_zoom_control() -> None:
    layers = chip_layers(scenario("small"))
    assert layers.region is not None
    assert layers.region_extent_km is not None
    assert layers.region_extent_km < 20
    assert layers.small_region
    assert not chip_layers(scenario("compliant")).small_region


def test_inconsistent_has_no_region_and_names_the_conflict() -> None:
    from shapely.geometry import shape

    result = scenario("inconsistent")
    assert result["verdict"] == "INCONSISTENT"
    layers = chip_layers(result)
    assert layers.region is None
    assert {lm.id for lm in layers.landmarks if lm.conflicting} == set(
        result["conflicting_landmarks"]
    )
    # With no region the view fits every conflicting bound whole.
    (s, w), (n, e) = layers.focus_bounds
    for lm in layers.landmarks:
        assert lm.conflicting
        assert lm.bound is not None
        bw, bs, be, bn = shape(lm.bound).bounds
        assert max(s - bs, bn - n, w - bw, be - e) <= 0.0


def test_estimate_model_is_never_presented_as_a_proof() -> None:
    result = scenario("estimate")
    assert result["proof"] is False
    page = chip_map(result)
    assert "not a proof" in page
    assert ESTIMATE_LABEL in page
    assert network_references(page) == []


def test_ids_are_escaped_in_the_page() -> None:
    page = chip_map(scenario("small"))
    assert "chip-small<&>" not in page
    assert network_references(page) == []


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda r: r.pop("region_spec"), "region_spec"),
        (lambda r: r["landmarks"][0].pop("radius_km"), "radius_km"),
        (lambda r: r["landmarks"][0].update(radius_km=-1.0), "negative"),
        (lambda r: r.update(verdict="PROBABLY"), "unknown verdict"),
        (lambda r: r.update(region={"type": "Polygon", "coordinates": "x"}), "GeoJSON"),
    ],
)
def test_malformed_result_is_an_input_error(mutate: object, match: str) -> None:
    result = copy.deepcopy(scenario("compliant"))
    mutate(result)  # type: ignore[operator]
    with pytest.raises(InputError, match=match):
        chip_layers(result)


def test_whole_earth_bound_is_listed_but_not_drawn() -> None:
    # A 200 ms RTT bounds nothing (the solver reports radius_km null); the map must
    # still render, list the landmark, and say its bound covers the whole Earth.
    result = solver.solve(
        "chip-far",
        [
            solver.Measurement(landmark="fra", lat=50.11, lon=8.68, rtt_ms=2.0),
            solver.Measurement(landmark="syd", lat=-33.87, lon=151.21, rtt_ms=200.0),
        ],
        solver.load_region("country:DEU"),
    ).to_json_dict()
    far = next(lm for lm in result["landmarks"] if lm["id"] == "syd")
    assert far["radius_km"] is None
    layers = chip_layers(result)
    by_id = {lm.id: lm for lm in layers.landmarks}
    assert by_id["syd"].bound is None
    assert by_id["fra"].bound is not None
    html = chip_map(result)
    assert "bound covers the whole Earth" in html
    assert network_references(html) == []


def test_text_from_a_result_reaches_the_page_as_text_not_as_a_template() -> None:
    """A result's own strings (the chip id, the message) are escaped HTML in the banner: a
    ``{{ ... }}`` or ``{% ... %}`` in them is shown as typed, never evaluated by the page's
    template engine (jinja would have run ``{{ 7 * 7 }}`` as Python-side code)."""
    result = copy.deepcopy(scenario("compliant"))
    result["target"] = "chip-{{ 7 * 7 }}"
    result["message"] = "{% for x in [1, 2] %}loop{{ x }}{% endfor %} <b>bold</b>"
    page = chip_map(result)
    assert "chip-{{ 7 * 7 }}" in page
    assert "chip-49" not in page
    assert "{% for x in [1, 2] %}loop{{ x }}{% endfor %} &lt;b&gt;bold&lt;/b&gt;" in page
    assert "loop1" not in page
