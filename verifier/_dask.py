"""Fleet verification on Dask distributed (the cluster edge of :mod:`verifier._fleet`).

``--cluster local[:N]`` starts a :class:`distributed.LocalCluster` of N worker
processes (one thread each: screening and solving hold the GIL);
``--cluster tcp://HOST:8786`` (or ``DASK_SCHEDULER_ADDRESS``) joins an
existing scheduler, e.g. one started by dask-kubernetes or dask-jobqueue
(``docs/scale.md``).

Invariants:

- one task per :class:`~verifier._fleet.WorkBatch` (thousands of chips of
  one zone), never one per chip; at most ``max_in_flight`` batches are
  submitted at a time, so the driver holds a bounded amount of report bytes;
- each worker loads the registry (verifying the authority's signature
  itself) and the country borders once, in ``FleetWorkerPlugin``'s (:mod:`verifier._dask_plugin`)
  ``setup``; tasks look the registry up by its digest;
- a worker that dies mid-batch: the scheduler re-runs the batch elsewhere
  (up to ``distributed.scheduler.allowed-failures`` deaths of one task, then
  the run fails loudly); results reach the driver once per batch and the
  driver writes them (``run_fleet`` refuses a batch that comes back twice),
  so nothing is lost and nothing is written twice;
- the batch's arguments travel inside the task (no ``scatter``): data
  scattered to a worker that dies would be lost with it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from chiploc.common.errors import ConfigError, InputError
from chiploc.protocol import Registry
from chiploc.verifier._fleet import BatchOutcome, BatchParams, Executor, WorkBatch, verify_batch

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "LOCAL_CLUSTER_CONFIG",
    "ClusterSpec",
    "dask_client",
    "dask_executor",
    "load_registry_once",
    "parse_cluster",
    "registry_key",
]

_ENV: Final = "DASK_SCHEDULER_ADDRESS"
_LOCAL: Final = re.compile(r"local(?::(\d+))?")
_ADDRESS: Final = re.compile(r"(tcp|tls|ws|wss|inproc)://[^\s]+")

#: Registries loaded in this process (worker or driver), by digest of their signed bytes.
_REGISTRIES: dict[str, Registry] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    """Where batches run: a local cluster of ``workers`` processes, or a scheduler address."""

    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        if (self.address is None) == (self.workers == 0):
            raise ConfigError("a cluster is local[:N] or a scheduler address", reason="bad_cluster")

    def describe(self) -> str:
        return self.address or f"local cluster of {self.workers} worker processes"


def parse_cluster(spec: str | None, env: Mapping[str, str] | None = None) -> ClusterSpec | None:
    """``--cluster`` text (or ``DASK_SCHEDULER_ADDRESS`` when absent) -> a spec; None: in-process.

    ``local`` means one worker per CPU core.
    """
    environ = os.environ if env is None else env
    text = spec if spec is not None else environ.get(_ENV)
    if text is None or not text.strip():
        return None
    text = text.strip()
    m = _LOCAL.fullmatch(text)
    if m:
        workers = int(m.group(1)) if m.group(1) else (os.cpu_count() or 1)
        if not 1 <= workers <= 1024:
            raise ConfigError(f"--cluster {text}: 1..1024 workers", reason="bad_cluster")
        return ClusterSpec(workers=workers)
    if _ADDRESS.fullmatch(text):
        return ClusterSpec(address=text)
    raise ConfigError(
        f"--cluster {text!r}: expected local[:N] or a scheduler address such as tcp://HOST:8786",
        reason="bad_cluster",
    )


#: Dask settings for ``--cluster local[:N]`` (scoped to the cluster's life; the nannies pass
#: them to the worker processes). Distributed's defaults wake every server 50 times a
#: second (the event-loop tick monitor, 20 ms), sample every busy worker thread's stack
#: every 10 ms (the statistical profiler behind the dashboard's profile page), read /proc
#: for the system monitor every 0.5 s and for each worker's memory every 0.1 s. Measured on
#: an idle 2-worker cluster on the 2-core machine (docs/benchmarks.md): 16 % of a core with
#: the defaults, 2.7 % with these. The memory monitor still enforces the memory limit, within
#: half a second; profile with py-spy or cProfile instead of the dashboard.
LOCAL_CLUSTER_CONFIG: Final[Mapping[str, object]] = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
}


@contextmanager
def dask_client(spec: ClusterSpec, *, memory_limit: str = "auto") -> Iterator[Client]:
    """A connected :class:`distributed.Client` (and the local cluster, if one is started)."""
    from distributed import Client, LocalCluster

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout="30s")  # type: ignore[no-untyped-call]
        except OSError as e:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {spec.address}: {e}", reason="no_cluster"
            ) from e
        with client:
            yield client
        return
    import dask

    with (
        dask.config.set(LOCAL_CLUSTER_CONFIG),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=spec.workers,
            threads_per_worker=1,
            processes=True,
            # Port 0: a free port. The default, 8787, is often taken by another cluster or
            # test run; distributed then warns and moves, and the warning fails the suite.
            dashboard_address=":0",
            memory_limit=memory_limit,
            silence_logs=40,  # logging.ERROR: a killed worker is an expected event
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def registry_key(registry_json: bytes) -> str:
    return hashlib.sha256(registry_json).hexdigest()


def load_registry_once(registry_json: bytes, authority_public_key: bytes) -> Registry:
    """The registry of these signed bytes, verified and parsed once per process."""
    key = registry_key(registry_json)
    registry = _REGISTRIES.get(key)
    if registry is None:
        registry = Registry.from_signed_json(
            registry_json, authority_public_key=authority_public_key, source="registry"
        )
        _REGISTRIES[key] = registry
    return registry


def _verify_batch_task(batch: WorkBatch, registry_digest: str, params: BatchParams) -> BatchOutcome:
    registry = _REGISTRIES.get(registry_digest)
    if registry is None:  # the plugin did not run in this process: a deployment error
        raise InputError(
            f"worker {os.getpid()} has no registry {registry_digest[:12]} (plugin not set up)",
            reason="no_registry",
        )
    return verify_batch(batch, registry, params)


def dask_executor(
    client: Client,
    *,
    registry_json: bytes,
    authority_public_key: bytes,
    max_in_flight: int | None = None,
    retries: int = 2,
    prepare_zones: bool = True,
) -> Executor:
    """An executor for :func:`~verifier._fleet.run_fleet` that runs batches on ``client``.

    Registers the worker plugin (every worker loads the registry and borders, and with
    ``prepare_zones`` builds the registry's zones, before this returns). Results come back
    in completion order, each once. ``retries`` re-runs a batch whose task raised (a worker
    that *died* is handled by the scheduler).
    """
    from distributed import as_completed

    from chiploc.verifier._dask_plugin import FleetWorkerPlugin

    plugin = FleetWorkerPlugin(registry_json, authority_public_key, zones=prepare_zones)
    client.register_plugin(plugin)
    workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    limit = max_in_flight if max_in_flight is not None else 2 * workers + 1

    def run(
        batches: Sequence[WorkBatch], params: BatchParams
    ) -> Iterator[tuple[WorkBatch, BatchOutcome]]:
        by_key: dict[str, WorkBatch] = {}
        queue = list(reversed(batches))

        def submit() -> Any:
            batch = queue.pop()
            key = f"chiploc-verify-{batch.batch_id}-{params.now_unix_ns}"
            by_key[key] = batch
            return client.submit(
                _verify_batch_task,
                batch,
                plugin.key,
                params,
                key=key,
                pure=False,
                retries=retries,
            )

        first = [submit() for _ in range(min(limit, len(queue)))]
        done = as_completed(first)  # type: ignore[no-untyped-call]
        for future in done:
            result = future.result()
            batch = by_key.pop(future.key)
            future.release()
            if queue:
                done.add(submit())  # type: ignore[no-untyped-call]
            yield batch, result

    return run
