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
