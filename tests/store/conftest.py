"""Fixtures for the store tests: fake verified reports and solve results (fixed numbers)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chiploc.store import SqliteStore, Store, open_database, open_store


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeReport:
    """Shape of protocol.MeasurementReport that the store reads."""

    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int | None


def _make_report(i: int, *, chip: str = "chip-1", landmark: str | None = None) -> FakeReport:
    lm = landmark or f"lm-{i % 5}"
    raw = (
        b"signed-report|" + f"{lm}|{chip}|{i}".encode() + hashlib.sha256(bytes([i % 256])).digest()
    )
    return FakeReport(raw=raw, landmark_id=lm, chip_id=chip, min_rtt_ns=1_000_000 + 1_000 * i)


def _make_result(chip: str = "chip-1", verdict: str = "COMPLIANT") -> dict[str, Any]:
    return {
        "target": chip,
        "verdict": verdict,
        "proof": True,
        "model": "vacuum",
        "region_spec": "country:DEU",
        "region": {
            "type": "Polygon",
            "coordinates": [[[8.0, 50.0], [9.0, 50.0], [9.0, 51.0], [8.0, 50.0]]],
        },
        "region_center": {"lat": 50.4, "lon": 8.6},
        "area_km2": 1234.5,
        "margin_km": 12.3,
        "binding_landmarks": ["lm-0"],
        "conflicting_landmarks": [],
        "settle": [],
        "tolerate": 0,
        "estimate": None,
        "landmarks": [],
        "message": "region lies 12.3 km inside country:DEU",
    }


@pytest.fixture
def make_report() -> Callable[..., FakeReport]:
    return _make_report


@pytest.fixture
def make_result() -> Callable[..., dict[str, Any]]:
    return _make_result


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chiploc.db"


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_backend(
    backend: str, db_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Store]:
    """Open (again) the test's store on its backend: an SQLite file or a fresh PG database."""
    target = str(db_path) if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))

    def open_(**kw: Any) -> Store:
        return open_database(target, **kw)

    return open_


@pytest.fixture
def store(open_backend: Callable[..., Store]) -> Iterator[Store]:
    """The store under test, on each backend in turn (the ``Store`` contract)."""
    with open_backend() as s:
        yield s


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SqliteStore]:
    """The SQLite store, for tests of SQLite specifics (pragmas, raw file edits)."""
    with open_store(db_path) as s:
        yield s


@pytest.fixture
def raw_db(db_path: Path) -> Callable[[], sqlite3.Connection]:
    """A plain sqlite3 connection with the guard triggers dropped: the attacker's view."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(db_path, isolation_level=None)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger'"
        ).fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        return conn

    return connect
