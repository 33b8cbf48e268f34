"""The landmark: a sans-I/O round core, its UDP timing edge, a report store and an HTTP plane."""

from __future__ import annotations

from chiploc.landmarks._config import LandmarkConfig, parse_host_port
from chiploc.landmarks._core import RoundCore, hello_schedule_ns
from chiploc.landmarks._daemon import LandmarkDaemon
from chiploc.landmarks._store import ReportStore
from chiploc.landmarks._timing import rtt_from_stamps

__all__ = [
    "LandmarkConfig",
    "LandmarkDaemon",
    "ReportStore",
    "RoundCore",
    "hello_schedule_ns",
    "parse_host_port",
    "rtt_from_stamps",
]
