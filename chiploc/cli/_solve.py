"""``chiploc solve``: measurements CSV -> region and verdict per target."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chiploc.errors import MeasurementError

if TYPE_CHECKING:
    from solver import Measurement

REQUIRED = ("target", "landmark", "lat", "lon", "rtt_ms")


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
    p.add_argument("measurements", type=Path, help="measurements CSV")
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
        help="propagation model (only vacuum is a proof; default vacuum)",
    )
    p.add_argument(
        "--tolerate", type=int, default=0, metavar="N", help="verdict must hold with any N left out"
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
        "becomes a distance (default 500, the Linux kernel's NTP slew limit)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per target per line")
    p.set_defaults(handler=_handle)


def read_measurements(path: Path) -> dict[str, list[Measurement]]:
    """Parse the CSV; every bad row is reported with its line number (MeasurementError)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise MeasurementError(f"{path}: cannot read: {e}", reason="unreadable") from e
    try:
        return _parse_measurements(text, path)
    except csv.Error as e:  # e.g. a field over csv's size limit
        raise MeasurementError(f"{path}: not a readable CSV: {e}", reason="bad_row") from e


def _parse_measurements(text: str, path: Path) -> dict[str, list[Measurement]]:
    from solver import Measurement

    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise MeasurementError(f"{path}: empty file (no header)", reason="no_header")
    cols = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise MeasurementError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}", reason="missing_column"
        )
    pos = {c: cols.index(c) for c in (*REQUIRED, "overhead_ms") if c in cols}
    errors: list[str] = []
    out: dict[str, list[Measurement]] = {}
    seen: dict[tuple[str, str], int] = {}
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(cols):
            errors.append(f"line {line_no}: {len(row)} fields, expected {len(cols)}")
            continue
        target, landmark = row[pos["target"]].strip(), row[pos["landmark"]].strip()
        if not target or not landmark:
            errors.append(f"line {line_no}: empty target or landmark")
            continue
        nums: dict[str, float] = {}
        bad = False
        for c in ("lat", "lon", "rtt_ms", "overhead_ms"):
            if c not in pos:
                continue
            raw = row[pos[c]].strip()
            if c == "overhead_ms" and raw == "":
                continue
            try:
                v = float(raw)
            except ValueError:
                errors.append(f"line {line_no}: {c} {raw!r} is not a number")
                bad = True
                continue
            if not math.isfinite(v):
                errors.append(f"line {line_no}: {c} {raw!r} is not finite")
                bad = True
                continue
            nums[c] = v
        if bad:
            continue
        key = (target, landmark)
        if key in seen:
            errors.append(
                f"line {line_no}: duplicate landmark {landmark!r} for target {target!r} "
                f"(first on line {seen[key]})"
            )
            continue
        seen[key] = line_no
        try:
            m = Measurement(
                landmark=landmark,
                lat=nums["lat"],
                lon=nums["lon"],
                rtt_ms=nums["rtt_ms"],
                overhead_ms=nums.get("overhead_ms", 0.0),
            )
        except MeasurementError as e:
            errors.append(f"line {line_no}: {e}")
            continue
        out.setdefault(target, []).append(m)
    if errors:
        raise MeasurementError(
            f"{path}: {len(errors)} bad row(s):\n  " + "\n  ".join(errors), reason="bad_row"
        )
    return out


def _handle(args: argparse.Namespace) -> int:
    from chiploc.errors import ConfigError
    from chiploc.units import MAX_CLOCK_RATE_ERROR_PPM
    from solver import Calibration, Model, load_region, solve

    if not 0 <= args.tolerate <= 8:
        raise ConfigError("--tolerate must be between 0 and 8", reason="bad_argument")
    ppm = MAX_CLOCK_RATE_ERROR_PPM if args.clock_tolerance_ppm is None else args.clock_tolerance_ppm
    if not 0.0 <= ppm <= 100_000.0:  # also refuses nan
        raise ConfigError(
            "--clock-tolerance-ppm must be between 0 and 100000", reason="bad_argument"
        )
    model = Model(args.model)
    calibration = None
    if args.calibration is not None:
        calibration = Calibration.from_csv(args.calibration)
    elif model is Model.CALIBRATED:
        raise ConfigError("--model calibrated needs --calibration FILE", reason="bad_argument")
    region = load_region(args.region)
    by_target = read_measurements(args.measurements)
    results = [
        solve(
            t,
            ms,
            region,
            model=model,
            tolerate=args.tolerate,
            calibration=calibration,
            clock_tolerance_ppm=ppm,
        )
        for t, ms in by_target.items()
    ]
    if args.json:
        for r in results:
            sys.stdout.write(json.dumps(r.to_json_dict(), allow_nan=False) + "\n")
        return 0
    print(
        f"region {region.spec}  model {model.value}  tolerate {args.tolerate}  "
        f"clock tolerance {ppm:g} ppm"
    )
    print(f"{'target':<20} {'verdict':<13} {'margin km':>10} {'area km2':>14}  binding")
    for r in results:
        margin = "" if r.margin_km is None else f"{r.margin_km:.1f}"
        area = "" if r.area_km2 is None else f"{r.area_km2:,.0f}"
        binding = ",".join(r.binding_landmarks or r.conflicting_landmarks)
        print(f"{r.target:<20} {r.verdict.value:<13} {margin:>10} {area:>14}  {binding}")
        print(f"  {r.message}")
    return 0
