#!/usr/bin/env python3
"""Fleet benchmark: the whole verifier pipeline at fleet scale, in-process and on Dask.

    python benchmarks/fleet.py --json [--chips 20000] [--landmarks 200] [--db postgresql://...]

The fleet is a :class:`sim.FleetWorld` (seeded): ``--landmarks`` landmarks worldwide (the
embedded cities, then random points on land) and ``--chips`` chips in data-centre
countries, each with an authorized zone. Its signed reports are GENERATED, not measured
(real Ed25519 keys; each landmark signs one Merkle root over its reports of every 500
chips generated, ``sim.sign_fleet_reports``, the chip signs every probe; 8
landmarks a chip, the nearest, 32 probes a report; RTTs from the world's path model) and
generated once: they are cached on disk in ``benchmarks/.cache/`` (gitignored; delete it to
regenerate), with the fixed ``now`` they were made for (time is an argument: the cached day
is replayed, so freshness checks pass). Generation uses every core (a process pool); at
20,000 chips it is 160,000 reports and 5.3 M signatures: ~25 ms of CPU a chip, 21 min on 2
cores at load 6-8, ~5 min on 2 quiet ones; the pipeline runs afterwards take ~12-15 min on
2 quiet cores.

Figures (one JSON object):

- ``verified_reports_per_s_per_core``: :func:`verifier.screen_reports` as the fleet runs
  it (lazy verification with the default 1 % sampled full check), CPU time of this process
  over ``--verify-sample`` reports;
- ``end_to_end_chips_per_s_*``: wall-clock chips per second of :func:`verifier.run_fleet`
  (screen, group, solve on the executor; sign a certificate per verdict and store rounds,
  verdicts and audit entries with one ``add_batch`` per batch): ``inprocess_sqlite``,
  ``dask1_postgres`` (a LocalCluster of 1 worker process), ``dask2_postgres`` (2). Worker
  start-up and per-worker set-up (the worker plugin: registry, borders and the registry's
  zones, once per worker as a long-running verifier does it) are outside the timing and
  reported apart (``worker_setup_s_*``; in-process: ``zone_setup_s_inprocess``);
  ``worker_cpu_ms_per_chip_*`` is the workers' CPU per chip (screen, group, solve). Each
  run starts from an empty store (PostgreSQL: a scratch database on ``--db``,
  ``$CHIPLOC_TEST_POSTGRES_URL`` or ``scripts/postgres start``);
  ``audit_verify_s_dask2_postgres`` is :func:`verifier.verify_audit` of the 2-worker store
  afterwards (not in chips/s; minutes at full size, so the other runs only check the
  number of verdicts they wrote);
- ``*_cpu_ms_per_chip_*``: CPU per chip of each party of a Dask run: the worker processes
  (``worker_process_``: whole processes, read through ``client.run``; ``worker_`` alone is
  ``verify_batch``), the driver process (``driver_``: the sink, the client, and the local
  cluster's scheduler and nannies) and the PostgreSQL server (``postgres_``: its processes
  by pid, with psutil), and their sum (``cpu_ms_per_chip_*``); on a shared machine these,
  not the wall-clock rates, are the figures to compare;
- ``scaling_efficiency_1_to_2``: (2-worker chips/s) / (2 x 1-worker chips/s);
- ``cpu_bound_*`` (derived, not measured): what 2 otherwise idle cores would give at the
  CPU per chip above (1 worker: the worker on one core, driver + PostgreSQL on the other;
  2 workers: 2000 / the total ms), and the scaling efficiency between the two;
- ``peak_rss_mb_per_worker``: the largest peak RSS of a Dask worker (2-worker run), its
  own address space's high-water mark (``VmHWM``, see ``_peak_rss_mb``);
- ``postgres_rows_per_s``: rows (rounds, verdicts, evidence links, audit entries) over the
  time spent inside ``add_batch`` during the 2-worker run;
- adaptive measurement on the same world (``--adaptive-chips`` of its chips, every k-th):
  ``rounds_per_chip_all`` / ``_adaptive``, ``settled_share_all`` / ``_adaptive`` (share of
  chips COMPLIANT or VIOLATION), ``settled_kept`` (share of the chips all-landmarks settles
  that adaptive settles too) and ``verdict_disagreements`` (COMPLIANT vs VIOLATION; must
  be 0).

The machine's load (``os.getloadavg``) is recorded at the start and the end: on a shared
machine the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chiploc.protocol import Registry
from chiploc.sim._adaptive import run_adaptive
from chiploc.sim._fleet import FleetWorld, sign_fleet_reports
from chiploc.sim._fleet_faults import postgres_server_url, scratch_database
from chiploc.sim._load import _peak_rss_mb
from chiploc.store import PostgresStore, Store, open_store
from chiploc.verifier import (
    DEFAULT_FULL_CHECK_RATE,
    BatchParams,
    ClusterSpec,
    LazyVerification,
    PlanPolicy,
    StoreSink,
    chip_regions_of,
    dask_client,
    dask_executor,
    in_process,
    make_batches,
    prepare_zones,
    run_fleet,
    screen_reports,
    verify_audit,
)

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache"
NOW_NS = 1_800_000_000 * 1_000_000_000
_LEN = struct.Struct(">I")


# -- the cached fleet ---------------------------------------------------------------------


_WORLD: dict[str, Any] = {}


def _init_signer(seed: int, chips: int, landmarks: int) -> None:
    """Per generating process: the world and the landmark keys, built once."""
    world = FleetWorld.generate(seed=seed, chips=chips, landmarks=landmarks)
    _WORLD["world"] = world
    _WORLD["keys"] = {k: world.landmark_key(k) for k in range(len(world.landmarks))}


def _sign_range(args: tuple[int, int, int, int]) -> bytes:
    lo, hi, per_chip, probes = args
    world: FleetWorld = _WORLD["world"]
    out = bytearray()
    # each landmark signs one Merkle root over its reports of this range of chips
    signed = sign_fleet_reports(
        world,
        {k: world.nearest_landmarks(k, per_chip) for k in range(lo, hi)},
        now_unix_ns=NOW_NS,
        probes=probes,
        keys=_WORLD["keys"],
    )
    for k in range(lo, hi):
        raws = signed[k]
        out += _LEN.pack(len(raws))
        for raw in raws:
            out += _LEN.pack(len(raw)) + raw
    return bytes(out)


def fleet_reports(
    world: FleetWorld, *, per_chip: int, probes: int, log: Callable[[str], None]
) -> dict[str, list[bytes]]:
    """Chip -> signed reports, from the cache or generated (both cores) and cached."""
    n = len(world.chips)
    # "-b": landmark batch signatures (one root per landmark per 500 chips of generation)
    name = f"fleet-s{world.seed}-c{n}-l{len(world.landmarks)}-k{per_chip}-p{probes}-b.bin"
    path = CACHE / name
    if not path.is_file():
        log(f"generating {n * per_chip} signed reports into {path} (once) ...")
        t = time.perf_counter()
        step = 500
        jobs = [(lo, min(n, lo + step), per_chip, probes) for lo in range(0, n, step)]
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with (
            ProcessPoolExecutor(
                max_workers=os.cpu_count() or 1,
                initializer=_init_signer,
                initargs=(world.seed, n, len(world.landmarks)),
            ) as pool,
            tmp.open("wb") as f,
        ):
            for part in pool.map(_sign_range, jobs):
                f.write(part)
        tmp.replace(path)
        log(f"generated in {time.perf_counter() - t:.0f} s")
    data = path.read_bytes()
    out: dict[str, list[bytes]] = {}
    pos = 0
    for chip in world.chips:
        (count,) = _LEN.unpack_from(data, pos)
        pos += 4
        raws = []
        for _ in range(count):
            (size,) = _LEN.unpack_from(data, pos)
            raws.append(data[pos + 4 : pos + 4 + size])
            pos += 4 + size
        out[chip.id] = raws
    if pos != len(data):
        raise SystemExit(f"{path}: trailing bytes: delete the cache and rerun")
    return out


# -- stores -------------------------------------------------------------------------------


def _postgres_cpu(url: str) -> dict[int, float]:
    """CPU seconds used so far by each process of the PostgreSQL server at ``url`` (the
    postmaster and its children: our backends, WAL writer, checkpointer...), by pid; empty
    when the server is not on this machine. Deltas are taken per pid (``_cpu_delta``): a
    backend that lives through a run is counted whole, whatever exits meanwhile."""
    import psutil  # type: ignore[import-untyped]  # comes with distributed; no stubs

    port = urlsplit(url).port or 5432
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].endswith("postgres") and "-p" in cmd and str(port) in cmd:
            out: dict[int, float] = {}
            for p in (proc, *proc.children()):
                try:
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                out[p.pid] = t.user + t.system
            return out
    return {}


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    if not after:
        return None
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


class _TimedStore:
    """Counts the time spent inside ``add_batch`` (the database's share of a run)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.rows = 0

    def add_batch(self, rounds: Any, verdicts: Any) -> Any:
        t = time.perf_counter()
        result = self.inner.add_batch(rounds, verdicts)
        self.seconds += time.perf_counter() - t
        self.rows += result.rows_written
        return result


# -- runs ---------------------------------------------------------------------------------


def _progress(label: str, quiet: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A rich progress bar on stderr (chips landed in the store)."""
    if quiet:
        return (lambda done, total: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=None)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop


def _run(
    label: str,
    batches: Any,
    params: BatchParams,
    executor: Any,
    store: Store,
    signer: Any,
    quiet: bool,
    audit: bool = True,
    postgres_url: str | None = None,
) -> dict[str, Any]:
    timed = _TimedStore(store)
    sink = StoreSink(store=timed, signer=signer)  # type: ignore[arg-type]
    update, stop = _progress(label, quiet)
    pg0 = {} if postgres_url is None else _postgres_cpu(postgres_url)
    t = time.perf_counter()
    cpu0 = time.process_time()
    try:
        run = run_fleet(batches, params, executor=executor, sink=sink, progress=update)
    finally:
        stop()
    wall = time.perf_counter() - t
    driver_cpu = time.process_time() - cpu0
    pg1 = {} if postgres_url is None else _postgres_cpu(postgres_url)
    chips = len(run.verdicts)
    stored = run.verdicts_written
    audit_s = None
    if audit:  # the whole store re-checked (minutes at full size: not on every run)
        t = time.perf_counter()
        stored = verify_audit(store).verdicts
        audit_s = round(time.perf_counter() - t, 1)
    if stored != chips:
        raise SystemExit(f"{label}: {stored} verdicts stored for {chips} chips")
    return {
        "run": run,
        "chips_per_s": chips / wall,
        "wall_s": wall,
        "audit_s": audit_s,
        "db_s": timed.seconds,
        "rows": timed.rows,
        "driver_cpu_s": driver_cpu,
        "postgres_cpu_s": _cpu_delta(pg0, pg1),
    }


def _dask_run(
    label: str,
    workers: int,
    batches: Any,
    params: BatchParams,
    registry_json: bytes,
    authority_key: bytes,
    store: Store,
    signer: Any,
    quiet: bool,
    postgres_url: str,
) -> dict[str, Any]:
    with dask_client(ClusterSpec(workers=workers)) as client:
        client.wait_for_workers(workers)
        # Per-worker set-up (registry, borders, the registry's zones), once per worker as a
        # long-running verifier does it: timed apart, not in chips/s.
        t = time.perf_counter()
        executor = dask_executor(
            client, registry_json=registry_json, authority_public_key=authority_key
        )
        setup_s = time.perf_counter() - t
        before = client.run(time.process_time)
        out = _run(
            label,
            batches,
            params,
            executor,
            store,
            signer,
            quiet,
            audit=workers == 2,
            postgres_url=postgres_url,
        )
        out["worker_setup_s"] = setup_s
        after = client.run(time.process_time)
        # Whole worker processes (tasks, (de)serialisation, comms), not only verify_batch.
        out["worker_process_cpu_s"] = sum(after[w] - before.get(w, 0.0) for w in after)
        rss = client.run(_peak_rss_mb)
        out["peak_rss_mb_per_worker"] = max(rss.values())
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    load_start = os.getloadavg()

    def partial() -> None:  # the figures so far, on stderr (a long run on a shared machine)
        if not args.quiet:
            print("partial: " + json.dumps(out, sort_keys=True), file=sys.stderr, flush=True)

    world = FleetWorld.generate(seed=args.seed, chips=args.chips, landmarks=args.landmarks)
    registry: Registry = world.registry()
    authority = world.authority()
    registry_json = registry.to_signed_json(authority)
    reports = fleet_reports(world, per_chip=args.per_chip, probes=args.probes, log=log)
    n_reports = sum(len(v) for v in reports.values())
    lazy = LazyVerification(key=os.urandom(32), rate=DEFAULT_FULL_CHECK_RATE)
    params = BatchParams(now_unix_ns=NOW_NS, lazy=lazy)
    batches = make_batches(chip_regions_of(reports, registry), reports, max_chips=args.batch_chips)
    out: dict[str, Any] = {
        "chips": len(world.chips),
        "landmarks": len(world.landmarks),
        "reports": n_reports,
        "probes_per_report": args.probes,
        "landmarks_per_chip": args.per_chip,
        "batches": len(batches),
        "chips_per_batch": args.batch_chips,
        "zones": len({c.region for c in world.chips}),
        "reports_generated_and_cached": str(CACHE.relative_to(REPO)),
        "full_check_rate": DEFAULT_FULL_CHECK_RATE,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in load_start],
    }

    # verification alone, one core
    sample = [r for v in reports.values() for r in v][: args.verify_sample]
    screen_reports(sample[:200], registry, now_unix_ns=NOW_NS, lazy=lazy)  # warm
    t = time.process_time()
    screened = screen_reports(sample, registry, now_unix_ns=NOW_NS, lazy=lazy)
    cpu = time.process_time() - t
    if screened.rejected_total:
        raise SystemExit(f"generated reports rejected: {dict(screened.rejected)}")
    out["verified_reports_per_s_per_core"] = round(len(sample) / cpu)
    log(f"verification: {out['verified_reports_per_s_per_core']} reports/s per core")
    partial()

    # adaptive measurement vs every landmark, on the same world
    if args.adaptive_chips > 0:
        step = max(1, len(world.chips) // max(1, args.adaptive_chips))
        chosen = list(range(0, len(world.chips), step))[: args.adaptive_chips]
        t = time.perf_counter()
        every = run_adaptive(world, policy=PlanPolicy(audit=True), chips=chosen)
        adaptive = run_adaptive(world, policy=PlanPolicy(), chips=chosen)
        both = every.settled & adaptive.settled
        out["adaptive_chips"] = len(chosen)
        out["adaptive_policy"] = {"first": 3, "per_step": 2, "budget": PlanPolicy().budget}
        out["rounds_per_chip_all"] = round(every.rounds_per_chip, 2)
        out["rounds_per_chip_adaptive"] = round(adaptive.rounds_per_chip, 2)
        out["settled_share_all"] = round(len(every.settled) / len(chosen), 4)
        out["settled_share_adaptive"] = round(len(adaptive.settled) / len(chosen), 4)
        out["settled_kept"] = round(len(both) / max(1, len(every.settled)), 4)
        out["verdict_disagreements"] = sum(
            1 for c in both if every.verdicts[c] != adaptive.verdicts[c]
        )
        out["adaptive_steps"] = adaptive.steps
        log(f"adaptive: {time.perf_counter() - t:.0f} s")
    partial()
    signer = world.verifier_key()
    server = postgres_server_url(args.db)
    dask: dict[int, dict[str, Any]] = {}
    for workers in (2, 1):
        with scratch_database(server) as url, PostgresStore.open(url) as store:
            dask[workers] = _dask_run(
                f"{workers} Dask worker(s) + PostgreSQL",
                workers,
                batches,
                params,
                registry_json,
                authority.public_key.key_bytes,
                store,
                signer,
                args.quiet,
                server,
            )
        r = dask[workers]
        out[f"end_to_end_chips_per_s_dask{workers}_postgres"] = round(r["chips_per_s"], 1)
        if r["audit_s"] is not None:
            out[f"audit_verify_s_dask{workers}_postgres"] = r["audit_s"]
        out[f"worker_setup_s_dask{workers}"] = round(r["worker_setup_s"], 1)
        n = len(r["run"].verdicts)
        out[f"worker_cpu_ms_per_chip_dask{workers}"] = round(1000 * r["run"].worker_cpu_s / n, 2)
        out[f"driver_cpu_ms_per_chip_dask{workers}"] = round(1000 * r["driver_cpu_s"] / n, 2)
        out[f"worker_process_cpu_ms_per_chip_dask{workers}"] = round(
            1000 * r["worker_process_cpu_s"] / n, 2
        )
        total = r["worker_process_cpu_s"] + r["driver_cpu_s"]
        if r["postgres_cpu_s"] is not None:
            out[f"postgres_cpu_ms_per_chip_dask{workers}"] = round(
                1000 * r["postgres_cpu_s"] / n, 2
            )
            total += r["postgres_cpu_s"]
        out[f"cpu_ms_per_chip_dask{workers}"] = round(1000 * total / n, 2)
        if workers == 2:
            out["peak_rss_mb_per_worker"] = round(r["peak_rss_mb_per_worker"], 1)
            out["postgres_rows_per_s"] = round(r["rows"] / r["db_s"])
            out["postgres_share_of_wall_dask2"] = round(r["db_s"] / r["wall_s"], 3)
            out["verdicts"] = dict(sorted(_count(r["run"].verdicts.values()).items()))
        log(f"{workers} Dask worker(s) + PostgreSQL: {r['chips_per_s']:.0f} chips/s")
        partial()
    if dask[2]["run"].verdicts != dask[1]["run"].verdicts:
        raise SystemExit("1 and 2 Dask workers gave different verdicts")
    out["scaling_efficiency_1_to_2"] = round(
        dask[2]["chips_per_s"] / (2 * dask[1]["chips_per_s"]), 3
    )
    # Derived, not measured: what 2 otherwise idle cores would give at the CPU each party
    # used per chip (1 worker: the worker on one core, driver + PostgreSQL on the other;
    # 2 workers: everything shares both). The wall-clock figures above move with the load.
    if all(f"postgres_cpu_ms_per_chip_dask{w}" in out for w in (1, 2)):
        one = 1000 / max(
            out["worker_process_cpu_ms_per_chip_dask1"],
            out["driver_cpu_ms_per_chip_dask1"] + out["postgres_cpu_ms_per_chip_dask1"],
        )
        two = 2000 / out["cpu_ms_per_chip_dask2"]
        out["cpu_bound_chips_per_s_dask1_2_cores"] = round(one, 1)
        out["cpu_bound_chips_per_s_dask2_2_cores"] = round(two, 1)
        out["cpu_bound_scaling_efficiency_1_to_2"] = round(two / (2 * one), 3)
    partial()
    if not args.skip_inprocess:
        t = time.perf_counter()
        prepare_zones(registry)
        out["zone_setup_s_inprocess"] = round(time.perf_counter() - t, 1)
        with tempfile.TemporaryDirectory() as d, open_store(Path(d) / "fleet.db") as sqlite:
            r = _run(
                "in-process + SQLite",
                batches,
                params,
                in_process(registry),
                sqlite,
                signer,
                args.quiet,
                audit=False,
            )
        out["end_to_end_chips_per_s_inprocess_sqlite"] = round(r["chips_per_s"], 1)
        out["cpu_ms_per_chip_inprocess_sqlite"] = round(
            1000 * r["driver_cpu_s"] / len(r["run"].verdicts), 2
        )
        out["sqlite_rows_per_s"] = round(r["rows"] / r["db_s"])
        log(f"in-process + SQLite: {r['chips_per_s']:.0f} chips/s")
        if dict(r["run"].verdicts) != dict(dask[2]["run"].verdicts):
            raise SystemExit("in-process and Dask runs gave different verdicts")

    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    # Each Dask task carries its batch's report bytes (no scatter: a worker that dies would
    # take scattered data with it); distributed warns about graphs of more than 10 MB.
    warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--chips", type=int, default=20_000)
    parser.add_argument("--landmarks", type=int, default=200)
    parser.add_argument("--per-chip", type=int, default=8, help="reports (landmarks) per chip")
    parser.add_argument("--probes", type=int, default=32, help="probes per report")
    parser.add_argument(
        "--batch-chips", type=int, default=1000, help="chips per batch (20 batches at 20,000)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--verify-sample", type=int, default=20_000)
    parser.add_argument(
        "--adaptive-chips", type=int, default=1000, help="chips in the adaptive comparison"
    )
    parser.add_argument("--db", help="PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k, v in sorted(result.items()):
            print(f"{k:40s} {v}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
