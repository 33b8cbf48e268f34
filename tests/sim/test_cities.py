from __future__ import annotations

import pytest
import shapely

from chiploc.common.errors import InputError
from chiploc.sim import CITIES, CITIES_BY_CODE, EUROPE, City, city, geodesic_km
from chiploc.solver import country_geometries

REQUIRED_EUROPE = {
    "Frankfurt am Main", "Berlin", "Munich", "Hamburg", "Paris", "Marseille", "Amsterdam",
    "Brussels", "London", "Madrid", "Milan", "Vienna", "Warsaw", "Prague", "Zurich",
    "Stockholm", "Copenhagen",
}  # fmt: skip
REQUIRED_ELSEWHERE = {
    "Ashburn", "New York", "São Paulo", "Singapore", "Tokyo", "Mumbai", "Sydney",
    "Johannesburg", "Beijing", "Moscow", "Dubai",
}  # fmt: skip


def test_required_cities_are_embedded() -> None:
    names = {c.name for c in CITIES}
    assert names >= REQUIRED_EUROPE
    assert names >= REQUIRED_ELSEWHERE
    assert sum(c.region == EUROPE for c in CITIES) >= 16
    assert len({c.region for c in CITIES}) >= 5


def test_codes_are_unique_and_resolve() -> None:
    assert len(CITIES_BY_CODE) == len(CITIES)
    assert city("fra").name == "Frankfurt am Main"
    with pytest.raises(InputError):
        city("atlantis")


# Reference great-circle figures (published airport-free city-centre
# distances, rounded); the embedded coordinates must reproduce them within 1 %.
@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ("fra", "ber", 424),
        ("par", "lon", 344),
        ("nyc", "lon", 5570),
        ("tyo", "syd", 7820),
        ("mad", "bcn", 505),
        ("sin", "hkg", 2590),
        ("ams", "bru", 173),
    ],
)
def test_city_distances_match_references(a: str, b: str, km: float) -> None:
    ca, cb = city(a), city(b)
    assert geodesic_km(ca.lat, ca.lon, cb.lat, cb.lon) == pytest.approx(km, rel=0.01)


def test_cities_lie_in_their_country() -> None:
    countries = country_geometries()
    for c in CITIES:
        if c.country not in countries:
            continue  # e.g. a territory the country dataset folds into another
        _, geometry = countries[c.country]
        # Coastal city centres may sit just off a generalised coastline.
        assert geometry.distance(shapely.Point(c.lon, c.lat)) < 0.2, c


@pytest.mark.parametrize(
    "kwargs",
    [
        {"code": "FRA"},
        {"country": "DE"},
        {"lat": 91.0},
        {"lon": 180.0},
        {"lat": float("nan")},
    ],
)
def test_city_rejects_bad_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "code": "x", "name": "X", "country": "XXX", "lat": 0.0, "lon": 0.0, "region": EUROPE,
    }  # fmt: skip
    fields.update(kwargs)
    with pytest.raises(InputError):
        City(**fields)  # type: ignore[arg-type]
