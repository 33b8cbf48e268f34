"""The path model: how long a datagram takes between two points on Earth.

A *hop* joins two points. Its one-way delay is::

    geodesic_km(a, b) * stretch / speed_km_per_ms + last_mile_ms

with ``stretch`` (how much longer the cable is than the geodesic) drawn once
per hop from ``U(stretch_min, stretch_max)`` and ``speed_km_per_ms`` the speed
of light in fiber (2/3 c). Every packet adds a non-negative jitter drawn from
an exponential distribution, capped. A *route* is a chain of hops (a relayed
chip: landmark → proxy → chip). A cloned key answering from several places is
reached over whichever route is fastest.

Invariants:

- Pure: randomness comes in as a ``random.Random``; nothing here reads a clock.
- ``stretch >= 1`` and ``speed_km_per_ms <= c``, so a hop's delay floor is never
  below ``geodesic_km / c``: the model never claims what physics forbids.
- Jitter and the last-mile floor are non-negative: they only add delay.
- Delays are integers of nanoseconds, rounded up (never down).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from pyproj import Geod

from chiploc.common.errors import InputError
from chiploc.common.units import NS_PER_MS, SPEED_OF_LIGHT_KM_PER_MS

__all__ = [
    "FIBER_SPEED_KM_PER_MS",
    "Hop",
    "PathModel",
    "Point",
    "Route",
    "draw_hop",
    "draw_route",
    "fastest_route",
    "geodesic_km",
]

#: Speed of light in optical fiber (refractive index about 1.5), km per ms.
FIBER_SPEED_KM_PER_MS: Final = SPEED_OF_LIGHT_KM_PER_MS * 2.0 / 3.0

_GEOD: Final = Geod(ellps="WGS84")


def _check_coordinates(lat: float, lon: float, what: str) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InputError(f"{what}: latitude {lat!r} out of range", reason="bad_coordinates")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InputError(f"{what}: longitude {lon!r} out of range", reason="bad_coordinates")


@dataclass(frozen=True, slots=True, kw_only=True)
class Point:
    """A WGS84 position in degrees, with an optional label."""

    lat: float
    lon: float
    label: str = ""

    def __post_init__(self) -> None:
        _check_coordinates(self.lat, self.lon, self.label or "point")


@lru_cache(maxsize=65536)
def geodesic_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance on the WGS84 ellipsoid, in km."""
    _check_coordinates(lat1, lon1, "first point")
    _check_coordinates(lat2, lon2, "second point")
    _, _, dist_m = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist_m) / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PathModel:
    """Parameters of the path model (defaults: a realistic terrestrial Internet)."""

    stretch_min: float = 1.3
    stretch_max: float = 2.5
    speed_km_per_ms: float = FIBER_SPEED_KM_PER_MS
    #: Fixed one-way floor of each hop (access network, switching).
    last_mile_ms: float = 0.05
    #: Mean of the per-packet exponential jitter, one way, per route.
    jitter_mean_ms: float = 0.02
    #: Cap of the per-packet jitter.
    jitter_max_ms: float = 0.5

    def __post_init__(self) -> None:
        values = (
            self.stretch_min,
            self.stretch_max,
            self.speed_km_per_ms,
            self.last_mile_ms,
            self.jitter_mean_ms,
            self.jitter_max_ms,
        )
        if not all(math.isfinite(v) for v in values):
            raise InputError("path model values must be finite", reason="bad_path_model")
        if not 1.0 <= self.stretch_min <= self.stretch_max:
            raise InputError(
                f"path stretch range [{self.stretch_min}, {self.stretch_max}] must satisfy "
                "1 <= min <= max",
                reason="bad_path_model",
            )
        if not 0.0 < self.speed_km_per_ms <= SPEED_OF_LIGHT_KM_PER_MS:
            raise InputError(
                f"signal speed {self.speed_km_per_ms} km/ms must be in (0, c]",
                reason="bad_path_model",
            )
        if self.last_mile_ms < 0 or self.jitter_mean_ms < 0 or self.jitter_max_ms < 0:
            raise InputError("delays must be non-negative", reason="bad_path_model")

    def jitter_ns(self, rng: random.Random) -> int:
        """One packet's extra one-way delay: exponential, capped, never negative."""
        if self.jitter_mean_ms == 0.0:
            return 0
        jitter_ms = min(rng.expovariate(1.0 / self.jitter_mean_ms), self.jitter_max_ms)
        return math.ceil(jitter_ms * NS_PER_MS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    """One leg between two points, its stretch drawn once."""

    a: Point
    b: Point
    stretch: float
    speed_km_per_ms: float
    last_mile_ms: float
    distance_km: float = field(init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stretch) and self.stretch >= 1.0):
            raise InputError(f"hop stretch {self.stretch!r} must be >= 1", reason="bad_hop")
        if not (math.isfinite(self.speed_km_per_ms) and self.speed_km_per_ms > 0.0):
            raise InputError("hop speed must be positive", reason="bad_hop")
        if self.speed_km_per_ms > SPEED_OF_LIGHT_KM_PER_MS:
            raise InputError("hop speed must not exceed c", reason="bad_hop")
        if not (math.isfinite(self.last_mile_ms) and self.last_mile_ms >= 0.0):
            raise InputError("hop last-mile delay must be >= 0", reason="bad_hop")
        dist = geodesic_km(self.a.lat, self.a.lon, self.b.lat, self.b.lon)
        object.__setattr__(self, "distance_km", dist)

    @property
    def floor_ms(self) -> float:
        """One-way delay of this hop without jitter, in ms."""
        return self.distance_km * self.stretch / self.speed_km_per_ms + self.last_mile_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A chain of hops from a landmark to where the chip's key answers."""

    hops: tuple[Hop, ...]

    def __post_init__(self) -> None:
        if not self.hops:
            raise InputError("a route needs at least one hop", reason="bad_route")
        for first, second in itertools.pairwise(self.hops):
            if (first.b.lat, first.b.lon) != (second.a.lat, second.a.lon):
                raise InputError("route hops must be contiguous", reason="bad_route")

    @property
    def origin(self) -> Point:
        return self.hops[0].a

    @property
    def destination(self) -> Point:
        return self.hops[-1].b

    @property
    def floor_ns(self) -> int:
        """One-way delay floor (no jitter), ns, rounded up."""
        return math.ceil(sum(h.floor_ms for h in self.hops) * NS_PER_MS)

    @property
    def direct_km(self) -> float:
        """Geodesic distance from origin to destination (not via the hops)."""
        o, d = self.origin, self.destination
        return geodesic_km(o.lat, o.lon, d.lat, d.lon)

    def one_way_ns(self, model: PathModel, rng: random.Random) -> int:
        """One packet's one-way delay: the floor plus a fresh jitter draw."""
        return self.floor_ns + model.jitter_ns(rng)


def draw_hop(model: PathModel, a: Point, b: Point, rng: random.Random) -> Hop:
    """A hop from ``a`` to ``b`` with its stretch drawn from the model's range."""
    stretch = rng.uniform(model.stretch_min, model.stretch_max)
    return Hop(
        a=a,
        b=b,
        stretch=stretch,
        speed_km_per_ms=model.speed_km_per_ms,
        last_mile_ms=model.last_mile_ms,
    )


def draw_route(model: PathModel, points: Sequence[Point], rng: random.Random) -> Route:
    """A route through ``points`` (landmark, optional proxies, chip), one draw per hop."""
    if len(points) < 2:
        raise InputError("a route needs at least two points", reason="bad_route")
    hops = tuple(draw_hop(model, a, b, rng) for a, b in itertools.pairwise(points))
    return Route(hops=hops)


def fastest_route(routes: Sequence[Route]) -> Route:
    """The route with the lowest delay floor: where a cloned key answers first."""
    if not routes:
        raise InputError("no route to choose from", reason="bad_route")
    return min(routes, key=lambda r: r.floor_ns)
