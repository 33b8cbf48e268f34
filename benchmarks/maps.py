"""Size and load time of fleet maps of 1,000 and 10,000 chips, in headless Chromium.

    python benchmarks/maps.py --json [--sizes 1000,10000] [--repeat 3]

Input: real ``solver.solve`` results on synthetic measurements (labelled as such
in the output). Chips are drawn around the 50 cities of ``sim.CITIES`` (up to
400 km away, seeded); each is measured by its 8 nearest city landmarks with RTT
= 2 x geodesic distance / c x a path inflation drawn in [1.3, 2.2] + 50 us, and
solved under the vacuum model against the country of its nearest city (so some
are COMPLIANT, some VIOLATION or INCONCLUSIVE). Results are cached per size in
the temp directory (keyed by the parameters) so repeated runs skip the solving.

Load time: Chromium (Debian's ``chromium``, found on PATH) opens the file with
every network request refused; the time is ``performance.now()`` when the map
signals ready (all markers added, two frames painted), i.e. navigation start →
map ready. The median of ``--repeat`` fresh pages is reported.

Prints one JSON object: ``fleet_<n>_mb``, ``fleet_<n>_load_s``, targets and ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

_HERE = Path(__file__).resolve().parent

TARGET_10K_LOAD_S = 5.0
TARGET_10K_MB = 15.0
_SEED = 20240601
_LANDMARKS_PER_CHIP = 8
_OVERHEAD_MS = 0.05
_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chips(n: int) -> list[tuple[str, float, float, str]]:
    """(target, lat, lon, region spec) for ``n`` synthetic chips, seeded."""
    from pyproj import Geod

    from chiploc import sim

    geod = Geod(ellps="WGS84")
    rng = random.Random(_SEED)
    cities = list(sim.CITIES)
    out = []
    for i in range(n):
        city = rng.choice(cities)
        lon, lat, _ = geod.fwd(city.lon, city.lat, rng.uniform(0, 360), rng.uniform(0, 400e3))
        out.append((f"synthetic-chip-{i:05d}", float(lat), float(lon), f"country:{city.country}"))
    return out


def _solve_chunk(chips: list[tuple[str, float, float, str]]) -> list[dict[str, Any]]:
    import numpy as np
    from pyproj import Geod

    from chiploc import sim, solver

    geod = Geod(ellps="WGS84")
    cities = list(sim.CITIES)
    c_lat = np.array([c.lat for c in cities])
    c_lon = np.array([c.lon for c in cities])
    regions: dict[str, Any] = {}
    out = []
    for target, lat, lon, spec in chips:
        rng = random.Random(f"{_SEED}:{target}")
        _, _, dist_m = geod.inv(c_lon, c_lat, np.full_like(c_lon, lon), np.full_like(c_lat, lat))
        nearest = np.argsort(dist_m)[:_LANDMARKS_PER_CHIP]
        measurements = []
        for k in nearest:
            d_km = float(dist_m[k]) / 1000.0
            rtt = 2.0 * d_km / SPEED_OF_LIGHT_KM_PER_MS * rng.uniform(1.3, 2.2) + _OVERHEAD_MS
            measurements.append(
                solver.Measurement(
                    landmark=cities[k].code, lat=cities[k].lat, lon=cities[k].lon, rtt_ms=rtt
                )
            )
        if spec not in regions:
            regions[spec] = solver.load_region(spec)
        result = solver.solve(target, measurements, regions[spec], model=solver.Model.VACUUM)
        out.append(result.to_json_dict())
    return out


def synthetic_results(n: int, *, workers: int = 2) -> tuple[list[dict[str, Any]], float]:
    """``n`` real solver results on synthetic measurements, and the seconds spent solving."""
    cache = Path(tempfile.gettempdir()) / f"chiploc-bench-maps-{_SEED}-{n}.jsonl"
    if cache.exists():
        return [json.loads(line) for line in cache.read_text().splitlines()], 0.0
    chips = _chips(n)
    chunks = [chips[i : i + 250] for i in range(0, n, 250)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = [r for chunk in pool.map(_solve_chunk, chunks) for r in chunk]
    elapsed = time.perf_counter() - t0
    cache.write_text("".join(json.dumps(r) + "\n" for r in results))
    return results, elapsed


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _only(url: str) -> Any:
    """A route handler letting through the page itself and refusing everything else."""

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            r.abort()

    return route


def load_seconds(browser: Any, path: Path, *, repeat: int) -> tuple[float, int]:
    """Median navigation-start → ready seconds over ``repeat`` fresh pages; foreign requests."""
    url = path.resolve().as_uri()
    times = []
    foreign = 0
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        requests: list[str] = []

        context.route("**/*", _only(url))
        page = context.new_page()
        page.on("request", lambda req, requests=requests: requests.append(req.url))
        try:
            page.goto(url, wait_until="load", timeout=60_000)
            page.wait_for_function(
                "window.chiploc && window.chiploc.readyMs !== null", timeout=60_000
            )
            times.append(float(page.evaluate("window.chiploc.readyMs")) / 1000.0)
        finally:
            context.close()
        foreign += sum(1 for r in requests if r != url)
    return statistics.median(times), foreign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]

    from chiploc import maps

    results, solve_s = synthetic_results(max(sizes))
    out: dict[str, Any] = {
        "input": "real solver.solve results (vacuum model) on synthetic measurements",
        "chips_solved": len(results),
        "solve_s": round(solve_s, 1) if solve_s else "cached",
        "verdicts": {v: sum(1 for r in results if r["verdict"] == v) for v in maps.VERDICTS},
    }
    executable = _find_chromium()
    if executable is None:
        print("no chromium on PATH: run scripts/install-chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=_CHROMIUM_ARGS)
        try:
            for n in sizes:
                t0 = time.perf_counter()
                page = maps.fleet_map(results[:n])
                build_s = time.perf_counter() - t0
                path = Path(tmp) / f"fleet-{n}.html"
                path.write_text(page, encoding="utf-8")
                load_s, foreign = load_seconds(browser, path, repeat=args.repeat)
                out[f"fleet_{n}_mb"] = round(path.stat().st_size / 1e6, 3)
                out[f"fleet_{n}_load_s"] = round(load_s, 3)
                out[f"fleet_{n}_build_s"] = round(build_s, 3)
                out[f"fleet_{n}_foreign_requests"] = foreign
        finally:
            browser.close()
    if "fleet_10000_mb" in out:
        out["target_10000_load_s"] = TARGET_10K_LOAD_S
        out["target_10000_mb"] = TARGET_10K_MB
        out["load_vs_target"] = round(out["fleet_10000_load_s"] / TARGET_10K_LOAD_S, 3)
        out["size_vs_target"] = round(out["fleet_10000_mb"] / TARGET_10K_MB, 3)
        out["meets_targets"] = bool(
            out["fleet_10000_load_s"] < TARGET_10K_LOAD_S and out["fleet_10000_mb"] < TARGET_10K_MB
        )
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    foreign = sum(v for k, v in out.items() if k.endswith("_foreign_requests"))
    return 0 if foreign == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
