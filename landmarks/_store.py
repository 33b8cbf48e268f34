"""The landmark's own report store: sqlite3 in WAL mode, one row per signed report.

Invariants: rows are append-only; ``cursor`` is a strictly increasing integer; the raw signed
bytes are stored verbatim; a commit is durable (``synchronous=FULL``) before a round is
reported as done, so a restart loses no report that was ever returned.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from chiploc.common.errors import StoreError
from chiploc.protocol import MeasurementReport

__all__ = ["ReportStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BLOB NOT NULL UNIQUE,
    chip_id TEXT NOT NULL,
    started_at_unix_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    raw BLOB NOT NULL
);
"""


class ReportStore:
    """Thread-safe (one lock) append-only store of signed report bytes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open report store: {e}") from e

    def add(self, report: MeasurementReport) -> int:
        """Append ``report``; return its cursor."""
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO reports (session_id, chip_id, started_at_unix_ns, digest, raw)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        report.session_id,
                        report.chip_id,
                        report.started_at_unix_ns,
                        report.digest_hex,
                        report.raw,
                    ),
                )
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot store report: {e}") from e
            assert cur.lastrowid is not None  # noqa: S101 - INSERT always sets it
            return int(cur.lastrowid)

    def add_many(self, reports: Sequence[MeasurementReport]) -> list[int]:
        """Append ``reports`` in one transaction (all or none); return their cursors."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cursors = [
                        self._db.execute(
                            "INSERT INTO reports"
                            " (session_id, chip_id, started_at_unix_ns, digest, raw)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (r.session_id, r.chip_id, r.started_at_unix_ns, r.digest_hex, r.raw),
                        ).lastrowid
                        for r in reports
                    ]
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot store reports: {e}") from e
        return [int(c) for c in cursors if c is not None]

    def since(self, cursor: int, *, limit: int = 100) -> list[tuple[int, bytes]]:
        """Reports with a cursor greater than ``cursor``, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT cursor, raw FROM reports WHERE cursor > ? ORDER BY cursor LIMIT ?",
                    (cursor, limit),
                ).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read reports: {e}") from e
        return [(int(c), bytes(r)) for c, r in rows]

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM reports").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
