"""Landmark configuration (``landmark.toml``), validated once at the boundary.

Example::

    [landmark]
    id = "lm-fra"
    key = "keys/lm-fra.key"          # private key, mode 0600
    registry = "registry.json"
    authority_key = "authority.pub"  # optional; default authority.pub beside the registry
    udp_listen = "0.0.0.0:7400"
    http_listen = "127.0.0.1:7480"
    db = "landmark.db"
    probes_per_round = 32
    probe_timeout_ms = 500
    hello_timeout_ms = 1000
    hello_retries = 3                # HELLO re-sent up to 3 times within hello_timeout_ms
    max_concurrent_rounds = 64
    # the landmark mesh (docs/mesh.md); all optional
    mesh_listen = "0.0.0.0:7401"     # agent side: answer peers' probes with this landmark's key
    mesh_peers = { "lm-par" = "192.0.2.7:7401" }  # peer id -> its mesh_listen address
    mesh_interval_s = 300            # measure every peer this often; 0 = only on request
    mesh_probes = 16                 # probes per mesh round

Relative paths are relative to the config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chiploc.common.config import read_toml_table
from chiploc.common.errors import ConfigError
from chiploc.protocol import validate_id

__all__ = ["CONFIG_KEYS", "LandmarkConfig", "parse_host_port"]

#: Every key ``[landmark]`` accepts (docs/operations.md documents each; a test checks that).
CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "id", "key", "registry", "authority_key", "udp_listen", "http_listen", "db",
        "probes_per_round", "probe_timeout_ms", "hello_timeout_ms", "hello_retries",
        "max_concurrent_rounds", "mesh_listen", "mesh_peers", "mesh_interval_s",
        "mesh_probes",
    }
)  # fmt: skip


def parse_host_port(text: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port); ConfigError otherwise."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError as e:
        raise ConfigError(f"{what}: port must be an integer, got {port_text!r}") from e
    if not host or not 0 <= port <= 65535:
        raise ConfigError(f"{what} must be HOST:PORT with a port in 0..65535, got {text!r}")
    return host, port


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkConfig:
    id: str
    key_path: Path
    registry_path: Path
    db_path: Path
    authority_key_path: Path | None = None
    udp_host: str = "127.0.0.1"
    udp_port: int = 0
    http_host: str = "127.0.0.1"
    http_port: int = 0
    probes_per_round: int = 32
    probe_timeout_ms: int = 500
    hello_timeout_ms: int = 1000
    hello_retries: int = 3
    max_concurrent_rounds: int = 64
    mesh_listen: tuple[str, int] | None = None
    mesh_peers: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    mesh_interval_s: float = 300.0
    mesh_probes: int = 16

    def __post_init__(self) -> None:
        try:
            validate_id(self.id, what="landmark id")
            for peer in self.mesh_peers:
                validate_id(peer, what="mesh peer id")
        except ValueError as e:
            raise ConfigError(str(e)) from e
        if self.id in self.mesh_peers:
            raise ConfigError(f"mesh_peers lists the landmark itself ({self.id})")
        object.__setattr__(self, "mesh_peers", MappingProxyType(dict(self.mesh_peers)))
        interval = self.mesh_interval_s
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not (interval == 0 or 1 <= interval <= 86_400)
        ):
            raise ConfigError(f"mesh_interval_s must be 0 (off) or in 1..86400, got {interval!r}")
        for name, low, high in (
            ("udp_port", 0, 65535),
            ("http_port", 0, 65535),
            ("probes_per_round", 1, 10_000),
            ("probe_timeout_ms", 1, 60_000),
            ("hello_timeout_ms", 1, 60_000),
            ("hello_retries", 0, 10),
            ("max_concurrent_rounds", 1, 100_000),
            ("mesh_probes", 1, 10_000),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in {low}..{high}, got {value!r}")

    @classmethod
    def from_toml(cls, path: str | Path) -> LandmarkConfig:
        section, base = read_toml_table(path, "landmark")
        return cls.from_mapping(section, base=base, source=str(Path(path)))

    @classmethod
    def from_mapping(
        cls, section: dict[str, Any], *, base: Path, source: str = "<config>"
    ) -> LandmarkConfig:
        unknown = set(section) - CONFIG_KEYS
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}")
        for required in ("id", "key", "registry", "db"):
            if required not in section:
                raise ConfigError(f"{source}: missing required key {required!r}")

        def path(name: str) -> Path:
            value = section[name]
            if not isinstance(value, str):
                raise ConfigError(f"{source}: {name} must be a path string")
            return base / value

        udp_host, udp_port = parse_host_port(
            section.get("udp_listen", "127.0.0.1:0"), what="udp_listen"
        )
        http_host, http_port = parse_host_port(
            section.get("http_listen", "127.0.0.1:0"), what="http_listen"
        )
        peers = section.get("mesh_peers", {})
        if not isinstance(peers, dict) or not all(isinstance(v, str) for v in peers.values()):
            raise ConfigError(f'{source}: mesh_peers must be a table of peer id = "HOST:PORT"')
        mesh_listen = section.get("mesh_listen")
        return cls(
            id=section["id"],
            key_path=path("key"),
            registry_path=path("registry"),
            db_path=path("db"),
            authority_key_path=path("authority_key") if "authority_key" in section else None,
            udp_host=udp_host,
            udp_port=udp_port,
            http_host=http_host,
            http_port=http_port,
            probes_per_round=section.get("probes_per_round", 32),
            probe_timeout_ms=section.get("probe_timeout_ms", 500),
            hello_timeout_ms=section.get("hello_timeout_ms", 1000),
            hello_retries=section.get("hello_retries", 3),
            max_concurrent_rounds=section.get("max_concurrent_rounds", 64),
            mesh_listen=(
                None if mesh_listen is None else parse_host_port(mesh_listen, what="mesh_listen")
            ),
            mesh_peers={
                str(peer): parse_host_port(address, what=f"mesh_peers.{peer}")
                for peer, address in peers.items()
            },
            mesh_interval_s=section.get("mesh_interval_s", 300.0),
            mesh_probes=section.get("mesh_probes", 16),
        )
