"""``chiploc agent run`` picks up a revocation on SIGHUP, and refuses a rolled-back registry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chiploc.common.errors import ChiplocError
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import PrivateKey, Registry, write_keypair

pytestmark = pytest.mark.slow


async def _line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), 20)).decode().strip()


async def test_sighup_reloads_registry_and_refuses_rollback(
    tmp_path: Path, authority: PrivateKey, landmark_key: PrivateKey, chip_key: PrivateKey,
    registry: Registry,
) -> None:  # fmt: skip
    key_path, _ = write_keypair(chip_key, tmp_path / "keys")
    registry_path = tmp_path / "registry.json"
    registry_path.write_bytes(registry.to_signed_json(authority))
    (tmp_path / "authority.pub").write_text(json.dumps(authority.public_key.to_json_dict()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chiploc", "agent", "run", "--key", str(key_path),
        "--registry", str(registry_path), "--listen", "127.0.0.1:0",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    config = LandmarkConfig(
        id="lm-fra",
        key_path=tmp_path / "unused.key",
        registry_path=tmp_path / "unused.json",
        db_path=tmp_path / "landmark.db",
        probe_timeout_ms=300,
        hello_timeout_ms=300,
        hello_retries=1,
    )
    try:
        port = int((await _line(proc.stdout)).rsplit(":", 1)[1])
        async with LandmarkDaemon(config, key=landmark_key, registry=registry) as daemon:
            report = await daemon.measure("chip-1", ("127.0.0.1", port), probes=3)
            assert report.min_rtt_ns is not None

            # The authority revokes this landmark; the agent learns it on SIGHUP.
            revoked = registry.with_revoked("lm-fra")
            registry_path.write_bytes(revoked.to_signed_json(authority))
            proc.send_signal(signal.SIGHUP)
            assert await _line(proc.stderr) == f"registry reloaded (serial {revoked.serial})"
            with pytest.raises(ChiplocError):  # the agent no longer answers its hello
                await daemon.measure("chip-1", ("127.0.0.1", port), probes=3)

            # Replaying the older signed registry would un-revoke the landmark: refused.
            registry_path.write_bytes(registry.to_signed_json(authority))
            proc.send_signal(signal.SIGHUP)
            line = await _line(proc.stderr)
            assert line.startswith("registry not reloaded:")
            assert line.endswith("[rollback]")
            with pytest.raises(ChiplocError):
                await daemon.measure("chip-1", ("127.0.0.1", port), probes=3)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_landmark_refuses_a_registry_that_revokes_itself(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry
) -> None:
    config = LandmarkConfig(
        id="lm-fra",
        key_path=tmp_path / "unused.key",
        registry_path=tmp_path / "unused.json",
        db_path=tmp_path / "landmark.db",
    )
    daemon = LandmarkDaemon(config, key=landmark_key, registry=registry)
    with pytest.raises(ChiplocError) as info:
        daemon.update_registry(registry.with_revoked("lm-fra"))
    assert info.value.reason == "revoked"
    assert daemon.registry is registry  # the running registry is kept
    newer = registry.with_revoked("chip-1")
    daemon.update_registry(newer)
    assert daemon.registry is newer
