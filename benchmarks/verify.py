#!/usr/bin/env python3
"""Report verification benchmark: verified reports per second per core, lazy vs full.

Generated signed reports (real Ed25519 keys, real chip signatures on every answered
probe, 32 probes a report, 20 landmarks x 100 chips, fixed seeds), verified against the
registry in one process, one thread, timed as CPU time (fastest of several passes):

- ``full_*``: :func:`protocol.verify_report` (landmark signature + all 32 chip signatures);
- ``lazy_*``: :func:`protocol.verify_report_lazy` (landmark signature + the minimum-RTT
  probe's chip signature);
- ``screen_*``: :func:`verifier.screen_reports` as the verifier runs it (freshness and
  de-duplication too): full, and lazy with the default 1 % sampled full check, which is
  what ``verified_reports_per_s_per_core`` reports (the honest figure: the sample's cost
  included).

``ed25519_verify_us`` (one landmark-signature check) and ``load_average_1min`` calibrate a
run on a shared machine: lazy verification is two Ed25519 checks plus a decode.

Landmark batch signatures (``--batch N``, default 100: each landmark signs one Merkle root
per N of its reports, ``protocol.sign_report_batch``): the figures above are for batched
reports, each pass with an EMPTY root cache (every batch's root is verified once per pass,
as a fresh verifier process would); ``single_*`` repeats the lazy figures for reports each
signed on its own (the format before batches). ``--batch 1`` makes every report single.
``overhead_us_*`` splits the per-report cost beyond the Ed25519 checks (decode with the
derived-field checks, the digest, the Merkle path) to show where the rest goes.

    python benchmarks/verify.py --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    ProbeRecord,
    Registry,
    Role,
    VerifiedRoots,
    decode_report,
    draft_report,
    generate_private_key,
    response_message,
    root_from_path,
    sign_report,
    sign_report_batch,
    verify_report,
    verify_report_lazy,
)
from chiploc.protocol._keys import verify_signature
from chiploc.protocol._report import REPORT_DOMAIN
from chiploc.verifier import DEFAULT_FULL_CHECK_RATE, LazyVerification, screen_reports

NOW_NS = 1_700_000_000 * 1_000_000_000
PROBES = 32


def _key(role: Role, ident: str) -> PrivateKey:
    return generate_private_key(role, ident, seed=ident.encode().ljust(32, b"\0")[:32])


def build(
    n_reports: int, *, landmarks: int = 20, chips: int = 100, seed: int = 1, batch: int = 1
) -> tuple[Registry, list[bytes]]:
    """Signed reports, in landmark round-robin order; ``batch`` > 1: each landmark signs one
    Merkle root per ``batch`` of its reports."""
    rng = random.Random(seed)
    lm_keys = [_key(Role.LANDMARK, f"lm-{i}") for i in range(landmarks)]
    chip_keys = [_key(Role.CHIP, f"chip-{i}") for i in range(chips)]
    authority = _key(Role.AUTHORITY, "authority")
    registry = Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            k.id: LandmarkEntry(
                id=k.id,
                lat=rng.uniform(-60, 60),
                lon=rng.uniform(-180, 180),
                public_key=k.public_key.key_bytes,
                operator="bench",
            )
            for k in lm_keys
        },
        chips={
            k.id: ChipEntry(id=k.id, public_key=k.public_key.key_bytes, region="country:DEU")
            for k in chip_keys
        },
        verifiers={},
    )
    drafts = []
    for n in range(n_reports):
        lm = lm_keys[n % landmarks]
        chip = chip_keys[(n // landmarks) % chips]
        session = rng.randbytes(16)
        probes = []
        for seq in range(PROBES):
            nonce = rng.randbytes(16)
            msg = response_message(
                session_id=session, chip_id=chip.id, landmark_id=lm.id, seq=seq, nonce=nonce
            )
            probes.append(
                ProbeRecord(
                    seq=seq,
                    nonce=nonce,
                    rtt_ns=rng.randint(1_000_000, 200_000_000),
                    chip_signature=chip.sign(msg),
                    timestamp_source="kernel",
                )
            )
        start = NOW_NS - 60 * 1_000_000_000
        drafts.append(
            draft_report(
                landmark_id=lm.id,
                chip_id=chip.id,
                session_id=session,
                chip_address="192.0.2.1:4433",
                started_at_unix_ns=start,
                finished_at_unix_ns=start + 50_000_000,
                probes=probes,
            )
        )
    raws: list[bytes] = [b""] * n_reports
    for i, lm in enumerate(lm_keys):
        mine = list(range(i, n_reports, landmarks))
        for lo in range(0, len(mine), max(1, batch)):
            part = mine[lo : lo + max(1, batch)]
            if batch <= 1:
                signed = [sign_report(lm, **_fields(drafts[n])) for n in part]
            else:
                signed = sign_report_batch(lm, [drafts[n] for n in part])
            for n, report in zip(part, signed, strict=True):
                raws[n] = report.raw
    return registry, raws


def _fields(d: Any) -> dict[str, Any]:
    return {
        "chip_id": d.chip_id,
        "session_id": d.session_id,
        "chip_address": d.chip_address,
        "started_at_unix_ns": d.started_at_unix_ns,
        "finished_at_unix_ns": d.finished_at_unix_ns,
        "probes": d.probes,
    }


def _rate(fn: Callable[[], int], *, budget_s: float, min_passes: int = 3) -> float:
    """Items per CPU second: the fastest of the passes that fit in the budget."""
    best = 0.0
    t_end = time.monotonic() + budget_s
    passes = 0
    while passes < min_passes or time.monotonic() < t_end:
        t0 = time.process_time()
        items = fn()
        dt = time.process_time() - t0
        best = max(best, items / dt if dt > 0 else 0.0)
        passes += 1
    return best


def run(n_reports: int, budget_s: float, batch: int = 100) -> dict[str, Any]:
    registry, raws = build(n_reports, batch=batch)
    _, single_raws = build(n_reports, batch=1)

    def each(verify: Callable[..., object], data: Sequence[bytes] = raws) -> Callable[[], int]:
        def go() -> int:
            roots = VerifiedRoots()  # empty each pass: every batch root is verified once
            for raw in data:
                verify(raw, registry, roots=roots)
            return len(data)

        return go

    def screen(lazy: LazyVerification | None, data: Sequence[bytes] = raws) -> Callable[[], int]:
        def go() -> int:
            s = screen_reports(data, registry, now_unix_ns=NOW_NS, lazy=lazy, roots=VerifiedRoots())
            if len(s.reports) != len(data):
                raise SystemExit(f"benchmark reports failed to verify: {s.rejected}")
            return len(data)

        return go

    def per_report_us(fn: Callable[[bytes], object], data: Sequence[bytes]) -> float:
        def go() -> int:
            for raw in data:
                fn(raw)
            return len(data)

        return round(1e6 / _rate(go, budget_s=min(1.0, budget_s)), 1)

    # Calibration: one Ed25519 check (the landmark's, over a whole report) on this machine
    # now; lazy verification costs two of these plus a decode, full verification 33.
    lm = registry.landmark(decode_report(single_raws[0]).landmark_id)
    body, sig = single_raws[0][:-64], single_raws[0][-64:]

    def one_check() -> int:
        for _ in range(500):
            verify_signature(lm.public_key, REPORT_DOMAIN + body, sig)
        return 500

    ed25519_per_s = _rate(one_check, budget_s=min(1.0, budget_s))
    proofs: dict[bytes, tuple[bytes, int, tuple[bytes, ...]]] = {}
    for raw in raws:  # each batched report's leaf, index and path, to time the path alone
        proof = decode_report(raw).batch
        if proof is not None:
            tail = 8 + 32 * (len(proof.path) + 1) + 64
            proofs[raw] = (raw[: len(raw) - tail], proof.index, proof.path)
    sample = LazyVerification(key=os.urandom(32), rate=DEFAULT_FULL_CHECK_RATE)
    lazy_only = LazyVerification(key=os.urandom(32), rate=0.0)
    load_start = os.getloadavg()[0]
    out: dict[str, Any] = {
        "reports": len(raws),
        "probes_per_report": PROBES,
        "reports_per_batch": batch,
        # Full checks: a pass is ~5 s; one or two fit the budget (the run stays under 2 min).
        "full_reports_per_s": round(_rate(each(verify_report), budget_s=budget_s, min_passes=1)),
        "lazy_reports_per_s": round(_rate(each(verify_report_lazy), budget_s=budget_s)),
        "screen_full_reports_per_s": round(_rate(screen(None), budget_s=budget_s, min_passes=1)),
        "screen_lazy_no_sample_reports_per_s": round(_rate(screen(lazy_only), budget_s=budget_s)),
        "screen_lazy_sampled_reports_per_s": round(_rate(screen(sample), budget_s=budget_s)),
        "single_lazy_reports_per_s": round(
            _rate(each(verify_report_lazy, single_raws), budget_s=budget_s)
        ),
        "single_screen_lazy_sampled_reports_per_s": round(
            _rate(screen(sample, single_raws), budget_s=budget_s)
        ),
        "full_check_rate": DEFAULT_FULL_CHECK_RATE,
        "ed25519_verify_us": round(1e6 / ed25519_per_s, 1),
        "overhead_us_decode": per_report_us(decode_report, raws),
        "overhead_us_digest": per_report_us(lambda r: hashlib.sha256(r).digest(), raws),
        "overhead_us_merkle_path": per_report_us(lambda r: root_from_path(*proofs[r]), raws),
        "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    out["verified_reports_per_s_per_core"] = out["screen_lazy_sampled_reports_per_s"]
    out["full_verified_reports_per_s_per_core"] = out["screen_full_reports_per_s"]
    out["speedup_lazy_vs_full"] = round(
        out["screen_lazy_sampled_reports_per_s"] / out["screen_full_reports_per_s"], 2
    )
    out["speedup_batched_vs_single"] = round(
        out["screen_lazy_sampled_reports_per_s"] / out["single_screen_lazy_sampled_reports_per_s"],
        2,
    )
    out["target_reports_per_s_per_core"] = 5000
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="report verification benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--budget-s", type=float, default=3.0, help="timing window per figure")
    parser.add_argument(
        "--batch", type=int, default=100, help="reports a landmark signs under one root (1: single)"
    )
    args = parser.parse_args(argv)
    result = run(args.reports, args.budget_s, args.batch)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k, v in sorted(result.items()):
            print(f"{k:40s} {v}")


if __name__ == "__main__":
    main()
