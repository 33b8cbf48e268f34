#!/usr/bin/env python3
"""Estimator benchmark: median and 90th-percentile error (km) of each point estimator, and
the share of targets inside the error radius it states.

Two worlds, never tuned to either:

* **simulated**: 150 landmarks, at the 50 embedded cities and within 800 km of them;
  400 targets, each within 300 km of a random city, measured by a random 5 to 60
  landmarks. Every route is 1.5-3x the great-circle distance (drawn per pair) at 2/3 c,
  each end adds a fixed last-mile delay U(0.1, 1.0) ms one way, and each of 5 pings adds
  exponential queuing (mean 1 ms); the burst minimum is kept. Landmarks measure a random
  0-30 of their peers the same way for the calibration (so some fall back to the default
  line).
* **atlas**: the shared RIPE Atlas campaign (``../shared/data/atlas-imc2023/`` beside the
  checkout, or ``--atlas DIR``), ingested with ``chiploc ingest atlas``'s code; targets' registered
  positions are the truth. Its calibration is leave-one-out: for each target, the other
  targets (anchors at registered positions) are the probes' calibration peers.
* **atlas-swapped**: the same RTTs with the roles swapped (an RTT is symmetric): each probe
  (an anchor, at its registered position) is a target located by the target anchors it
  measured. Calibration leave-one-out: each anchor's bestline is fitted on its RTTs to every
  *other* probe, never the one being located. ``atlas-swapped-2+`` keeps the probes that
  measured at least 2 anchors (with one landmark every estimator answers its position).
  Not independent of ``atlas`` (the same 43 RTTs), so never pooled with it.
* **scale**: one world of 1,000 landmarks (within 800 km of the embedded cities); per landmark
  count L in 50..1000, 20 targets each measured by L random landmarks: time per target of
  each estimator (a batch of 20) and of ``solve`` (vacuum proof + default estimate), to see
  that nothing grows quadratically with L.

Each estimator runs on fibre radii (what every solve's estimate uses, except ``cbg`` and
``least-squares`` under ``--model calibrated``) and on calibrated radii (the calibration's
per-landmark bestlines, the fibre line where a landmark has fewer than 2 points).
``calibrated_verdicts`` counts the verdicts of ``--model calibrated`` on each world.

    python benchmarks/estimates.py --json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from chiploc.cli._ingest import ingest_atlas, read_json_records, read_probes
from chiploc.sim._cities import CITIES
from chiploc.solver import (
    DEFAULT_ESTIMATOR,
    Calibration,
    Estimator,
    Measurement,
    Model,
    estimate_many,
    geodesic_km,
    load_region,
    solve,
)
from chiploc.solver._geodesy import GEOD

FIBER = 299.792458 * 2 / 3
ATLAS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "atlas-imc2023"

Case = tuple[list[Measurement], tuple[float, float], Calibration | None]


def _near(lat: float, lon: float, max_km: float, rng: random.Random) -> tuple[float, float]:
    az = rng.uniform(0, 360)
    d = max_km * math.sqrt(rng.random())
    lo, la, _ = GEOD.fwd(lon, lat, az, d * 1000)
    return float(la), float(lo)


class _PathModel:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last_mile: dict[str, float] = {}

    def rtt(self, a: str, pa: tuple[float, float], b: str, pb: tuple[float, float]) -> float:
        lm = self.last_mile
        for node in (a, b):
            lm.setdefault(node, self.rng.uniform(0.1, 1.0))
        d = float(geodesic_km(pa[0], pa[1], pb[0], pb[1]))
        one_way = d * self.rng.uniform(1.5, 3.0) / FIBER + lm[a] + lm[b]
        queue = min(self.rng.expovariate(1.0) for _ in range(5))
        return 2 * one_way + queue


def simulated(n_targets: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    path = _PathModel(rng)
    sites = {c.code: (c.lat, c.lon) for c in CITIES}
    cities = sorted(sites)
    for k in range(100):
        home = sites[rng.choice(cities)]
        sites[f"x{k}"] = _near(home[0], home[1], 800.0, rng)
    codes = sorted(sites)
    rows = []
    for a in codes:
        for b in rng.sample([c for c in codes if c != a], rng.randint(0, 30)):
            rtt = path.rtt(a, sites[a], b, sites[b])
            rows.append((a, *sites[a], *sites[b], rtt))
    cal = Calibration.fit(rows)
    cases: list[Case] = []
    for t in range(n_targets):
        home = sites[rng.choice(cities)]
        truth = _near(home[0], home[1], 300.0, rng)
        ms = [
            Measurement(
                landmark=c,
                lat=sites[c][0],
                lon=sites[c][1],
                rtt_ms=path.rtt(c, sites[c], f"t{t}", truth),
            )
            for c in rng.sample(codes, rng.randint(5, 60))
        ]
        cases.append((ms, truth, cal))
    return cases


def _atlas_rows(
    directory: Path,
) -> tuple[list[tuple[str, str, float, float, float]], dict[str, tuple[float, float]]]:
    """The ingested rows ``(target, probe, probe_lat, probe_lon, rtt_ms)`` and the targets'
    registered positions."""
    records = read_json_records(
        (directory / "ping-results.json").read_text(encoding="utf-8"), source="results"
    )
    probes = read_probes(
        read_json_records((directory / "probes.json").read_text(encoding="utf-8"), source="p"),
        source="probes",
    )
    report = ingest_atlas(records, probes)
    with (directory / "targets.csv").open(encoding="utf-8") as f:
        truth = {r["target"]: (float(r["lat"]), float(r["lon"])) for r in csv.DictReader(f)}
    return list(report.rows), truth


def atlas_swapped(directory: Path, *, min_landmarks: int = 1) -> list[Case]:
    """Each probe located by the target anchors it measured (roles swapped), each anchor's
    bestline fitted on its RTTs to the other probes (leave one out)."""
    rows, truth = _atlas_rows(directory)
    rows = [r for r in rows if r[0] in truth]
    sites = {probe: (lat, lon) for _, probe, lat, lon, _ in rows}
    by_probe: dict[str, list[Measurement]] = {}
    for target, probe, _, _, rtt in rows:
        lat, lon = truth[target]
        by_probe.setdefault(probe, []).append(
            Measurement(landmark=target, lat=lat, lon=lon, rtt_ms=rtt)
        )
    cases: list[Case] = []
    for probe, ms in sorted(by_probe.items()):
        if len(ms) < min_landmarks:
            continue
        others = [  # (landmark = anchor, its site, peer = another probe's site, rtt)
            (target, *truth[target], *sites[q], rtt) for target, q, _, _, rtt in rows if q != probe
        ]
        cases.append((ms, sites[probe], Calibration.fit(others)))
    return cases


def atlas(directory: Path) -> list[Case]:
    rows, truth = _atlas_rows(directory)
    by_target: dict[str, list[Measurement]] = {}
    for target, landmark, lat, lon, rtt in rows:
        by_target.setdefault(target, []).append(
            Measurement(landmark=landmark, lat=lat, lon=lon, rtt_ms=rtt)
        )
    cases: list[Case] = []
    for target, ms in sorted(by_target.items()):
        if target not in truth:
            continue
        others = [
            (m.landmark, m.lat, m.lon, *truth[t], m.rtt_ms)
            for t, oms in by_target.items()
            if t != target and t in truth
            for m in oms
        ]
        cases.append((ms, truth[target], Calibration.fit(others)))
    return cases


def evaluate(cases: list[Case]) -> dict[str, Any]:
    counts = sorted(len(ms) for ms, _, _ in cases)
    out: dict[str, Any] = {
        "targets": len(cases),
        "landmarks_per_target": {
            "min": counts[0],
            "median": statistics.median(counts),
            "max": counts[-1],
        },
    }
    for label, model in (("fiber", Model.FIBER), ("calibrated", Model.CALIBRATED)):
        for method in Estimator:
            errors, radii, inside = [], [], 0
            for ms, truth, cal in cases:
                (est,) = estimate_many(
                    [ms],
                    method,
                    model=model,
                    calibration=cal if model is Model.CALIBRATED else None,
                )
                assert est is not None
                err = float(geodesic_km(truth[0], truth[1], est.lat, est.lon))
                errors.append(err)
                radii.append(est.error_radius_km)
                inside += err <= est.error_radius_km
            out[f"{label}/{method.value}"] = {
                "n": len(errors),
                "median_km": round(statistics.median(errors), 1),
                "mean_km": round(statistics.fmean(errors), 1),
                "p90_km": round(float(np.percentile(errors, 90)), 1),
                "within_radius": round(inside / len(cases), 3),
                "median_radius_km": round(statistics.median(radii), 1),
            }
    return out


def verdicts(cases: list[Case]) -> dict[str, int]:
    """Verdicts of ``--model calibrated`` against ``not:CHN`` (each case's own calibration):
    an empty region is a model miss, never INCONSISTENT."""
    zone = load_region("not:CHN")
    counts: dict[str, int] = {}
    for ms, _, cal in cases:
        res = solve("t", ms, zone, model=Model.CALIBRATED, calibration=cal)
        key = res.verdict.value + (f" ({res.reason})" if res.reason == "model_miss" else "")
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def scale(sizes: tuple[int, ...] = (50, 100, 200, 500, 1000), per: int = 20) -> dict[str, Any]:
    """Seconds per target of each estimator and of ``solve`` with L landmarks per target."""
    rng = random.Random(7)
    path = _PathModel(rng)
    cities = [(c.lat, c.lon) for c in CITIES]
    sites = {f"l{k}": _near(*rng.choice(cities), 800.0, rng) for k in range(max(sizes))}
    codes = sorted(sites)
    zone = load_region("not:CHN")
    out: dict[str, Any] = {}
    for size in sizes:
        problems = []
        for t in range(per):
            truth = _near(*rng.choice(cities), 300.0, rng)
            problems.append(
                [
                    Measurement(
                        landmark=c,
                        lat=sites[c][0],
                        lon=sites[c][1],
                        rtt_ms=path.rtt(c, sites[c], f"s{size}/{t}", truth),
                    )
                    for c in rng.sample(codes, size)
                ]
            )
        row: dict[str, float] = {}
        for method in Estimator:
            t0 = time.perf_counter()
            estimate_many(problems, method)
            row[method.value] = round((time.perf_counter() - t0) / per * 1000, 2)
        t0 = time.perf_counter()
        for k, ms in enumerate(problems):
            solve(f"t{k}", ms, zone)
        row["solve"] = round((time.perf_counter() - t0) / per * 1000, 2)
        out[str(size)] = row
    return {"ms_per_target": out, "targets_per_size": per}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--targets", type=int, default=400)
    parser.add_argument("--atlas", type=Path, default=ATLAS)
    parser.add_argument("--no-scale", action="store_true", help="skip the timing per L")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim, real = simulated(args.targets, 20261203), atlas(args.atlas)
    swapped = atlas_swapped(args.atlas)
    out: dict[str, Any] = {
        "default": DEFAULT_ESTIMATOR.value,
        "simulated": evaluate(sim),
        "atlas": evaluate(real),
        "atlas-swapped": evaluate(swapped),
        "atlas-swapped-2+": evaluate([c for c in swapped if len(c[0]) >= 2]),
        "calibrated_verdicts": {
            "simulated": verdicts(sim),
            "atlas": verdicts(real),
            "atlas-swapped": verdicts(swapped),
        },
    }
    if not args.no_scale:
        out["scale"] = scale()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out))
        return
    print(f"calibrated verdicts: {out['calibrated_verdicts']}")
    for world in ("simulated", "atlas", "atlas-swapped", "atlas-swapped-2+"):
        print(f"{world} ({out[world]['targets']} targets)")
        for k, v in out[world].items():
            if isinstance(v, dict) and "/" in k:
                print(
                    f"  {k:<26} median {v['median_km']:>7.1f} km  mean {v['mean_km']:>7.1f} km  "
                    f"p90 {v['p90_km']:>7.1f} km  "
                    f"within radius {v['within_radius']:.0%} "
                    f"(median radius {v['median_radius_km']:.0f} km)"
                )
    for size, row in out.get("scale", {}).get("ms_per_target", {}).items():
        print(f"L={size:>5}: " + "  ".join(f"{k} {v:.2f} ms" for k, v in row.items()))


if __name__ == "__main__":
    main()
