"""``chiploc map`` and ``chiploc coverage``: write offline HTML maps.

``map`` reads result lines as printed by ``chiploc solve --json`` (one JSON
object per line; ``-`` is stdin) and writes a chip map per result, or with
``--fleet`` one fleet map of all of them. ``coverage`` shades where a chip could
be proven COMPLIANT with a landmark network (a ``landmark,lat,lon`` CSV or a
signed registry). Maps never load anything from the network unless ``--tiles
URL`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chiploc.common.errors import ConfigError, InputError

_TILES_HELP = (
    "tile URL template (e.g. https://tile.example/{z}/{x}/{y}.png); explicit opt-in, "
    "the default map loads nothing from the network"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "map",
        help="draw chip or fleet maps (offline HTML) from `chiploc solve --json` results",
        description="Draw the evidence of solver results as self-contained offline HTML maps.",
    )
    p.add_argument(
        "results",
        nargs="?",
        help="results file, one JSON object per line (- for stdin); or use --db",
    )
    p.add_argument(
        "--db",
        help="read results from a chiploc store instead (SQLite file or postgresql:// URL): "
        "the latest verdict of each chip",
    )
    p.add_argument("--out", help="output HTML file (one chip, or the fleet map)")
    p.add_argument("--out-dir", help="write one chip map per result line into this directory")
    p.add_argument("--target", help="draw only the result for this chip id (the last such line)")
    p.add_argument("--fleet", action="store_true", help="one fleet map of every result")
    p.add_argument(
        "--cluster-threshold",
        type=int,
        default=None,
        help="fleet: cluster points past this many chips (default: 300)",
    )
    p.add_argument("--tiles", help=_TILES_HELP)
    p.set_defaults(handler=_map)

    c = subparsers.add_parser(
        "coverage",
        help="shade where a chip could be proven COMPLIANT with a landmark network",
        description=(
            "Best case coverage: for a grid over the authorized region, each landmark's RTT "
            "is 2 x distance / c (vacuum) + the software overhead, solved by the real solver."
        ),
    )
    c.add_argument(
        "--landmarks", required=True, help="CSV with header landmark,lat,lon, or a registry JSON"
    )
    c.add_argument(
        "--authority-key",
        help="registry only: pinned authority public key (default: authority.pub beside it)",
    )
    c.add_argument("--region", required=True, help="authorized-region spec, e.g. country:DEU")
    c.add_argument(
        "--overhead-us",
        required=True,
        type=float,
        help="software overhead in microseconds added to each best-case RTT (not subtracted)",
    )
    c.add_argument("--out", required=True, help="output HTML file")
    c.add_argument(
        "--resolution-km",
        type=float,
        default=None,
        help="grid cell size (default: adaptive, the finest that fits --max-cells)",
    )
    c.add_argument(
        "--max-cells", type=int, default=None, help="upper bound on grid cells (default: 1500)"
    )
    c.add_argument("--tiles", help=_TILES_HELP)
    c.set_defaults(handler=_coverage)


def read_results(text: str, *, source: str) -> list[dict[str, Any]]:
    """Parse result lines; a bad line is an :class:`InputError` naming ``source:line``."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{source}:{n}: not JSON ({e.msg})", reason="bad_result") from e
        if not isinstance(obj, dict):
            raise InputError(f"{source}:{n}: expected a JSON object", reason="bad_result")
        out.append(obj)
    if not out:
        raise InputError(f"{source}: no results", reason="no_results")
    return out


def results_from_store(db: str, *, chip_id: str | None = None) -> list[dict[str, Any]]:
    """The latest stored verdict of each chip (or of ``chip_id``), as result dicts.

    The store is opened read-only; a missing file or a store with no verdict is an
    :class:`InputError` naming the database.
    """
    from chiploc import store

    if not store.is_postgres_url(db) and not Path(db).is_file():
        raise ConfigError(f"{db}: no such database file", reason="missing_file")
    latest: dict[str, dict[str, Any]] = {}
    label = store.redact_url(db) if store.is_postgres_url(db) else db
    with contextlib.closing(store.open_database(db, read_only=True, retry_budget_s=10.0)) as st:
        for record in st.verdicts(chip_id=chip_id):
            result = store.parse_json_strict(record.result_json, what=f"{label}: verdict")
            if not isinstance(result, dict):
                raise InputError(f"{label}: verdict {record.verdict_id} is not an object")
            latest[record.chip_id] = {**result, "target": record.chip_id}
    if not latest:
        what = f"chip {chip_id!r}" if chip_id else "any chip"
        raise InputError(f"{label}: no verdict stored for {what}", reason="no_results")
    return list(latest.values())


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such file", reason="missing_file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}", reason="unreadable_file") from e


def _write(path: Path, page: str) -> None:
    from chiploc.cli._files import ensure_dir

    ensure_dir(path.parent)
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write: {e.strerror}", reason="unwritable_output") from e
    print(path)


def _safe_name(target: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("._") or "chip"
    return name[:100]


def _select(results: Sequence[Mapping[str, Any]], target: str | None) -> list[Mapping[str, Any]]:
    if target is None:
        return list(results)
    chosen = [r for r in results if r.get("target") == target]
    if not chosen:
        raise ConfigError(f"no result for target {target!r}", reason="unknown_target")
    return chosen[-1:]


def _map(args: argparse.Namespace) -> int:
    from chiploc import maps

    if (args.results is None) == (args.db is None):
        raise ConfigError("give a results file or --db PATH (one of them)", reason="bad_args")
    if args.db is not None:
        results = results_from_store(args.db, chip_id=None if args.fleet else args.target)
    else:
        results = read_results(_read_text(args.results), source=args.results)
    if args.fleet:
        if args.out_dir or args.target:
            raise ConfigError("--fleet takes --out, not --out-dir/--target", reason="bad_args")
        threshold = args.cluster_threshold
        page = maps.fleet_map(
            results,
            tiles=args.tiles,
            cluster_threshold=maps.DEFAULT_CLUSTER_THRESHOLD if threshold is None else threshold,
        )
        _write(Path(args.out or "fleet.html"), page)
        return 0
    chosen = _select(results, args.target)
    if args.out and args.out_dir:
        raise ConfigError("give --out or --out-dir, not both", reason="bad_args")
    if len(chosen) == 1 and not args.out_dir:
        target = str(chosen[0].get("target", "chip"))
        _write(
            Path(args.out or f"{_safe_name(target)}.html"),
            maps.chip_map(chosen[0], tiles=args.tiles),
        )
        return 0
    if not args.out_dir:
        raise ConfigError(
            f"{len(chosen)} results: pass --target ID (with --out) or --out-dir DIR",
            reason="bad_args",
        )
    out_dir = Path(args.out_dir)
    used: set[str] = set()
    for result in chosen:
        name = _safe_name(str(result.get("target", "chip")))
        stem, k = name, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        _write(out_dir / f"{name}.html", maps.chip_map(result, tiles=args.tiles))
    return 0


def _coverage_landmarks(path: str, authority_key: str | None) -> Any:
    from chiploc import maps

    text = _read_text(path)
    if path.lower().endswith(".csv") or text.lstrip().lower().startswith("landmark"):
        if authority_key:
            raise ConfigError("--authority-key applies to a registry, not a CSV", reason="bad_args")
        return maps.read_landmarks_csv(text, source=path)
    from chiploc import protocol

    registry = protocol.load_registry_pinned(path, authority_key)
    landmarks = tuple(
        maps.CoverageLandmark(id=e.id, lat=e.lat, lon=e.lon)
        for e in registry.landmarks.values()
        if not e.revoked
    )
    if not landmarks:
        raise ConfigError(f"{path}: the registry enrols no active landmark", reason="no_landmarks")
    return landmarks


def _coverage(args: argparse.Namespace) -> int:
    from chiploc import maps, solver
    from chiploc.cli._report import warn_region

    # Each option's error speaks in that option's unit (the library's in ms and km).
    if not (math.isfinite(args.overhead_us) and args.overhead_us >= 0.0):
        raise ConfigError(
            f"--overhead-us must be ≥ 0 µs, got {args.overhead_us:g} µs", reason="bad_overhead"
        )
    if args.resolution_km is not None and not (
        math.isfinite(args.resolution_km) and args.resolution_km > 0.0
    ):
        raise ConfigError(
            f"--resolution-km must be > 0 km, got {args.resolution_km:g} km",
            reason="bad_resolution",
        )
    if args.max_cells is not None and args.max_cells < 1:
        raise ConfigError(
            f"--max-cells must be at least 1 cell, got {args.max_cells}", reason="bad_resolution"
        )
    landmarks = _coverage_landmarks(args.landmarks, args.authority_key)
    region = solver.load_region(args.region)
    warn_region(region)
    grid = maps.coverage_grid(
        landmarks,
        region,
        overhead_ms=args.overhead_us / 1000.0,
        resolution_km=args.resolution_km,
        **({} if args.max_cells is None else {"max_cells": args.max_cells}),
    )
    _write(Path(args.out), maps.coverage_map(grid, region.geometry, tiles=args.tiles))
    print(
        f"{grid.covered} of {len(grid.cells)} cells ({100 * grid.fraction_covered:.0f}%) "
        f"could be proven COMPLIANT (best case, {grid.resolution_km:.1f} km cells)",
        file=sys.stderr,
    )
    return 0
