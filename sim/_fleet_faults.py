"""Faults of fleet verification at scale: a Dask worker killed mid-batch, the PostgreSQL
server restarted mid-run (``benchmarks/robustness.py`` and ``tests/verifier/test_fleet.py``).

:class:`KillWorkerOnce` is a Dask worker plugin that SIGKILLs its own worker
process the moment a chosen batch starts executing, once per marker file (an
exclusive create: after the nanny restarts the worker, or on the other
worker, the batch then runs normally). The kill is real: the process dies
without cleanup, as under the OOM killer or a node loss.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from distributed import Worker
from distributed.diagnostics.plugin import WorkerPlugin

from ._fault_lab import FaultOutcome

__all__ = [
    "KillWorkerOnce",
    "dask_worker_kill",
    "postgres_restart_mid_run",
    "postgres_server_url",
    "scratch_database",
]

#: ``scripts/postgres`` of this checkout (the fault scenarios run from a checkout).
_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres"


class KillWorkerOnce(WorkerPlugin):
    """SIGKILL the worker that starts executing a task whose key contains ``key_part``."""

    name = "chiploc-kill-worker-once"

    def __init__(self, key_part: str, marker: str) -> None:
        self.key_part = key_part
        self.marker = marker

    def setup(self, worker: Worker) -> None:
        self.worker = worker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or self.key_part not in str(key):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


# -- PostgreSQL for the scenarios and benchmarks -----------------------------------------


def postgres_server_url(arg: str | None = None) -> str:
    """``arg``, else $CHIPLOC_TEST_POSTGRES_URL, else the URL of ``scripts/postgres start``."""
    url = arg or os.environ.get("CHIPLOC_TEST_POSTGRES_URL", "")
    if url:
        return url
    proc = subprocess.run(  # noqa: S603  # our own script, fixed arguments
        [str(_SCRIPT), "start"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"no PostgreSQL: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A fresh database on ``server`` for one run (its URL), dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"chiploc_fleet_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        info = conninfo_to_dict(server)
        user = f"{info['user']}@" if info.get("user") else ""
        yield f"postgresql://{user}{info['host']}:{info['port']}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


# -- the scenarios (benchmarks/robustness.py) -------------------------------------------


def _small_fleet(
    seed: int,
) -> tuple[Any, Any, bytes, dict[str, list[bytes]], tuple[Any, ...], int]:
    from chiploc.verifier import chip_regions_of, make_batches

    from ._fleet import FleetWorld, sign_chip_reports

    now = 1_800_000_000 * 1_000_000_000
    world = FleetWorld.generate(seed=seed, chips=36, landmarks=30)
    registry = world.registry()
    registry_json = registry.to_signed_json(world.authority())
    reports = {
        c.id: sign_chip_reports(world, k, world.nearest_landmarks(k, 6), now_unix_ns=now, probes=8)
        for k, c in enumerate(world.chips)
    }
    batches = make_batches(chip_regions_of(reports, registry), reports, max_chips=6)
    return world, registry, registry_json, reports, batches, now


def _lost_and_duplicated(
    store: Any, reports: dict[str, list[bytes]], chips: int
) -> tuple[int, int]:
    """(records missing, records duplicated) in a store after a fleet run."""
    from chiploc.verifier import verify_audit

    audit = verify_audit(store)
    digests = [r.digest_hex for r in store.rounds()]
    verdict_chips = [v.chip_id for v in store.verdicts()]
    expected_rounds = sum(len(v) for v in reports.values())
    lost = max(0, expected_rounds - len(set(digests))) + max(0, chips - len(set(verdict_chips)))
    lost += max(0, expected_rounds + chips - (audit.rounds + audit.verdicts))
    duplicated = (len(digests) - len(set(digests))) + (len(verdict_chips) - len(set(verdict_chips)))
    return lost, duplicated


def dask_worker_kill(directory: str | os.PathLike[str], *, seed: int = 0) -> FaultOutcome:
    """A Dask worker SIGKILLed as a batch starts: the batch re-runs elsewhere and lands once."""
    from chiploc.store import open_store
    from chiploc.verifier import (
        BatchParams,
        ClusterSpec,
        StoreSink,
        dask_client,
        dask_executor,
        in_process,
        run_fleet,
    )

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    world, registry, registry_json, reports, batches, now = _small_fleet(seed)
    params = BatchParams(now_unix_ns=now)
    with open_store(root / "reference.db") as ref:
        expected = run_fleet(
            batches,
            params,
            executor=in_process(registry),
            sink=StoreSink(store=ref, signer=world.verifier_key()),
        )
    marker = root / "killed"
    with open_store(root / "fleet.db") as store, dask_client(ClusterSpec(workers=2)) as client:
        client.register_plugin(KillWorkerOnce(batches[len(batches) // 2].batch_id, str(marker)))
        executor = dask_executor(
            client,
            registry_json=registry_json,
            authority_public_key=world.authority().public_key.key_bytes,
        )
        run = run_fleet(
            batches,
            params,
            executor=executor,
            sink=StoreSink(store=store, signer=world.verifier_key()),
        )
        lost, duplicated = _lost_and_duplicated(store, reports, len(world.chips))
    killed = marker.exists()
    same = dict(run.verdicts) == dict(expected.verdicts)
    survived = killed and same and lost == 0 and duplicated == 0
    return FaultOutcome(
        name="dask_worker_kill",
        survived=survived,
        injected=int(killed),
        records_lost=lost,
        evidence=(
            f"worker SIGKILLed mid-batch: {killed}; {len(batches)} batches, verdicts equal to "
            f"in-process: {same}; lost {lost}, duplicated {duplicated}"
        ),
        details={"batches": len(batches), "duplicated": duplicated},
    )


def postgres_restart_mid_run(postgres_url: str, *, seed: int = 0) -> FaultOutcome:
    """The PostgreSQL server stopped after the first batch landed and started again while
    the next batches are verified and written: the run reconnects and resumes."""
    import threading

    from chiploc.store import PostgresStore
    from chiploc.verifier import BatchParams, StoreSink, in_process, run_fleet

    script = _SCRIPT
    world, registry, _, reports, batches, now = _small_fleet(seed)
    results: list[int] = []

    def pg(action: str) -> None:
        proc = subprocess.run(  # noqa: S603  # our own script, fixed arguments
            [str(script), action], capture_output=True, text=True, timeout=120, check=False
        )
        results.append(proc.returncode)

    starter = threading.Thread(target=pg, args=("start",))
    after: list[int] = []

    def progress(done: int, total: int) -> None:
        if results:
            after.append(done)
        else:
            pg("stop")
            starter.start()

    with PostgresStore.open(postgres_url, retry_budget_s=10.0) as store:
        sink = StoreSink(store=store, signer=world.verifier_key())
        run = run_fleet(
            batches,
            BatchParams(now_unix_ns=now),
            executor=in_process(registry),
            sink=sink,
            progress=progress,
        )
        starter.join(timeout=120)
        lost, duplicated = _lost_and_duplicated(store, reports, len(world.chips))
    restarted = results == [0, 0] and bool(after)
    survived = restarted and lost == 0 and duplicated == 0 and len(run.verdicts) == len(world.chips)
    return FaultOutcome(
        name="postgres_restart",
        survived=survived,
        injected=int(restarted),
        records_lost=lost,
        evidence=(
            f"server stopped after batch 1 and restarted: {restarted}; {len(after)} batches "
            f"written after; lost {lost}, duplicated {duplicated}"
        ),
        details={"batches_after_restart": len(after), "duplicated": duplicated},
    )
