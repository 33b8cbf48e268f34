"""PostgreSQL specifics: several writer processes, a server restart mid-write, the guard
triggers, refusals, the CLI. The shared contract runs on both backends in test_store.py."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from chiploc.common.errors import IntegrityError, StoreError, StoreUnavailable
from chiploc.store import PostgresStore, redact_url
from chiploc.verifier import verify_audit

if TYPE_CHECKING:
    from ..conftest import OwnPostgres

T0 = 1_700_000_000_000_000_000
REPO = Path(__file__).resolve().parents[2]

# A writer process: batches of rounds + one keyed verdict each, stored through add_batch.
# Prints "done" when every batch landed. Retries only through the store's own backoff.
_WRITER = r"""
import hashlib, sys, time
from dataclasses import dataclass
from chiploc.store import BatchRound, BatchVerdict, PostgresStore

@dataclass(frozen=True)
class R:
    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int

url, name, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pause_s = float(sys.argv[5])
T0 = 1_700_000_000_000_000_000
with PostgresStore.open(url, retry_budget_s=60.0) as s:
    for b in range(batches):
        chip = f"{name}-chip-{b}"
        reports = [
            R(raw=f"{name}|{b}|{i}".encode() + hashlib.sha256(f"{name}{b}{i}".encode()).digest(),
              landmark_id=f"lm-{i}", chip_id=chip, min_rtt_ns=1_000_000 + i)
            for i in range(size)
        ]
        result = {"target": chip, "verdict": "COMPLIANT", "proof": True, "model": "vacuum",
                  "region_spec": "country:DEU", "message": "ok"}
        s.add_batch(
            [BatchRound(report=r, received_at_unix_ns=T0 + b) for r in reports],
            [BatchVerdict(result=result,
                          evidence_digests=[hashlib.sha256(r.raw).hexdigest() for r in reports],
                          certificate=b"cert", issued_at_unix_ns=T0 + b, verdict_round="day-1")],
        )
        print(f"batch {b}", flush=True)
        time.sleep(pause_s)
    print("done", s.retries, flush=True)
"""


def _spawn(
    url: str, name: str, batches: int, size: int, pause_s: float = 0.0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, name, str(batches), str(size), str(pause_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _finish(p: subprocess.Popen[str], timeout: float = 120) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, f"writer failed:\n{out}\n{err}"
    assert out.strip().splitlines()[-1].startswith("done"), out
    return out


def _postmaster_started(url: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(b"SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    return row[0]


def test_concurrent_writer_processes_keep_one_verifiable_chain(postgres_url: str) -> None:
    PostgresStore.open(postgres_url).close()  # migrate once; the writers race on the rest
    writers = [_spawn(postgres_url, f"w{k}", batches=15, size=4) for k in range(4)]
    for p in writers:
        _finish(p)
    with PostgresStore.open(postgres_url, read_only=True) as s:
        report = verify_audit(s)
        assert (report.rounds, report.verdicts) == (4 * 15 * 4, 4 * 15)
        assert report.entries == report.rounds + report.verdicts
        entries = list(s.audit_entries())
        # One chain: seq 1..N with every link in place (verify_chain checked the hashes).
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert all(b.prev_hash_hex == a.hash_hex for a, b in itertools.pairwise(entries))
        # The writers really interleaved: several writers' batches alternate in the log.
        chips = [e.payload.decode() for e in entries if e.kind == "verdict"]
        owners = [c.split('"chip_id":"')[1].split("-")[0] for c in chips]
        switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
        assert switches >= 3, owners


def test_the_same_batches_written_at_once_by_several_processes_land_once(
    postgres_url: str,
) -> None:
    """A retried batch racing the original (a worker presumed dead, but not): each row once."""
    PostgresStore.open(postgres_url).close()
    writers = [_spawn(postgres_url, "same", batches=10, size=6) for _ in range(3)]
    for p in writers:
        _finish(p)
    with PostgresStore.open(postgres_url, read_only=True) as s:
        report = verify_audit(s)
        assert (report.rounds, report.verdicts, report.entries) == (60, 10, 70)


@pytest.mark.parametrize(
    "outage",
    [
        ["restart"],  # fast shutdown: sessions terminated, then the server is back
        ["crash", "start"],  # immediate shutdown (no checkpoint): crash recovery on start
    ],
    ids=["restart", "crash"],
)
def test_server_restart_mid_write_loses_nothing_and_duplicates_nothing(
    own_postgres: tuple[OwnPostgres, str], outage: list[str]
) -> None:
    server, postgres_url = own_postgres  # a server of this test's own: it goes down
    PostgresStore.open(postgres_url).close()
    started_before = _postmaster_started(postgres_url)
    # >= 3 s of writing (a pause after each batch): the outage falls inside it.
    writer = _spawn(postgres_url, "rs", batches=60, size=8, pause_s=0.05)
    assert writer.stdout is not None
    # Let it land a few batches, then restart the server under it.
    seen = [writer.stdout.readline() for _ in range(3)]
    assert all(line.startswith("batch") for line in seen), seen
    for action in outage:
        done = server.control(action)
        assert done.returncode == 0, done.stderr
    # The test proves something only if the server really went down while the writer
    # was mid-run: it restarted, and the writer had not finished by then.
    assert writer.poll() is None, "the writer finished before the outage"
    assert _postmaster_started(postgres_url) > started_before
    _finish(writer)
    with PostgresStore.open(postgres_url, read_only=True) as s:
        report = verify_audit(s)
        assert (report.rounds, report.verdicts) == (60 * 8, 60)  # nothing lost, none twice
        assert len({r.digest_hex for r in s.rounds()}) == 60 * 8
        keys = [(v.chip_id, v.verdict_round) for v in s.verdicts()]
        assert len(keys) == len(set(keys)) == 60


def test_unreachable_server_is_a_transient_error_after_the_retry_budget() -> None:
    sleeps: list[float] = []
    t = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore.open(
            "postgresql://chiploc:secret@127.0.0.1:1/nowhere",
            retry_budget_s=1.0,
            sleep=sleeps.append,
        )
    assert time.monotonic() - t < 30
    assert info.value.reason == "unavailable"
    assert isinstance(info.value, StoreError)  # one tree: callers catching StoreError see it
    assert "secret" not in str(info.value)  # the password never reaches a message
    assert "127.0.0.1:1/nowhere" in str(info.value)


def test_guard_triggers_refuse_update_delete_truncate(
    postgres_url: str, make_report: Callable[..., Any]
) -> None:
    with PostgresStore.open(postgres_url) as s:
        s.add_round(make_report(0), received_at_unix_ns=T0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in (
            b"UPDATE audit_log SET kind = 'x'",
            b"DELETE FROM audit_log",
            b"TRUNCATE audit_log",
            b"UPDATE rounds SET min_rtt_ns = 1",
            b"DELETE FROM rounds",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


def test_row_edited_behind_the_log_is_named(
    postgres_url: str, make_report: Callable[..., Any]
) -> None:
    with PostgresStore.open(postgres_url) as s:
        for i in range(3):
            s.add_round(make_report(i), received_at_unix_ns=T0 + i)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the attacker drops the guard
        conn.execute(b"ALTER TABLE rounds DISABLE TRIGGER USER")
        conn.execute(b"UPDATE rounds SET min_rtt_ns = 1 WHERE round_id = 2")
    with (
        PostgresStore.open(postgres_url, read_only=True) as s,
        pytest.raises(IntegrityError, match=r"rounds row id=2: differs from audit entry seq=2"),
    ):
        verify_audit(s)


def test_foreign_database_and_newer_schema_are_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(b"CREATE TABLE someone_elses (x int)")
    with pytest.raises(StoreError) as info:
        PostgresStore.open(postgres_url)
    assert info.value.reason == "not_a_store"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(b"DROP TABLE someone_elses")
    PostgresStore.open(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(b"INSERT INTO schema_migrations VALUES (99, 'from the future')")
    with pytest.raises(StoreError) as info:
        PostgresStore.open(postgres_url)
    assert info.value.reason == "schema_too_new"


def test_cli_audit_verify_reads_a_postgres_store(
    postgres_url: str, make_report: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from chiploc.cli import main

    with PostgresStore.open(postgres_url) as s:
        for i in range(4):
            s.add_round(make_report(i), received_at_unix_ns=T0 + i)
        head = s.audit_head()
    assert head is not None
    anchor = f"{head.seq}:{head.hash_hex}"
    assert main(["audit", "verify", "--db", postgres_url, "--anchor", anchor]) == 0
    assert capsys.readouterr().out.startswith("audit log intact: 4 entries covering 4 rounds")
    assert main(["audit", "head", "--db", postgres_url]) == 0
    assert capsys.readouterr().out.strip() == anchor
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(b"ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(b"DELETE FROM audit_log WHERE seq = 2")
    assert main(["audit", "verify", "--db", postgres_url]) == 1
    assert "entry seq=2 is missing (deleted)" in capsys.readouterr().err


def test_redacted_url_has_no_password() -> None:
    assert redact_url("postgresql://u:pw@db.example:5433/chiploc") == (
        "postgresql://u@db.example:5433/chiploc"
    )


def test_a_connection_killed_mid_transaction_is_retried_on_a_fresh_one(
    postgres_url: str, make_report: Callable[..., Any]
) -> None:
    calls: list[int] = []
    with PostgresStore.open(postgres_url, sleep=lambda s: None) as s:

        def tx(conn: psycopg.Connection[Any]) -> int:
            calls.append(1)
            if len(calls) == 1:  # the server drops this session mid-transaction
                conn.execute(b"SELECT pg_terminate_backend(pg_backend_pid())")
            row = conn.execute(b"SELECT 42").fetchone()
            assert row is not None
            return int(row[0])

        assert s._run("a test transaction", tx, write=True) == 42
        assert (len(calls), s.retries) == (2, 1)
        s.add_round(make_report(0), received_at_unix_ns=T0)  # the store carries on
        assert verify_audit(s).rounds == 1
