"""The collector: trigger measurement rounds at landmarks and fetch their signed reports.

An aiohttp client edge over the landmarks' control planes (``docs/protocol.md``):

- :meth:`Collector.trigger` sends ``POST /v1/rounds`` with a list of targets
  to every landmark, at most ``concurrency`` landmarks at a time, each within
  ``trigger_timeout_s``. A landmark that refuses, fails or times out is
  recorded in its :class:`TriggerOutcome`, never fatal; so is a target a
  landmark could not measure (unknown chip, no answer).
- :meth:`Collector.collect` follows ``GET /v1/reports?since=CURSOR`` on each
  landmark until a page comes back empty, remembering the cursor per
  landmark, so the next call fetches only what is new.

Invariants: only ``report_b64`` (the signed bytes) is read, never the JSON
view beside it; every report goes through :func:`~verifier.screen_reports`
(``protocol.verify_report`` against the registry) and only the ones that pass
are stored (``store.add_round``, idempotent by digest) or returned; a page
whose cursor does not advance ends that landmark's collection (counted), so
a misbehaving landmark cannot loop the collector; every request is bounded in
time and every loop in count.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp

from chiploc.common.errors import InputError
from chiploc.protocol import Registry
from chiploc.store import BatchRound, Store
from chiploc.verifier._lazy import LazyVerification
from chiploc.verifier._mesh import is_mesh_report, screen_mesh_reports
from chiploc.verifier._pipeline import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_SKEW_S,
    Screened,
    screen_reports,
)

__all__ = ["Collection", "Collector", "RoundTarget", "TriggerOutcome"]

_MAX_PAGES = 10_000  # per landmark per collect(): 10 M reports at the largest page size
_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTarget:
    """A chip a landmark should measure, at the address it must probe (``host:port``)."""

    chip_id: str
    address: str

    def __post_init__(self) -> None:
        if not isinstance(self.chip_id, str) or not self.chip_id:
            raise InputError("target chip_id must be a non-empty string", reason="bad_target")
        if not isinstance(self.address, str) or ":" not in self.address:
            raise InputError(
                f"target address {self.address!r} is not host:port", reason="bad_target"
            )

    def to_json_dict(self) -> dict[str, str]:
        return {"chip_id": self.chip_id, "address": self.address}


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerOutcome:
    """What one landmark did with a batch of targets.

    ``failure`` is set when the landmark as a whole failed (``timeout``,
    ``connection``, ``http_<status>``, ``bad_response``); ``errors`` maps each
    target it could not measure to the landmark's reason.
    """

    landmark_id: str
    measured: int = 0
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    failure: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Collection:
    """One :meth:`Collector.collect` pass: verified reports and what went wrong."""

    screened: Screened
    stored: int  # new rows in the store
    already_stored: int  # verified reports the store already held
    fetched: int  # report entries received
    failures: Mapping[str, str]  # landmark id -> reason its collection stopped early
    cursors: Mapping[str, int]
    mesh_verified: int = 0  # mesh reports (a landmark measuring a peer) that verified
    mesh_stored: int = 0  # ... of which new in the store
    mesh_rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "failures", MappingProxyType(dict(self.failures)))
        object.__setattr__(self, "cursors", MappingProxyType(dict(self.cursors)))
        object.__setattr__(self, "mesh_rejected", MappingProxyType(dict(self.mesh_rejected)))


class _LandmarkFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Collector:
    """Trigger rounds at, and collect signed reports from, a set of landmark control planes.

    Use as an async context manager (it owns one ``aiohttp.ClientSession``).
    ``clock_ns`` (wall clock, Unix ns) stamps ``received_at`` and the
    freshness window; pass a fixed function in tests.
    """

    def __init__(
        self,
        *,
        landmark_urls: Mapping[str, str],
        registry: Registry,
        store: Store,
        concurrency: int = 16,
        trigger_timeout_s: float = 120.0,
        collect_timeout_s: float = 30.0,
        page_limit: int = 500,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        max_skew_s: int = DEFAULT_MAX_SKEW_S,
        cursors: Mapping[str, int] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        lazy: LazyVerification | None = None,
    ) -> None:
        if not landmark_urls:
            raise InputError("no landmarks to collect from", reason="no_landmarks")
        if concurrency < 1 or not 1 <= page_limit <= 1000:
            raise InputError("concurrency >= 1 and page_limit in 1..1000", reason="bad_argument")
        if trigger_timeout_s <= 0 or collect_timeout_s <= 0:
            raise InputError("timeouts must be positive", reason="bad_argument")
        self._urls = {lid: url.rstrip("/") for lid, url in landmark_urls.items()}
        self._registry = registry
        self._store = store
        self._semaphore = asyncio.Semaphore(concurrency)
        self._trigger_timeout_s = trigger_timeout_s
        self._collect_timeout_s = collect_timeout_s
        self._page_limit = page_limit
        self._max_age_s = max_age_s
        self._max_skew_s = max_skew_s
        self._cursors: dict[str, int] = dict.fromkeys(self._urls, 0)
        if cursors:
            self._cursors.update({k: v for k, v in cursors.items() if k in self._urls})
        self._clock_ns = clock_ns
        self._lazy = lazy
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Collector:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def cursors(self) -> Mapping[str, int]:
        """Landmark id -> the last report cursor collected from it."""
        return MappingProxyType(dict(self._cursors))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise InputError("use the Collector as 'async with'", reason="not_started")
        return self._session

    # -- trigger -----------------------------------------------------------------------

    async def trigger(
        self,
        targets: Sequence[RoundTarget],
        *,
        probes: int,
        landmarks: Sequence[str] | None = None,
        on_done: Callable[[TriggerOutcome], None] | None = None,
    ) -> tuple[TriggerOutcome, ...]:
        """Have every landmark (or those named) measure every target; one outcome each."""
        if not targets:
            raise InputError("no targets to measure", reason="no_targets")
        if not 1 <= probes <= 10_000:
            raise InputError("probes must be in 1..10000", reason="bad_argument")
        ids = list(self._urls) if landmarks is None else list(landmarks)
        body = {"targets": [t.to_json_dict() for t in targets], "probes": probes}

        async def one(landmark_id: str) -> TriggerOutcome:
            async with self._semaphore:
                outcome = await self._trigger_one(landmark_id, body, len(targets))
            if on_done is not None:
                on_done(outcome)
            return outcome

        return tuple(await asyncio.gather(*(one(i) for i in ids)))

    async def _trigger_one(
        self, landmark_id: str, body: dict[str, Any], expected: int
    ) -> TriggerOutcome:
        url = self._urls.get(landmark_id)
        if url is None:
            return TriggerOutcome(landmark_id=landmark_id, failure="unknown_landmark")
        try:
            payload = await self._request_json(
                "POST", f"{url}/v1/rounds", body=body, timeout_s=self._trigger_timeout_s
            )
            results = payload.get("results")
            if not isinstance(results, list) or len(results) != expected:
                raise _LandmarkFailure("bad_response")
        except _LandmarkFailure as e:
            return TriggerOutcome(landmark_id=landmark_id, failure=e.reason)
        measured = 0
        errors: dict[str, str] = {}
        for item in results:
            chip_id = item.get("chip_id") if isinstance(item, dict) else None
            if not isinstance(chip_id, str):
                errors["?"] = "bad_response"
            elif "error" in item:
                reason = item.get("reason")
                errors[chip_id] = reason if isinstance(reason, str) else "error"
            else:
                measured += 1  # the report itself is collected (and verified) later
        return TriggerOutcome(landmark_id=landmark_id, measured=measured, errors=errors)

    async def _request_json(
        self, method: str, url: str, *, timeout_s: float, body: Any = None
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout_s):
                async with self._http().request(method, url, json=body) as response:
                    if response.status != 200:
                        raise _LandmarkFailure(f"http_{response.status}")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.content.iter_chunked(65536):
                        size += len(chunk)
                        if size > _MAX_BODY_BYTES:
                            raise _LandmarkFailure("oversized_response")
                        chunks.append(chunk)
                    data = b"".join(chunks)
        except TimeoutError:
            raise _LandmarkFailure("timeout") from None
        except aiohttp.ClientError:
            raise _LandmarkFailure("connection") from None
        try:
            payload = json.loads(data)
        except ValueError:
            raise _LandmarkFailure("bad_response") from None
        if not isinstance(payload, dict):
            raise _LandmarkFailure("bad_response")
        return payload

    # -- collect -----------------------------------------------------------------------

    async def collect(self, *, landmarks: Sequence[str] | None = None) -> Collection:
        """Fetch every new report from each landmark, verify, store; return this pass."""
        ids = list(self._urls) if landmarks is None else [i for i in landmarks if i in self._urls]

        async def one(landmark_id: str) -> tuple[list[bytes], Counter[str], str | None]:
            async with self._semaphore:
                return await self._collect_one(landmark_id)

        per_landmark = await asyncio.gather(*(one(i) for i in ids))
        screened = Screened(reports=())
        fetched = stored = already = mesh_verified = mesh_stored = 0
        mesh_rejected: Counter[str] = Counter()
        failures: dict[str, str] = {}
        for landmark_id, (all_raws, bad, failure) in zip(ids, per_landmark, strict=True):
            fetched += len(all_raws) + sum(bad.values())
            now_ns = self._clock_ns()
            # Mesh reports (docs/mesh.md) are verified as such and kept apart: never evidence
            # about a chip.
            mesh_raws = [r for r in all_raws if is_mesh_report(r)]
            raws = [r for r in all_raws if not is_mesh_report(r)]
            mesh_reports, mesh_bad = screen_mesh_reports(
                mesh_raws, self._registry, now_unix_ns=now_ns, max_skew_s=self._max_skew_s
            )
            mesh_rejected.update(mesh_bad)
            for report in mesh_reports:
                mesh_verified += 1
                _, inserted = self._store.add_mesh_round(report, received_at_unix_ns=now_ns)
                mesh_stored += int(inserted)
            batch = screen_reports(
                raws,
                self._registry,
                now_unix_ns=now_ns,
                max_age_s=self._max_age_s,
                max_skew_s=self._max_skew_s,
                lazy=self._lazy,
            )
            batch = dataclasses.replace(batch, rejected=Counter(batch.rejected) + bad)
            # One transaction per landmark page set, idempotent by digest.
            result = self._store.add_batch(
                [BatchRound(report=r, received_at_unix_ns=now_ns) for r in batch.reports]
            )
            stored += result.rounds_inserted
            already += result.rounds_existing
            screened = screened.merged(batch)
            if failure is not None:
                failures[landmark_id] = failure
        return Collection(
            screened=screened,
            stored=stored,
            already_stored=already,
            fetched=fetched,
            failures=failures,
            cursors=self._cursors,
            mesh_verified=mesh_verified,
            mesh_stored=mesh_stored,
            mesh_rejected=mesh_rejected,
        )

    async def _collect_one(self, landmark_id: str) -> tuple[list[bytes], Counter[str], str | None]:
        url = self._urls[landmark_id]
        raws: list[bytes] = []
        bad: Counter[str] = Counter()
        cursor = self._cursors[landmark_id]
        failure: str | None = None
        try:
            for _ in range(_MAX_PAGES):
                page = await self._request_json(
                    "GET",
                    f"{url}/v1/reports?since={cursor}&limit={self._page_limit}",
                    timeout_s=self._collect_timeout_s,
                )
                entries = page.get("reports")
                if not isinstance(entries, list) or len(entries) > self._page_limit:
                    raise _LandmarkFailure("bad_response")
                if not entries:
                    break
                last = cursor
                for entry in entries:
                    entry_cursor = entry.get("cursor") if isinstance(entry, dict) else None
                    if (
                        isinstance(entry_cursor, bool)
                        or not isinstance(entry_cursor, int)
                        or entry_cursor <= last
                    ):
                        raise _LandmarkFailure("bad_cursor")
                    last = entry_cursor
                    raw = _decode_b64(entry.get("report_b64"))
                    if raw is None:
                        bad["bad_base64"] += 1
                    else:
                        raws.append(raw)
                # Advance only past what was received (never trust "next" beyond it).
                cursor = last
                self._cursors[landmark_id] = cursor
            else:
                failure = "too_many_pages"
        except _LandmarkFailure as e:
            failure = e.reason
        return raws, bad, failure


def _decode_b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
