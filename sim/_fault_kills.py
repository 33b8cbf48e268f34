"""Fault scenarios that SIGKILL a process: the landmark in the middle of rounds
(:func:`landmark_kill_restart`) and the verifier's store writer in the middle of
commits (:func:`verifier_kill`, with its child entry point ``_writer_main``), each
restarted on the same database and returning a :class:`FaultOutcome`.

Invariants:

* Nothing acknowledged may be lost: every report the API answered 200 for, and
  every round, verdict and audit entry the writer reported committed, is read
  back after the restart (``records_lost`` counts the missing ones).
* Kills come at seeded random moments; every wait is bounded and every child
  process is reaped on the way out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import aiohttp

from chiploc.chip_agent import ChipAgent
from chiploc.common.errors import ChiplocError
from chiploc.protocol import ProbeRecord, response_message, sign_report, verify_report

from ._fault_lab import _LOOPBACK, _NS_PER_S, FaultOutcome, _Checks, _identities, _prepare
from ._fault_spawn import _child_env, _spawn_landmark, _write_landmark_lab
from ._loopback import bounded, started_agent

__all__ = ["landmark_kill_restart", "verifier_kill"]


# ------------------------------------------------------------------ scenario: landmark SIGKILL


async def _all_reports(session: aiohttp.ClientSession, url: str) -> list[bytes]:
    raws: list[bytes] = []
    cursor = 0
    for _ in range(10_000):
        async with session.get(f"{url}/v1/reports", params={"since": cursor, "limit": 1000}) as r:
            body = await r.json()
        if not body["reports"]:
            return raws
        raws += [base64.b64decode(item["report_b64"]) for item in body["reports"]]
        cursor = body["next"]
    return raws


async def landmark_kill_restart(
    directory: str | os.PathLike[str], *, kills: int = 2, seed: int = 0, in_flight: int = 4
) -> FaultOutcome:
    """``chiploc landmark serve`` in a subprocess, rounds requested over HTTP, SIGKILL at a
    seeded random moment with rounds in flight, restart on the same db: every report the
    API acknowledged (200) is served again by ``GET /v1/reports``, byte for byte."""
    root = _prepare(directory)
    ids = _identities("landmark-kill")
    chip_key = ids.chips[0]
    config = _write_landmark_lab(root, ids)
    rng = random.Random(seed)
    checks = _Checks()
    acknowledged: list[bytes] = []
    interrupted = 0
    async with contextlib.AsyncExitStack() as stack:
        agent = await started_agent(stack, ChipAgent(chip_key, ids.registry, host=_LOOPBACK))
        address = f"{agent.address[0]}:{agent.address[1]}"
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        )
        procs: list[asyncio.subprocess.Process] = []

        async def _reap() -> None:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await bounded(p.wait(), 5.0)

        stack.push_async_callback(_reap)
        for _ in range(kills):
            proc, url = await _spawn_landmark(config)
            procs.append(proc)

            async def requester(url: str = url) -> None:
                nonlocal interrupted
                while True:
                    try:
                        async with session.post(
                            f"{url}/v1/rounds",
                            json={"chip_id": chip_key.id, "address": address, "probes": 50},
                        ) as r:
                            if r.status == 200:
                                body = await r.json()
                                acknowledged.append(base64.b64decode(body["report_b64"]))
                    except (aiohttp.ClientError, TimeoutError):
                        interrupted += 1
                        return

            workers = [asyncio.ensure_future(requester()) for _ in range(in_flight)]
            await asyncio.sleep(rng.uniform(0.3, 0.9))
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10.0)
            await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 25.0)
        proc, url = await _spawn_landmark(config)
        procs.append(proc)
        served = await _all_reports(session, url)
        served_set = set(served)
        lost = [raw for raw in acknowledged if raw not in served_set]
        checks.check(
            "every acknowledged report served after restart, byte for byte",
            not lost,
            f"{len(acknowledged)} acknowledged, {len(served)} served, {len(lost)} missing",
        )
        checks.check("rounds were in flight at each kill", interrupted >= kills, interrupted)
        bad = 0
        for raw in served:
            try:
                verify_report(raw, ids.registry)
            except ChiplocError:
                bad += 1
        checks.check("every served report verifies", bad == 0, f"{bad} bad")
        async with session.post(
            f"{url}/v1/rounds", json={"chip_id": chip_key.id, "address": address, "probes": 5}
        ) as r:
            status = r.status
        checks.check("a round after restart works", status == 200, status)
        proc.send_signal(signal.SIGTERM)
        await bounded(proc.wait(), 10.0)
        return checks.outcome(
            "landmark SIGKILL mid-round + restart",
            injected=kills,
            records_lost=len(lost),
            acknowledged=len(acknowledged),
            served=len(served),
            interrupted_requests=interrupted,
        )


# ------------------------------------------------------------------ scenario: verifier SIGKILL


def _writer_main() -> None:  # pragma: no cover - runs in the child process
    """Child: write signed rounds + certified verdicts into the store until killed; print
    one JSON line per commit (after the commit returned)."""
    from chiploc.solver import Measurement, load_region, solve
    from chiploc.store import open_store
    from chiploc.verifier import issue_certificate, record_registry

    db, run = sys.argv[1], int(sys.argv[2])
    ids = _identities("verifier-kill")
    chip = ids.chips[0]
    region = load_region("circle:50.11,8.68,2000")
    t0 = 1_700_000_000 * _NS_PER_S + run * 10**12
    with open_store(db) as store:
        record_registry(store, ids.registry, now_unix_ns=t0)
        i = 0
        while True:
            session = hashlib.sha256(f"{run}/{i}".encode()).digest()[:16]
            nonce = hashlib.sha256(f"nonce/{run}/{i}".encode()).digest()[:16]
            message = response_message(
                session_id=session, chip_id=chip.id, landmark_id=ids.landmark.id, seq=0, nonce=nonce
            )
            rtt_ns = 1_000_000 + i
            report = sign_report(
                ids.landmark,
                chip_id=chip.id,
                session_id=session,
                chip_address="127.0.0.1:7000",
                started_at_unix_ns=t0 + i,
                finished_at_unix_ns=t0 + i + 1,
                probes=[
                    ProbeRecord(
                        seq=0,
                        nonce=nonce,
                        rtt_ns=rtt_ns,
                        chip_signature=chip.sign(message),
                        timestamp_source="userspace",
                    )
                ],
            )
            inserted = store.add_round(report, received_at_unix_ns=t0 + i)
            print(json.dumps({"round": inserted.record.digest_hex}), flush=True)
            result = solve(
                chip.id,
                [Measurement(landmark=ids.landmark.id, lat=50.11, lon=8.68, rtt_ms=rtt_ns / 1e6)],
                region,
            )
            certificate = issue_certificate(
                result,
                authorized_region_digest_hex=region.digest_hex,
                evidence_digests=[report.digest_hex],
                signer=ids.verifier,
                issued_at_unix_s=(t0 + i) // _NS_PER_S,
            )
            verdict = store.add_verdict(
                result.to_json_dict(),
                evidence_digests=[report.digest_hex],
                certificate=certificate,
                issued_at_unix_ns=t0 + i,
            )
            head = store.audit_head()
            print(
                json.dumps(
                    {
                        "verdict": verdict.verdict_id,
                        "audit": [head.seq, head.hash_hex] if head else None,
                    }
                ),
                flush=True,
            )
            i += 1


def verifier_kill(
    directory: str | os.PathLike[str], *, kills: int = 3, seed: int = 0
) -> FaultOutcome:
    """A child process writes signed rounds and certified verdicts into the store in a
    loop and prints each commit; it is SIGKILLed at seeded random moments and restarted
    on the same database. No reported round, verdict or audit entry may be missing and
    ``verifier.verify_audit`` must pass after every kill."""
    from chiploc.store import open_store
    from chiploc.verifier import verify_audit

    root = _prepare(directory)
    db = root / "verifier.db"
    rng = random.Random(seed)
    checks = _Checks()
    rounds: list[str] = []
    verdicts: list[int] = []
    audit: list[tuple[int, str]] = []
    lost = 0
    for run in range(kills):
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-c",
                "from chiploc.sim._fault_kills import _writer_main; _writer_main()",
                str(db),
                str(run),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_child_env(),
        )
        lines: list[str] = []

        def reader(p: subprocess.Popen[str] = proc, out: list[str] = lines) -> None:
            assert p.stdout is not None  # noqa: S101 - PIPE was requested
            out.extend(iter(p.stdout.readline, ""))

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        # wait for the child to be writing, then kill it at a random moment
        deadline = time.monotonic() + 30
        while len(lines) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        thread.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        for line in lines:
            with contextlib.suppress(ValueError):  # a torn last line is not a commit report
                item = json.loads(line)
                if "round" in item:
                    rounds.append(item["round"])
                elif "verdict" in item:
                    verdicts.append(int(item["verdict"]))
                    if item["audit"]:
                        audit.append((int(item["audit"][0]), str(item["audit"][1])))
        with open_store(db, read_only=True) as store:
            report = verify_audit(store)
            stored_rounds = {r.digest_hex for r in store.rounds()}
            stored_verdicts = {v.verdict_id for v in store.verdicts()}
            stored_audit = {(e.seq, e.hash_hex) for e in store.audit_entries()}
        missing = (
            sum(d not in stored_rounds for d in rounds)
            + sum(v not in stored_verdicts for v in verdicts)
            + sum(a not in stored_audit for a in audit)
        )
        lost = max(lost, missing)
        checks.check(
            f"kill {run + 1}: audit verifies, nothing committed lost",
            missing == 0,
            f"{report.entries} entries, {len(rounds)} rounds / {len(verdicts)} verdicts "
            f"reported, {missing} missing",
        )
    checks.check("the writer made progress", len(verdicts) >= kills, len(verdicts))
    return checks.outcome(
        "verifier SIGKILL during writes",
        injected=kills,
        records_lost=lost,
        rounds=len(rounds),
        verdicts=len(verdicts),
    )
