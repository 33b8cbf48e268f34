"""A synthetic fleet at scale (pure data): thousands of chips, hundreds of landmarks worldwide.

:class:`FleetWorld` is generated from a seed: landmarks at the embedded cities
plus random points on land, chips at sites up to 500 km from a landmark in
a data-centre country (the embedded cities' countries), each with an
authorized region from a small set (11 zones), as in a real fleet's
licences: its own country where it is one of ten licensed ones (COMPLIANT or
INCONCLUSIVE), else an export-control zone (anywhere but four embargoed
countries); one chip in ten is declared for another licensed country
(VIOLATION or INCONCLUSIVE). Round trips follow the path model's shape (fibre at 2/3 c,
a per-path stretch in [1.3, 2.5], a last-mile floor, per-probe exponential
jitter), so every RTT is at least twice ``geodesic / c`` and a vacuum proof
holds for every chip.

Two uses:

- :func:`world_rtts_ms` gives each (chip, landmark) round's minimum RTT
  without any signing: the adaptive-measurement simulation solves those;
- :func:`sign_chip_reports` makes real signed reports (the landmark's key
  over the transcript, the chip's key over every probe): what the fleet
  benchmark and the Dask tests verify.

Invariants: pure (no clock: ``now_unix_ns`` is an argument; no I/O); keys
derive from (seed, role, id) by SHA-256; a path's stretch depends only on
(seed, chip, landmark); a probe's jitter on (seed, chip, landmark, draw).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from chiploc.common.errors import InputError
from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    VerifierEntry,
    draft_report,
    generate_private_key,
    response_message,
    sign_draft,
    sign_report_batch,
)

from ._cities import CITIES

__all__ = [
    "FleetChip",
    "FleetSite",
    "FleetWorld",
    "probe_rtts_ns",
    "sign_chip_reports",
    "sign_fleet_reports",
    "world_rtts_ms",
]

IntArray = npt.NDArray[np.int64]

_EARTH_KM: Final = 6371.0
_FIBER_KM_PER_MS: Final = SPEED_OF_LIGHT_KM_PER_MS * 2.0 / 3.0
_LAST_MILE_MS: Final = 0.05
_JITTER_MEAN_MS: Final = 0.02
_JITTER_MAX_MS: Final = 0.5
_NS_PER_MS: Final = 1_000_000
_EMBARGOED: Final = ("CHN", "RUS", "IRN", "PRK")
_EXPORT_ZONE: Final = "not:" + ",".join(_EMBARGOED)
#: Countries with a licensed zone of their own (11 zones in all, with the export zone).
_LICENSED: Final = ("AUS", "DEU", "FRA", "GBR", "IND", "IRL", "JPN", "NLD", "SGP", "USA")


def _key_seed(seed: int, role: str, ident: str) -> bytes:
    return hashlib.sha256(f"chiploc-fleet/{seed}/{role}/{ident}".encode()).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSite:
    id: str
    lat: float
    lon: float
    country: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetChip:
    id: str
    lat: float  # true position
    lon: float
    region: str  # authorized region spec
    site: tuple[float, float]  # registered site (lat, lon): where it is declared to be
    inside: bool  # true position inside the authorized region


def _unit(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
    la, lo = np.radians(np.asarray(lat, dtype=float)), np.radians(np.asarray(lon, dtype=float))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


@dataclass(frozen=True, kw_only=True)
class FleetWorld:
    """Landmarks, chips and keys of a synthetic fleet (see the module doc)."""

    seed: int
    landmarks: tuple[FleetSite, ...]
    chips: tuple[FleetChip, ...]

    @classmethod
    def generate(cls, *, seed: int, chips: int, landmarks: int) -> FleetWorld:
        if not 1 <= landmarks <= 5000 or not 1 <= chips <= 10_000_000:
            raise InputError("landmarks in 1..5000, chips in 1..10,000,000", reason="bad_world")
        import shapely
        from shapely import STRtree

        from chiploc.solver import country_geometries

        rng = random.Random(seed)
        countries = {c: g for c, (_, g) in country_geometries().items() if c != "ATA"}
        codes = sorted(countries)
        tree = STRtree([countries[c] for c in codes])

        def country_at(lat: float, lon: float) -> str | None:
            hits = tree.query(shapely.Point(lon, lat), predicate="intersects")
            return codes[int(min(hits))] if len(hits) else None

        sites: list[FleetSite] = []
        for c in CITIES[:landmarks]:
            sites.append(FleetSite(id=f"lm-{c.code}", lat=c.lat, lon=c.lon, country=c.country))
        while len(sites) < landmarks:
            lat = math.degrees(math.asin(rng.uniform(-0.85, 0.97)))  # no Antarctica
            lon = rng.uniform(-180.0, 180.0)
            code = country_at(lat, lon)
            if code is not None:
                sites.append(
                    FleetSite(
                        id=f"lm-{len(sites):04d}",
                        lat=round(lat, 4),
                        lon=round(lon, 4),
                        country=code,
                    )
                )
        # Chips sit in data centres: near landmarks in the embedded cities' countries.
        dc_countries = sorted({c.country for c in CITIES})
        bases = [s for s in sites if s.country in dc_countries]
        out: list[FleetChip] = []
        while len(out) < chips:
            base = bases[rng.randrange(len(bases))]
            lat, lon = _offset(base.lat, base.lon, rng.uniform(0, 2 * math.pi), rng.uniform(5, 500))
            code = country_at(lat, lon)
            if code is None:
                continue
            # Few distinct zones, as in a real fleet's licences: its own country where that
            # is one of the licensed ones, else an export-control zone (anywhere but the
            # embargoed countries); one chip in ten is declared for another licensed country.
            if rng.random() < 0.10:
                other = _LICENSED[rng.randrange(len(_LICENSED))]
                if other == code:
                    continue
                region, inside = f"country:{other}", False
            elif code in _LICENSED:
                region, inside = f"country:{code}", True
            else:
                region, inside = _EXPORT_ZONE, code not in _EMBARGOED
            out.append(
                FleetChip(
                    id=f"chip-{len(out):07d}",
                    lat=round(lat, 5),
                    lon=round(lon, 5),
                    region=region,
                    site=(round(lat, 2), round(lon, 2)),
                    inside=inside,
                )
            )
        return cls(seed=seed, landmarks=tuple(sites), chips=tuple(out))

    @cached_property
    def distances_km(self) -> npt.NDArray[np.float64]:
        """Great-circle km, chips x landmarks (float32 would do; float64 is exact enough)."""
        a = _unit([c.lat for c in self.chips], [c.lon for c in self.chips])
        b = _unit([s.lat for s in self.landmarks], [s.lon for s in self.landmarks])
        out: npt.NDArray[np.float64] = np.arccos(np.clip(a @ b.T, -1.0, 1.0)) * _EARTH_KM
        return out

    # keys and registry -------------------------------------------------------------
    def authority(self) -> PrivateKey:
        return generate_private_key(Role.AUTHORITY, "authority", seed=_key_seed(self.seed, "a", ""))

    def verifier_key(self) -> PrivateKey:
        return generate_private_key(
            Role.VERIFIER, "fleet-verifier", seed=_key_seed(self.seed, "v", "")
        )

    def landmark_key(self, k: int) -> PrivateKey:
        site = self.landmarks[k]
        return generate_private_key(Role.LANDMARK, site.id, seed=_key_seed(self.seed, "l", site.id))

    def chip_key(self, k: int) -> PrivateKey:
        chip = self.chips[k]
        return generate_private_key(Role.CHIP, chip.id, seed=_key_seed(self.seed, "c", chip.id))

    def registry(self) -> Registry:
        return Registry(
            authority_public_key=self.authority().public_key.key_bytes,
            landmarks={
                s.id: LandmarkEntry(
                    id=s.id,
                    lat=s.lat,
                    lon=s.lon,
                    public_key=self.landmark_key(k).public_key.key_bytes,
                    operator="fleet",
                )
                for k, s in enumerate(self.landmarks)
            },
            chips={
                c.id: ChipEntry(
                    id=c.id, public_key=self.chip_key(k).public_key.key_bytes, region=c.region
                )
                for k, c in enumerate(self.chips)
            },
            verifiers={
                "fleet-verifier": VerifierEntry(
                    id="fleet-verifier", public_key=self.verifier_key().public_key.key_bytes
                )
            },
        )

    def nearest_landmarks(self, chip: int, k: int) -> tuple[int, ...]:
        """The ``k`` landmarks nearest the chip's true position (its report set)."""
        order = np.argsort(self.distances_km[chip], kind="stable")[:k]
        return tuple(int(i) for i in order)


def _offset(lat: float, lon: float, azimuth: float, km: float) -> tuple[float, float]:
    d = km / _EARTH_KM
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(azimuth))
    l2 = l1 + math.atan2(
        math.sin(azimuth) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 180.0) % 360.0 - 180.0
    return max(-89.9, min(89.9, math.degrees(p2))), lon2


def probe_rtts_ns(world: FleetWorld, chip: int, *, draw: int = 0, probes: int = 32) -> IntArray:
    """One round's probe RTTs (ns) of ``chip`` from every landmark: (landmarks, probes).

    2 x (geodesic x stretch / fibre speed + last mile) plus two capped
    exponential jitters per probe: never below 2 x geodesic / c. The stretch
    depends on (seed, chip, landmark); the jitter also on ``draw`` (a repeat
    round of the same pair is a new draw).
    """
    n = len(world.landmarks)
    stretch = np.random.default_rng([world.seed, chip]).uniform(1.3, 2.5, n)
    one_way_ms = world.distances_km[chip] * stretch / _FIBER_KM_PER_MS + _LAST_MILE_MS
    g = np.random.default_rng([world.seed, chip, draw + 1])
    jitter = np.minimum(g.exponential(_JITTER_MEAN_MS, (n, probes, 2)), _JITTER_MAX_MS).sum(-1)
    out: IntArray = np.ceil((2 * one_way_ms[:, None] + jitter) * _NS_PER_MS).astype(np.int64)
    return out


def world_rtts_ms(
    world: FleetWorld, chip: int, *, draw: int = 0, probes: int = 32
) -> npt.NDArray[np.float64]:
    """Each landmark's minimum RTT (ms) over one ``probes``-probe round of ``chip``."""
    out: npt.NDArray[np.float64] = probe_rtts_ns(world, chip, draw=draw, probes=probes).min(1) / (
        _NS_PER_MS
    )
    return out


def sign_chip_reports(
    world: FleetWorld,
    chip: int,
    landmarks: Sequence[int],
    *,
    now_unix_ns: int,
    probes: int = 32,
    keys: Mapping[int, PrivateKey] | None = None,
) -> list[bytes]:
    """Real signed reports of ``chip`` by each of ``landmarks`` (one round each), each
    signed on its own."""
    out = []
    for lm, draft in zip(
        landmarks,
        _chip_drafts(world, chip, landmarks, now_unix_ns=now_unix_ns, probes=probes),
        strict=True,
    ):
        lkey = keys[lm] if keys is not None and lm in keys else world.landmark_key(lm)
        out.append(sign_draft(lkey, draft).raw)
    return out


def sign_fleet_reports(
    world: FleetWorld,
    plan: Mapping[int, Sequence[int]],
    *,
    now_unix_ns: int,
    probes: int = 32,
    keys: Mapping[int, PrivateKey] | None = None,
    batch_size: int = 1024,
) -> dict[int, list[bytes]]:
    """Real signed reports for ``plan`` (chip -> the landmarks measuring it), each landmark
    signing one Merkle root per ``batch_size`` of its reports (``protocol.sign_report_batch``),
    as a landmark uploading a day's rounds does; per chip, in ``plan``'s landmark order."""
    if batch_size < 1:
        raise InputError("batch_size must be at least 1")
    drafts: dict[int, list[tuple[int, MeasurementReport]]] = {}
    for chip, landmarks in plan.items():
        for lm, draft in zip(
            landmarks,
            _chip_drafts(world, chip, landmarks, now_unix_ns=now_unix_ns, probes=probes),
            strict=True,
        ):
            drafts.setdefault(lm, []).append((chip, draft))
    signed: dict[tuple[int, str], bytes] = {}
    for lm, mine in drafts.items():
        lkey = keys[lm] if keys is not None and lm in keys else world.landmark_key(lm)
        for lo in range(0, len(mine), batch_size):
            part = mine[lo : lo + batch_size]
            for (chip, _), report in zip(
                part, sign_report_batch(lkey, [d for _, d in part]), strict=True
            ):
                signed[chip, report.landmark_id] = report.raw
    return {
        chip: [signed[chip, world.landmarks[lm].id] for lm in landmarks]
        for chip, landmarks in plan.items()
    }


def _chip_drafts(
    world: FleetWorld, chip: int, landmarks: Sequence[int], *, now_unix_ns: int, probes: int
) -> list[MeasurementReport]:
    """Unsigned reports of ``chip`` by each of ``landmarks`` (chip signatures real)."""
    chip_key = world.chip_key(chip)
    chip_id = world.chips[chip].id
    all_rtts = probe_rtts_ns(world, chip, probes=probes)
    out = []
    for lm in landmarks:
        landmark_id = world.landmarks[lm].id
        session = hashlib.sha256(f"{world.seed}/s/{chip}/{lm}".encode()).digest()[:16]
        rtts = [int(x) for x in all_rtts[lm]]
        records = []
        for seq, rtt in enumerate(rtts):
            nonce = hashlib.sha256(f"{world.seed}/n/{chip}/{lm}/{seq}".encode()).digest()[:16]
            message = response_message(
                session_id=session, chip_id=chip_id, landmark_id=landmark_id, seq=seq, nonce=nonce
            )
            records.append(
                ProbeRecord(
                    seq=seq,
                    nonce=nonce,
                    rtt_ns=rtt,
                    chip_signature=chip_key.sign(message),
                    timestamp_source="kernel",
                )
            )
        started = now_unix_ns - 600 * 1_000_000_000
        out.append(
            draft_report(
                landmark_id=landmark_id,
                chip_id=chip_id,
                session_id=session,
                chip_address="127.0.0.1:9",
                started_at_unix_ns=started,
                finished_at_unix_ns=started + sum(rtts) + probes * 1_000_000,
                probes=records,
            )
        )
    return out
