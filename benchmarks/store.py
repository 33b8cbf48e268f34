#!/usr/bin/env python3
"""Store benchmark: rows per second through ``Store.add_batch``, SQLite vs PostgreSQL.

A batch is what a verifier worker stores for ``--chips-per-batch`` chips: per chip 8
rounds (3.1 kB raw reports, the size of a 32-probe report), one verdict with a 1 kB
certificate, its 8 evidence links, and one audit entry per round and verdict. Rows counted:
rounds + verdicts + evidence links + audit entries (``BatchResult.rows_written``). Each
backend starts from an empty store (PostgreSQL: a fresh database on the server of
``--db``, ``$CHIPLOC_TEST_POSTGRES_URL`` or ``scripts/postgres start``, dropped after).
Wall-clock time, one writer process; the PostgreSQL server shares the machine's cores.

    python benchmarks/store.py --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chiploc.store import BatchRound, BatchVerdict, PostgresStore, Store, open_store

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000_000_000_000
LANDMARKS_PER_CHIP = 8
REPORT_BYTES = 3_100
CERTIFICATE_BYTES = 1_000


@dataclass(frozen=True, slots=True)
class _Report:
    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int


def _batch(first_chip: int, chips: int, run: str) -> tuple[list[BatchRound], list[BatchVerdict]]:
    rounds: list[BatchRound] = []
    verdicts: list[BatchVerdict] = []
    for c in range(first_chip, first_chip + chips):
        chip = f"chip-{c}"
        digests = []
        for k in range(LANDMARKS_PER_CHIP):
            seed = hashlib.sha256(f"{run}|{c}|{k}".encode()).digest()
            raw = (seed * (REPORT_BYTES // 32 + 1))[:REPORT_BYTES]
            rounds.append(
                BatchRound(
                    report=_Report(
                        raw=raw, landmark_id=f"lm-{k}", chip_id=chip, min_rtt_ns=1_000_000 + k
                    ),
                    received_at_unix_ns=T0 + c,
                )
            )
            digests.append(hashlib.sha256(raw).hexdigest())
        result = {
            "target": chip,
            "verdict": "COMPLIANT",
            "proof": True,
            "model": "vacuum",
            "region_spec": "country:DEU",
            "margin_km": 12.5,
            "message": "region lies 12.5 km inside country:DEU",
        }
        verdicts.append(
            BatchVerdict(
                result=result,
                evidence_digests=digests,
                certificate=b"c" * CERTIFICATE_BYTES,
                issued_at_unix_ns=T0 + c,
                verdict_round=run,
            )
        )
    return rounds, verdicts


def _measure(store: Store, *, chips: int, per_batch: int) -> dict[str, float]:
    rows = 0
    t0 = time.perf_counter()
    for first in range(0, chips, per_batch):
        rounds, verdicts = _batch(first, min(per_batch, chips - first), "day-1")
        rows += store.add_batch(rounds, verdicts).rows_written
    dt = time.perf_counter() - t0
    # The same batches again: a retried batch writes nothing (idempotent), and costs a read.
    t1 = time.perf_counter()
    rounds, verdicts = _batch(0, min(per_batch, chips), "day-1")
    again = store.add_batch(rounds, verdicts)
    retry_s = time.perf_counter() - t1
    if again.rows_written:
        raise SystemExit("a retried batch wrote rows: the store is not idempotent")
    return {
        "rows": rows,
        "rows_per_s": round(rows / dt),
        "chips_per_s": round(chips / dt),
        "reports_per_s": round(chips * LANDMARKS_PER_CHIP / dt),
        "retried_batch_ms": round(retry_s * 1000, 1),
    }


def _server_url(arg: str | None) -> str:
    url = arg or os.environ.get("CHIPLOC_TEST_POSTGRES_URL", "")
    if url:
        return url
    proc = subprocess.run(
        [str(REPO / "scripts" / "postgres"), "start"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"no PostgreSQL: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1]


def run(*, chips: int, per_batch: int, db: str | None) -> dict[str, Any]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    out: dict[str, Any] = {"chips": chips, "chips_per_batch": per_batch}
    with tempfile.TemporaryDirectory() as d, open_store(Path(d) / "bench.db") as s:
        sqlite = _measure(s, chips=chips, per_batch=per_batch)
    server = _server_url(db)
    name = f"chiploc_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        info = conninfo_to_dict(server)
        user = f"{info['user']}@" if info.get("user") else ""
        url = f"postgresql://{user}{info['host']}:{info['port']}/{name}"
        with PostgresStore.open(url) as s:
            pg = _measure(s, chips=chips, per_batch=per_batch)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    for k, v in sqlite.items():
        out[f"sqlite_{k}"] = v
    for k, v in pg.items():
        out[f"postgres_{k}"] = v
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="store batch-write benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--chips", type=int, default=5000)
    parser.add_argument("--chips-per-batch", type=int, default=500)
    parser.add_argument("--db", help="PostgreSQL server URL (a scratch database is made on it)")
    args = parser.parse_args(argv)
    result = run(chips=args.chips, per_batch=args.chips_per_batch, db=args.db)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for k, v in sorted(result.items()):
            print(f"{k:32s} {v}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
