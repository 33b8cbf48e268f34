"""``chiploc solve``: measurements CSV -> region and verdict per target."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chiploc.common.errors import MeasurementError

if TYPE_CHECKING:
    from chiploc.solver import Measurement


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "solve",
        help="turn landmark RTTs into a proven region and a verdict",
        description=(
            "Read a CSV with header target,landmark,lat,lon,rtt_ms[,overhead_ms] (one row per "
            "landmark per target, rtt_ms the minimum RTT; overhead_ms a landmark-side proven "
            "lower bound) and decide each target against --region."
        ),
    )
    p.add_argument("measurements", type=Path, help="measurements CSV ('-': standard input)")
    p.add_argument(
        "--region",
        required=True,
        help="country:DEU | countries:DEU,FRA | not:CHN | not:countries:CHN,RUS | "
        "circle:LAT,LON,KM | FILE.geojson",
    )
    p.add_argument(
        "--model",
        choices=["vacuum", "fiber", "calibrated"],
        default="vacuum",
        help="propagation model; only vacuum is a proof (default: vacuum)",
    )
    p.add_argument(
        "--tolerate",
        type=int,
        default=0,
        metavar="N",
        help="the verdict must hold with any N landmarks left out, N in 0..8 (default: 0)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        help="landmark-to-landmark CSV: landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms",
    )
    p.add_argument(
        "--clock-tolerance-ppm",
        type=float,
        default=None,
        metavar="PPM",
        help="bound on the landmark clocks' rate error; every RTT is widened by it before it "
        "becomes a distance (default: 500, the Linux kernel's NTP slew limit)",
    )
    p.add_argument(
        "--estimator",
        choices=["cbg-depth", "cbg", "nearest", "min-max-ratio", "least-squares"],
        default="cbg-depth",
        help="point estimate method (never a proof; default cbg-depth, docs/solver.md)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per target per line")
    p.set_defaults(handler=_handle)


def read_measurements(path: Path) -> dict[str, list[Measurement]]:
    """Read and parse the CSV (``-``: standard input); every bad row is reported with its
    line number."""
    try:
        if str(path) == "-":
            text, path = sys.stdin.read(), Path("<stdin>")
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MeasurementError(f"{path}: cannot read: {e}", reason="unreadable") from e
    from chiploc.solver import parse_measurements_csv

    return parse_measurements_csv(text, source=str(path))


def _handle(args: argparse.Namespace) -> int:
    from chiploc.cli._report import fmt_number, warn_region
    from chiploc.common.errors import ConfigError
    from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM
    from chiploc.solver import Calibration, Estimator, Model, load_region, solve_many

    if not 0 <= args.tolerate <= 8:
        raise ConfigError(
            f"--tolerate must be between 0 and 8 landmarks, got {args.tolerate}",
            reason="bad_argument",
        )
    ppm = MAX_CLOCK_RATE_ERROR_PPM if args.clock_tolerance_ppm is None else args.clock_tolerance_ppm
    if not 0.0 <= ppm <= 100_000.0:  # also refuses nan
        raise ConfigError(
            f"--clock-tolerance-ppm must be between 0 and 100000 ppm, got {ppm:g} ppm",
            reason="bad_argument",
        )
    model = Model(args.model)
    calibration = None
    if args.calibration is not None:
        calibration = Calibration.from_csv(args.calibration)
    elif model is Model.CALIBRATED:
        raise ConfigError("--model calibrated needs --calibration FILE", reason="bad_argument")
    region = load_region(args.region)
    warn_region(region)
    by_target = read_measurements(args.measurements)
    results = solve_many(
        by_target.items(),
        region,
        model=model,
        tolerate=args.tolerate,
        calibration=calibration,
        clock_tolerance_ppm=ppm,
        estimator=Estimator(args.estimator),
    )
    if args.json:
        for r in results:
            sys.stdout.write(json.dumps(r.to_json_dict(), allow_nan=False) + "\n")
        return 0
    print(
        f"region {region.spec}  model {model.value}  tolerate {args.tolerate}  "
        f"clock tolerance {ppm:g} ppm"
    )
    # The units and number formats of every verdict table (cli/_report.py).
    print(f"{'target':<20} {'verdict':<13} {'margin km':>10} {'area km²':>14}  binding landmarks")
    for r in results:
        margin = fmt_number(r.margin_km)
        area = fmt_number(r.area_km2, 0)
        binding = ", ".join(r.binding_landmarks or r.conflicting_landmarks) or "-"
        print(f"{r.target:<20} {r.verdict.value:<13} {margin:>10} {area:>14}  {binding}")
        print(f"  {r.message}")
        if r.estimate is not None:
            e = r.estimate
            print(
                f"  estimate (not a proof; {e.method.value} on {e.model.value} radii): "
                f"{e.lat:.3f}, {e.lon:.3f}, error radius {e.error_radius_km:,.0f} km"
            )
    return 0
