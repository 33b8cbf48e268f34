"""Cost of the landmark mesh check (``solver.assess_mesh``) for a full mesh of N landmarks.

    python benchmarks/mesh.py --json [--sizes 50,100,200] [--repeat 3]

Input (synthetic, seeded): N landmarks drawn uniformly in a box over Europe
(35-60 N, 10 W-30 E); every ordered pair is a link with the RTT light would need
over the geodesic at 2/3 c times an inflation drawn in [1.0, 3.0] (honest links),
except one landmark registered 300 km from where its RTTs put it. Reported: links
checked, the median wall time of ``--repeat`` runs, links per second, and the
suspects found (must be exactly the displaced landmark).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any


def _world(n: int, seed: int) -> tuple[list[Any], dict[str, tuple[float, float]], str]:
    from pyproj import Geod

    from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS
    from chiploc.solver import MeshLink

    geod = Geod(ellps="WGS84")
    rng = random.Random(seed)
    true = {f"lm-{i:03d}": (rng.uniform(35, 60), rng.uniform(-10, 30)) for i in range(n)}
    # lm-000 really sits 300 km towards its nearest peer from where it is registered
    displaced = "lm-000"
    lat, lon = true[displaced]
    nearest = min(
        (k for k in true if k != displaced),
        key=lambda k: geod.inv(lon, lat, true[k][1], true[k][0])[2],
    )
    azimuth = geod.inv(lon, lat, true[nearest][1], true[nearest][0])[0]
    registered = dict(true)
    back_lon, back_lat, _ = geod.fwd(lon, lat, azimuth + 180.0, 300_000.0)
    registered[displaced] = (float(back_lat), float(back_lon))
    links = []
    fiber = SPEED_OF_LIGHT_KM_PER_MS * 2 / 3
    for a, (alat, alon) in true.items():
        for b, (blat, blon) in true.items():
            if a != b:
                km = geod.inv(alon, alat, blon, blat)[2] / 1000
                rtt = 2 * km * rng.uniform(1.0, 3.0) / fiber + 0.05
                links.append(MeshLink(landmark=a, peer=b, rtt_ms=rtt))
    return links, registered, displaced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from chiploc.solver import assess_mesh

    out: dict[str, Any] = {"input": "synthetic, seeded (see the docstring)"}
    for n in (int(x) for x in args.sizes.split(",")):
        links, sites, displaced = _world(n, seed=13)
        times = []
        suspects: frozenset[str] = frozenset()
        for _ in range(args.repeat):
            started = time.perf_counter()
            suspects = assess_mesh(links, sites).suspects
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        out[f"mesh_{n}"] = {
            "links": len(links),
            "seconds": round(median, 3),
            "links_per_s": round(len(links) / median),
            "suspects": sorted(suspects),
            "displaced": displaced,
        }
    print(json.dumps(out, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
