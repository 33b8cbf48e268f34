from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chiploc.common.errors import IntegrityError, StoreError
from chiploc.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ChipRecord,
    LandmarkRecord,
    Migration,
    SqliteStore,
    Store,
    open_store,
    sha256_hex,
    verify_chain,
)
from chiploc.verifier import verify_audit

T0 = 1_700_000_000_000_000_000


def test_fresh_database_is_migrated_wal_and_reopens(db_path: Path) -> None:
    with open_store(db_path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.journal_mode == "wal"
        assert s.audit_head() is None
    with open_store(db_path) as s:  # re-open: no migration runs twice
        assert s.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
    conn.close()
    assert rows == [(m.version,) for m in MIGRATIONS]


def test_pragmas_on_connection(sqlite_store: SqliteStore) -> None:
    c = sqlite_store._conn
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_newer_schema_is_refused(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this chiploc supports") as info:
        open_store(db_path)
    assert info.value.reason == "schema_too_new"


def test_foreign_database_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError) as info:
        open_store(db_path)
    assert info.value.reason == "not_a_store"


def test_garbage_file_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        open_store(db_path)
    assert info.value.reason == "not_a_database"


def test_read_only_refuses_missing_and_writes(db_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        open_store(db_path, read_only=True)
    assert info.value.reason == "missing"
    assert not db_path.exists()
    open_store(db_path).close()
    with open_store(db_path, read_only=True) as s, pytest.raises(StoreError) as info:
        s.record_verifier("v", public_key=bytes(32), revoked=False, now_unix_ns=T0)
    assert info.value.reason == "read_only"


def test_failed_migration_rolls_back_to_previous_version(db_path: Path) -> None:
    bad = Migration(
        version=SCHEMA_VERSION + 1,
        description="broken",
        statements=("CREATE TABLE extra (x)", "THIS IS NOT SQL"),
    )
    open_store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(StoreError):
        SqliteStore._setup(conn, db_path, read_only=False, migrations=(*MIGRATIONS, bad))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
    assert "extra" not in names
    conn.close()


def test_migration_to_a_new_version_applies_in_order(db_path: Path) -> None:
    extra = Migration(
        version=SCHEMA_VERSION + 1,
        description="add a note column",
        statements=("ALTER TABLE verdicts ADD COLUMN note TEXT",),
    )
    open_store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    s = SqliteStore._setup(conn, db_path, read_only=False, migrations=(*MIGRATIONS, extra))
    assert s.schema_version == SCHEMA_VERSION + 1
    s.close()
    with pytest.raises(StoreError, match="newer"):  # the released code refuses it now
        open_store(db_path)


def test_add_round_is_idempotent_by_digest(
    store: SqliteStore, make_report: Callable[..., Any]
) -> None:
    r = make_report(1)
    first = store.add_round(r, received_at_unix_ns=T0)
    again = store.add_round(r, received_at_unix_ns=T0 + 5)
    assert first.inserted
    assert not again.inserted
    assert again.record == first.record
    assert first.record.digest_hex == sha256_hex(r.raw)
    assert first.record.raw == r.raw  # kept verbatim
    assert len(list(store.rounds())) == 1
    assert len(list(store.audit_entries())) == 1
    assert store.round_by_digest(first.record.digest_hex) == first.record
    assert store.round_by_digest("0" * 64) is None


def test_round_and_verdict_each_get_one_audit_entry(
    store: SqliteStore, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> None:
    digests = [
        store.add_round(make_report(i), received_at_unix_ns=T0 + i).record.digest_hex
        for i in range(3)
    ]
    v = store.add_verdict(
        make_result(), evidence_digests=digests, certificate=b"{}", issued_at_unix_ns=T0 + 10
    )
    assert v.evidence == tuple(sorted(digests))
    assert [e.kind for e in store.audit_entries()] == ["round", "round", "round", "verdict"]
    assert list(store.verdicts()) == [v]
    assert list(store.verdicts(chip_id="other")) == []
    summary = verify_chain(store.audit_entries())
    assert summary.entries == 4
    assert verify_audit(store).verdicts == 1


def test_verdict_citing_unknown_evidence_is_refused(
    store: SqliteStore, make_result: Callable[..., Any]
) -> None:
    with pytest.raises(StoreError) as info:
        store.add_verdict(
            make_result(), evidence_digests=["ab" * 32], certificate=None, issued_at_unix_ns=T0
        )
    assert info.value.reason == "unknown_evidence"
    assert list(store.verdicts()) == []
    assert store.audit_head() is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("verdict", "MAYBE"), ("model", "warp"), ("target", ""), ("proof", "yes")],
)
def test_malformed_result_is_refused(
    store: SqliteStore, make_result: Callable[..., Any], field: str, value: object
) -> None:
    result = make_result()
    result[field] = value
    with pytest.raises(StoreError) as info:
        store.add_verdict(result, evidence_digests=[], certificate=None, issued_at_unix_ns=T0)
    assert info.value.reason == "bad_record"


def test_enrolments_are_recorded_once_per_change(store: SqliteStore) -> None:
    lm = LandmarkRecord(landmark_id="fra", lat=50.1, lon=8.7, operator="op", public_key=b"k" * 32)
    chip = ChipRecord(chip_id="chip-1", region_spec="country:DEU", public_key=b"c" * 32)
    assert store.record_landmark(lm, now_unix_ns=T0)
    assert not store.record_landmark(lm, now_unix_ns=T0 + 1)
    assert store.record_chip(chip, now_unix_ns=T0)
    revoked = ChipRecord(
        chip_id="chip-1", region_spec="country:DEU", public_key=b"c" * 32, revoked=True
    )
    assert store.record_chip(revoked, now_unix_ns=T0 + 2)
    assert store.record_verifier("v1", public_key=b"v" * 32, revoked=False, now_unix_ns=T0)
    assert store.landmarks() == [lm]
    assert store.chips() == [revoked]
    assert [(e.role, e.identity_id, e.revoked) for e in store.enrolments()] == [
        ("landmark", "fra", False),
        ("chip", "chip-1", False),
        ("chip", "chip-1", True),
        ("verifier", "v1", False),
    ]
    assert verify_audit(store).enrolments == 4


def test_exception_between_row_and_audit_append_loses_nothing_committed(
    store: SqliteStore,
    make_report: Callable[..., Any],
    make_result: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d0 = store.add_round(make_report(0), received_at_unix_ns=T0).record.digest_hex
    store.add_verdict(make_result(), evidence_digests=[d0], certificate=None, issued_at_unix_ns=T0)
    before = list(store.audit_entries())

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut between row insert and audit append")

    # Each backend's audit append, inside the write transaction.
    name = "_append_audit" if isinstance(store, SqliteStore) else "_append_encoded"
    monkeypatch.setattr(type(store), name, crash)
    with pytest.raises(RuntimeError):
        store.add_round(make_report(1), received_at_unix_ns=T0 + 1)
    with pytest.raises(RuntimeError):
        store.add_verdict(
            make_result(), evidence_digests=[d0], certificate=None, issued_at_unix_ns=T0 + 2
        )
    monkeypatch.undo()
    assert list(store.audit_entries()) == before
    assert len(list(store.rounds())) == 1
    assert len(list(store.verdicts())) == 1
    verify_audit(store)
    # The store still works, and the retried round is stored once.
    assert store.add_round(make_report(1), received_at_unix_ns=T0 + 3).inserted
    assert verify_audit(store).rounds == 2


def test_guard_triggers_stop_accidental_edits(
    sqlite_store: SqliteStore, make_report: Callable[..., Any]
) -> None:
    store = sqlite_store
    store.add_round(make_report(0), received_at_unix_ns=T0)
    for sql in (
        "UPDATE audit_log SET kind = 'x'",
        "DELETE FROM audit_log",
        "UPDATE rounds SET min_rtt_ns = 1",
        "DELETE FROM rounds",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            store._conn.execute(sql)
    verify_audit(store)


def test_tampered_row_that_no_longer_parses_is_named(
    sqlite_store: SqliteStore,
    make_report: Callable[..., Any],
    raw_db: Callable[[], sqlite3.Connection],
) -> None:
    store = sqlite_store
    store.add_round(make_report(0), received_at_unix_ns=T0)
    conn = raw_db()
    conn.execute("UPDATE rounds SET digest = '" + "Z" * 64 + "' WHERE round_id = 1")
    conn.close()
    with pytest.raises(IntegrityError, match=r"rounds row 1: stored values are invalid"):
        list(store.rounds())


# -- batches and verdict rounds (the contract the distributed verifier relies on) ----


def _batch(make_report: Callable[..., Any], make_result: Callable[..., Any], n: int) -> Any:
    from chiploc.store import BatchRound, BatchVerdict

    reports = [make_report(i, chip=f"chip-{i % 3}") for i in range(n)]
    rounds = [BatchRound(report=r, received_at_unix_ns=T0 + i) for i, r in enumerate(reports)]
    verdicts = [
        BatchVerdict(
            result=make_result(chip=f"chip-{c}"),
            evidence_digests=[sha256_hex(r.raw) for r in reports if r.chip_id == f"chip-{c}"],
            certificate=f"cert-{c}".encode(),
            issued_at_unix_ns=T0 + 100 + c,
            verdict_round="2026-12-03",
        )
        for c in range(3)
    ]
    return rounds, verdicts


def test_batch_lands_once_however_often_it_is_retried(
    store: Store, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> None:
    rounds, verdicts = _batch(make_report, make_result, 9)
    first = store.add_batch(rounds, verdicts)
    assert (first.rounds_inserted, first.verdicts_inserted, first.audit_entries) == (9, 3, 12)
    again = store.add_batch(rounds, verdicts)  # a worker's batch retried after it landed
    assert (again.rounds_inserted, again.verdicts_inserted, again.audit_entries) == (0, 0, 0)
    assert again.rounds == first.rounds
    assert again.verdicts == first.verdicts
    assert len(list(store.rounds())) == 9
    stored = list(store.verdicts())
    assert [(v.chip_id, v.verdict_round) for v in stored] == [
        ("chip-0", "2026-12-03"),
        ("chip-1", "2026-12-03"),
        ("chip-2", "2026-12-03"),
    ]
    assert stored[1].certificate == b"cert-1"
    assert set(stored[1].evidence) == {
        sha256_hex(r.report.raw) for r in rounds if r.report.chip_id == "chip-1"
    }
    report = verify_audit(store)
    assert (report.rounds, report.verdicts, report.entries) == (9, 3, 12)


def test_same_chip_and_verdict_round_is_one_verdict(
    store: Store, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> None:
    d = store.add_round(make_report(0), received_at_unix_ns=T0).record.digest_hex
    a = store.add_verdict(
        make_result(),
        evidence_digests=[d],
        certificate=None,
        issued_at_unix_ns=T0,
        verdict_round="r1",
    )
    b = store.add_verdict(
        make_result(verdict="VIOLATION"),
        evidence_digests=[d],
        certificate=None,
        issued_at_unix_ns=T0 + 1,
        verdict_round="r1",
    )
    c = store.add_verdict(
        make_result(),
        evidence_digests=[d],
        certificate=None,
        issued_at_unix_ns=T0 + 2,
        verdict_round="r2",
    )
    assert b == a  # the first verdict of that round stands; nothing was overwritten
    assert c.verdict_id != a.verdict_id
    assert [v.verdict for v in store.verdicts()] == ["COMPLIANT", "COMPLIANT"]
    assert verify_audit(store).verdicts == 2


def test_failed_batch_leaves_nothing_behind(
    store: Store, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> None:
    from chiploc.store import BatchVerdict

    rounds, verdicts = _batch(make_report, make_result, 6)
    bad = BatchVerdict(
        result=make_result(),
        evidence_digests=["ab" * 32],
        certificate=None,
        issued_at_unix_ns=T0,
        verdict_round="x",
    )
    with pytest.raises(StoreError) as info:
        store.add_batch(rounds, [*verdicts, bad])
    assert info.value.reason == "unknown_evidence"
    assert list(store.rounds()) == []  # the rounds before the bad verdict rolled back too
    assert store.audit_head() is None
    assert store.add_batch(rounds, verdicts).audit_entries == 9
    verify_audit(store)


def test_pre_encoded_result_lands_as_given_and_a_mismatched_one_is_refused(
    store: Store, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> None:
    """The verifier encodes a result once (``BatchVerdict.result_json``); the store keeps
    those bytes, and refuses bytes of another chip's result before writing anything."""
    from dataclasses import replace

    from chiploc.store import canonical_json

    rounds, verdicts = _batch(make_report, make_result, 6)
    swapped = [
        replace(v, result_json=canonical_json(dict(w.result)))
        for v, w in zip(verdicts, [*verdicts[1:], verdicts[0]], strict=True)
    ]
    with pytest.raises(StoreError) as info:
        store.add_batch(rounds, swapped)
    assert info.value.reason == "bad_record"
    assert list(store.rounds()) == []
    assert store.audit_head() is None
    encoded = [replace(v, result_json=canonical_json(dict(v.result))) for v in verdicts]
    assert store.add_batch(rounds, encoded).verdicts_inserted == 3
    stored = {v.chip_id: v.result_json for v in store.verdicts()}
    assert stored == {str(v.result["target"]): v.result_json for v in encoded}
    verify_audit(store)


def test_read_only_store_refuses_writes(
    open_backend: Callable[..., Store], make_report: Callable[..., Any]
) -> None:
    with open_backend() as s:
        s.add_round(make_report(0), received_at_unix_ns=T0)
    with open_backend(read_only=True) as ro:
        assert len(list(ro.rounds())) == 1
        with pytest.raises(StoreError) as info:
            ro.add_round(make_report(1), received_at_unix_ns=T0)
        assert info.value.reason == "read_only"
        assert verify_audit(ro).rounds == 1
