"""Real city coordinates where data centres and landmarks plausibly sit.

Invariants:

- Coordinates are WGS84 degrees of the city centre, correct to about 0.01°
  (about 1 km), latitude in [-90, 90], longitude in [-180, 180).
- ``country`` is the ISO 3166-1 alpha-3 code of the country the point lies in.
- ``code`` is a short, unique, lowercase identifier (the IATA metropolitan or
  main-airport code), usable as a landmark id.
- ``region`` is a coarse continent label used to pick default landmark sets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from chiploc.common.errors import InputError

__all__ = ["CITIES", "CITIES_BY_CODE", "EUROPE", "City", "city"]

#: Continent label of the European cities.
EUROPE: Final = "europe"


@dataclass(frozen=True, slots=True, kw_only=True)
class City:
    """One city centre: a plausible place for a data centre or a landmark."""

    code: str
    name: str
    country: str
    lat: float
    lon: float
    region: str

    def __post_init__(self) -> None:
        if not (self.code.isascii() and self.code.isalnum() and self.code.islower()):
            raise InputError(f"city code {self.code!r} must be lowercase ASCII alphanumerics")
        if len(self.country) != 3 or not self.country.isupper() or not self.country.isascii():
            raise InputError(f"city {self.code}: country {self.country!r} is not ISO alpha-3")
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise InputError(f"city {self.code}: latitude {self.lat!r} out of range")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon < 180.0):
            raise InputError(f"city {self.code}: longitude {self.lon!r} out of range")


def _c(code: str, name: str, country: str, lat: float, lon: float, region: str) -> City:
    return City(code=code, name=name, country=country, lat=lat, lon=lon, region=region)


_EU = EUROPE
#: Every embedded city, Europe first. Sources: city-centre coordinates as
#: published by the cities' own geodata / standard gazetteers (GeoNames).
CITIES: Final[tuple[City, ...]] = (
    _c("fra", "Frankfurt am Main", "DEU", 50.1109, 8.6821, _EU),
    _c("ber", "Berlin", "DEU", 52.5200, 13.4050, _EU),
    _c("muc", "Munich", "DEU", 48.1351, 11.5820, _EU),
    _c("ham", "Hamburg", "DEU", 53.5511, 9.9937, _EU),
    _c("dus", "Düsseldorf", "DEU", 51.2277, 6.7735, _EU),
    _c("par", "Paris", "FRA", 48.8566, 2.3522, _EU),
    _c("mrs", "Marseille", "FRA", 43.2965, 5.3698, _EU),
    _c("lys", "Lyon", "FRA", 45.7640, 4.8357, _EU),
    _c("ams", "Amsterdam", "NLD", 52.3676, 4.9041, _EU),
    _c("bru", "Brussels", "BEL", 50.8503, 4.3517, _EU),
    _c("lon", "London", "GBR", 51.5074, -0.1278, _EU),
    _c("man", "Manchester", "GBR", 53.4808, -2.2426, _EU),
    _c("dub", "Dublin", "IRL", 53.3498, -6.2603, _EU),
    _c("mad", "Madrid", "ESP", 40.4168, -3.7038, _EU),
    _c("bcn", "Barcelona", "ESP", 41.3874, 2.1686, _EU),
    _c("lis", "Lisbon", "PRT", 38.7223, -9.1393, _EU),
    _c("mil", "Milan", "ITA", 45.4642, 9.1900, _EU),
    _c("rom", "Rome", "ITA", 41.9028, 12.4964, _EU),
    _c("vie", "Vienna", "AUT", 48.2082, 16.3738, _EU),
    _c("waw", "Warsaw", "POL", 52.2297, 21.0122, _EU),
    _c("prg", "Prague", "CZE", 50.0755, 14.4378, _EU),
    _c("zrh", "Zurich", "CHE", 47.3769, 8.5417, _EU),
    _c("sto", "Stockholm", "SWE", 59.3293, 18.0686, _EU),
    _c("cph", "Copenhagen", "DNK", 55.6761, 12.5683, _EU),
    _c("osl", "Oslo", "NOR", 59.9139, 10.7522, _EU),
    _c("hel", "Helsinki", "FIN", 60.1699, 24.9384, _EU),
    _c("bud", "Budapest", "HUN", 47.4979, 19.0402, _EU),
    _c("buh", "Bucharest", "ROU", 44.4268, 26.1025, _EU),
    _c("sof", "Sofia", "BGR", 42.6977, 23.3219, _EU),
    _c("ath", "Athens", "GRC", 37.9838, 23.7275, _EU),
    _c("mow", "Moscow", "RUS", 55.7558, 37.6173, _EU),
    _c("ist", "Istanbul", "TUR", 41.0082, 28.9784, _EU),
    # North America
    _c("iad", "Ashburn", "USA", 39.0438, -77.4874, "north_america"),
    _c("nyc", "New York", "USA", 40.7128, -74.0060, "north_america"),
    _c("chi", "Chicago", "USA", 41.8781, -87.6298, "north_america"),
    _c("dfw", "Dallas", "USA", 32.7767, -96.7970, "north_america"),
    _c("lax", "Los Angeles", "USA", 34.0522, -118.2437, "north_america"),
    _c("yto", "Toronto", "CAN", 43.6532, -79.3832, "north_america"),
    # South America, Africa, Middle East
    _c("sao", "São Paulo", "BRA", -23.5505, -46.6333, "south_america"),
    _c("jnb", "Johannesburg", "ZAF", -26.2041, 28.0473, "africa"),
    _c("los", "Lagos", "NGA", 6.5244, 3.3792, "africa"),
    _c("dxb", "Dubai", "ARE", 25.2048, 55.2708, "middle_east"),
    # Asia, Oceania
    _c("bom", "Mumbai", "IND", 19.0760, 72.8777, "asia"),
    _c("sin", "Singapore", "SGP", 1.3521, 103.8198, "asia"),
    _c("hkg", "Hong Kong", "HKG", 22.3193, 114.1694, "asia"),
    _c("bjs", "Beijing", "CHN", 39.9042, 116.4074, "asia"),
    _c("sha", "Shanghai", "CHN", 31.2304, 121.4737, "asia"),
    _c("sel", "Seoul", "KOR", 37.5665, 126.9780, "asia"),
    _c("tyo", "Tokyo", "JPN", 35.6762, 139.6503, "asia"),
    _c("syd", "Sydney", "AUS", -33.8688, 151.2093, "oceania"),
)

#: The cities by ``code``.
CITIES_BY_CODE: Final[Mapping[str, City]] = MappingProxyType({c.code: c for c in CITIES})

if len(CITIES_BY_CODE) != len(CITIES):  # pragma: no cover - guarded by a test too
    raise AssertionError("duplicate city code")


def city(code: str) -> City:
    """The embedded city with this ``code``; :class:`InputError` if there is none."""
    try:
        return CITIES_BY_CODE[code]
    except KeyError:
        raise InputError(f"unknown city code {code!r}", reason="unknown_city") from None
