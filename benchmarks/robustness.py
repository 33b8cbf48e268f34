"""Robustness figures: attacks detected, faults survived, inputs fuzzed, the 10,000-chip round.

    python benchmarks/robustness.py --json [--fuzz-per-target 5000] [--chips 10000] [--db URL]

Every figure comes from running the scenario now, with the code the suite tests:

* attacks: ``sim.run_attacks`` (real daemons on loopback, one per attack);
* faults: ``sim.run_faults`` (loss / duplication / reordering at 0, 10, 30 %, the same with
  set-up datagrams hit too, landmark SIGKILL + restart, agent restart, verifier SIGKILL
  during writes, wall-clock jumps). ``faults_injected`` / ``faults_survived`` count
  scenarios; ``fault_events`` counts the individual faults injected (datagrams dropped,
  duplicated or reordered, kills, restarts, jumps); ``records_lost`` sums acknowledged
  reports, rounds, verdicts and audit entries missing afterwards;
* fleet faults (``chiploc.sim._fleet_faults``): a Dask worker SIGKILLed as a batch starts
  executing, and the PostgreSQL server stopped and started mid-run (a scratch database on
  ``--db``, ``$CHIPLOC_TEST_POSTGRES_URL`` or ``scripts/postgres start``);
  ``fleet_records_lost`` counts reports, verdicts and audit entries missing afterwards and
  the evidence names duplicates (both must be 0);
* fuzzing: ``sim.FuzzLab`` (seeded mutations of valid inputs through every reader), hostile
  HTTP requests to a live landmark (``sim.fuzz_http``) and random datagrams to a live agent
  (``sim.fuzz_agent``). ``crashes`` counts exceptions that are not the project's own
  errors, 5xx answers, non-JSON errors, uncounted datagrams and an unhealthy daemon
  afterwards; ``accepted_forgeries`` counts altered signed inputs a verifier accepted;
* load: ``sim.run_load`` in a fresh process (clean peak RSS): one landmark, ``--chips``
  agents in one child process, one ``POST /v1/rounds`` with every target.

Prints one JSON object. Bounded: every scenario has its own timeouts; child processes are
reaped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from chiploc.chip_agent import ChipAgent
from chiploc.landmarks import LandmarkDaemon
from chiploc.sim import (
    FUZZ_TARGETS,
    FuzzLab,
    fuzz_agent,
    fuzz_http,
    http_requests,
    mutate,
    run_attacks,
    run_faults,
)
from chiploc.sim._fault_lab import _config, _identities

_ROOT = Path(__file__).resolve().parents[1]


async def _attacks(directory: Path) -> dict[str, Any]:
    outcomes = await run_attacks(directory)
    return {
        "attacks_tried": len(outcomes),
        "attacks_detected": sum(o.detected for o in outcomes),
        "attacks_missed": [f"{o.name}: {o.evidence[:400]}" for o in outcomes if not o.detected],
    }


async def _faults(directory: Path, seed: int) -> dict[str, Any]:
    outcomes = await run_faults(directory, seed=seed)
    return {
        "faults_injected": len(outcomes),
        "faults_survived": sum(o.survived for o in outcomes),
        "fault_events": sum(o.injected for o in outcomes),
        "records_lost": sum(o.records_lost for o in outcomes),
        "faults_failed": [o.name + ": " + o.evidence for o in outcomes if not o.survived],
    }


def _fleet_faults(directory: Path, seed: int, db: str | None) -> dict[str, Any]:
    """Fleet scale: a Dask worker SIGKILLed mid-batch; the PostgreSQL server restarted
    mid-run (a scratch database on ``--db``, $CHIPLOC_TEST_POSTGRES_URL or scripts/postgres)."""
    from chiploc.sim._fleet_faults import (
        dask_worker_kill,
        postgres_restart_mid_run,
        postgres_server_url,
        scratch_database,
    )

    outcomes = [dask_worker_kill(directory / "dask-kill", seed=seed)]
    with scratch_database(postgres_server_url(db)) as url:
        outcomes.append(postgres_restart_mid_run(url, seed=seed))
    return {
        "fleet_faults_injected": len(outcomes),
        "fleet_faults_survived": sum(o.survived for o in outcomes),
        "fleet_records_lost": sum(o.records_lost for o in outcomes),
        "fleet_faults_failed": [o.name + ": " + o.evidence for o in outcomes if not o.survived],
        "fleet_faults": {o.name: o.evidence for o in outcomes},
    }


async def _fuzz(directory: Path, per_target: int, seed: int) -> dict[str, Any]:
    lab = FuzzLab(directory / "lab")
    rng = random.Random(seed)
    inputs = crashes = forgeries = rejected = 0
    examples: list[str] = []
    for target in FUZZ_TARGETS:
        for data in lab.inputs(target, rng, per_target):
            result = lab.check(target, data)
            inputs += 1
            rejected += result.outcome == "rejected"
            crashes += result.outcome == "crash"
            forgeries += result.outcome == "forgery"
            if result.failed and len(examples) < 10:
                examples.append(f"{target}: {result.outcome}: {result.detail[:200]}")
    ids = _identities("bench-fuzz")
    config = _config(directory, ids.landmark, hello_timeout_ms=50, probe_timeout_ms=50)
    async with (
        LandmarkDaemon(config, key=ids.landmark, registry=ids.registry) as daemon,
        ChipAgent(ids.chips[0], ids.registry, host="127.0.0.1") as agent,
    ):
        requests = list(http_requests(rng, per_target))
        tally = await fuzz_http(daemon.http_url, requests)
        inputs += tally.sent
        rejected += tally.client_errors
        crashes += tally.crashes
        examples += list(tally.examples)
        datagrams = [
            mutate(rng.choice(lab.corpus["datagram"]), rng)
            if rng.random() < 0.7
            else rng.randbytes(rng.randrange(600))
            for _ in range(per_target)
        ]
        sent, counted = await fuzz_agent(agent, datagrams)
        inputs += sent
        rejected += counted - agent.counters.get("answered", 0)
        crashes += max(0, sent - counted) + agent.counters.get("internal_error", 0)
        report = await daemon.measure(ids.chips[0].id, agent.address, probes=5)
        if report.answered != 5:
            crashes += 1
            examples.append("agent did not answer a real round after the fuzzing")
    return {
        "inputs_fuzzed": inputs,
        "inputs_rejected": rejected,
        "crashes": crashes,
        "accepted_forgeries": forgeries,
        "fuzz_failures": examples,
    }


def _load(directory: Path, chips: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from chiploc.sim._load import _load_main; _load_main()",
            str(directory),
            str(chips),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load run failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "round_10k_chips": result["chips"],
        "round_10k_s": result["seconds"],
        "round_10k_peak_mb": result["landmark_peak_rss_mb"],
        "round_10k_agents_peak_mb": result["agents_peak_rss_mb"],
        "round_10k_completed_share": result["completed_share"],
        "round_10k_probes_per_chip": result["probes"],
        "round_10k_errors": result["errors"],
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="chiploc-robustness-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        out.update(await asyncio.to_thread(_load, root / "load", args.chips))
        timings["load"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        out.update(await _attacks(root / "attacks"))
        timings["attacks"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        out.update(await _faults(root / "faults", args.seed))
        timings["faults"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        out.update(await _fuzz(root / "fuzz", args.fuzz_per_target, args.seed))
        timings["fuzz"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        out.update(await asyncio.to_thread(_fleet_faults, root / "fleet", args.seed, args.db))
        timings["fleet_faults"] = round(time.perf_counter() - started, 1)
    out["seconds"] = timings
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="chiploc robustness benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--fuzz-per-target", type=int, default=5000)
    parser.add_argument("--chips", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", help="PostgreSQL server URL for the fleet faults")
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
