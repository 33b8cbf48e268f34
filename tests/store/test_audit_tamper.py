"""One test per attack on the stored audit log and rows; each must be caught and named."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chiploc.common.errors import IntegrityError
from chiploc.store import (
    AuditAnchor,
    ChipRecord,
    LandmarkRecord,
    SqliteStore,
    audit_entry_hash,
    open_store,
)
from chiploc.verifier import verify_audit

T0 = 1_700_000_000_000_000_000
Connect = Callable[[], sqlite3.Connection]


@pytest.fixture
def populated(
    sqlite_store: SqliteStore, make_report: Callable[..., Any], make_result: Callable[..., Any]
) -> SqliteStore:
    """seq 1-2 enrolments, 3-7 rounds, 8 verdict, 9 round, 10 verdict."""
    store = sqlite_store
    lm = LandmarkRecord(landmark_id="lm-0", lat=50.1, lon=8.7, operator="op", public_key=b"k" * 32)
    store.record_landmark(lm, now_unix_ns=T0)
    chip = ChipRecord(chip_id="chip-1", region_spec="country:DEU", public_key=b"c" * 32)
    store.record_chip(chip, now_unix_ns=T0)
    digests = [
        store.add_round(make_report(i), received_at_unix_ns=T0 + i).record.digest_hex
        for i in range(5)
    ]
    store.add_verdict(
        make_result(), evidence_digests=digests, certificate=b"cert-1", issued_at_unix_ns=T0 + 10
    )
    d5 = store.add_round(make_report(5), received_at_unix_ns=T0 + 11).record.digest_hex
    store.add_verdict(
        make_result(verdict="VIOLATION"),
        evidence_digests=[d5],
        certificate=None,
        issued_at_unix_ns=T0 + 12,
    )
    return store


def _fails(store: SqliteStore, pattern: str, reason: str, **kw: Any) -> None:
    with pytest.raises(IntegrityError, match=pattern) as info:
        verify_audit(store, **kw)
    assert info.value.reason == reason, str(info.value)


def _rehash_from(conn: sqlite3.Connection, start_seq: int) -> None:
    """What a careful attacker does: recompute every hash from start_seq on."""
    rows = conn.execute(
        "SELECT seq, kind, at_unix_ns, payload, prev_hash FROM audit_log ORDER BY seq"
    ).fetchall()
    prev = None
    for seq, kind, at, payload, prev_hash in rows:
        if seq >= start_seq:
            new_prev = prev if prev is not None else prev_hash
            h = audit_entry_hash(
                seq=seq, prev_hash_hex=new_prev, kind=kind, at_unix_ns=at, payload=bytes(payload)
            )
            conn.execute(
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", (new_prev, h, seq)
            )
            prev = h
        else:
            prev = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]


def test_intact_store_verifies_with_summary(populated: SqliteStore) -> None:
    report = verify_audit(populated)
    assert (report.entries, report.rounds, report.verdicts, report.enrolments) == (10, 6, 2, 2)
    assert report.head is not None
    assert report.head.seq == 10
    assert report.summary().startswith("audit log intact: 10 entries")
    assert str(report.head) in report.summary()


def test_edited_payload_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    payload = conn.execute("SELECT payload FROM audit_log WHERE seq = 4").fetchone()[0]
    edited = bytes(payload).replace(b'"min_rtt_ns":1001000', b'"min_rtt_ns":1000000')
    assert edited != bytes(payload)
    conn.execute("UPDATE audit_log SET payload = ? WHERE seq = 4", (edited,))
    _fails(populated, r"^audit entry seq=4 \(round\): contents do not match", "audit_edited")


def test_edited_and_rehashed_entry_is_named_by_its_successor(
    populated: SqliteStore, raw_db: Connect
) -> None:
    conn = raw_db()
    conn.execute("UPDATE audit_log SET at_unix_ns = at_unix_ns + 1 WHERE seq = 4")
    row = conn.execute("SELECT kind, at_unix_ns, payload, prev_hash FROM audit_log WHERE seq = 4")
    kind, at, payload, prev = row.fetchone()
    h = audit_entry_hash(seq=4, prev_hash_hex=prev, kind=kind, at_unix_ns=at, payload=payload)
    conn.execute("UPDATE audit_log SET hash = ? WHERE seq = 4", (h,))
    _fails(populated, r"^audit entry seq=5: it does not chain to seq=4", "audit_broken_link")


def test_deleted_entry_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("DELETE FROM audit_log WHERE seq = 6")
    _fails(populated, r"^audit entry seq=7: entry seq=6 is missing \(deleted\)", "audit_deleted")


def test_deleted_entries_with_renumbering_are_named(
    populated: SqliteStore, raw_db: Connect
) -> None:
    conn = raw_db()
    conn.execute("DELETE FROM audit_log WHERE seq = 6")
    conn.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 6")
    _fails(populated, r"^audit entry seq=6 \(round\): it was written as seq=7", "audit_deleted")


def test_deleted_last_entry_is_caught_by_its_uncovered_row(
    populated: SqliteStore, raw_db: Connect
) -> None:
    raw_db().execute("DELETE FROM audit_log WHERE seq = 10")
    _fails(populated, r"^verdicts row id=2: not covered by any audit entry", "row_not_audited")


def test_swapped_entries_are_named_as_reordered(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 5")
    conn.execute("UPDATE audit_log SET seq = 5 WHERE seq = 6")
    conn.execute("UPDATE audit_log SET seq = 6 WHERE seq = -1")
    _fails(
        populated,
        r"^audit entry seq=5 \(round\): it chains after .*seq=6 \(reordered\)",
        "audit_reordered",
    )


def test_inserted_entry_with_renumbering_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    conn.execute("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 5")
    conn.execute("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 105")
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 4").fetchone()[0]
    payload = b'{"round_id":99}'
    h = audit_entry_hash(seq=5, prev_hash_hex=prev, kind="round", at_unix_ns=T0, payload=payload)
    conn.execute("INSERT INTO audit_log VALUES (5, 'round', ?, ?, ?, ?)", (T0, payload, prev, h))
    _fails(
        populated,
        r"^audit entry seq=6 \(round\): it was written as seq=5: entries were inserted",
        "audit_inserted",
    )


def test_forged_entry_appended_for_a_missing_row_is_named(
    populated: SqliteStore, raw_db: Connect
) -> None:
    conn = raw_db()
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 10").fetchone()[0]
    payload = b'{"round_id":42}'
    h = audit_entry_hash(seq=11, prev_hash_hex=prev, kind="round", at_unix_ns=T0, payload=payload)
    conn.execute("INSERT INTO audit_log VALUES (11, 'round', ?, ?, ?, ?)", (T0, payload, prev, h))
    _fails(populated, r"^audit entry seq=11 \(round\): rounds row id=42 is missing", "row_deleted")


def test_edited_verdict_row_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("UPDATE verdicts SET verdict = 'COMPLIANT' WHERE verdict_id = 2")
    _fails(
        populated,
        r"^verdicts row id=2: differs from audit entry seq=10 in verdict \(row edited\)",
        "row_edited",
    )


def test_edited_verdict_result_json_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute(
        "UPDATE verdicts SET result_json = replace(result_json, '12.3', '99.9') "
        "WHERE verdict_id = 1"
    )
    _fails(populated, r"^verdicts row id=1: differs .* in result_sha256", "row_edited")


def test_swapped_certificate_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("UPDATE verdicts SET certificate = x'00' WHERE verdict_id = 1")
    _fails(populated, r"^verdicts row id=1: differs .* in certificate_sha256", "row_edited")


def test_deleted_verdict_row_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    conn.execute("DELETE FROM verdict_evidence WHERE verdict_id = 1")
    conn.execute("DELETE FROM verdicts WHERE verdict_id = 1")
    _fails(
        populated, r"^audit entry seq=8 \(verdict\): verdicts row id=1 is missing", "row_deleted"
    )


def test_deleted_evidence_link_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    digest = conn.execute("SELECT round_digest FROM verdict_evidence LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM verdict_evidence WHERE round_digest = ?", (digest,))
    _fails(populated, r"^verdicts row id=1: differs .* in evidence", "row_edited")


def test_edited_raw_report_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    raw = bytes(conn.execute("SELECT raw FROM rounds WHERE round_id = 2").fetchone()[0])
    conn.execute("UPDATE rounds SET raw = ? WHERE round_id = 2", (raw + b"\x00",))
    _fails(populated, r"^rounds row id=2: digest does not match its raw", "row_edited")


def test_edited_raw_report_and_digest_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    conn = raw_db()
    raw = bytes(conn.execute("SELECT raw FROM rounds WHERE round_id = 2").fetchone()[0]) + b"!"
    conn.execute(
        "UPDATE rounds SET raw = ?, digest = ? WHERE round_id = 2",
        (raw, hashlib.sha256(raw).hexdigest()),
    )
    _fails(
        populated,
        r"^rounds row id=2: differs from audit entry seq=4 in digest, raw_sha256",
        "row_edited",
    )


def test_edited_indexed_round_field_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("UPDATE rounds SET min_rtt_ns = 1 WHERE round_id = 3")
    _fails(
        populated, r"^rounds row id=3: differs from audit entry seq=5 in min_rtt_ns", "row_edited"
    )


def test_round_inserted_behind_the_log_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute(
        "INSERT INTO rounds (round_id, digest, landmark_id, chip_id, min_rtt_ns, "
        "received_at_unix_ns, raw) VALUES (77, ?, 'lm-9', 'chip-1', 1, 0, x'01')",
        ("ab" * 32,),
    )
    _fails(populated, r"^rounds row id=77: not covered", "row_not_audited")


def test_edited_landmark_row_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("UPDATE landmarks SET lat = 10.0 WHERE landmark_id = 'lm-0'")
    _fails(populated, r"^landmarks row 'lm-0': differs from its latest logged", "row_edited")


def test_edited_enrolment_row_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    raw_db().execute("UPDATE enrolments SET public_key = ? WHERE enrolment_id = 2", (b"x" * 32,))
    _fails(
        populated,
        r"^enrolments row id=2: differs from audit entry seq=2 in public_key",
        "row_edited",
    )


def test_rewritten_history_is_caught_only_by_a_published_anchor(
    populated: SqliteStore, raw_db: Connect
) -> None:
    head = verify_audit(populated).head
    assert head is not None
    anchor = AuditAnchor(
        seq=8, hash_hex=next(e.hash_hex for e in populated.audit_entries() if e.seq == 8)
    )
    conn = raw_db()
    payload = bytes(conn.execute("SELECT payload FROM audit_log WHERE seq = 3").fetchone()[0])
    edited = payload.replace(b'"min_rtt_ns":1000000', b'"min_rtt_ns":1')
    assert edited != payload
    conn.execute("UPDATE audit_log SET payload = ? WHERE seq = 3", (edited,))
    conn.execute("UPDATE rounds SET min_rtt_ns = 1 WHERE round_id = 1")
    _rehash_from(conn, 3)
    verify_audit(populated)  # a full rewrite is self-consistent ...
    _fails(
        populated,
        r"^audit entry seq=8: hash .* differs from the published anchor",
        "audit_anchor_mismatch",
        anchors=[anchor],
    )
    _fails(populated, r"^audit entry seq=10: hash", "audit_anchor_mismatch", anchors=[head])


def test_truncation_below_an_anchor_is_named(populated: SqliteStore, raw_db: Connect) -> None:
    head = verify_audit(populated).head
    assert head is not None
    conn = raw_db()
    conn.execute("DELETE FROM verdict_evidence WHERE verdict_id = 2")
    conn.execute("DELETE FROM verdicts WHERE verdict_id = 2")
    conn.execute("DELETE FROM audit_log WHERE seq = 10")
    verify_audit(populated)
    _fails(
        populated,
        r"^audit entry seq=10: published anchor is beyond the head",
        "audit_truncated",
        anchors=[head],
    )


def test_read_only_open_verifies_without_writing(populated: SqliteStore, db_path: Path) -> None:
    before = db_path.stat().st_mtime_ns
    with open_store(db_path, read_only=True) as ro:
        assert verify_audit(ro).entries == 10
    assert db_path.stat().st_mtime_ns == before
