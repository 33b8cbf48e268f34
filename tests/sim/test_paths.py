from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.common.errors import InputError
from chiploc.common.units import NS_PER_MS, SPEED_OF_LIGHT_KM_PER_MS
from chiploc.sim import (
    FIBER_SPEED_KM_PER_MS,
    Hop,
    PathModel,
    Point,
    Route,
    city,
    draw_hop,
    draw_route,
    fastest_route,
    geodesic_km,
)

lats = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
lons = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
points = st.builds(Point, lat=lats, lon=lons)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _vacuum_floor_ns(a: Point, b: Point) -> float:
    return geodesic_km(a.lat, a.lon, b.lat, b.lon) / SPEED_OF_LIGHT_KM_PER_MS * NS_PER_MS


@given(a=points, b=points, seed=seeds)
def test_one_way_delay_never_beats_light(a: Point, b: Point, seed: int) -> None:
    model = PathModel()
    rng = random.Random(seed)
    route = draw_route(model, [a, b], rng)
    floor_ns = _vacuum_floor_ns(a, b)
    assert route.floor_ns >= floor_ns
    for _ in range(5):
        assert route.one_way_ns(model, rng) >= route.floor_ns


@given(a=points, proxy=points, b=points, seed=seeds)
def test_relayed_route_never_beats_light_end_to_end(
    a: Point, proxy: Point, b: Point, seed: int
) -> None:
    route = draw_route(PathModel(), [a, proxy, b], random.Random(seed))
    assert route.floor_ns >= _vacuum_floor_ns(a, b)
    assert route.floor_ns >= _vacuum_floor_ns(a, proxy)


@given(a=points, b=points, seed=seeds)
def test_stretch_is_drawn_from_the_model_range(a: Point, b: Point, seed: int) -> None:
    hop = draw_hop(PathModel(stretch_min=1.4, stretch_max=1.9), a, b, random.Random(seed))
    assert 1.4 <= hop.stretch <= 1.9


def test_delay_formula_frankfurt_paris() -> None:
    fra, par = city("fra"), city("par")
    a, b = Point(lat=fra.lat, lon=fra.lon), Point(lat=par.lat, lon=par.lon)
    hop = Hop(a=a, b=b, stretch=2.0, speed_km_per_ms=FIBER_SPEED_KM_PER_MS, last_mile_ms=0.1)
    # About 479 km; times 2 / (2/3 c) + 0.1 ms.
    assert hop.distance_km == pytest.approx(479.0, rel=0.01)
    assert hop.floor_ms == pytest.approx(hop.distance_km * 2 / FIBER_SPEED_KM_PER_MS + 0.1)
    assert Route(hops=(hop,)).floor_ns == pytest.approx(hop.floor_ms * NS_PER_MS, abs=1)


def test_routes_are_reproducible_from_the_seed() -> None:
    a, b = Point(lat=50.0, lon=8.0), Point(lat=35.0, lon=139.0)
    r1 = draw_route(PathModel(), [a, b], random.Random(7))
    r2 = draw_route(PathModel(), [a, b], random.Random(7))
    assert r1 == r2


def test_fastest_route_is_the_cloned_key_that_answers_first() -> None:
    rng = random.Random(1)
    lm = Point(lat=city("fra").lat, lon=city("fra").lon)
    near = Point(lat=city("ams").lat, lon=city("ams").lon)
    far = Point(lat=city("tyo").lat, lon=city("tyo").lon)
    r_near = draw_route(PathModel(), [lm, near], rng)
    r_far = draw_route(PathModel(), [lm, far], rng)
    assert fastest_route([r_far, r_near]) is r_near
    with pytest.raises(InputError):
        fastest_route([])


def test_jitter_is_non_negative_and_capped() -> None:
    model = PathModel(jitter_mean_ms=0.5, jitter_max_ms=1.0)
    rng = random.Random(3)
    draws = [model.jitter_ns(rng) for _ in range(2000)]
    assert min(draws) >= 0
    assert max(draws) <= NS_PER_MS
    assert PathModel(jitter_mean_ms=0.0).jitter_ns(rng) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stretch_min": 0.9},
        {"stretch_min": 2.0, "stretch_max": 1.5},
        {"speed_km_per_ms": SPEED_OF_LIGHT_KM_PER_MS * 1.01},
        {"speed_km_per_ms": 0.0},
        {"last_mile_ms": -0.1},
        {"jitter_mean_ms": float("inf")},
    ],
)
def test_path_model_rejects_unphysical_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        PathModel(**kwargs)


def test_hop_and_route_validation() -> None:
    a, b, c = Point(lat=0.0, lon=0.0), Point(lat=1.0, lon=1.0), Point(lat=2.0, lon=2.0)
    with pytest.raises(InputError):
        Hop(a=a, b=b, stretch=0.5, speed_km_per_ms=100.0, last_mile_ms=0.0)
    with pytest.raises(InputError):
        Hop(a=a, b=b, stretch=1.0, speed_km_per_ms=400.0, last_mile_ms=0.0)
    hop_ab = Hop(a=a, b=b, stretch=1.0, speed_km_per_ms=100.0, last_mile_ms=0.0)
    hop_ac = Hop(a=a, b=c, stretch=1.0, speed_km_per_ms=100.0, last_mile_ms=0.0)
    with pytest.raises(InputError):
        Route(hops=(hop_ab, hop_ac))
    with pytest.raises(InputError):
        Route(hops=())
    with pytest.raises(InputError):
        draw_route(PathModel(), [a], random.Random(0))
    with pytest.raises(InputError):
        Point(lat=0.0, lon=181.0)
