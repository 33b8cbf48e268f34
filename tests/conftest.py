"""Suite-wide settings, and the fixed identities the protocol, agent and landmark tests share.

Area-specific fixtures live in each tests/<area>/conftest.py (a nearer fixture of the
same name overrides these)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from chiploc.protocol import (
    ChipEntry,
    LandmarkEntry,
    PrivateKey,
    Registry,
    Role,
    VerifierEntry,
    generate_private_key,
)

# Test chiploc as it is installed: `python -m pytest` puts the checkout's top on sys.path,
# where the part folders (solver/, maps/, ...) would import under bare names and hide a
# lookup such as resources.files("solver") that fails for every user.
_TOP = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _TOP]

# Bounded, repeatable property runs in the suite; longer runs are opt-in.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("long", max_examples=5000, deadline=None)
# scripts/mutation runs each mutant against fast test selections: fewer examples, same seeds.
settings.register_profile("mutation", parent=settings.get_profile("ci"), max_examples=25)
settings.load_profile(os.environ.get("CHIPLOC_HYPOTHESIS_PROFILE", "ci"))


def seed(n: int) -> bytes:
    return bytes([n]) * 32


@pytest.fixture
def authority() -> PrivateKey:
    return generate_private_key(Role.AUTHORITY, "authority", seed=seed(1))


@pytest.fixture
def landmark_key() -> PrivateKey:
    return generate_private_key(Role.LANDMARK, "lm-fra", seed=seed(2))


@pytest.fixture
def chip_key() -> PrivateKey:
    return generate_private_key(Role.CHIP, "chip-1", seed=seed(3))


@pytest.fixture
def registry(authority: PrivateKey, landmark_key: PrivateKey, chip_key: PrivateKey) -> Registry:
    verifier = generate_private_key(Role.VERIFIER, "ver-1", seed=seed(4))
    return Registry(
        authority_public_key=authority.public_key.key_bytes,
        landmarks={
            "lm-fra": LandmarkEntry(
                id="lm-fra",
                lat=50.11,
                lon=8.68,
                public_key=landmark_key.public_key.key_bytes,
                operator="ops",
            )
        },
        chips={
            "chip-1": ChipEntry(
                id="chip-1", public_key=chip_key.public_key.key_bytes, region="country:DEU"
            )
        },
        verifiers={"ver-1": VerifierEntry(id="ver-1", public_key=verifier.public_key.key_bytes)},
    )


# -- PostgreSQL: the store's second backend ------------------------------------------
#
# scripts/test starts a throwaway server (scripts/postgres start) and exports its URL as
# CHIPLOC_TEST_POSTGRES_URL. A bare pytest run starts it the same way. If PostgreSQL
# cannot be had, the tests that need it FAIL with the reason: they never skip.
#
# The suite runs in parallel (pytest-xdist): every test gets a database of its own on the
# shared server, and a test that stops or crashes a server does it to one of its own
# (`own_postgres`), never to the shared one under another worker's tests.

POSTGRES_URL_ENV = "CHIPLOC_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parent.parent


def _postgres_script(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "postgres"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def _start_postgres() -> str:
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    # Workers of one run start the checkout's server together: one at a time (the first
    # runs initdb, the others find it running).
    lock_path = Path(tempfile.gettempdir()) / f"chiploc-postgres-start-{os.getuid()}.lock"
    try:
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = _postgres_script("start")
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"PostgreSQL tests need a server: scripts/postgres start failed: {e}")
    if proc.returncode != 0 or not proc.stdout.strip().startswith("postgresql://"):
        pytest.fail(
            "PostgreSQL tests need a server and scripts/postgres start failed "
            f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n"
            f"Start one yourself and export {POSTGRES_URL_ENV}=postgresql://..."
        )
    return proc.stdout.strip().splitlines()[-1]


def _check_answers(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        pytest.fail(f"PostgreSQL at {url} does not answer: {e}")


@contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server at ``server_url``; dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"chiploc_t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    info = conninfo_to_dict(server_url)
    user = info.get("user", "")
    url = f"postgresql://{user}@{info['host']}:{info['port']}/{name}"
    assert conninfo_to_dict(make_conninfo(url))["dbname"] == name
    try:
        yield url
    finally:
        try:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        except psycopg.OperationalError:
            pass  # the server is down (a test stopped it); a throwaway server goes with it


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the shared test server's maintenance database (started once per session)."""
    url = _start_postgres()
    _check_answers(url)
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the shared test server for one test; dropped afterwards.
    Never stop, restart or crash this server: use ``own_postgres`` for that."""
    with _fresh_database(postgres_server_url) as url:
        yield url


@dataclass(frozen=True)
class OwnPostgres:
    """A PostgreSQL server of this test process alone: its own data directory and port,
    driven by scripts/postgres (start, stop, restart, crash) through CHIPLOC_POSTGRES_DIR."""

    directory: Path
    server_url: str

    def control(self, action: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CHIPLOC_POSTGRES_DIR": str(self.directory)}
        return _postgres_script(action, env=env)


@pytest.fixture(scope="session")
def own_postgres_server() -> Iterator[OwnPostgres]:
    # Not under pytest's temporary folder: that is private to the user running the suite,
    # and as root the server runs as `postgres`, which must reach its data directory.
    directory = Path(tempfile.mkdtemp(prefix="chiploc-pg-own-"))
    directory.chmod(0o755)
    server = OwnPostgres(directory=directory, server_url="")
    started = server.control("start")
    url = started.stdout.strip().splitlines()[-1] if started.stdout.strip() else ""
    try:
        if started.returncode != 0 or not url.startswith("postgresql://"):
            pytest.fail(
                "tests that stop a PostgreSQL server need one of their own and "
                f"scripts/postgres start failed (exit {started.returncode}): "
                f"{started.stderr.strip()[-2000:]}"
            )
        _check_answers(url)
        yield OwnPostgres(directory=directory, server_url=url)
    finally:
        server.control("destroy")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def own_postgres(own_postgres_server: OwnPostgres) -> Iterator[tuple[OwnPostgres, str]]:
    """A server of this test process (to stop, restart or crash) and a fresh database on it."""
    if own_postgres_server.control("start").returncode != 0:  # an earlier test left it down
        pytest.fail(f"cannot start the test's own PostgreSQL in {own_postgres_server.directory}")
    with _fresh_database(own_postgres_server.server_url) as url:
        yield own_postgres_server, url
