"""The collector against scripted landmark control planes on 127.0.0.1 (aiohttp, port 0).

The fake landmarks serve real signed reports (and forged, garbled, failing or
hanging answers); the collector must store only what verifies, count the rest,
follow cursors, and survive every landmark failure.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from chiploc.protocol import Role, generate_private_key
from chiploc.store import open_store
from chiploc.verifier import Collector, RoundTarget

from .test_pipeline import MS, NOW_NS, landmark_keys, make_registry, signed_report


def _entry(cursor: int, raw: bytes) -> dict[str, Any]:
    return {"cursor": cursor, "report_b64": base64.b64encode(raw).decode(), "report": {"lie": 1}}


class FakeLandmark:
    """Serves ``entries`` through GET /v1/reports (cursor paging) and a scripted POST."""

    def __init__(self, entries: list[dict[str, Any]], *, mode: str = "ok") -> None:
        self.entries = entries
        self.mode = mode
        self.posts: list[Any] = []

    async def reports(self, request: web.Request) -> web.Response:
        if self.mode == "error":
            return web.json_response({"error": "boom"}, status=500)
        if self.mode == "hang":
            await asyncio.sleep(30)
        since = int(request.query["since"])
        limit = int(request.query["limit"])
        if self.mode == "stuck":  # always the same page: the cursor never advances
            page = self.entries[:limit]
        else:
            page = [e for e in self.entries if e["cursor"] > since][:limit]
        return web.json_response({"reports": page, "next": page[-1]["cursor"] if page else since})

    async def rounds(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append(body)
        if self.mode == "error":
            return web.json_response({"error": "boom"}, status=503)
        if self.mode == "hang":
            await asyncio.sleep(30)
        results = [
            {"chip_id": t["chip_id"], "error": "not enrolled", "reason": "unknown_identity"}
            if t["chip_id"] == "chip-9"
            else {"chip_id": t["chip_id"], "report_b64": "", "report": {}}
            for t in body["targets"]
        ]
        return web.json_response({"results": results})


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[FakeLandmark], Any]]:
    runners: list[web.AppRunner] = []

    async def start(fake: FakeLandmark) -> str:
        app = web.Application()
        app.router.add_get("/v1/reports", fake.reports)
        app.router.add_post("/v1/rounds", fake.rounds)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_collect_verifies_counts_stores_and_follows_cursors(
    tmp_path: Path, serve: Callable[[FakeLandmark], Any]
) -> None:
    keys = landmark_keys()
    registry = make_registry()
    good = [signed_report(keys["lm-fra"], [(i + 1) * MS], session=i) for i in range(5)]
    rogue = generate_private_key(Role.LANDMARK, "lm-rogue", seed=b"r" * 32)
    forged = signed_report(rogue, [1 * MS], session=40)
    tampered = bytearray(good[0].raw)
    tampered[-1] ^= 1
    entries = [_entry(i + 1, r.raw) for i, r in enumerate(good[:3])]
    entries += [
        _entry(4, forged.raw),
        _entry(5, bytes(tampered)),
        {"cursor": 6, "report_b64": "!!not base64!!", "report": {}},
        _entry(7, good[3].raw),
    ]
    fra = FakeLandmark(entries)
    broken = FakeLandmark([], mode="error")
    url_fra, url_broken = await serve(fra), await serve(broken)
    with open_store(tmp_path / "v.db") as store:
        async with Collector(
            landmark_urls={"lm-fra": url_fra, "lm-ber": url_broken},
            registry=registry,
            store=store,
            page_limit=2,  # several pages
            clock_ns=lambda: NOW_NS,
        ) as collector:
            first = await collector.collect()
            assert [r.digest_hex for r in first.screened.reports] == [
                r.digest_hex for r in (*good[:3], good[3])
            ]
            assert dict(first.screened.rejected) == {
                "unknown_identity": 1,
                "bad_signature": 1,
                "bad_base64": 1,
            }
            assert (first.stored, first.already_stored, first.fetched) == (4, 0, 7)
            assert dict(first.failures) == {"lm-ber": "http_500"}
            assert collector.cursors == {"lm-fra": 7, "lm-ber": 0}

            fra.entries.append(_entry(8, good[4].raw))
            fra.entries.append(_entry(9, good[0].raw))  # served again: already stored
            second = await collector.collect(landmarks=["lm-fra"])
            assert [r.digest_hex for r in second.screened.reports] == [
                good[4].digest_hex,
                good[0].digest_hex,
            ]
            assert (second.stored, second.already_stored) == (1, 1)
            assert collector.cursors["lm-fra"] == 9
        assert sum(1 for _ in store.rounds()) == 5


async def test_a_stuck_or_hanging_landmark_is_recorded_not_fatal(
    tmp_path: Path, serve: Callable[[FakeLandmark], Any]
) -> None:
    keys = landmark_keys()
    registry = make_registry()
    report = signed_report(keys["lm-fra"], [1 * MS], session=1)
    stuck = FakeLandmark([_entry(1, report.raw)], mode="stuck")
    hang = FakeLandmark([], mode="hang")
    with open_store(tmp_path / "v.db") as store:
        async with Collector(
            landmark_urls={"lm-fra": await serve(stuck), "lm-muc": await serve(hang)},
            registry=registry,
            store=store,
            collect_timeout_s=0.5,
            trigger_timeout_s=0.5,
            clock_ns=lambda: NOW_NS,
        ) as collector:
            got = await collector.collect()
            assert dict(got.failures) == {"lm-fra": "bad_cursor", "lm-muc": "timeout"}
            assert [r.digest_hex for r in got.screened.reports] == [report.digest_hex]
            outcomes = await collector.trigger(
                [RoundTarget(chip_id="chip-1", address="127.0.0.1:9")], probes=3
            )
    by_id = {o.landmark_id: o for o in outcomes}
    assert by_id["lm-muc"].failure == "timeout"


async def test_trigger_sends_targets_and_records_per_chip_errors(
    tmp_path: Path, serve: Callable[[FakeLandmark], Any]
) -> None:
    ok, down = FakeLandmark([]), FakeLandmark([], mode="error")
    done: list[str] = []
    with open_store(tmp_path / "v.db") as store:
        async with Collector(
            landmark_urls={"lm-fra": await serve(ok), "lm-ber": await serve(down)},
            registry=make_registry(),
            store=store,
            concurrency=1,
        ) as collector:
            targets = [
                RoundTarget(chip_id="chip-1", address="127.0.0.1:4000"),
                RoundTarget(chip_id="chip-9", address="127.0.0.1:4001"),
            ]
            outcomes = await collector.trigger(
                targets, probes=5, on_done=lambda o: done.append(o.landmark_id)
            )
    by_id = {o.landmark_id: o for o in outcomes}
    assert by_id["lm-fra"].measured == 1
    assert dict(by_id["lm-fra"].errors) == {"chip-9": "unknown_identity"}
    assert by_id["lm-fra"].failure is None
    assert by_id["lm-ber"].failure == "http_503"
    assert sorted(done) == ["lm-ber", "lm-fra"]
    assert ok.posts == [
        {
            "targets": [
                {"chip_id": "chip-1", "address": "127.0.0.1:4000"},
                {"chip_id": "chip-9", "address": "127.0.0.1:4001"},
            ],
            "probes": 5,
        }
    ]
