"""Planted fleet scenarios as pure data: landmarks, chips, keys, routes, expected verdicts.

A :class:`FleetScenario` is generated from a seed and nothing else: the same
seed gives the same landmarks, chip positions, keys, registry and path
stretches. It plants the cases a verifier must get right, each with the set
of verdicts that physics allows it to get:

========== ==================================================== ===========================
case       setup                                                acceptable verdicts
========== ==================================================== ===========================
inside     chip in a data centre inside its authorized region   COMPLIANT or INCONCLUSIVE
abroad     chip in a data centre outside its region             VIOLATION or INCONCLUSIVE
relayed    chip abroad, answering through a proxy inside the    VIOLATION or INCONCLUSIVE
           region (landmark → proxy → chip)
clone      one chip key answering from two far-apart places;    INCONSISTENT
           each landmark reaches whichever answers first
unenrolled a node whose key the registry does not hold          UNREACHABLE
========== ==================================================== ===========================

Why these sets: every emulated delay is at least ``geodesic / c`` (the path
model's invariant, and the emulator never delivers early), so each landmark's
vacuum disk contains the place the answer came from. For a chip abroad (relayed
or not: a relay only adds delay, and by the triangle inequality the relayed
delay still bounds the distance to the chip itself), the region contains a
point outside the authorized zone, so COMPLIANT is impossible; whether the
region is wholly outside (VIOLATION) or straddles the border (INCONCLUSIVE)
depends on how tight the disks are. A clone near Frankfurt and another near
Tokyo, each with a landmark next to it, gives two disks a few hundred km wide
9,000 km apart: the intersection is empty. An inside chip's region contains
its true position, so VIOLATION is impossible.

Invariants: pure (no clock, no I/O); keys derive from the seed by SHA-256 of
a domain-separated label; every route is drawn from its own
``random.Random`` seeded by (seed, landmark, chip), so adding a chip leaves
every other path unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from pyproj import Geod

from chiploc.common.errors import InputError
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    generate_private_key,
)

from ._cities import City, city
from ._paths import PathModel, Point, Route, draw_route, fastest_route

__all__ = [
    "CASES",
    "DEFAULT_LANDMARK_CODES",
    "ChipSpec",
    "FleetScenario",
    "LandmarkSpec",
]

_GEOD: Final = Geod(ellps="WGS84")

#: Planted case names.
CASES: Final = ("inside", "abroad", "relayed", "clone", "unenrolled")

_EXPECTED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "inside": frozenset({"COMPLIANT", "INCONCLUSIVE"}),
        "abroad": frozenset({"VIOLATION", "INCONCLUSIVE"}),
        "relayed": frozenset({"VIOLATION", "INCONCLUSIVE"}),
        "clone": frozenset({"INCONSISTENT"}),
        "unenrolled": frozenset({"UNREACHABLE"}),
    }
)

#: Landmark cities in the order a world of M landmarks takes them: the first
#: ones spread over Europe and put one next to each clone (Frankfurt, Tokyo).
DEFAULT_LANDMARK_CODES: Final = (
    "fra", "par", "tyo", "waw", "mad", "lon", "sto", "mil", "ams", "vie", "ber", "mrs",
    "cph", "prg", "zrh", "muc", "ham", "bru", "iad", "sin", "bom", "jnb", "sao", "syd",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class _Template:
    case: str
    city: str  # where the chip is (first place for a clone)
    region: str
    second_city: str | None = None  # clone's second place
    proxy_city: str | None = None  # relay inside the region


# Planted cases first (all five appear from 5 chips on), then more of each kind.
_TEMPLATES: Final = (
    _Template(case="inside", city="fra", region="country:DEU"),
    _Template(case="relayed", city="mow", region="country:DEU", proxy_city="fra"),
    _Template(case="clone", city="fra", region="country:DEU", second_city="tyo"),
    _Template(case="abroad", city="bjs", region="countries:DEU,FRA,NLD"),
    _Template(case="unenrolled", city="ams", region="country:NLD"),
    _Template(case="inside", city="par", region="countries:DEU,FRA,NLD"),
    _Template(case="abroad", city="iad", region="country:FRA"),
    _Template(case="inside", city="lon", region="not:CHN"),
    _Template(case="inside", city="mrs", region="circle:43.30,5.37,400"),
    _Template(case="relayed", city="dxb", region="country:NLD", proxy_city="ams"),
    _Template(case="inside", city="waw", region="country:POL"),
    _Template(case="abroad", city="mow", region="not:RUS"),
    _Template(case="inside", city="mad", region="country:ESP"),
    _Template(case="inside", city="mil", region="country:ITA"),
    _Template(case="abroad", city="sin", region="country:DEU"),
    _Template(case="inside", city="sto", region="country:SWE"),
    _Template(case="inside", city="vie", region="countries:AUT,CHE,DEU"),
    _Template(case="inside", city="dus", region="country:DEU"),
    _Template(case="abroad", city="ist", region="country:GRC"),
    _Template(case="inside", city="tyo", region="country:JPN"),
)


def _seed_bytes(seed: int, *labels: str) -> bytes:
    text = "\x1f".join(("chiploc-sim", str(seed), *labels))
    return hashlib.sha256(text.encode()).digest()


def _near(center: City, rng: random.Random, *, max_km: float) -> Point:
    """A point within ``max_km`` of a city centre (a data centre in its metro area)."""
    azimuth = rng.uniform(0.0, 360.0)
    distance_m = rng.uniform(0.0, max_km) * 1000.0
    lon, lat, _ = _GEOD.fwd(center.lon, center.lat, azimuth, distance_m)
    return Point(lat=float(lat), lon=float(lon), label=center.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkSpec:
    """A landmark at a real city."""

    id: str
    city: City
    key: PrivateKey

    @property
    def point(self) -> Point:
        return Point(lat=self.city.lat, lon=self.city.lon, label=self.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChipSpec:
    """A simulated chip node: where its key answers from, and what it should get."""

    id: str
    case: str
    region: str
    locations: tuple[Point, ...]
    key: PrivateKey
    proxy: Point | None = None
    expected: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise InputError(f"unknown planted case {self.case!r}", reason="bad_case")
        if not self.locations or (self.case == "clone") != (len(self.locations) > 1):
            raise InputError(f"chip {self.id}: a clone (and only a clone) has several places")
        if (self.case == "relayed") != (self.proxy is not None):
            raise InputError(f"chip {self.id}: a relayed chip (and only it) has a proxy")
        if not self.expected:
            object.__setattr__(self, "expected", _EXPECTED[self.case])

    @property
    def enrolled(self) -> bool:
        return self.case != "unenrolled"

    @property
    def expected_spec(self) -> str:
        """The acceptable verdicts as ``"A|B"`` (sorted)."""
        return "|".join(sorted(self.expected))

    def to_json_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "case": self.case,
            "region": self.region,
            "enrolled": self.enrolled,
            "expected": sorted(self.expected),
            "locations": [{"lat": p.lat, "lon": p.lon, "label": p.label} for p in self.locations],
            "proxy": None
            if self.proxy is None
            else {"lat": self.proxy.lat, "lon": self.proxy.lon, "label": self.proxy.label},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetScenario:
    """A complete simulated fleet, pure data. Build with :meth:`generate`."""

    seed: int
    model: PathModel
    authority: PrivateKey
    landmarks: tuple[LandmarkSpec, ...]
    chips: tuple[ChipSpec, ...]
    #: (landmark id, chip id) -> (index of the answering place, route to it).
    routes: Mapping[tuple[str, str], tuple[int, Route]]
    registry: Registry
    #: landmark id -> (lat, lon) the registry gives it instead of its city (where the
    #: simulation runs it): a planted registry error (:meth:`with_landmark_registered_at`)
    misregistered: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def generate(
        cls,
        *,
        seed: int = 0,
        chips: int = 12,
        landmarks: int = 16,
        landmark_codes: Sequence[str] | None = None,
        model: PathModel | None = None,
        chip_spread_km: float = 25.0,
    ) -> FleetScenario:
        """``chips`` chips (planted cases first) seen by ``landmarks`` landmarks."""
        model = model if model is not None else PathModel()
        codes = tuple(landmark_codes) if landmark_codes is not None else DEFAULT_LANDMARK_CODES
        if not 1 <= landmarks <= len(codes):
            raise InputError(f"landmarks must be in 1..{len(codes)}", reason="bad_size")
        if not 1 <= chips <= 1000:
            raise InputError("chips must be in 1..1000", reason="bad_size")
        authority = generate_private_key(
            Role.AUTHORITY, "sim-authority", seed=_seed_bytes(seed, "authority")
        )
        lms = tuple(
            LandmarkSpec(
                id=f"lm-{code}",
                city=city(code),
                key=generate_private_key(
                    Role.LANDMARK, f"lm-{code}", seed=_seed_bytes(seed, "landmark", code)
                ),
            )
            for code in codes[:landmarks]
        )
        chip_specs = tuple(cls._chip(seed, i, chip_spread_km) for i in range(chips))
        routes: dict[tuple[str, str], tuple[int, Route]] = {}
        for lm in lms:
            for chip in chip_specs:
                rng = random.Random(f"{seed}/{lm.id}/{chip.id}")
                via = (chip.proxy,) if chip.proxy is not None else ()
                options = [draw_route(model, [lm.point, *via, loc], rng) for loc in chip.locations]
                best = fastest_route(options)
                routes[lm.id, chip.id] = (options.index(best), best)
        registry = Registry(
            authority_public_key=authority.public_key.key_bytes,
            landmarks={
                lm.id: LandmarkEntry(
                    id=lm.id,
                    lat=lm.city.lat,
                    lon=lm.city.lon,
                    public_key=lm.key.public_key.key_bytes,
                    operator=f"sim {lm.city.name}",
                )
                for lm in lms
            },
            chips={
                c.id: ChipEntry(id=c.id, public_key=c.key.public_key.key_bytes, region=c.region)
                for c in chip_specs
                if c.enrolled
            },
            serial=1,
        )
        return cls(
            seed=seed,
            model=model,
            authority=authority,
            landmarks=lms,
            chips=chip_specs,
            routes=MappingProxyType(routes),
            registry=registry,
        )

    @staticmethod
    def _chip(seed: int, index: int, spread_km: float) -> ChipSpec:
        template = _TEMPLATES[index % len(_TEMPLATES)]
        chip_id = f"chip-{index + 1:03d}-{template.case}"
        rng = random.Random(f"{seed}/chip/{index}")
        places = [template.city] + ([template.second_city] if template.second_city else [])
        locations = tuple(_near(city(code), rng, max_km=spread_km) for code in places)
        proxy = None
        if template.proxy_city is not None:
            proxy = _near(city(template.proxy_city), rng, max_km=spread_km)
        return ChipSpec(
            id=chip_id,
            case=template.case,
            region=template.region,
            locations=locations,
            proxy=proxy,
            key=generate_private_key(Role.CHIP, chip_id, seed=_seed_bytes(seed, "chip", chip_id)),
        )

    def with_landmark_registered_at(
        self, landmark_id: str, *, azimuth_deg: float, distance_km: float
    ) -> FleetScenario:
        """A copy whose registry puts ``landmark_id`` ``distance_km`` from its city (bearing
        ``azimuth_deg``) while the simulation still runs it, and draws every path from it,
        at its city: a landmark that is not where the registry says (``docs/mesh.md``)."""
        spec = next((lm for lm in self.landmarks if lm.id == landmark_id), None)
        if spec is None:
            raise InputError(f"no landmark {landmark_id!r} in the scenario", reason="unknown")
        if not (0.0 < distance_km <= 20_000.0):
            raise InputError("distance_km must be in (0, 20000]", reason="bad_argument")
        lon, lat, _ = _GEOD.fwd(spec.city.lon, spec.city.lat, azimuth_deg, distance_km * 1000.0)
        entry = self.registry.landmarks[landmark_id]
        moved = dataclasses.replace(entry, lat=round(float(lat), 4), lon=round(float(lon), 4))
        registry = dataclasses.replace(
            self.registry,
            landmarks={**self.registry.landmarks, landmark_id: moved},
            serial=self.registry.serial + 1,
        )
        return dataclasses.replace(
            self,
            registry=registry,
            misregistered={**self.misregistered, landmark_id: (moved.lat, moved.lon)},
        )

    def signed_registry(self) -> bytes:
        """The registry file, signed by the scenario's authority."""
        return self.registry.to_signed_json(self.authority)

    def chip(self, chip_id: str) -> ChipSpec:
        for c in self.chips:
            if c.id == chip_id:
                return c
        raise InputError(f"no chip {chip_id!r} in the scenario", reason="unknown_chip")

    def route(self, landmark_id: str, chip_id: str) -> tuple[int, Route]:
        """Which place of the chip answers ``landmark_id`` first, and over which route."""
        try:
            return self.routes[landmark_id, chip_id]
        except KeyError:
            raise InputError(
                f"no path {landmark_id} -> {chip_id} in the scenario", reason="unknown_path"
            ) from None
