"""``chiploc demo``: verify a simulated fleet end to end on this machine, with no network.

Builds the seeded :class:`sim.FleetScenario` (landmarks at real cities, chips
with planted cases), runs it as a :class:`sim.SimulatedWorld` on 127.0.0.1,
enrols every identity in the store, has the :class:`verifier.Collector`
trigger rounds at every landmark over HTTP and collect the signed reports,
verifies, solves, certifies and stores each verdict, then writes the outputs
(``docs/demo.md``) and checks the audit log. Exit status 1 if a planted case
came out outside its acceptable verdicts or the audit log does not verify.

The landmarks also run the mesh (``docs/mesh.md``): each measures its peers with
the signed protocol before the chips are measured, the collector stores the mesh
rounds, and :func:`verifier.assess_and_flag` checks them. One planted landmark,
:data:`DISPLACED_LANDMARK`, runs at its city while the registry puts it
:data:`DISPLACED_KM` km away (its real site is that much closer to its northern
peers): the mesh must flag it, it must be in no proof, and the verdicts must stay
right. For contrast the chips are also judged with it kept in (nothing of that
is stored or certified), and the summary says which verdicts it would have
turned (exit status 1 if the mesh misses it or flags an honest landmark).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chiploc.cli._files import ensure_dir
from chiploc.cli._report import (
    VERDICT_COLUMNS,
    mesh_table,
    plural,
    verdict_cells,
    verdict_table,
)
from chiploc.common.errors import ChiplocError, InputError

if TYPE_CHECKING:
    from rich.console import Console

    from chiploc.protocol import MeasurementReport, PrivateKey, Registry
    from chiploc.sim import FleetScenario, LatenessStats
    from chiploc.verifier import (
        AuditReport,
        ChipJudgement,
        Collection,
        IssuedVerdict,
        MeshStatus,
        TriggerOutcome,
    )

#: Written into every demo output directory; only such a directory is ever cleared.
MARKER = ".chiploc-demo"
#: What a demo run writes (and a re-run removes first).
OUTPUTS = (
    MARKER,
    "registry.json",
    "authority.pub",
    "keys",
    "landmarks",
    "maps",
    "certificates",
    "verdicts.jsonl",
    "fleet_map.html",
    "scenario.json",
    "chiploc.db",
    "chiploc.db-wal",
    "chiploc.db-shm",
)
VERIFIER_ID = "demo-verifier"
DEFAULT_CHIPS = 24
DEFAULT_LANDMARKS = 20
DEFAULT_PROBES = 8
#: Rounds a landmark runs at once. Every simulated landmark, agent and the
#: verifier share this machine's event loop and cores, so many concurrent
#: short-RTT rounds would queue each other's datagrams and inflate RTTs (sound
#: but loose); real landmarks on their own hosts need no such bound.
ROUNDS_PER_LANDMARK = 2
#: The planted landmark case: this landmark runs at its city (Paris), but the registry
#: puts it DISPLACED_KM km away on bearing DISPLACED_AZIMUTH_DEG (Andalusia), so where it
#: really is lies up to that much closer to Frankfurt, Brussels, Amsterdam, London ...
#: Far enough that light is beaten by 550-980 km on six links, which a loaded machine's
#: queueing (a few ms, i.e. a few hundred km) cannot hide.
DISPLACED_LANDMARK = "lm-par"
DISPLACED_AZIMUTH_DEG = 215.0
DISPLACED_KM = 1500.0
#: Each landmark's mesh peers: the landmarks registered within this distance of it (far
#: peers catch no move: docs/mesh.md); the intercontinental ones then have none.
MESH_PEER_KM = 3000.0
MESH_PROBES = 8
#: Mesh rounds in flight at once in the whole simulated world (all its landmarks share one
#: event loop here, so more would only time one another's queueing).
MESH_CONCURRENCY = 4


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="verify a simulated fleet end to end (no network, ~30 s)",
        description=(
            "Start simulated landmarks and chips on 127.0.0.1 (a user-space delay emulator "
            "adds each geographic path's delay), collect signed reports, solve, certify, "
            "store, and write verdicts, maps and certificates to DIR."
        ),
    )
    demo.add_argument(
        "--chips", type=int, default=DEFAULT_CHIPS, metavar="N", help="chips (default: 24)"
    )
    demo.add_argument(
        "--landmarks",
        type=int,
        default=DEFAULT_LANDMARKS,
        metavar="M",
        help="landmarks (default: 20 — 17 in Europe, Tokyo, Ashburn, Singapore)",
    )
    demo.add_argument(
        "--out",
        default="chiploc-demo",
        metavar="DIR",
        help="output directory (default: ./chiploc-demo; a previous demo there is replaced)",
    )
    demo.add_argument("--seed", type=int, default=0, metavar="S", help="scenario seed")
    demo.add_argument(
        "--probes", type=int, default=DEFAULT_PROBES, metavar="P", help="probes per round"
    )
    demo.set_defaults(handler=_run)


# -- output directory ----------------------------------------------------------------


def prepare_output_dir(path: Path) -> None:
    """Create ``path``, or clear a previous demo's outputs there; refuse anything else."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory", reason="bad_output_dir")
    if path.is_dir() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise InputError(
                f"{path} is not empty and not a chiploc demo directory "
                f"(no {MARKER}); choose another --out",
                reason="bad_output_dir",
            )
        for name in OUTPUTS:
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    ensure_dir(path)
    (path / MARKER).write_text(
        "chiploc demo output; `chiploc demo` may delete and rewrite this directory's files\n",
        encoding="utf-8",
    )


# -- progress ------------------------------------------------------------------------


class _Progress:
    """A rich progress bar on a terminal; one plain line per finished phase otherwise."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live = console.is_terminal
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}

    @contextlib.contextmanager
    def running(self) -> Iterator[_Progress]:
        if self._live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            with self._bar:
                yield self
        else:
            yield self

    def phase(self, name: str, total: int) -> None:
        self._totals[name] = total
        self._done[name] = 0
        if self._bar is not None:
            self._tasks[name] = self._bar.add_task(name, total=total)

    def advance(self, name: str, n: int = 1) -> None:
        self._done[name] += n
        if self._bar is not None:
            self._bar.advance(self._tasks[name], n)
        elif self._done[name] == self._totals[name]:
            self._console.print(f"{name}: {self._done[name]}/{self._totals[name]} done")


# -- the run -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DemoRun:
    """Everything the demo measured and decided (rendered by the CLI, asserted by tests)."""

    directory: Path
    issued: tuple[IssuedVerdict, ...]
    expected: Mapping[str, frozenset[str]]
    triggers: tuple[TriggerOutcome, ...]
    collection: Collection
    lateness: LatenessStats
    excess_ns: tuple[int, ...]  # per evidence report: min RTT - 2 x modelled one-way floor
    audit: AuditReport
    map_errors: tuple[str, ...]
    elapsed_s: float
    #: the landmark mesh: its check, the planted misregistered landmarks (id -> km between
    #: registered and real site), failed mesh rounds, and the verdicts the suspects would
    #: have given had they been kept in (chip -> verdict, only those outside expectations)
    mesh: MeshStatus | None = None
    misregistered: Mapping[str, float] = dataclasses.field(default_factory=dict)
    mesh_failures: int = 0
    mesh_elapsed_s: float = 0.0
    kept_in_wrong: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def mismatches(self) -> tuple[str, ...]:
        return tuple(
            i.judgement.chip_id
            for i in self.issued
            if i.judgement.result.verdict.value not in self.expected[i.judgement.chip_id]
        )

    @property
    def mesh_missed(self) -> tuple[str, ...]:
        """Planted misregistered landmarks the mesh did not flag."""
        if self.mesh is None:
            return ()
        return tuple(sorted(set(self.misregistered) - self.mesh.suspects))

    @property
    def honest_excluded(self) -> tuple[str, ...]:
        """Honest landmarks out of proofs: the suspect rule's ties (docs/mesh.md), which cost
        tightness, never soundness."""
        if self.mesh is None:
            return ()
        return tuple(sorted(self.mesh.suspects - set(self.misregistered)))


def _verifier_key() -> PrivateKey:
    from chiploc.protocol import Role, generate_private_key

    return generate_private_key(Role.VERIFIER, VERIFIER_ID, seed=os.urandom(32))


def _mesh_peers(registry: Registry) -> dict[str, frozenset[str]]:
    """Each landmark's mesh peers: the others registered within :data:`MESH_PEER_KM`."""
    from chiploc.solver import geodesic_km

    sites = {lid: (e.lat, e.lon) for lid, e in registry.landmarks.items()}
    return {
        a: frozenset(
            b
            for b, (lat_b, lon_b) in sites.items()
            if b != a and float(geodesic_km(lat_a, lon_a, lat_b, lon_b)) <= MESH_PEER_KM
        )
        for a, (lat_a, lon_a) in sites.items()
    }


def _with_verifier(scenario: FleetScenario, verifier: PrivateKey) -> FleetScenario:
    from chiploc.protocol import VerifierEntry

    entry = VerifierEntry(id=verifier.id, public_key=verifier.public_key.key_bytes)
    return dataclasses.replace(scenario, registry=scenario.registry.with_entry(entry))


async def run_demo(
    *,
    directory: Path,
    chips: int,
    landmarks: int,
    seed: int,
    probes: int,
    rounds_per_landmark: int = ROUNDS_PER_LANDMARK,
    progress: _Progress | None = None,
) -> DemoRun:
    """Run the whole demonstration into ``directory`` (already prepared)."""
    from chiploc.protocol import write_keypair
    from chiploc.sim import FleetScenario, SimulatedWorld
    from chiploc.solver import geodesic_km
    from chiploc.store import open_store
    from chiploc.verifier import (
        Collector,
        RoundTarget,
        assess_and_flag,
        judge_all,
        record_judgement,
        record_registry,
        verify_audit,
        without_landmarks,
    )

    started = time.perf_counter()
    if probes < 1 or probes > 1000:
        raise InputError("--probes must be in 1..1000", reason="bad_argument")
    scenario = FleetScenario.generate(seed=seed, chips=chips, landmarks=landmarks)
    if any(lm.id == DISPLACED_LANDMARK for lm in scenario.landmarks):
        scenario = scenario.with_landmark_registered_at(
            DISPLACED_LANDMARK, azimuth_deg=DISPLACED_AZIMUTH_DEG, distance_km=DISPLACED_KM
        )
    verifier = _verifier_key()
    scenario = _with_verifier(scenario, verifier)
    registry = scenario.registry
    write_keypair(verifier, directory / "keys")
    (directory / "scenario.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "landmarks": [
                    {
                        "id": lm.id,
                        "city": lm.city.name,
                        "lat": lm.city.lat,
                        "lon": lm.city.lon,
                        "registered_lat": registry.landmarks[lm.id].lat,
                        "registered_lon": registry.landmarks[lm.id].lon,
                    }
                    for lm in scenario.landmarks
                ],
                "chips": [c.to_json_dict() for c in scenario.chips],
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    chip_ids = [c.id for c in scenario.chips]
    with open_store(directory / "chiploc.db") as store:
        record_registry(store, registry, now_unix_ns=time.time_ns())
        peers = _mesh_peers(registry)
        async with SimulatedWorld(
            scenario,
            directory,
            probes_per_round=probes,
            probe_timeout_ms=2000,
            max_concurrent_rounds=rounds_per_landmark,
            mesh=any(peers.values()),
            mesh_peers=peers,
            mesh_probes=MESH_PROBES,
        ) as world:
            mesh_failures = 0
            mesh_started = time.perf_counter()
            if any(peers.values()):
                if progress:
                    progress.phase("mesh (landmark pairs)", sum(map(len, peers.values())))
                passes = await world.mesh_pass(concurrency=MESH_CONCURRENCY)
                mesh_failures = sum(
                    isinstance(r, ChiplocError) for per in passes.values() for r in per.values()
                )
                if progress:
                    progress.advance("mesh (landmark pairs)", sum(map(len, passes.values())))
            mesh_elapsed_s = time.perf_counter() - mesh_started
            targets = [
                RoundTarget(chip_id=cid, address=f"{host}:{port}")
                for cid, (host, port) in world.chip_addresses.items()
            ]
            async with Collector(
                landmark_urls=world.landmark_urls,
                registry=registry,
                store=store,
                concurrency=len(world.landmark_urls),
            ) as collector:
                if progress:
                    progress.phase("measuring (landmarks)", len(world.landmark_urls))
                triggers = await collector.trigger(
                    targets,
                    probes=probes,
                    on_done=lambda _o: (
                        progress.advance("measuring (landmarks)") if progress else None
                    ),
                )
                collection = await collector.collect()
            lateness = await world.lateness()
            floors = {
                (lm.id, c.id): world.delay_floor_ns(lm.id, c.id)
                for lm in scenario.landmarks
                for c in scenario.chips
            }

        # The mesh first: a suspect landmark is out of every proof below.
        mesh = assess_and_flag(store, registry, now_unix_ns=time.time_ns())
        screened = without_landmarks(collection.screened, mesh.suspects)
        if progress:
            progress.phase("solving and certifying", len(chip_ids))
        unenrolled = {c.id: c.region for c in scenario.chips if not c.enrolled}
        judgements = await asyncio.to_thread(
            judge_all, chip_ids, screened, registry, region_specs=unenrolled
        )
        kept_in_wrong: dict[str, str] = {}
        if mesh.suspects:  # for contrast only: neither stored nor certified
            contrast = await asyncio.to_thread(
                judge_all, chip_ids, collection.screened, registry, region_specs=unenrolled
            )
            kept_in_wrong = _outside_expectations(contrast, scenario)
        issued = []
        evidence: list[MeasurementReport] = []
        by_digest = {r.digest_hex: r for r in screened.reports}
        for judgement in judgements:
            issued.append(
                record_judgement(store, judgement, signer=verifier, now_unix_ns=time.time_ns())
            )
            evidence.extend(by_digest[d] for d in judgement.evidence_digests)
            if progress:
                progress.advance("solving and certifying")
        map_errors = _write_outputs(directory, issued, scenario, progress)
        audit = verify_audit(store)
    excess = tuple(
        r.min_rtt_ns - 2 * floors[r.landmark_id, r.chip_id]
        for r in evidence
        if r.min_rtt_ns is not None
    )
    return DemoRun(
        directory=directory,
        issued=tuple(issued),
        expected={c.id: c.expected for c in scenario.chips},
        triggers=triggers,
        collection=collection,
        lateness=lateness,
        excess_ns=excess,
        audit=audit,
        map_errors=map_errors,
        elapsed_s=time.perf_counter() - started,
        mesh=mesh,
        misregistered={
            lid: float(
                geodesic_km(
                    lat,
                    lon,
                    *next((x.city.lat, x.city.lon) for x in scenario.landmarks if x.id == lid),
                )
            )
            for lid, (lat, lon) in scenario.misregistered.items()
        },
        mesh_failures=mesh_failures,
        mesh_elapsed_s=mesh_elapsed_s,
        kept_in_wrong=kept_in_wrong,
    )


def _outside_expectations(
    judgements: Sequence[ChipJudgement], scenario: FleetScenario
) -> dict[str, str]:
    """Chip -> verdict, for the judgements outside the chip's acceptable verdicts."""
    return {
        j.chip_id: j.result.verdict.value
        for j in judgements
        if j.result.verdict.value not in scenario.chip(j.chip_id).expected
    }


def _write_outputs(
    directory: Path,
    issued: Sequence[IssuedVerdict],
    scenario: FleetScenario,
    progress: _Progress | None,
) -> tuple[str, ...]:
    """Certificates, verdicts.jsonl and maps; returns the maps that could not be drawn."""
    from chiploc.maps import chip_map, fleet_map

    certificates = directory / "certificates"
    maps_dir = directory / "maps"
    certificates.mkdir(exist_ok=True)
    maps_dir.mkdir(exist_ok=True)
    lines = []
    results = []
    for item in issued:
        chip_id = item.judgement.chip_id
        (certificates / f"{chip_id}.json").write_bytes(item.certificate)
        obj = item.judgement.to_json_dict()
        obj["expected"] = scenario.chip(chip_id).expected_spec
        lines.append(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")
        results.append(item.judgement.result.to_json_dict())
    (directory / "verdicts.jsonl").write_text("".join(lines), encoding="utf-8")
    non_compliant = [r for r in results if r["verdict"] != "COMPLIANT"]
    if progress:
        progress.phase("drawing maps", len(non_compliant) + 1)
    errors: list[str] = []
    pages: list[tuple[Path, Callable[[], str]]] = [
        (directory / "fleet_map.html", lambda: fleet_map(results))
    ]
    for result in non_compliant:
        pages.append((maps_dir / f"{result['target']}.html", functools.partial(chip_map, result)))
    for path, draw in pages:
        try:
            path.write_text(draw(), encoding="utf-8")
        except ChiplocError as e:  # a map is a view: report it, keep the verdicts
            errors.append(f"{path.name}: {e} [{e.reason}]")
        if progress:
            progress.advance("drawing maps")
    return tuple(errors)


# -- rendering -----------------------------------------------------------------------


def render(run: DemoRun, console: Console) -> None:
    """The verdict table, the summary line and where the files are."""
    table = verdict_table(
        "chiploc demo: verdicts",
        [("chip", "left"), ("expected", "left"), *VERDICT_COLUMNS, ("check", "left")],
    )
    for item in run.issued:
        result = item.judgement.result
        ok = result.verdict.value in run.expected[item.judgement.chip_id]
        table.add_row(
            item.judgement.chip_id,
            "|".join(sorted(run.expected[item.judgement.chip_id])),
            *verdict_cells(result),
            "[green]OK[/]" if ok else "[bold red]MISMATCH[/]",
        )
    console.print(table)
    mesh = mesh_table(run.mesh) if run.mesh is not None else None
    if mesh is not None:
        console.print(mesh)
    console.print(summary_line(run), markup=False, highlight=False)
    console.print(run.audit.summary(), markup=False, highlight=False)


def summary_line(run: DemoRun) -> str:
    from chiploc.common.units import SPEED_OF_LIGHT_KM_PER_MS

    total = len(run.issued)
    wrong = len(run.mismatches)
    lat = run.lateness
    excess = sorted(run.excess_ns)
    if excess:
        median_us = statistics.median(excess) / 1000
        p99_us = excess[min(len(excess) - 1, round(0.99 * (len(excess) - 1)))] / 1000
        km = median_us / 1000 / 2 * SPEED_OF_LIGHT_KM_PER_MS
        overhead = (
            f"software overhead (min RTT - modelled path, {plural(len(excess), 'report')}): "
            f"median {median_us:.0f} us (~{km:.0f} km of radius), p99 {p99_us:.0f} us"
        )
    else:
        overhead = "software overhead: no reports"
    failed = sorted(
        {o.landmark_id for o in run.triggers if o.failure} | set(run.collection.failures)
    )
    rejected = run.collection.screened.rejected_total
    parts = [
        f"planted cases: {total - wrong}/{total} right, {wrong} wrong",
        *_mesh_summary(run),
        f"emulator lateness: median {lat.median_us:.1f} / p99 {lat.p99_us:.1f} / "
        f"max {lat.max_us:.1f} us over {lat.count} datagrams, early deliveries = {lat.early}",
        overhead,
        f"reports: {len(run.collection.screened.reports)} verified, {rejected} rejected"
        + (f", landmarks failed: {', '.join(failed)}" if failed else ""),
        f"elapsed {run.elapsed_s:.1f} s",
        f"files in {run.directory}/ (verdicts.jsonl, fleet_map.html, maps/, certificates/, "
        "registry.json, chiploc.db)",
    ]
    return "; ".join(parts)


def _mesh_summary(run: DemoRun) -> list[str]:
    """The mesh's part of the summary: what it checked, whom it flagged and why it matters."""
    if run.mesh is None or not run.mesh.shown:
        return []
    parts = [
        run.mesh.summary()
        + (f", {run.mesh_failures} mesh rounds failed" if run.mesh_failures else "")
        + f" (mesh pass {run.mesh_elapsed_s:.1f} s)"
    ]
    for lid, km in sorted(run.misregistered.items()):
        caught = "flagged, out of every proof" if lid in run.mesh.suspects else "NOT FLAGGED"
        parts.append(
            f"planted landmark {lid}: registered {km:,.0f} km from where it runs: {caught}"
        )
    if run.honest_excluded:
        parts.append(
            "also out of proofs on a tie of the suspect rule: " + ", ".join(run.honest_excluded)
        )
    if run.mesh.suspects:
        wrong = ", ".join(f"{c} {v}" for c, v in sorted(run.kept_in_wrong.items()))
        parts.append(
            f"kept in, {'/'.join(sorted(run.mesh.suspects))} would have made "
            f"{plural(len(run.kept_in_wrong), 'planted case')} wrong"
            + (f" ({wrong})" if wrong else "")
        )
    return parts


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    if not 1 <= args.chips <= 1000:
        raise InputError("--chips must be in 1..1000", reason="bad_argument")
    directory = Path(args.out)
    prepare_output_dir(directory)
    err = Console(stderr=True)
    out = Console()
    if not out.is_terminal:  # a log or a pipe: do not squeeze the table into 80 columns
        out = Console(width=160)
    progress = _Progress(err)
    with progress.running():
        run = asyncio.run(
            run_demo(
                directory=directory,
                chips=args.chips,
                landmarks=args.landmarks,
                seed=args.seed,
                probes=args.probes,
                progress=progress,
            )
        )
    render(run, out)
    for error in run.map_errors:
        print(f"chiploc demo: warning: map not drawn: {error}", file=sys.stderr)
    if run.mismatches:
        print(
            f"chiploc demo: {plural(len(run.mismatches), 'planted case')} outside their acceptable "
            f"verdicts: {', '.join(run.mismatches)}",
            file=sys.stderr,
        )
        return 1
    if run.mesh_missed:
        print(
            "chiploc demo: the mesh did not flag the planted landmark(s) "
            + ", ".join(run.mesh_missed),
            file=sys.stderr,
        )
        return 1
    if run.map_errors:
        print(f"chiploc demo: {plural(len(run.map_errors), 'map')} missing", file=sys.stderr)
        return 1
    return 0
