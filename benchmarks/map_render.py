"""Time to render a chip map in Python (``maps.chip_map``), cold and warm.

    python benchmarks/map_render.py --json [--chips 6]

Input: real ``solver.solve`` results on synthetic measurements (labelled as such):
``--chips`` chips at a city of ``sim.CITIES`` each (every few cities, seeded), measured
by its 8 nearest city landmarks at 2 x geodesic distance / c x 1.2 + 50 us and solved under
the vacuum model against that city's country. Each map opens on a different view, so its
basemap is simplified anew near that view.

Measured: CPU seconds of this process (``time.process_time``, which other work on a shared
machine does not inflate as much as wall time) for the first map of the process
(``cold_s``: vendored assets read, every country simplified once) and the median of the
others (``warm_s``); the solving is not timed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

_LANDMARKS_PER_CHIP = 8
_OVERHEAD_MS = 0.05
_INFLATION = 1.2


def _results(n: int) -> list[dict[str, Any]]:
    from pyproj import Geod

    from chiploc import sim, solver

    geod = Geod(ellps="WGS84")
    cities = list(sim.CITIES)
    step = max(1, len(cities) // n)
    out = []
    for i in range(n):
        chip = cities[(i * step) % len(cities)]
        nearest = sorted(
            (c for c in cities if c is not chip),
            key=lambda c: geod.inv(chip.lon, chip.lat, c.lon, c.lat)[2],
        )[:_LANDMARKS_PER_CHIP]
        ms = []
        for lm in nearest:
            km = geod.inv(chip.lon, chip.lat, lm.lon, lm.lat)[2] / 1000.0
            rtt = 2.0 * km / SPEED_OF_LIGHT_KM_PER_MS * _INFLATION + _OVERHEAD_MS
            ms.append(solver.Measurement(landmark=lm.code, lat=lm.lat, lon=lm.lon, rtt_ms=rtt))
        region = solver.load_region(f"country:{chip.country}")
        out.append(solver.solve(f"synthetic-chip-{i}", ms, region).to_json_dict())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="chip map rendering benchmark")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--chips", type=int, default=6)
    args = parser.parse_args()
    results = _results(max(2, args.chips))
    from chiploc import maps

    seconds = []
    sizes = []
    for result in results:
        started = time.process_time()
        page = maps.chip_map(result)
        seconds.append(time.process_time() - started)
        sizes.append(len(page.encode("utf-8")))
    out = {
        "input": "synthetic measurements (real solver results)",
        "maps": len(results),
        "cold_s": round(seconds[0], 3),
        "warm_s": round(statistics.median(seconds[1:]), 3),
        "warm_max_s": round(max(seconds[1:]), 3),
        "mean_mb": round(statistics.mean(sizes) / 1e6, 2),
        "verdicts": sorted({r["verdict"] for r in results}),
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
