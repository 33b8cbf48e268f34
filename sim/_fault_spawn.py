"""Child processes for the fault and load scenarios: the environment that lets a
child import ``chiploc`` (and the ``sim`` folder its entry points are named by), a
landmark's keys, registry and ``landmark.toml`` on disk, and ``chiploc landmark
serve`` spawned with its HTTP URL read from its first line.

Invariants:

* A landmark that does not announce its URL within 30 s is killed and reaped
  before the error is raised: no child is left behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from chiploc.protocol import write_keypair

from ._fault_lab import _Identities

__all__ = ["_child_env", "_spawn_landmark", "_write_landmark_lab"]


def _write_landmark_lab(root: Path, ids: _Identities) -> Path:
    """Keys, signed registry, authority.pub and landmark.toml on disk; returns the config."""
    keys = root / "keys"
    if not (keys / f"{ids.landmark.id}.key").exists():
        write_keypair(ids.landmark, keys)
    (root / "registry.json").write_bytes(ids.registry.to_signed_json(ids.authority))
    if not (root / "authority.pub").exists():
        _, pub = write_keypair(ids.authority, root / "authority")
        (root / "authority.pub").write_bytes(pub.read_bytes())
    config = root / "landmark.toml"
    config.write_text(
        "[landmark]\n"
        f'id = "{ids.landmark.id}"\n'
        f'key = "keys/{ids.landmark.id}.key"\n'
        'registry = "registry.json"\n'
        'authority_key = "authority.pub"\n'
        'udp_listen = "127.0.0.1:0"\n'
        'http_listen = "127.0.0.1:0"\n'
        'db = "landmark.db"\n'
        "probes_per_round = 10\n"
        "probe_timeout_ms = 200\n"
        "hello_timeout_ms = 500\n",
        encoding="utf-8",
    )
    return config


def _child_env() -> dict[str, str]:
    # The folder that holds the chiploc package (a checkout's top or site-packages):
    # not resolved, since in a checkout chiploc/sim is a symlink to the top-level sim/.
    root = str(Path(__file__).parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


async def _spawn_landmark(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chiploc",
        "landmark",
        "serve",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_child_env(),
    )
    assert proc.stdout is not None  # noqa: S101 - PIPE was requested
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
    except TimeoutError:
        line = b""
    text = line.decode("utf-8", "replace")
    if "http " not in text:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"landmark did not start: {text!r}")
    return proc, text.rsplit("http ", 1)[1].strip()
