"""Load: :func:`run_load` has one landmark (this process) measure thousands of chip
agents (one child process, entry point ``_agents_main``) in one ``POST /v1/rounds``,
giving a :class:`LoadResult`; ``_load_main`` runs it in a fresh process for a clean
peak RSS.

Invariants:

* ``seconds`` is the wall time of the one request; every figure is read from what
  the run did (the response, ``getrusage``, the agents' counters).
* Every wait is bounded and the agents' child process is reaped on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from chiploc.chip_agent import ChipAgent
from chiploc.landmarks import LandmarkDaemon

from ._fault_lab import _LOOPBACK, _config, _identities, _prepare
from ._fault_spawn import _child_env

__all__ = ["LoadResult", "raise_nofile_limit", "run_load"]


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (MB): the high-water mark of its address
    space (``VmHWM``), not ``ru_maxrss``. A child started by fork + exec (the agents here,
    a Dask worker) inherits its parent's peak in ``ru_maxrss``: a fleet worker spawned by
    a driver holding a 535 MB report cache reported 1,157 MB while its own memory never
    passed 417 MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def _agents_main() -> None:  # pragma: no cover - runs in the child process
    """Child: start N chip agents on 127.0.0.1, print their ports as one JSON line, serve
    until stdin closes, print a JSON summary (counters, peak RSS) and exit."""
    label, count = sys.argv[1], int(sys.argv[2])
    raise_nofile_limit()

    async def main() -> None:
        ids = _identities(label, chips=count)
        agents = [ChipAgent(k, ids.registry, host=_LOOPBACK) for k in ids.chips]
        for agent in agents:
            await agent.start()
        print(json.dumps([a.address[1] for a in agents]), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        totals: dict[str, int] = {}
        for agent in agents:
            for k, v in agent.counters.items():
                totals[k] = totals.get(k, 0) + v
            await agent.stop()
        print(json.dumps({"counters": totals, "peak_rss_mb": _peak_rss_mb()}), flush=True)

    asyncio.run(main())


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    chips: int
    probes: int
    seconds: float
    completed: int
    landmark_peak_rss_mb: float
    agents_peak_rss_mb: float
    nofile_soft_limit: int
    errors: Mapping[str, int]
    agent_counters: Mapping[str, int]

    @property
    def completed_share(self) -> float:
        return self.completed / self.chips if self.chips else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "chips": self.chips,
            "probes": self.probes,
            "seconds": round(self.seconds, 3),
            "completed": self.completed,
            "completed_share": round(self.completed_share, 4),
            "landmark_peak_rss_mb": round(self.landmark_peak_rss_mb, 1),
            "agents_peak_rss_mb": round(self.agents_peak_rss_mb, 1),
            "nofile_soft_limit": self.nofile_soft_limit,
            "errors": dict(self.errors),
            "agent_counters": dict(self.agent_counters),
        }


async def run_load(
    directory: str | os.PathLike[str],
    *,
    chips: int,
    probes: int = 3,
    concurrency: int = 256,
    probe_timeout_ms: int = 2000,
) -> LoadResult:
    """One landmark (this process) measures ``chips`` agents (one child process) in one
    ``POST /v1/rounds`` with a targets list. ``seconds`` is the request's wall time."""
    root = _prepare(directory)
    soft, _ = raise_nofile_limit()
    label = f"load-{chips}"
    ids = _identities(label, chips=chips)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from chiploc.sim._load import _agents_main; _agents_main()",
        label,
        str(chips),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_child_env(),
        limit=1 << 24,
    )
    assert proc.stdin is not None  # noqa: S101 - PIPE requested
    assert proc.stdout is not None  # noqa: S101 - PIPE requested
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120.0)
        ports = json.loads(line)
        if len(ports) != chips:
            raise RuntimeError(f"agent child started {len(ports)} of {chips} agents")
        config = _config(
            root,
            ids.landmark,
            probe_timeout_ms=probe_timeout_ms,
            hello_timeout_ms=probe_timeout_ms,
            max_concurrent_rounds=concurrency,
        )
        async with LandmarkDaemon(config, key=ids.landmark, registry=ids.registry) as daemon:
            targets = [
                {"chip_id": k.id, "address": f"{_LOOPBACK}:{port}"}
                for k, port in zip(ids.chips, ports, strict=True)
            ]
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                started = time.perf_counter()
                async with session.post(
                    f"{daemon.http_url}/v1/rounds", json={"targets": targets, "probes": probes}
                ) as r:
                    body = await r.json()
                seconds = time.perf_counter() - started
        results = body["results"]
        completed = sum(1 for item in results if "report_b64" in item)
        errors: dict[str, int] = {}
        for item in results:
            if "error" in item:
                errors[item["reason"]] = errors.get(item["reason"], 0) + 1
        landmark_peak = _peak_rss_mb()
        proc.stdin.close()
        summary = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60.0))
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 30.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return LoadResult(
        chips=chips,
        probes=probes,
        seconds=seconds,
        completed=completed,
        landmark_peak_rss_mb=landmark_peak,
        agents_peak_rss_mb=float(summary["peak_rss_mb"]),
        nofile_soft_limit=soft,
        errors=errors,
        agent_counters=summary["counters"],
    )


def _load_main() -> None:  # pragma: no cover - runs in a fresh process (clean peak RSS)
    """``python -c 'from chiploc.sim._load import _load_main; _load_main()' DIR CHIPS``: print
    :meth:`LoadResult.to_json_dict` as one JSON line."""
    directory, chips = sys.argv[1], int(sys.argv[2])
    result = asyncio.run(run_load(directory, chips=chips))
    print(json.dumps(result.to_json_dict()), flush=True)
