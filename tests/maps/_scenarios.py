"""Solver results for the map tests, produced by the real ``solver.solve`` (never hand-written).

RTTs are synthetic: 2 x geodesic distance / c x an inflation, plus an overhead,
for a chip placed at a known point, so each scenario's verdict follows from the
physics rather than from the test.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

# Real coordinates (city centres).
LANDMARKS: dict[str, tuple[float, float]] = {
    "fra": (50.1109, 8.6821),
    "ber": (52.5200, 13.4050),
    "muc": (48.1351, 11.5820),
    "ham": (53.5511, 9.9937),
    "cgn": (50.9375, 6.9603),
    "par": (48.8566, 2.3522),
    "waw": (52.2297, 21.0122),
    "mad": (40.4168, -3.7038),
    "tyo": (35.6762, 139.6503),
}


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    from pyproj import Geod

    _, _, m = Geod(ellps="WGS84").inv(a[1], a[0], b[1], b[0])
    return float(m) / 1000.0


def measurements(
    chip: tuple[float, float], ids: list[str], *, inflation: float, overhead_ms: float = 0.0
) -> list[Any]:
    from chiploc import solver

    out = []
    for lm in ids:
        pos = LANDMARKS[lm]
        rtt = 2.0 * _distance_km(chip, pos) / SPEED_OF_LIGHT_KM_PER_MS * inflation + overhead_ms
        out.append(solver.Measurement(landmark=lm, lat=pos[0], lon=pos[1], rtt_ms=rtt))
    return out


@cache
def scenario(name: str) -> dict[str, Any]:
    """One result dict (``SolveResult.to_json_dict()``) per named scenario."""
    from chiploc import solver

    germany = solver.load_region("country:DEU")
    kassel = (51.3127, 9.4797)
    if name == "compliant":
        ms = measurements(kassel, ["fra", "ber", "muc", "ham", "cgn"], inflation=1.15)
        return solver.solve("chip-kassel", ms, germany).to_json_dict()
    if name == "small":
        # Landmarks a few km away, answering at almost the speed of light: a tiny region.
        chip = (50.1109, 8.7300)
        ms = [
            solver.Measurement(landmark=lm, lat=la, lon=lo, rtt_ms=rtt)
            for lm, la, lo, rtt in _near(chip)
        ]
        return solver.solve("chip-small<&>", ms, germany).to_json_dict()
    if name == "inconsistent":
        # Two far-apart landmarks both claiming the chip is within ~30 km of them.
        ms = [
            solver.Measurement(landmark="fra", lat=50.1109, lon=8.6821, rtt_ms=0.2),
            solver.Measurement(landmark="waw", lat=52.2297, lon=21.0122, rtt_ms=0.2),
        ]
        return solver.solve("chip-conflict", ms, germany).to_json_dict()
    if name == "violation":
        madrid = (40.4168, -3.7038)
        ms = measurements(madrid, ["mad", "par", "fra"], inflation=1.1, overhead_ms=0.05)
        return solver.solve("chip-madrid", ms, germany).to_json_dict()
    if name == "estimate":
        ms = measurements(kassel, ["fra", "ber", "muc", "ham"], inflation=1.6)
        return solver.solve("chip-fiber", ms, germany, model=solver.Model.FIBER).to_json_dict()
    raise KeyError(name)


def _near(chip: tuple[float, float]) -> list[tuple[str, float, float, float]]:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    out = []
    for i, az in enumerate((0.0, 120.0, 240.0)):
        lon, lat, _ = geod.fwd(chip[1], chip[0], az, 4000.0)
        d = _distance_km(chip, (lat, lon))
        out.append((f"near{i}", float(lat), float(lon), 2.0 * d / SPEED_OF_LIGHT_KM_PER_MS * 1.02))
    return out


@cache
def fleet(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` real results for chips scattered around the landmarks (a few with no answer)."""
    from chiploc import solver

    rng = random.Random(seed)
    regions = {c: solver.load_region(f"country:{c}") for c in ("DEU", "FRA", "ESP", "POL")}
    ids = [k for k in LANDMARKS if k != "tyo"]
    out = []
    for i in range(n):
        lm = LANDMARKS[rng.choice(ids)]
        chip = (lm[0] + rng.uniform(-2.0, 2.0), lm[1] + rng.uniform(-2.5, 2.5))
        region = regions[rng.choice(list(regions))]
        ms = measurements(chip, rng.sample(ids, 5), inflation=rng.uniform(1.1, 2.0))
        out.append(solver.solve(f"fleet-{i:04d}", ms, region).to_json_dict())
    return out
