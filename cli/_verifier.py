"""``chiploc verifier run``: collect, verify, solve, store and certify against real landmarks.

The operator's counterpart of ``chiploc demo`` (``docs/demo.md``, "Running the
verifier for real"): one run triggers rounds at every configured landmark for
every configured chip (:meth:`verifier.Collector.trigger`), collects the new
signed reports (:meth:`verifier.Collector.collect`, resuming from cursors
persisted beside the store), judges every chip (:func:`verifier.judge_all`),
records and certifies each verdict (:func:`verifier.record_judgement`), writes
the certificates, prints the verdicts and checks the audit log
(:func:`verifier.verify_audit`).

Invariants: every landmark the config names is an enrolled, non-revoked
landmark of the pinned registry, and the signing key is an enrolled verifier
(else a ConfigError, exit 2, before anything is contacted); a run in which no
landmark could be reached certifies nothing (an outage of ours is not a
chip's UNREACHABLE); cursors and certificates are written atomically (temp
file + rename), after the store holds what they refer to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from chiploc.cli import EXIT_TRANSIENT
from chiploc.cli._files import ensure_dir
from chiploc.cli._report import VERDICT_COLUMNS, mesh_table, verdict_cells, verdict_table
from chiploc.common.config import read_toml_table
from chiploc.common.errors import ChiplocError, ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from chiploc.protocol import PrivateKey, Registry
    from chiploc.solver import Calibration
    from chiploc.store import Store
    from chiploc.verifier import (
        AuditReport,
        Collection,
        Executor,
        FleetRun,
        IssuedVerdict,
        MeshStatus,
        Screened,
        TriggerOutcome,
    )

__all__ = ["VerifierConfig", "VerifierRun", "register", "run_verifier_once"]

#: The cursor file's format tag (a JSON file beside the store: ``<db>.cursors.json``).
CURSORS_FORMAT = "chiploc-verifier-cursors/1"
_MAX_CURSOR = 2**63 - 1
_MAX_CURSOR_FILE_BYTES = 16 * 1024 * 1024
_KNOWN_KEYS = frozenset(
    {
        "id",
        "key",
        "registry",
        "authority_key",
        "db",
        "landmarks",
        "chips",
        "probes",
        "model",
        "calibration",
        "tolerate",
        "certificates_dir",
        "certificate_validity_s",
        "trigger_timeout_s",
        "verification",
        "full_check_rate",
    }
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ver = subparsers.add_parser(
        "verifier", help="run the verifier against real landmark daemons and chip agents"
    )
    sub = ver.add_subparsers(dest="verifier_command", metavar="ACTION", required=True)
    run = sub.add_parser(
        "run",
        help="trigger rounds, collect, verify, solve, store and certify",
        description=(
            "Trigger measurement rounds at every configured landmark for every configured chip, "
            "collect and verify the signed reports, judge and certify every chip, store the "
            "verdicts and check the audit log. Exit 0 when the run completed (whatever the "
            "verdicts), 1 when the audit log fails or no landmark could be reached, 2 for a "
            "bad config."
        ),
    )
    run.add_argument("--config", required=True, metavar="FILE", help="verifier.toml")
    run.add_argument(
        "--db",
        metavar="DB",
        help="store: an SQLite file path or a postgresql:// URL (overrides the config's db)",
    )
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one run, then exit (the default)")
    mode.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="repeat every S seconds until SIGINT/SIGTERM (the current run finishes cleanly)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per chip on stdout (summary and audit on stderr)",
    )
    run.add_argument(
        "--cluster",
        metavar="CLUSTER",
        help=(
            "verify and judge on Dask distributed, in batches of thousands of chips: "
            "local[:N], a local cluster of N worker processes, or tcp://HOST:8786, an existing "
            "scheduler (default: "
            "$DASK_SCHEDULER_ADDRESS if set, else in-process); docs/scale.md"
        ),
    )
    run.set_defaults(handler=_run)


# -- config --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChipTarget:
    """A chip to measure: where landmarks probe it, and a claimed region if unenrolled."""

    address: str
    region: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VerifierConfig:
    """``[verifier]`` of verifier.toml (paths already resolved from the file's directory)."""

    id: str
    key_path: Path
    registry_path: Path
    db_path: Path
    landmarks: Mapping[str, str]  # landmark id -> control-plane URL
    chips: Mapping[str, ChipTarget]
    authority_key_path: Path | None = None
    probes: int = 32
    model: str = "vacuum"
    calibration_path: Path | None = None
    tolerate: int = 0
    certificates_dir: Path | None = None
    certificate_validity_s: int = 24 * 3600
    trigger_timeout_s: float = 120.0
    #: ``db = "postgresql://..."`` (or ``--db URL``): the PostgreSQL store; ``db_path`` then
    #: only anchors the cursor file (``verifier-<id>`` beside the config file).
    db_url: str | None = None
    #: ``"full"`` (every chip signature of every report) or ``"lazy"`` (landmark signature
    #: and the minimum-RTT probe's chip signature, plus the full check on a keyed random
    #: sample of ``full_check_rate``): docs/protocol.md, "Lazy verification".
    verification: str = "full"
    full_check_rate: float = 0.01

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError("id must be a non-empty string")
        if not self.landmarks:
            raise ConfigError("[verifier.landmarks] must name at least one landmark")
        if not self.chips:
            raise ConfigError("[verifier.chips] must name at least one chip")
        for landmark_id, url in self.landmarks.items():
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"landmark {landmark_id}: URL must be http(s)://..., got {url!r}")
        if not _is_int(self.probes) or not 1 <= self.probes <= 10_000:
            raise ConfigError(f"probes must be an integer in 1..10000, got {self.probes!r}")
        if self.model not in ("vacuum", "fiber", "calibrated"):
            raise ConfigError(f"model must be vacuum, fiber or calibrated, got {self.model!r}")
        if self.model == "calibrated" and self.calibration_path is None:
            raise ConfigError("model = 'calibrated' needs calibration = FILE")
        if not _is_int(self.tolerate) or not 0 <= self.tolerate <= 8:
            raise ConfigError(f"tolerate must be an integer in 0..8, got {self.tolerate!r}")
        if not _is_int(self.certificate_validity_s) or self.certificate_validity_s <= 0:
            raise ConfigError("certificate_validity_s must be a positive integer")
        timeout = self.trigger_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError("trigger_timeout_s must be a positive number")
        if self.verification not in ("full", "lazy"):
            raise ConfigError(f"verification must be full or lazy, got {self.verification!r}")
        rate = self.full_check_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(f"full_check_rate must be a number in [0, 1], got {rate!r}")
        object.__setattr__(self, "landmarks", MappingProxyType(dict(self.landmarks)))
        object.__setattr__(self, "chips", MappingProxyType(dict(self.chips)))

    @classmethod
    def from_toml(
        cls, path: str | Path, *, db_override: str | Path | None = None
    ) -> VerifierConfig:
        section, base = read_toml_table(path, "verifier")
        return cls.from_mapping(section, base=base, source=str(path), db_override=db_override)

    @classmethod
    def from_mapping(
        cls,
        section: Mapping[str, Any],
        *,
        base: Path,
        source: str = "<config>",
        db_override: str | Path | None = None,
    ) -> VerifierConfig:
        from chiploc.landmarks import parse_host_port

        unknown = set(section) - _KNOWN_KEYS
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}")
        required = ["id", "key", "registry", "landmarks", "chips"]
        if db_override is None:
            required.append("db")
        for name in required:
            if name not in section:
                raise ConfigError(f"{source}: missing required key {name!r}")

        def path(name: str) -> Path:
            value = section[name]
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{source}: {name} must be a path string")
            return base / value

        def optional_path(name: str) -> Path | None:
            return path(name) if name in section else None

        landmarks = section["landmarks"]
        if not isinstance(landmarks, dict):
            raise ConfigError(f'{source}: landmarks must be a table of id = "URL"')
        chips: dict[str, ChipTarget] = {}
        raw_chips = section["chips"]
        if not isinstance(raw_chips, dict):
            raise ConfigError(f'{source}: chips must be a table of id = "host:port"')
        for chip_id, value in raw_chips.items():
            region: str | None = None
            if isinstance(value, dict):
                extra = set(value) - {"address", "region"}
                if extra or "address" not in value:
                    raise ConfigError(
                        f"{source}: chip {chip_id}: a table needs address (and optional region)"
                    )
                claimed = value.get("region")
                if claimed is not None and (not isinstance(claimed, str) or not claimed):
                    raise ConfigError(f"{source}: chip {chip_id}: region must be a spec string")
                region = claimed
                value = value["address"]
            if not isinstance(value, str):
                raise ConfigError(f'{source}: chip {chip_id}: address must be "host:port"')
            parse_host_port(value, what=f"chip {chip_id} address")
            chips[chip_id] = ChipTarget(address=value, region=region)
        from chiploc.store import is_postgres_url

        db_value: object = db_override if db_override is not None else section["db"]
        db_url: str | None = None
        if is_postgres_url(db_value):
            db_url = str(db_value)
            db_path = base / f"verifier-{section['id']}"
        elif db_override is not None:
            db_path = Path(db_override)
        else:
            db_path = path("db")
        try:
            return cls(
                id=section["id"],
                key_path=path("key"),
                registry_path=path("registry"),
                db_path=db_path,
                db_url=db_url,
                authority_key_path=optional_path("authority_key"),
                landmarks=landmarks,
                chips=chips,
                probes=section.get("probes", 32),
                model=section.get("model", "vacuum"),
                calibration_path=optional_path("calibration"),
                tolerate=section.get("tolerate", 0),
                certificates_dir=optional_path("certificates_dir"),
                certificate_validity_s=section.get("certificate_validity_s", 24 * 3600),
                trigger_timeout_s=section.get("trigger_timeout_s", 120.0),
                verification=section.get("verification", "full"),
                full_check_rate=section.get("full_check_rate", 0.01),
            )
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}", reason=e.reason) from e

    @property
    def db_target(self) -> str:
        """What to open: the PostgreSQL URL, else the SQLite path."""
        return self.db_url if self.db_url is not None else str(self.db_path)

    @property
    def cursors_path(self) -> Path:
        """Where the collection cursors persist between runs: beside the store."""
        return self.db_path.with_name(self.db_path.name + ".cursors.json")

    def check_against(self, registry: Registry) -> None:
        """Refuse landmarks the registry does not accept and chips it cannot judge."""
        for landmark_id in self.landmarks:
            try:
                registry.landmark(landmark_id)
            except ChiplocError as e:
                raise ConfigError(
                    f"landmark {landmark_id}: not usable: {e} [{e.reason}]",
                    reason="landmark_not_enrolled",
                ) from e
        for chip_id, target in self.chips.items():
            if chip_id not in registry.chips and target.region is None:
                raise ConfigError(
                    f"chip {chip_id}: not in the registry; give it a table "
                    "{address = ..., region = SPEC} to certify it UNREACHABLE, or remove it",
                    reason="chip_not_enrolled",
                )
        try:
            registry.verifier(self.id)
        except ChiplocError as e:
            raise ConfigError(
                f"verifier {self.id}: not usable: {e} [{e.reason}]",
                reason="verifier_not_enrolled",
            ) from e


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- cursors -------------------------------------------------------------------------


def load_cursors(path: Path, landmark_urls: Mapping[str, str]) -> tuple[dict[str, int], str | None]:
    """Cursors saved by a previous run, for landmarks still at the same URL.

    A missing file means a first run. An unreadable or malformed file is not
    fatal (the store is idempotent: re-collecting only re-counts reports) and
    comes back as a warning.
    """
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_CURSOR_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        return {}, f"{path}: cannot read cursors ({e.strerror}); collecting from the start"
    try:
        doc = json.loads(data)
        if len(data) > _MAX_CURSOR_FILE_BYTES or doc.get("format") != CURSORS_FORMAT:
            raise ValueError("not a cursor file")
        out: dict[str, int] = {}
        for landmark_id, entry in doc["landmarks"].items():
            cursor = entry["cursor"]
            if not _is_int(cursor) or not 0 <= cursor <= _MAX_CURSOR:
                raise ValueError(f"bad cursor for {landmark_id}")
            if landmark_urls.get(landmark_id) == entry["url"]:
                out[landmark_id] = cursor
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return {}, f"{path}: malformed cursor file ({e}); collecting from the start"
    return out, None


def save_cursors(path: Path, cursors: Mapping[str, int], landmark_urls: Mapping[str, str]) -> None:
    """Write the cursors (with each landmark's URL) atomically: temp file, fsync, rename."""
    doc = {
        "format": CURSORS_FORMAT,
        "landmarks": {
            lid: {"url": landmark_urls[lid], "cursor": cursor}
            for lid, cursor in sorted(cursors.items())
            if lid in landmark_urls
        },
    }
    _write_atomic(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- one run -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VerifierRun:
    """What one run measured and decided (rendered by the CLI, asserted by tests)."""

    issued: tuple[IssuedVerdict, ...]
    triggers: tuple[TriggerOutcome, ...]
    collection: Collection
    audit: AuditReport | None  # None when the run certified nothing (no landmark reached)
    unreached: tuple[str, ...]  # landmarks that failed both trigger and collection
    cursor_warning: str | None
    elapsed_s: float
    mesh: MeshStatus | None = None  # the landmark mesh check of this run (docs/mesh.md)
    fleet: FleetRun | None = None  # --cluster: the batches' outcome (issued is then empty)
    #: the landmarks configured for this run
    landmarks: tuple[str, ...] = ()
    #: per chip, the landmarks that answered in its previous stored verdict
    previous: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    def absent(self, item: IssuedVerdict) -> str:
        """The landmarks that gave this chip no answer now, and those of them that did in
        its previous verdict (a landmark dropping out can turn a verdict)."""
        answered = {b.measurement.landmark for b in item.judgement.result.landmarks}
        silent = [lm for lm in self.landmarks if lm not in answered]
        before = self.previous.get(item.judgement.chip_id, frozenset())
        gone = sorted(lm for lm in before if lm not in answered)
        parts = []
        if silent:
            parts.append("no answer from " + ", ".join(silent))
        if gone:
            parts.append("in the previous verdict but missing now: " + ", ".join(gone))
        return "; ".join(parts)

    @property
    def failed_landmarks(self) -> Mapping[str, str]:
        """Landmark id -> why its trigger or collection failed."""
        out = {o.landmark_id: o.failure for o in self.triggers if o.failure}
        for landmark_id, reason in self.collection.failures.items():
            out.setdefault(landmark_id, reason)
        return MappingProxyType(dict(sorted(out.items())))

    @property
    def no_landmark_reached(self) -> bool:
        return len(self.unreached) == len(self.triggers)


async def run_verifier_once(
    config: VerifierConfig,
    *,
    registry: Registry,
    signer: PrivateKey,
    store: Store,
    calibration: Calibration | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifierRun:
    """Trigger, collect, judge, certify and store once; check the audit log.

    With ``executor`` (``--cluster``), the collected reports go to
    :func:`verifier.run_fleet` in batches (re-verified and judged where the
    executor runs them; certified and stored here, one transaction a batch).
    """
    from chiploc.solver import Model
    from chiploc.verifier import (
        Collector,
        LazyVerification,
        RoundTarget,
        assess_and_flag,
        judge_all,
        record_judgement,
        record_registry,
        verify_audit,
        without_landmarks,
    )

    started = time.perf_counter()
    record_registry(store, registry, now_unix_ns=time.time_ns())
    cursors, warning = load_cursors(config.cursors_path, config.landmarks)
    targets = [
        RoundTarget(chip_id=chip_id, address=t.address) for chip_id, t in config.chips.items()
    ]
    async with Collector(
        landmark_urls=config.landmarks,
        registry=registry,
        store=store,
        concurrency=min(64, len(config.landmarks)),
        trigger_timeout_s=config.trigger_timeout_s,
        cursors=cursors,
        # The sample key is fresh randomness per run: landmarks cannot predict the sample.
        lazy=(
            LazyVerification(key=os.urandom(32), rate=float(config.full_check_rate))
            if config.verification == "lazy"
            else None
        ),
    ) as collector:
        triggers = await collector.trigger(targets, probes=config.probes)
        collection = await collector.collect()
    save_cursors(config.cursors_path, collection.cursors, config.landmarks)
    unreached = tuple(
        sorted(
            o.landmark_id for o in triggers if o.failure and o.landmark_id in collection.failures
        )
    )
    issued: list[IssuedVerdict] = []
    audit: AuditReport | None = None
    # The mesh checks the network first: a suspect landmark is out of every proof below.
    mesh = assess_and_flag(store, registry, now_unix_ns=time.time_ns())
    screened = without_landmarks(collection.screened, mesh.suspects)
    fleet: FleetRun | None = None
    previous = _previous_landmarks(store, config.chips)
    if len(unreached) < len(triggers) and executor is not None:
        # In this thread: the store's connection belongs to it (sqlite3 refuses others).
        # Collection is over, so the loop has nothing else to do meanwhile.
        fleet = _run_batches(
            config, registry, signer, store, screened, calibration, executor, progress
        )
        audit = verify_audit(store)
    elif len(unreached) < len(triggers):
        claimed = {cid: t.region for cid, t in config.chips.items() if t.region is not None}
        registered = {
            cid: registry.chips[cid].region
            for cid in config.chips
            if cid in registry.chips and cid not in claimed
        }
        judgements = await asyncio.to_thread(
            judge_all,
            list(config.chips),
            screened,
            registry,
            region_specs={**registered, **claimed},
            model=Model(config.model),
            tolerate=config.tolerate,
            calibration=calibration,
        )
        for judgement in judgements:
            item = record_judgement(
                store,
                judgement,
                signer=signer,
                now_unix_ns=time.time_ns(),
                validity_s=config.certificate_validity_s,
            )
            issued.append(item)
            if config.certificates_dir is not None:
                ensure_dir(config.certificates_dir)
                _write_atomic(
                    config.certificates_dir / f"{judgement.chip_id}.json", item.certificate
                )
        audit = verify_audit(store)
    return VerifierRun(
        issued=tuple(issued),
        triggers=triggers,
        collection=collection,
        audit=audit,
        unreached=unreached,
        cursor_warning=warning,
        elapsed_s=time.perf_counter() - started,
        mesh=mesh,
        fleet=fleet,
        landmarks=tuple(config.landmarks),
        previous=previous,
    )


def _run_batches(
    config: VerifierConfig,
    registry: Registry,
    signer: PrivateKey,
    store: Store,
    screened: Screened,
    calibration: Calibration | None,
    executor: Executor,
    progress: Callable[[int, int], None] | None,
) -> FleetRun:
    """The judge/certify/store step on an executor: batches of chips grouped by zone."""
    from chiploc.solver import Model
    from chiploc.verifier import (
        BatchParams,
        LazyVerification,
        StoreSink,
        chip_regions_of,
        make_batches,
        run_fleet,
    )

    raws: dict[str, list[bytes]] = {cid: [] for cid in config.chips}
    # ``screened``: the collection without the mesh's suspects (docs/mesh.md).
    for report in screened.reports:
        if report.chip_id in raws:
            raws[report.chip_id].append(report.raw)
    claimed = {cid: t.region for cid, t in config.chips.items() if t.region is not None}
    now = time.time_ns()
    params = BatchParams(
        now_unix_ns=now,
        model=Model(config.model),
        tolerate=config.tolerate,
        calibration=calibration,
        lazy=(
            LazyVerification(key=os.urandom(32), rate=float(config.full_check_rate))
            if config.verification == "lazy"
            else None
        ),
    )
    certificates: dict[str, bytes] = {}
    sink = StoreSink(
        store=store,
        signer=signer,
        validity_s=config.certificate_validity_s,
        certificates=certificates,
    )
    batches = make_batches(chip_regions_of(config.chips, registry, claimed), raws)
    fleet = run_fleet(batches, params, executor=executor, sink=sink, progress=progress, keep=True)
    if config.certificates_dir is not None:
        ensure_dir(config.certificates_dir)
        for chip_id, certificate in certificates.items():
            _write_atomic(config.certificates_dir / f"{chip_id}.json", certificate)
    return fleet


def _previous_landmarks(store: Store, chips: Iterable[str]) -> dict[str, frozenset[str]]:
    """Per chip, the landmarks that answered in its latest stored verdict (none: absent).

    Reads each chip's verdict history through the store's iterator and keeps the last; a
    store method for the latest verdict per chip would make this one query.
    """
    out: dict[str, frozenset[str]] = {}
    for chip_id in chips:
        last = None
        for record in store.verdicts(chip_id=chip_id):
            last = record
        if last is None:
            continue
        try:
            result = json.loads(last.result_json)
            out[chip_id] = frozenset(str(b["id"]) for b in result.get("landmarks") or ())
        except (ValueError, TypeError, KeyError):
            continue  # an unreadable old row says nothing about who answered
    return out


# -- rendering -----------------------------------------------------------------------


def render_table(run: VerifierRun, console: Console) -> None:
    table = verdict_table("chiploc verifier: verdicts", [("chip", "left"), *VERDICT_COLUMNS])
    for item in run.issued:
        table.add_row(
            item.judgement.chip_id, *verdict_cells(item.judgement.result, more=run.absent(item))
        )
    console.print(table)
    render_mesh(run, console)


def render_mesh(run: VerifierRun, console: Console) -> None:
    """The mesh's suspects and cleared landmarks, after the verdicts (nothing if none)."""
    table = mesh_table(run.mesh) if run.mesh is not None else None
    if table is not None:
        console.print(table)


def mesh_json_line(run: VerifierRun) -> str | None:
    """``--json``: after the chips' lines, one ``{"mesh": {...}}`` line when the mesh has
    anything to say (links checked, suspects or clears; docs/mesh.md)."""
    if run.mesh is None or not run.mesh.shown:
        return None
    return json.dumps({"mesh": run.mesh.to_json_dict()}, sort_keys=True, separators=(",", ":"))


def render_fleet(fleet: FleetRun, console: Console, *, as_json: bool) -> None:
    """--cluster: one JSON line or one table row per chip, from the stored results."""
    if as_json:
        for chip_id, result in sorted(fleet.results.items()):
            line = json.dumps({**result, "chip": chip_id}, sort_keys=True, separators=(",", ":"))
            print(line, flush=True)
        return
    from rich.table import Table

    table = Table(title="chiploc verifier: verdicts (batches on a cluster)")
    for column in ("chip", "verdict", "proof", "margin km", "message"):
        table.add_column(column)
    for chip_id, r in sorted(fleet.results.items()):
        margin = r.get("margin_km")
        table.add_row(
            chip_id,
            str(r["verdict"]),
            "yes" if r.get("proof") else "no",
            "" if margin is None else f"{margin:.0f}",
            str(r.get("message", "")),
        )
    console.print(table)


@contextlib.contextmanager
def _progress(console: Console, *, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Chips landed in the store, as batches finish (rich, on stderr)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[bold]verifying", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("chips", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def summary_line(run: VerifierRun) -> str:
    c = run.collection
    verdicts = Counter(i.judgement.result.verdict.value for i in run.issued)
    if run.fleet is not None:
        verdicts = Counter(run.fleet.verdicts.values())
    rejected = ", ".join(f"{k} {v}" for k, v in c.screened.rejected.items())
    failed = run.failed_landmarks
    refused = Counter(reason for o in run.triggers for reason in o.errors.values())
    parts = [
        "verdicts: "
        + (", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) or "none issued"),
        f"reports: {len(c.screened.reports)} verified ({c.stored} new), "
        f"{c.screened.rejected_total} rejected" + (f" ({rejected})" if rejected else ""),
        "landmarks failed: "
        + (", ".join(f"{k} ({v})" for k, v in failed.items()) if failed else "none")
        + f" of {len(run.triggers)}",
    ]
    if refused:
        parts.append(
            "targets refused: " + ", ".join(f"{k} {v}" for k, v in sorted(refused.items()))
        )
    if c.mesh_verified or c.mesh_rejected:
        mesh_bad = ", ".join(f"{k} {v}" for k, v in sorted(c.mesh_rejected.items()))
        parts.append(
            f"mesh reports: {c.mesh_verified} verified ({c.mesh_stored} new), "
            f"{sum(c.mesh_rejected.values())} rejected" + (f" ({mesh_bad})" if mesh_bad else "")
        )
    if run.mesh is not None and (run.mesh.assessment.checks or run.mesh.suspects):
        parts.append(run.mesh.summary())
    if c.screened.flagged:
        parts.append("LANDMARKS FLAGGED: " + ", ".join(sorted(c.screened.flagged)))
    if run.fleet is not None:
        f = run.fleet
        parts.append(
            f"batches: {f.batches} on {len(f.worker_pids)} worker process(es), "
            f"worker CPU {f.worker_cpu_s:.1f} s, store retries {f.store_retries}"
        )
    head = run.audit.head if run.audit is not None else None
    parts.append(f"audit head {head}" if head is not None else "audit head: n/a")
    parts.append(f"elapsed {run.elapsed_s:.1f} s")
    return "; ".join(parts)


# -- the command ---------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from chiploc.cli._agent import _run_loop
    from chiploc.protocol import Role, load_private_key, load_registry_pinned

    if args.interval is not None and not args.interval > 0:
        raise ConfigError("--interval must be a positive number of seconds", reason="bad_argument")
    config = VerifierConfig.from_toml(args.config, db_override=args.db)
    registry = load_registry_pinned(config.registry_path, config.authority_key_path)
    config.check_against(registry)
    signer = load_private_key(config.key_path, role=Role.VERIFIER, id=config.id)
    calibration = None
    if config.calibration_path is not None:
        from chiploc.solver import Calibration

        calibration = Calibration.from_csv(config.calibration_path)
    status = [0]
    with _cluster(args.cluster, config) as executor:
        _run_loop(_main(args, config, registry, signer, calibration, status, executor))
    return status[0]


@contextlib.contextmanager
def _cluster(spec_text: str | None, config: VerifierConfig) -> Iterator[Executor | None]:
    """The Dask executor of ``--cluster`` (or DASK_SCHEDULER_ADDRESS), open for every run."""
    from chiploc.protocol import resolve_authority_key
    from chiploc.verifier import dask_client, dask_executor, parse_cluster

    spec = parse_cluster(spec_text)
    if spec is None:
        yield None
        return
    registry_json = config.registry_path.read_bytes()
    authority = resolve_authority_key(config.registry_path, config.authority_key_path)
    print(f"chiploc verifier: batches run on {spec.describe()}", file=sys.stderr)
    with dask_client(spec) as client:
        yield dask_executor(client, registry_json=registry_json, authority_public_key=authority)


async def _main(
    args: argparse.Namespace,
    config: VerifierConfig,
    registry: Registry,
    signer: PrivateKey,
    calibration: Calibration | None,
    status: list[int],
    executor: Executor | None = None,
) -> None:
    from rich.console import Console

    from chiploc.store import open_database

    out = Console()
    if not out.is_terminal:  # a log or a pipe: do not squeeze the table into 80 columns
        out = Console(width=160)
    err = Console(stderr=True, width=out.width)
    info = err if args.json else out
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    if args.interval is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        with open_database(config.db_target) as store:
            while True:
                with _progress(err, enabled=executor is not None) as progress:
                    run = await run_verifier_once(
                        config,
                        registry=registry,
                        signer=signer,
                        store=store,
                        calibration=calibration,
                        executor=executor,
                        progress=progress,
                    )
                if run.cursor_warning:
                    print(f"chiploc verifier: warning: {run.cursor_warning}", file=sys.stderr)
                if run.fleet is not None:
                    render_fleet(run.fleet, out, as_json=args.json)
                    if not args.json:
                        render_mesh(run, out)
                elif args.json:
                    for item in run.issued:
                        line = json.dumps(
                            item.judgement.to_json_dict(), sort_keys=True, separators=(",", ":")
                        )
                        print(line, flush=True)
                else:
                    render_table(run, out)
                if args.json and (mesh_line := mesh_json_line(run)) is not None:
                    print(mesh_line, flush=True)
                info.print(summary_line(run), markup=False, highlight=False)
                if run.audit is not None:
                    info.print(run.audit.summary(), markup=False, highlight=False)
                for landmark_id, why in run.collection.screened.flagged.items():
                    print(
                        f"chiploc verifier: ALERT: landmark {landmark_id} signed a forged "
                        f"transcript: {why}; none of its reports in this run were used",
                        file=sys.stderr,
                    )
                if run.no_landmark_reached:
                    print(
                        "chiploc verifier: no landmark could be reached "
                        f"({', '.join(f'{k}: {v}' for k, v in run.failed_landmarks.items())}); "
                        "nothing certified",
                        file=sys.stderr,
                    )
                    status[0] = EXIT_TRANSIENT  # a retry may reach them
                else:
                    status[0] = 1 if run.collection.screened.flagged else 0
                if args.interval is None or stop.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.interval)
                if stop.is_set():
                    break
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
