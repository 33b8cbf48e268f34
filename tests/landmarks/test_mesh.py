"""The landmark's mesh side: its config keys and its HTTP routes under bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chiploc.common.errors import ConfigError
from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
from chiploc.protocol import PrivateKey, Registry


def _section(**kw: Any) -> dict[str, Any]:
    return {"id": "lm-fra", "key": "k.key", "registry": "r.json", "db": "l.db", **kw}


def test_mesh_keys_parse_with_their_defaults(tmp_path: Path) -> None:
    plain = LandmarkConfig.from_mapping(_section(), base=tmp_path)
    assert plain.mesh_listen is None
    assert dict(plain.mesh_peers) == {}
    assert plain.mesh_interval_s == 300
    assert plain.mesh_probes == 16
    full = LandmarkConfig.from_mapping(
        _section(
            mesh_listen="0.0.0.0:7401",
            mesh_peers={"lm-par": "192.0.2.7:7401", "lm-ams": "[2001:db8::1]:7401"},
            mesh_interval_s=0,
            mesh_probes=4,
        ),
        base=tmp_path,
    )
    assert full.mesh_listen == ("0.0.0.0", 7401)
    assert dict(full.mesh_peers) == {
        "lm-par": ("192.0.2.7", 7401),
        "lm-ams": ("2001:db8::1", 7401),
    }
    assert full.mesh_interval_s == 0


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"mesh_peers": {"lm-fra": "127.0.0.1:1"}}, "itself"),
        ({"mesh_peers": {"bad id!": "127.0.0.1:1"}}, "mesh peer id"),
        ({"mesh_peers": ["lm-par"]}, "mesh_peers must be a table"),
        ({"mesh_peers": {"lm-par": "nowhere"}}, "HOST:PORT"),
        ({"mesh_listen": "7401"}, "mesh_listen"),
        ({"mesh_interval_s": 0.5}, "mesh_interval_s"),
        ({"mesh_interval_s": True}, "mesh_interval_s"),
        ({"mesh_probes": 0}, "mesh_probes"),
        ({"mesh_peer": {}}, "unknown keys"),
    ],
)
def test_bad_mesh_keys_are_clear_errors(tmp_path: Path, extra: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LandmarkConfig.from_mapping(_section(**extra), base=tmp_path)


async def test_mesh_routes_refuse_bad_input_and_never_crash(
    tmp_path: Path, landmark_key: PrivateKey, registry: Registry
) -> None:
    # "lm-zzz" is configured as a peer but not enrolled: its round is refused, not a crash
    config = LandmarkConfig(
        id="lm-fra",
        key_path=tmp_path / "unused.key",
        registry_path=tmp_path / "unused.json",
        db_path=tmp_path / "landmark.db",
        mesh_peers={"lm-zzz": ("127.0.0.1", 9)},
        mesh_interval_s=0,
        hello_timeout_ms=100,
    )
    async with (
        LandmarkDaemon(config, key=landmark_key, registry=registry) as daemon,
        aiohttp.ClientSession() as http,
    ):
        url = f"{daemon.http_url}/v1/mesh/rounds"
        async with http.post(url, data=b"{not json") as r:
            assert (r.status, (await r.json())["reason"]) == (400, "bad_json")
        async with http.post(url, json={"peers": ["lm-par"]}) as r:
            assert (r.status, (await r.json())["reason"]) == (400, "bad_peer")
        async with http.post(url, json={"peers": "lm-zzz"}) as r:
            assert r.status == 400
        async with http.post(url) as r:
            body = await r.json()
            assert r.status == 200
            assert body["results"] == [
                {
                    "peer": "lm-zzz",
                    "error": "landmark 'lm-zzz' is not enrolled in the registry",
                    "reason": "unknown_identity",
                }
            ]
        async with http.get(f"{daemon.http_url}/v1/mesh") as r:
            assert await r.json() == {"landmark": "lm-fra", "peers": ["lm-zzz"], "links": []}
        async with http.get(f"{daemon.http_url}/metrics") as r:
            assert "chiploc_landmark_mesh_failed_total 1" in await r.text()
    empty = LandmarkConfig(
        id="lm-fra",
        key_path=tmp_path / "unused.key",
        registry_path=tmp_path / "unused.json",
        db_path=tmp_path / "landmark2.db",
    )
    async with (
        LandmarkDaemon(empty, key=landmark_key, registry=registry) as daemon,
        aiohttp.ClientSession() as http,
        http.post(f"{daemon.http_url}/v1/mesh/rounds") as r,
    ):
        assert (r.status, (await r.json())["reason"]) == (400, "no_peers")


@pytest.mark.slow
async def test_landmark_serve_runs_both_sides_of_the_mesh(
    tmp_path: Path, authority: PrivateKey, landmark_key: PrivateKey, registry: Registry
) -> None:
    """``chiploc landmark serve`` with mesh keys: its agent side answers a peer's probes with
    its landmark key, and its schedule measures the peer (whose agent runs here)."""
    import asyncio
    import json
    import os
    import signal
    import subprocess
    import sys

    from chiploc.chip_agent import ChipAgent
    from chiploc.protocol import (
        LandmarkEntry,
        Role,
        generate_private_key,
        verify_report,
        write_keypair,
    )

    peer_key = generate_private_key(Role.LANDMARK, "lm-par", seed=bytes([5]) * 32)
    mesh = Registry(
        authority_public_key=registry.authority_public_key,
        landmarks={
            **registry.landmarks,  # lm-fra at 50.11, 8.68
            "lm-par": LandmarkEntry(
                id="lm-par", lat=50.1154, lon=8.68, public_key=peer_key.public_key.key_bytes
            ),
        },
        chips=registry.chips,
        verifiers=registry.verifiers,
    )
    write_keypair(landmark_key, tmp_path / "keys")
    (tmp_path / "registry.json").write_bytes(mesh.to_signed_json(authority))
    (tmp_path / "authority.pub").write_text(json.dumps(authority.public_key.to_json_dict()))
    async with ChipAgent(peer_key, mesh) as peer_agent:
        (tmp_path / "landmark.toml").write_text(
            '[landmark]\nid = "lm-fra"\nkey = "keys/lm-fra.key"\nregistry = "registry.json"\n'
            'db = "landmark.db"\nudp_listen = "127.0.0.1:0"\nhttp_listen = "127.0.0.1:0"\n'
            'mesh_listen = "127.0.0.1:0"\nmesh_interval_s = 1\nmesh_probes = 4\n'
            f'mesh_peers = {{ "lm-par" = "127.0.0.1:{peer_agent.address[1]}" }}\n'
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chiploc", "landmark", "serve", "--config",
            str(tmp_path / "landmark.toml"), stdout=subprocess.PIPE, env={**os.environ},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert ", mesh agent 127.0.0.1:" in line
            http_url = line.split("http ", 1)[1].split(",", 1)[0].strip()
            mesh_port = int(line.rsplit(":", 1)[1])
            # the other side: lm-par measures lm-fra's agent side
            config = LandmarkConfig(
                id="lm-par",
                key_path=tmp_path / "unused.key",
                registry_path=tmp_path / "unused.json",
                db_path=tmp_path / "par.db",
                mesh_peers={"lm-fra": ("127.0.0.1", mesh_port)},
                mesh_interval_s=0,
                mesh_probes=4,
            )
            async with LandmarkDaemon(config, key=peer_key, registry=mesh) as par:
                (report,) = (await par.measure_peers()).values()
            assert not isinstance(report, Exception), report
            assert verify_report(report.raw, mesh, target_role=Role.LANDMARK).chip_id == "lm-fra"
            # and lm-fra's schedule has measured lm-par (bounded wait)
            view: dict[str, Any] = {}
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    async with http.get(f"{http_url}/v1/mesh") as r:
                        view = await r.json()
                    if view["links"]:
                        break
                    await asyncio.sleep(0.1)
            (link,) = view["links"]
            assert (link["landmark"], link["peer"], link["violation"]) == (
                "lm-fra",
                "lm-par",
                False,
            )
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
