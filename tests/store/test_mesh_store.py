"""The mesh tables, on both backends (the ``Store`` contract): minimums derived from signed
rounds, an append-only flag log, the audit log catching an edited or deleted mesh row like any
other, migrations from older schemas, and (PostgreSQL) mesh writes from several processes
joining the one audit chain under the advisory lock."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from chiploc.common.errors import IntegrityError, StoreError
from chiploc.store import MIGRATIONS, SCHEMA_VERSION, PostgresStore, SqliteStore, Store
from chiploc.verifier import verify_audit

REPO = Path(__file__).resolve().parents[2]

T0 = 1_700_000_000_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeMeshReport:
    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int | None
    overhead_lower_bound_ns: int = 0


def _mesh(i: int, landmark: str, peer: str, rtt: int | None, overhead: int = 0) -> FakeMeshReport:
    raw = b"peer-report|" + f"{landmark}|{peer}|{i}".encode() + hashlib.sha256(bytes([i])).digest()
    return FakeMeshReport(
        raw=raw,
        landmark_id=landmark,
        chip_id=peer,
        min_rtt_ns=rtt,
        overhead_lower_bound_ns=overhead,
    )


def test_minimums_per_direction_and_after_a_time(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION == 3
    rounds = [
        _mesh(1, "a", "b", 3_000_000),
        _mesh(2, "a", "b", 2_000_000),
        _mesh(3, "a", "b", None),  # every probe lost: proves nothing
        _mesh(4, "b", "a", 2_500_000),
        _mesh(5, "a", "b", 2_100_000, overhead=200_000),  # smaller rtt - overhead wins
        _mesh(6, "a", "c", 9_000_000),
    ]
    for i, r in enumerate(rounds):
        _, inserted = store.add_mesh_round(r, received_at_unix_ns=T0 + i)
        assert inserted
    _, again = store.add_mesh_round(rounds[0], received_at_unix_ns=T0 + 99)
    assert not again  # idempotent by digest
    mins = {(m.landmark_id, m.peer_id): m for m in store.mesh_minimums()}
    assert set(mins) == {("a", "b"), ("b", "a"), ("a", "c")}
    assert (mins["a", "b"].min_rtt_ns, mins["a", "b"].overhead_ns) == (2_100_000, 200_000)
    assert mins["a", "b"].rounds == 3  # answered rounds only
    later = {(m.landmark_id, m.peer_id) for m in store.mesh_minimums(received_after_unix_ns=T0 + 3)}
    assert later == {("a", "b"), ("a", "c")}
    assert len(list(store.mesh_rounds())) == 6
    with pytest.raises(StoreError):
        store.add_mesh_round(_mesh(7, "a", "a", 1), received_at_unix_ns=T0)


def test_a_mesh_round_beyond_64_bits_is_refused_on_every_backend(store: Store) -> None:
    """Both databases keep signed 64-bit integers: an RTT of 2**63 ns (292 years) is bad
    input, refused as such, never an overflow inside the driver; the store keeps working."""
    for i, (rtt, overhead) in enumerate(((2**63, 0), (5_000_000, 2**63))):
        with pytest.raises(StoreError) as err:
            store.add_mesh_round(_mesh(20 + i, "a", "b", rtt, overhead), received_at_unix_ns=T0)
        assert err.value.reason == "bad_record"
        assert "out of range" in str(err.value)
    _, inserted = store.add_mesh_round(_mesh(22, "a", "b", 2**63 - 1), received_at_unix_ns=T0)
    assert inserted
    assert [m.min_rtt_ns for m in store.mesh_minimums()] == [2**63 - 1]


def test_flag_log_is_append_only_and_latest_wins(store: Store) -> None:
    store.add_mesh_flag("x", action="suspect", details={"pairs": [["a", "x"]]}, now_unix_ns=T0)
    assert set(store.mesh_suspects()) == {"x"}
    store.add_mesh_flag("x", action="clear", details={"operator": "o"}, now_unix_ns=T0 + 1)
    assert store.mesh_suspects() == {}
    assert store.mesh_cleared_at() == {"x": T0 + 1}
    with pytest.raises(StoreError):
        store.add_mesh_flag("x", action="forgive", details={}, now_unix_ns=T0)
    report = verify_audit(store)
    assert report.mesh_flags == 2
    assert "2 mesh flags" in report.summary()
    assert [(f.flag_id, f.action) for f in store.mesh_flags()] == [(1, "suspect"), (2, "clear")]
    assert dict(next(iter(store.mesh_flags())).details) == {"pairs": [["a", "x"]]}


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("UPDATE mesh_rounds SET min_rtt_ns = 1 WHERE mesh_round_id = 1", "row_edited"),
        ("DELETE FROM mesh_rounds WHERE mesh_round_id = 1", "row_deleted"),
        ("UPDATE mesh_flags SET action = 'clear' WHERE flag_id = 1", "row_edited"),
        ("DELETE FROM mesh_flags WHERE flag_id = 1", "row_deleted"),
    ],
)
def test_tampered_mesh_rows_are_caught(
    store: Store,
    backend: str,
    request: pytest.FixtureRequest,
    attack: str,
    reason: str,
) -> None:
    store.add_mesh_round(_mesh(1, "a", "x", 500_000), received_at_unix_ns=T0)
    store.add_mesh_flag("x", action="suspect", details={}, now_unix_ns=T0 + 1)
    assert verify_audit(store).mesh_rounds == 1
    if backend == "sqlite":
        raw_db: Callable[[], sqlite3.Connection] = request.getfixturevalue("raw_db")
        conn = raw_db()
        conn.execute(attack)
        conn.close()
    else:  # the attacker owns the database and drops the guard triggers first
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as pg:
            for table in ("mesh_rounds", "mesh_flags"):
                pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER".encode())
            pg.execute(attack.encode())
    with pytest.raises(IntegrityError) as info:
        verify_audit(store)
    assert info.value.reason == reason


def test_postgres_guard_triggers_refuse_mesh_edits(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url) as s:
        s.add_mesh_round(_mesh(1, "a", "x", 500_000), received_at_unix_ns=T0)
        s.add_mesh_flag("x", action="suspect", details={}, now_unix_ns=T0 + 1)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in (
            b"UPDATE mesh_rounds SET min_rtt_ns = 1",
            b"DELETE FROM mesh_rounds",
            b"TRUNCATE mesh_rounds",
            b"UPDATE mesh_flags SET action = 'clear'",
            b"DELETE FROM mesh_flags",
            b"TRUNCATE mesh_flags",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


@pytest.mark.parametrize("before", [1, 2])
def test_an_older_store_migrates_and_keeps_its_rounds(tmp_path: object, before: int) -> None:
    """A store written before the mesh (schema 1 or 2) opens, migrates to 3, loses nothing."""
    from pathlib import Path

    from chiploc.store import LandmarkRecord, open_store

    assert isinstance(tmp_path, Path)
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    old = SqliteStore._setup(conn, path, read_only=False, migrations=MIGRATIONS[:before])
    assert old.schema_version == before
    lm = LandmarkRecord(landmark_id="a", lat=50.1, lon=8.7, operator="op", public_key=b"k" * 32)
    old.record_landmark(lm, now_unix_ns=T0)
    old.close()
    with open_store(path) as store:
        assert store.schema_version == 3
        assert [x.landmark_id for x in store.landmarks()] == ["a"]
        store.add_mesh_round(_mesh(1, "a", "b", 1_000_000), received_at_unix_ns=T0 + 1)
        report = verify_audit(store)
        assert (report.enrolments, report.mesh_rounds) == (1, 1)


@pytest.mark.parametrize("before", [1, 2])
def test_an_older_postgres_store_migrates_and_keeps_its_rows(
    postgres_url: str, before: int
) -> None:
    """A PostgreSQL store written before the mesh opens at 3 with its rows and chain intact."""
    from chiploc.store import LandmarkRecord

    with PostgresStore.open(postgres_url, migrations=MIGRATIONS[:before]) as old:
        assert old.schema_version == before
        lm = LandmarkRecord(landmark_id="a", lat=50.1, lon=8.7, operator="op", public_key=b"k" * 32)
        old.record_landmark(lm, now_unix_ns=T0)
    with pytest.raises(StoreError) as info:
        PostgresStore.open(postgres_url, read_only=True)
    assert info.value.reason == "schema_outdated"
    with PostgresStore.open(postgres_url) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert [x.landmark_id for x in store.landmarks()] == ["a"]
        store.add_mesh_round(_mesh(1, "a", "b", 1_000_000), received_at_unix_ns=T0 + 1)
        report = verify_audit(store)
        assert (report.enrolments, report.mesh_rounds) == (1, 1)


# A writer process: mesh rounds and flags interleaved with chip rounds (add_batch), each
# its own transaction under the advisory lock.
_MESH_WRITER = r"""
import hashlib, sys
from dataclasses import dataclass
from chiploc.store import BatchRound, PostgresStore

@dataclass(frozen=True)
class R:
    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int
    overhead_lower_bound_ns: int = 0

url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
T0 = 1_700_000_000_000_000_000
with PostgresStore.open(url, retry_budget_s=60.0) as s:
    for i in range(n):
        tag = f"{name}|{i}".encode()
        s.add_mesh_round(
            R(raw=b"peer|" + tag + hashlib.sha256(tag).digest(), landmark_id=name,
              chip_id="peer", min_rtt_ns=1_000_000 + i),
            received_at_unix_ns=T0 + i,
        )
        s.add_batch([BatchRound(
            report=R(raw=b"chip|" + tag + hashlib.sha256(b"c" + tag).digest(),
                     landmark_id=name, chip_id="chip", min_rtt_ns=2_000_000 + i),
            received_at_unix_ns=T0 + i)])
        s.add_mesh_flag(name, action="suspect" if i % 2 == 0 else "clear",
                        details={"i": i}, now_unix_ns=T0 + i)
print("done", flush=True)
"""


def test_mesh_writes_from_several_processes_keep_one_chain(postgres_url: str) -> None:
    n = 15
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _MESH_WRITER, postgres_url, f"lm-{w}", str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for w in range(3)
    ]
    for p in writers:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, f"writer failed:\n{out}\n{err}"
        assert out.strip() == "done"
    with PostgresStore.open(postgres_url, read_only=True) as s:
        report = verify_audit(s)
        assert (report.mesh_rounds, report.mesh_flags, report.rounds) == (3 * n, 3 * n, 3 * n)
        assert report.entries == 9 * n
        # each writer's last flag (i = 14, even) is "suspect": the latest entry wins
        assert set(s.mesh_suspects()) == {"lm-0", "lm-1", "lm-2"}
        assert len({r.digest_hex for r in s.mesh_rounds()}) == 3 * n
