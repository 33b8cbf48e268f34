"""The mesh tables: minimums derived from signed rounds, an append-only flag log, and the
audit log catching an edited or deleted mesh row like any other."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from chiploc.common.errors import IntegrityError, StoreError
from chiploc.store import SCHEMA_VERSION, SqliteStore
from chiploc.verifier import verify_audit

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


def test_minimums_per_direction_and_after_a_time(store: SqliteStore) -> None:
    assert store.schema_version == SCHEMA_VERSION == 2
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


def test_flag_log_is_append_only_and_latest_wins(store: SqliteStore) -> None:
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
    store: SqliteStore, raw_db: Callable[[], sqlite3.Connection], attack: str, reason: str
) -> None:
    store.add_mesh_round(_mesh(1, "a", "x", 500_000), received_at_unix_ns=T0)
    store.add_mesh_flag("x", action="suspect", details={}, now_unix_ns=T0 + 1)
    assert verify_audit(store).mesh_rounds == 1
    conn = raw_db()
    conn.execute(attack)
    conn.close()
    with pytest.raises(IntegrityError) as info:
        verify_audit(store)
    assert info.value.reason == reason


def test_a_version_1_store_migrates_and_keeps_its_rounds(tmp_path: object) -> None:
    """A store written before the mesh (schema 1) opens, migrates to 2, loses nothing."""
    from pathlib import Path

    from chiploc.store import MIGRATIONS, LandmarkRecord, open_store

    assert isinstance(tmp_path, Path)
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    old = SqliteStore._setup(conn, path, read_only=False, migrations=MIGRATIONS[:1])
    assert old.schema_version == 1
    lm = LandmarkRecord(landmark_id="a", lat=50.1, lon=8.7, operator="op", public_key=b"k" * 32)
    old.record_landmark(lm, now_unix_ns=T0)
    old.close()
    with open_store(path) as store:
        assert store.schema_version == 2
        assert [x.landmark_id for x in store.landmarks()] == ["a"]
        store.add_mesh_round(_mesh(1, "a", "b", 1_000_000), received_at_unix_ns=T0 + 1)
        report = verify_audit(store)
        assert (report.enrolments, report.mesh_rounds) == (1, 1)
