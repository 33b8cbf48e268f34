"""``LandmarkDaemon``: the UDP prober, the report store and the aiohttp control plane.

Invariants: a round is only measured for an enrolled, non-revoked chip; every report returned
(by :meth:`LandmarkDaemon.measure` or HTTP) has been durably stored first; ``stop()`` refuses
new rounds, waits for in-flight ones to finish and be stored, then closes everything. The
daemon reads time only through its two clocks (``monotonic_ns`` for RTTs, ``realtime_ns`` for
HELLO ``issued_at`` and report start/finish), both injectable, defaulting to the system's.

The landmark mesh (``docs/mesh.md``): the daemon measures its configured peers
(``mesh_peers``) every ``mesh_interval_s`` with the same signed protocol (PEER_HELLO; the
peer answers with its landmark key through its own agent side, which ``chiploc landmark
serve`` runs on ``mesh_listen``). Mesh reports are stored and served like chip reports; the
daemon keeps each peer's minimum RTT and checks it against the vacuum bound for the two
registered sites (:func:`chiploc.solver.check_link`), shown in ``/metrics`` and ``GET
/v1/mesh``. A violation here is the landmark's own view; the verifier decides suspects.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from chiploc.common.errors import (
    ChiplocError,
    InputError,
    NetworkError,
    ProbeTimeout,
    TransportError,
    VerificationError,
)
from chiploc.landmarks._config import LandmarkConfig, parse_host_port
from chiploc.landmarks._core import RoundCore
from chiploc.landmarks._openapi import openapi_document
from chiploc.landmarks._store import ReportStore
from chiploc.landmarks._udp import UdpProber
from chiploc.protocol import (
    MAX_BATCH_SIZE,
    ChipEntry,
    LandmarkEntry,
    MeasurementReport,
    PrivateKey,
    Registry,
    Role,
    decode_report,
    load_private_key,
    load_registry_pinned,
    sign_report_batch,
)
from chiploc.solver import LinkCheck, MeshLink, check_link

__all__ = ["LandmarkDaemon"]

_MAX_TARGETS = 100_000
#: Mesh rounds of one pass in flight at once: enough to finish a pass of many far peers
#: within the interval, few enough that rounds do not time one another's queueing.
_MESH_CONCURRENCY = 4


class LandmarkDaemon:
    """An embeddable landmark. ``key``/``registry`` override the config's files (tests, sim);
    ``monotonic_ns``/``realtime_ns`` replace the system clocks (tests: a wall-clock step)."""

    def __init__(
        self,
        config: LandmarkConfig,
        *,
        key: PrivateKey | None = None,
        registry: Registry | None = None,
        monotonic_ns: Callable[[], int] = time.perf_counter_ns,
        realtime_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self._monotonic_ns = monotonic_ns
        self._realtime_ns = realtime_ns
        self._key = (
            key if key is not None else load_private_key(config.key_path, role=Role.LANDMARK)
        )
        if self._key.role is not Role.LANDMARK or self._key.id != config.id:
            raise InputError(
                f"key is {self._key.role.value}:{self._key.id}, not landmark:{config.id}"
            )
        self._registry = (
            registry
            if registry is not None
            else load_registry_pinned(config.registry_path, config.authority_key_path)
        )
        self._registry.landmark(config.id)  # we must be enrolled ourselves
        self._counters: dict[str, int] = {}
        self._prober: UdpProber | None = None
        self._store: ReportStore | None = None
        self._db_executor: ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self._http_url = ""
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._semaphore = asyncio.Semaphore(config.max_concurrent_rounds)
        self._mesh: dict[str, LinkCheck] = {}  # peer id -> check of the minimum RTT so far
        self._mesh_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._store = ReportStore(self.config.db_path)
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="landmark-db")
        self._prober = UdpProber(
            self.config.udp_host,
            self.config.udp_port,
            self._count,
            monotonic_ns=self._monotonic_ns,
            realtime_ns=self._realtime_ns,
        )
        self._prober.start()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/v1/rounds", self._rounds)
        app.router.add_get("/v1/reports", self._reports)
        app.router.add_post("/v1/mesh/rounds", self._mesh_rounds)
        app.router.add_get("/v1/mesh", self._mesh_view)
        app.router.add_get("/openapi.json", self._openapi)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http_host, self.config.http_port)
        try:
            await site.start()
        except OSError as e:
            await self.stop()
            raise TransportError(f"cannot bind HTTP {self.config.http_host}: {e}") from e
        host, port = self._runner.addresses[0][:2]
        self._http_url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        if self.config.mesh_peers and self.config.mesh_interval_s > 0:
            self._mesh_task = asyncio.ensure_future(self._mesh_schedule())

    async def stop(self) -> None:
        """Drain: no new rounds; wait for in-flight rounds (and their stores); close."""
        self._closing = True
        task, self._mesh_task = self._mesh_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._prober is not None:
            self._prober.close()
            self._prober = None
        if self._db_executor is not None:
            self._db_executor.shutdown(wait=True)
            self._db_executor = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> LandmarkDaemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- properties ------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._key.id

    @property
    def http_url(self) -> str:
        return self._http_url

    @property
    def udp_address(self) -> tuple[str, int]:
        if self._prober is None:
            raise RuntimeError("daemon not started")
        return self._prober.address

    @property
    def counters(self) -> Mapping[str, int]:
        return dict(self._counters)

    @property
    def kernel_timestamps(self) -> bool:
        return self._prober is not None and self._prober.kernel_timestamps

    @property
    def registry(self) -> Registry:
        return self._registry

    def update_registry(self, registry: Registry) -> None:
        """Swap in a newer registry (e.g. after a revocation); rounds started later use it.

        Raises :class:`~chiploc.common.errors.VerificationError` (and keeps the old one) when
        this landmark is not enrolled or is revoked in ``registry``: a revoked landmark
        must stop measuring, which is its operator's call (``landmark serve`` stops).
        """
        registry.landmark(self.id)
        self._registry = registry

    def _count(self, reason: str) -> None:
        self._counters[reason] = self._counters.get(reason, 0) + 1

    # -- measuring -------------------------------------------------------------------
    async def measure(
        self,
        chip_id: str,
        address: tuple[str, int],
        *,
        probes: int | None = None,
        target_role: Role = Role.CHIP,
    ) -> MeasurementReport:
        """Measure one chip: hello, a burst of ``probes`` timed probes, sign, store, return.

        ``target_role=Role.LANDMARK`` measures a mesh peer (``chip_id`` is its landmark id).
        Raises UnknownIdentity/RevokedIdentity (chip), ProbeTimeout (no hello-ack),
        TransportError (daemon stopping or socket failure).
        """
        if self._closing or self._prober is None:
            raise TransportError("landmark is shutting down", reason="draining")
        task = asyncio.ensure_future(self._measure(chip_id, address, probes, target_role))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def measure_batch(
        self, targets: Sequence[tuple[str, tuple[str, int], int]]
    ) -> list[MeasurementReport | ChiplocError]:
        """Measure several chips (chip id, address, probes) at once and sign ONE Merkle root
        over all their reports (``protocol.sign_report_batch``, docs/protocol.md "Batch
        signatures"); per target, in order, its signed and stored report or the error."""
        if self._closing or self._prober is None:
            raise TransportError("landmark is shutting down", reason="draining")
        task = asyncio.ensure_future(self._measure_batch(targets))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def _measure_batch(
        self, targets: Sequence[tuple[str, tuple[str, int], int]]
    ) -> list[MeasurementReport | ChiplocError]:
        async def one(
            chip_id: str, address: tuple[str, int], probes: int
        ) -> MeasurementReport | ChiplocError:
            try:
                return await self._measure(chip_id, address, probes, Role.CHIP, draft=True)
            except ChiplocError as e:
                return e

        results = list(await asyncio.gather(*(one(*t) for t in targets)))
        drafts = [r for r in results if isinstance(r, MeasurementReport)]
        signed: list[MeasurementReport] = []
        for lo in range(0, len(drafts), MAX_BATCH_SIZE):
            signed += sign_report_batch(self._key, drafts[lo : lo + MAX_BATCH_SIZE])
        if not signed:
            return results
        try:
            loop = asyncio.get_running_loop()
            store, executor = self._store, self._db_executor
            if store is None or executor is None:
                raise TransportError("landmark is shutting down", reason="draining")
            await loop.run_in_executor(executor, store.add_many, signed)
        except ChiplocError as e:  # nothing is returned that was not stored
            return [e if isinstance(r, MeasurementReport) else r for r in results]
        it = iter(signed)
        out: list[MeasurementReport | ChiplocError] = []
        for r in results:
            if isinstance(r, MeasurementReport):
                report = next(it)
                self._after_measured(report)
                out.append(report)
            else:
                out.append(r)
        return out

    async def _measure(
        self,
        chip_id: str,
        address: tuple[str, int],
        probes: int | None,
        target_role: Role,
        *,
        draft: bool = False,
    ) -> MeasurementReport:
        """One round; ``draft``: return the unsigned report (not stored, not counted yet)."""
        try:
            chip: ChipEntry | LandmarkEntry = (
                self._registry.landmark(chip_id)
                if target_role is Role.LANDMARK
                else self._registry.chip(chip_id)
            )
        except VerificationError as e:  # unknown or revoked chip: refused, and counted
            self._count(e.reason)
            self._count_round("refused")
            raise
        count = self.config.probes_per_round if probes is None else probes
        async with self._semaphore:
            prober = self._prober
            if prober is None:
                raise TransportError("landmark is shutting down", reason="draining")
            core = RoundCore(
                key=self._key,
                chip=chip,
                chip_address=f"{address[0]}:{address[1]}",
                session_id=os.urandom(16),
                probes=count,
                started_at_unix_ns=self._realtime_ns(),
            )
            ok = await prober.run_round(
                core,
                address,
                probe_timeout_s=self.config.probe_timeout_ms / 1000,
                hello_timeout_s=self.config.hello_timeout_ms / 1000,
                hello_retries=self.config.hello_retries,
            )
            if not ok:
                self._count("hello_timeout")
                self._count_round("unreachable")
                raise ProbeTimeout(f"chip {chip_id} at {address[0]}:{address[1]} did not answer")
            if draft:
                return core.finish_draft(finished_at_unix_ns=self._realtime_ns())
            report = core.finish(finished_at_unix_ns=self._realtime_ns())
        await self._store_report(report)
        self._after_measured(report)
        return report

    def _after_measured(self, report: MeasurementReport) -> None:
        self._count_round("measured")
        if report.target_role is Role.LANDMARK:
            self._note_mesh(report)
        answered = report.answered
        self._counters["probes_answered"] = self._counters.get("probes_answered", 0) + answered
        self._counters["probes_lost"] = (
            self._counters.get("probes_lost", 0) + len(report.probes) - answered
        )

    # -- the mesh ---------------------------------------------------------------------
    async def measure_peers(
        self, peers: Mapping[str, tuple[str, int]] | None = None
    ) -> dict[str, MeasurementReport | ChiplocError]:
        """One mesh pass: measure each peer (default: the configured ``mesh_peers``) once.

        Never raises for one peer's failure: its error is the value for that peer."""
        targets = self.config.mesh_peers if peers is None else peers
        gate = asyncio.Semaphore(_MESH_CONCURRENCY)

        async def one(peer: str, address: tuple[str, int]) -> MeasurementReport | ChiplocError:
            try:
                async with gate:
                    return await self.measure(
                        peer, address, probes=self.config.mesh_probes, target_role=Role.LANDMARK
                    )
            except ChiplocError as e:
                self._count("mesh_failed")
                return e

        results = await asyncio.gather(*(one(p, a) for p, a in sorted(targets.items())))
        return dict(zip(sorted(targets), results, strict=True))

    async def _mesh_schedule(self) -> None:
        """Every ``mesh_interval_s``: one mesh pass (first one right away)."""
        while not self._closing:
            try:
                await self.measure_peers()
            except Exception:  # never let one bad pass end the schedule; counted
                self._count("mesh_failed")
            await asyncio.sleep(self.config.mesh_interval_s)

    def _note_mesh(self, report: MeasurementReport) -> None:
        """Keep the peer's minimum RTT and its vacuum check against the registered sites."""
        if report.min_rtt_ns is None:
            return
        link = MeshLink(
            landmark=self.id,
            peer=report.chip_id,
            rtt_ms=report.min_rtt_ns / 1e6,
            overhead_ms=report.overhead_lower_bound_ns / 1e6,
        )
        current = self._mesh.get(report.chip_id)
        if current is not None and current.link.rtt_ms <= link.rtt_ms:
            return
        try:
            own = self._registry.landmark(self.id)
            peer = self._registry.landmark(report.chip_id)
        except VerificationError:  # revoked since the round began: nothing to check against
            return
        sites = {own.id: (own.lat, own.lon), peer.id: (peer.lat, peer.lon)}
        check = check_link(link, sites)
        self._mesh[report.chip_id] = check
        if check.violation:
            self._count("mesh_violation")

    @property
    def mesh(self) -> Mapping[str, LinkCheck]:
        """Peer id -> the check of this landmark's minimum RTT to it (since start)."""
        return dict(self._mesh)

    def _count_round(self, outcome: str) -> None:
        self._count(f"round_{outcome}")

    async def _store_report(self, report: MeasurementReport) -> int:
        if self._store is None or self._db_executor is None:
            raise TransportError("landmark store is closed", reason="draining")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_executor, self._store.add, report)

    # -- HTTP control plane ------------------------------------------------------------
    async def _healthz(self, request: web.Request) -> web.Response:
        status = "draining" if self._closing else "ok"
        return web.json_response(
            {"status": status, "landmark": self.id, "udp": list(self.udp_address)},
            status=503 if self._closing else 200,
        )

    @property
    def http_routes(self) -> list[tuple[str, str]]:
        """(method, path) of every route the running HTTP plane serves (HEAD left out)."""
        if self._runner is None:
            return []
        return sorted(
            (r.method, r.resource.canonical)
            for r in self._runner.app.router.routes()
            if r.resource is not None and r.method != "HEAD"
        )

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(landmark_id=self.id))

    async def _metrics(self, request: web.Request) -> web.Response:
        lines = [
            "# HELP chiploc_landmark_rejected_total Datagrams or answers rejected, by reason.",
            "# TYPE chiploc_landmark_rejected_total counter",
        ]
        special = {
            "probes_answered",
            "probes_lost",
            "round_measured",
            "round_unreachable",
            "round_refused",
            "hello_retransmit",
            "mesh_failed",
            "mesh_violation",
        }
        for reason, value in sorted(self._counters.items()):
            if reason not in special:
                lines.append(f'chiploc_landmark_rejected_total{{reason="{reason}"}} {value}')
        lines += [
            "# HELP chiploc_landmark_probes_total Timed probes, by outcome.",
            "# TYPE chiploc_landmark_probes_total counter",
            f'chiploc_landmark_probes_total{{outcome="answered"}} '
            f"{self._counters.get('probes_answered', 0)}",
            f'chiploc_landmark_probes_total{{outcome="lost"}} '
            f"{self._counters.get('probes_lost', 0)}",
            "# HELP chiploc_landmark_rounds_total Rounds, by outcome.",
            "# TYPE chiploc_landmark_rounds_total counter",
            f'chiploc_landmark_rounds_total{{outcome="measured"}} '
            f"{self._counters.get('round_measured', 0)}",
            f'chiploc_landmark_rounds_total{{outcome="unreachable"}} '
            f"{self._counters.get('round_unreachable', 0)}",
            f'chiploc_landmark_rounds_total{{outcome="refused"}} '
            f"{self._counters.get('round_refused', 0)}",
            "# HELP chiploc_landmark_hello_retransmits_total HELLOs sent again (same bytes).",
            "# TYPE chiploc_landmark_hello_retransmits_total counter",
            f"chiploc_landmark_hello_retransmits_total {self._counters.get('hello_retransmit', 0)}",
            "# HELP chiploc_landmark_inflight_rounds Rounds in progress.",
            "# TYPE chiploc_landmark_inflight_rounds gauge",
            f"chiploc_landmark_inflight_rounds {len(self._inflight)}",
            "# HELP chiploc_landmark_kernel_timestamps 1 if SO_TIMESTAMPNS is enabled.",
            "# TYPE chiploc_landmark_kernel_timestamps gauge",
            f"chiploc_landmark_kernel_timestamps {int(self.kernel_timestamps)}",
            *self._mesh_metrics(),
        ]
        return web.Response(
            text="\n".join(lines) + "\n",
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    def _mesh_metrics(self) -> list[str]:
        lines = [
            "# HELP chiploc_landmark_mesh_min_rtt_seconds Minimum RTT to each mesh peer.",
            "# TYPE chiploc_landmark_mesh_min_rtt_seconds gauge",
        ]
        checks = sorted(self._mesh.items())
        lines += [
            f'chiploc_landmark_mesh_min_rtt_seconds{{peer="{p}"}} {c.link.rtt_ms / 1000:.9f}'
            for p, c in checks
        ]
        lines += [
            "# HELP chiploc_landmark_mesh_violation 1 if the RTT to the peer beats light between"
            " the registered sites (one of the two is not where the registry says).",
            "# TYPE chiploc_landmark_mesh_violation gauge",
        ]
        lines += [
            f'chiploc_landmark_mesh_violation{{peer="{p}"}} {int(c.violation)}' for p, c in checks
        ]
        lines += [
            "# HELP chiploc_landmark_mesh_failed_total Mesh rounds that measured nothing.",
            "# TYPE chiploc_landmark_mesh_failed_total counter",
            f"chiploc_landmark_mesh_failed_total {self._counters.get('mesh_failed', 0)}",
        ]
        return lines

    async def _mesh_rounds(self, request: web.Request) -> web.Response:
        """``POST /v1/mesh/rounds``: one mesh pass now (body optional: ``{"peers": [ids]}``,
        a subset of the configured peers); per peer, the signed report or the error."""
        if self._closing:
            return self._error(503, "landmark is shutting down", "draining")
        peers = dict(self.config.mesh_peers)
        if request.can_read_body:
            try:
                body = await request.json()
            except (ValueError, RecursionError):
                return self._error(400, "body must be JSON", "bad_json")
            wanted = body.get("peers") if isinstance(body, dict) else None
            if wanted is not None:
                if not isinstance(wanted, list) or not all(
                    isinstance(w, str) and w in peers for w in wanted
                ):
                    return self._error(400, "peers must list configured mesh peers", "bad_peer")
                peers = {w: peers[w] for w in wanted}
        if not peers:
            return self._error(400, "no mesh peers configured", "no_peers")
        results = await self.measure_peers(peers)
        out = []
        for peer, result in results.items():
            if isinstance(result, ChiplocError):
                out.append({"peer": peer, "error": str(result), "reason": result.reason})
            else:
                out.append({"peer": peer, **self._report_json(result)})
        return web.json_response({"results": out})

    async def _mesh_view(self, request: web.Request) -> web.Response:
        """``GET /v1/mesh``: this landmark's minimum RTT to each peer and its vacuum check."""
        return web.json_response(
            {
                "landmark": self.id,
                "peers": sorted(self.config.mesh_peers),
                "links": [c.to_json_dict() for _, c in sorted(self._mesh.items())],
            }
        )

    @staticmethod
    def _error(status: int, message: str, reason: str) -> web.Response:
        return web.json_response({"error": message, "reason": reason}, status=status)

    @staticmethod
    def _report_json(report: MeasurementReport) -> dict[str, Any]:
        return {
            "chip_id": report.chip_id,
            "report": report.to_json_dict(),
            "report_b64": base64.b64encode(report.raw).decode("ascii"),
        }

    def _target(self, obj: Any, default_probes: int | None) -> tuple[str, tuple[str, int], int]:
        if not isinstance(obj, dict):
            raise InputError("each target must be an object")
        chip_id, address = obj.get("chip_id"), obj.get("address")
        if not isinstance(chip_id, str) or not isinstance(address, str):
            raise InputError("a target needs string chip_id and address (host:port)")
        probes = obj.get("probes", default_probes or self.config.probes_per_round)
        if isinstance(probes, bool) or not isinstance(probes, int) or not 1 <= probes <= 10_000:
            raise InputError("probes must be an integer in 1..10000")
        return chip_id, parse_host_port(address), probes

    async def _rounds(self, request: web.Request) -> web.Response:
        if self._closing:
            return self._error(503, "landmark is shutting down", "draining")
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            return self._error(400, "body must be JSON", "bad_json")
        try:
            if isinstance(body, dict) and "targets" in body:
                targets = body["targets"]
                if not isinstance(targets, list) or not 1 <= len(targets) <= _MAX_TARGETS:
                    raise InputError(f"targets must be a list of 1..{_MAX_TARGETS} objects")
                parsed = [self._target(t, body.get("probes")) for t in targets]
            else:
                parsed = [self._target(body, None)]
        except InputError as e:
            return self._error(400, str(e), e.reason)
        if "targets" not in body:
            chip_id, address, probes = parsed[0]
            try:
                report = await self.measure(chip_id, address, probes=probes)
            except ChiplocError as e:
                return self._error(_status_for(e), str(e), e.reason)
            return web.json_response(self._report_json(report))

        # several targets: one batch signature over all their reports
        try:
            measured = await self.measure_batch(parsed)
        except ChiplocError as e:
            return self._error(_status_for(e), str(e), e.reason)
        results = [
            {"chip_id": chip_id, "error": str(r), "reason": r.reason}
            if isinstance(r, ChiplocError)
            else self._report_json(r)
            for (chip_id, _, _), r in zip(parsed, measured, strict=True)
        ]
        return web.json_response({"results": results})

    async def _reports(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return self._error(400, "since and limit must be integers", "bad_cursor")
        if not 0 <= since < 2**63 or not 1 <= limit <= 1000:  # sqlite INTEGER is 64-bit
            return self._error(400, "since in 0..2^63-1 and limit in 1..1000", "bad_cursor")
        if self._store is None or self._db_executor is None:
            return self._error(503, "landmark is not running", "draining")
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(
            self._db_executor, lambda: self._store.since(since, limit=limit) if self._store else []
        )
        reports = []
        for cursor, raw in rows:
            report = decode_report(raw)
            reports.append(
                {
                    "cursor": cursor,
                    "report_b64": base64.b64encode(raw).decode("ascii"),
                    "report": report.to_json_dict(),
                }
            )
        next_cursor = rows[-1][0] if rows else since
        return web.json_response({"reports": reports, "next": next_cursor})


def _status_for(error: ChiplocError) -> int:
    if isinstance(error, VerificationError):  # unknown or revoked chip
        return 404
    if isinstance(error, ProbeTimeout):
        return 504
    if isinstance(error, NetworkError) and error.reason == "draining":
        return 503
    return 502
