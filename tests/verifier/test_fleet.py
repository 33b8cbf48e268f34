"""Fleet verification in batches: a Dask LocalCluster run equals the in-process run verdict
for verdict; a worker killed mid-batch and a PostgreSQL restart mid-run lose nothing and
duplicate nothing."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import psycopg
import pytest

from chiploc.common.errors import ConfigError, InputError, StoreUnavailable
from chiploc.protocol import Registry
from chiploc.sim._fleet import FleetWorld, sign_chip_reports
from chiploc.sim._fleet_faults import KillWorkerOnce
from chiploc.store import PostgresStore, Store, open_store
from chiploc.verifier import (
    BatchParams,
    ClusterSpec,
    StoreSink,
    WorkBatch,
    chip_regions_of,
    dask_client,
    dask_executor,
    in_process,
    make_batches,
    parse_cluster,
    prepare_zones,
    run_fleet,
    verify_audit,
)

if TYPE_CHECKING:
    from ..conftest import OwnPostgres

NOW = 1_800_000_000 * 1_000_000_000


class _World:
    def __init__(self, chips: int, landmarks: int, seed: int = 21) -> None:
        self.world = FleetWorld.generate(seed=seed, chips=chips, landmarks=landmarks)
        self.registry: Registry = self.world.registry()
        self.authority = self.world.authority()
        self.registry_json = self.registry.to_signed_json(self.authority)
        self.reports = {
            c.id: sign_chip_reports(
                self.world, k, self.world.nearest_landmarks(k, 6), now_unix_ns=NOW, probes=8
            )
            for k, c in enumerate(self.world.chips)
        }
        # One forged report (a landmark signature that does not verify): never stored.
        first = self.world.chips[0].id
        bad = bytearray(self.reports[first][0])
        bad[-1] ^= 1
        self.reports[first] = [*self.reports[first], bytes(bad)]
        self.batches = make_batches(
            chip_regions_of(self.reports, self.registry), self.reports, max_chips=6
        )

    def sink(self, store: Store) -> StoreSink:
        return StoreSink(store=store, signer=self.world.verifier_key())

    def dask(self, client: Any, *, prepare_zones: bool = False) -> Any:
        # Zones built by the batches that need them (by default here): a restarted worker
        # repeats its start-up, and building every zone there only slows the fault tests.
        return dask_executor(
            client,
            registry_json=self.registry_json,
            authority_public_key=self.authority.public_key.key_bytes,
            prepare_zones=prepare_zones,
        )


@pytest.fixture(scope="module")
def world() -> _World:
    return _World(chips=24, landmarks=30)


def _check_store(store: Store, w: _World) -> None:
    """Every verified report stored once, one verdict per chip, an intact audit chain."""
    report = verify_audit(store)
    expected_reports = sum(len(v) for v in w.reports.values()) - 1  # the forged one
    assert report.rounds == expected_reports
    assert report.verdicts == len(w.world.chips)
    digests = [r.digest_hex for r in store.rounds()]
    assert len(digests) == len(set(digests)) == expected_reports
    chips = Counter(v.chip_id for v in store.verdicts())
    assert set(chips) == {c.id for c in w.world.chips}
    assert set(chips.values()) == {1}


def test_batches_are_zone_sorted_and_cover_every_chip_once(world: _World) -> None:
    batches = world.batches
    assert sorted(c for b in batches for c in b.chip_ids) == sorted(world.reports)
    assert all(len(b.chip_ids) <= 6 for b in batches)
    specs = [s for b in batches for s in b.region_specs]
    assert specs == sorted(specs)  # one zone's chips contiguous: few zones per batch
    with pytest.raises(InputError):
        make_batches({"a": "country:DEU"}, {"b": [b"x"]})


def test_a_worker_prepares_the_zones_most_chips_need_and_skips_one_that_does_not_load(
    world: _World,
) -> None:
    chips = dict(world.registry.chips)
    counts = Counter(c.region for c in chips.values())
    assert len(counts) >= 3  # the fleet's chips are licensed for several zones
    top = [spec for spec, _ in counts.most_common(2)]
    assert sorted(prepare_zones(world.registry, limit=2)) == sorted(top)
    # A zone that does not load is left to the batch that needs it (which reports it).
    first = next(iter(chips))
    chips[first] = dataclasses.replace(chips[first], region="country:XXQ")
    broken = dataclasses.replace(world.registry, chips=chips)
    prepared = prepare_zones(broken)
    assert "country:XXQ" not in prepared
    # Every other zone (fewer than the limit) is built.
    assert set(prepared) == {c.region for c in chips.values()} - {"country:XXQ"}


def test_cluster_spec_parsing() -> None:
    assert parse_cluster(None, {}) is None
    assert parse_cluster("local:3", {}) == ClusterSpec(workers=3)
    assert parse_cluster(None, {"DASK_SCHEDULER_ADDRESS": "tcp://10.0.0.5:8786"}) == ClusterSpec(
        address="tcp://10.0.0.5:8786"
    )
    assert parse_cluster("local", {}) == ClusterSpec(workers=os.cpu_count() or 1)
    for bad in ("local:0", "remote", "http://x:8786", "local:two"):
        with pytest.raises(ConfigError):
            parse_cluster(bad, {})


def test_a_local_cluster_run_equals_the_in_process_run_verdict_for_verdict(
    world: _World, tmp_path: Path
) -> None:
    params = BatchParams(now_unix_ns=NOW)
    with open_store(tmp_path / "a.db") as store:
        here = run_fleet(
            world.batches, params, executor=in_process(world.registry), sink=world.sink(store)
        )
        _check_store(store, world)
    with (
        open_store(tmp_path / "b.db") as store,
        dask_client(ClusterSpec(workers=2)) as client,
    ):
        there = run_fleet(
            world.batches,
            params,
            executor=world.dask(client, prepare_zones=True),
            sink=world.sink(store),
        )
        _check_store(store, world)
        # The worker processes run quiet: no stack sampling every 10 ms, no 20 ms ticks
        # (LOCAL_CLUSTER_CONFIG reached them through their nannies).
        seen = client.run(
            lambda: (
                dask.config.get("distributed.worker.profile.enabled"),
                dask.config.get("distributed.admin.tick.interval"),
            )
        )
        assert len(seen) == 2
        assert set(seen.values()) == {(False, "1s")}
        # Writing the same batches again (a re-run of the same verdict round) adds nothing.
        again = run_fleet(
            world.batches, params, executor=in_process(world.registry), sink=world.sink(store)
        )
        assert (again.rounds_written, again.verdicts_written) == (0, 0)
        _check_store(store, world)
    assert dict(there.verdicts) == dict(here.verdicts)
    assert len(there.verdicts) == len(world.world.chips)
    assert os.getpid() not in there.worker_pids  # it really ran elsewhere
    assert there.rejected == here.rejected == {"bad_signature": 1}
    # The verdicts are physics, not just agreement: nobody inside is a VIOLATION.
    for chip in world.world.chips:
        v = here.verdicts[chip.id]
        assert v != ("VIOLATION" if chip.inside else "COMPLIANT")
    assert set(here.verdicts.values()) >= {"COMPLIANT", "INCONCLUSIVE"}


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    world: _World, tmp_path: Path
) -> None:
    params = BatchParams(now_unix_ns=NOW)
    expected = run_fleet(
        world.batches,
        params,
        executor=in_process(world.registry),
        sink=world.sink(open_store(tmp_path / "ref.db")),
    )
    marker = tmp_path / "killed"
    victim: WorkBatch = world.batches[1]
    with open_store(tmp_path / "k.db") as store, dask_client(ClusterSpec(workers=2)) as client:
        client.register_plugin(KillWorkerOnce(victim.batch_id, str(marker)))
        run = run_fleet(world.batches, params, executor=world.dask(client), sink=world.sink(store))
        _check_store(store, world)
    assert marker.exists(), "no worker was killed: the test proved nothing"
    killed_pid = int(marker.read_text())
    assert killed_pid not in run.worker_pids  # the dead worker delivered nothing
    assert dict(run.verdicts) == dict(expected.verdicts)
    assert run.batches == len(world.batches)


def test_a_postgres_restart_mid_run_loses_nothing_and_duplicates_nothing(
    world: _World, own_postgres: tuple[OwnPostgres, str]
) -> None:
    server, postgres_url = own_postgres  # a server of this test's own: it goes down
    params = BatchParams(now_unix_ns=NOW)
    restarts: list[subprocess.CompletedProcess[str]] = []

    def pg(action: str) -> None:
        restarts.append(server.control(action))

    thread = threading.Thread(target=pg, args=("start",))
    after_stop: list[int] = []

    def progress(done: int, total: int) -> None:
        if restarts:
            after_stop.append(done)
        else:  # after the first batch landed: the server goes down, and comes back
            pg("stop")  # while the next batches are being verified and written
            thread.start()

    def started_at() -> object:
        with psycopg.connect(postgres_url, connect_timeout=30) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
            assert row is not None
            return row[0]

    before = started_at()

    with PostgresStore.open(postgres_url, retry_budget_s=5.0) as store:
        sink = world.sink(store)
        run = run_fleet(
            world.batches,
            params,
            executor=in_process(world.registry),
            sink=sink,
            progress=progress,
        )
        thread.join(timeout=120)
        assert len(restarts) == 2, "the server was never restarted: the test proved nothing"
        assert all(r.returncode == 0 for r in restarts), [r.stderr for r in restarts]
        assert after_stop, "no batch was written after the server went down"
    assert started_at() != before  # a new server process: every connection had to be remade
    with PostgresStore.open(postgres_url, read_only=True) as store:
        _check_store(store, world)
    assert len(run.verdicts) == len(world.world.chips)


def test_the_sink_retries_an_unavailable_store_and_the_batch_lands_once(
    world: _World, tmp_path: Path
) -> None:
    """The store's transaction broke at COMMIT after landing (commit_unknown): the retry
    of the same batch writes nothing twice."""

    class Flaky:
        def __init__(self, inner: Store) -> None:
            self.inner = inner
            self.calls = 0

        def add_batch(self, rounds: Any, verdicts: Any) -> Any:
            self.calls += 1
            result = self.inner.add_batch(rounds, verdicts)
            if self.calls == 2:
                raise StoreUnavailable("connection lost during COMMIT", reason="commit_unknown")
            return result

    params = BatchParams(now_unix_ns=NOW)
    with open_store(tmp_path / "f.db") as inner:
        flaky = Flaky(inner)
        sink = StoreSink(store=flaky, signer=world.world.verifier_key(), sleep=lambda s: None)  # type: ignore[arg-type]
        run = run_fleet(world.batches, params, executor=in_process(world.registry), sink=sink)
        assert sink.retries == 1
        # The second batch landed on the call that failed; its retry found every row there.
        assert run.verdicts_written == len(world.world.chips) - len(world.batches[1].chip_ids)
        _check_store(inner, world)
