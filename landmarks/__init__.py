"""The landmark: a sans-I/O round core, its UDP timing edge, a report store and an HTTP plane."""

from __future__ import annotations

from landmarks._config import LandmarkConfig, parse_host_port
from landmarks._core import RoundCore, hello_schedule_ns
from landmarks._daemon import LandmarkDaemon
from landmarks._store import ReportStore
from landmarks._timing import rtt_from_stamps

__all__ = [
    "LandmarkConfig",
    "LandmarkDaemon",
    "ReportStore",
    "RoundCore",
    "hello_schedule_ns",
    "parse_host_port",
    "rtt_from_stamps",
]
