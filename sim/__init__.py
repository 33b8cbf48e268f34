"""Simulated world for chiploc: real city coordinates, a path model, and a
user-space UDP delay emulator that never delivers early.

Public API (re-exported from private modules):

- cities: :data:`CITIES`, :data:`CITIES_BY_CODE`, :class:`City`, :func:`city`
- path model: :class:`PathModel`, :class:`Point`, :class:`Hop`, :class:`Route`,
  :func:`geodesic_km`, :func:`draw_hop`, :func:`draw_route`,
  :func:`fastest_route`, :data:`FIBER_SPEED_KM_PER_MS`
- delay emulator: :class:`DelayScheduler`, :class:`DelayEmulator`,
  :class:`DelaySource`, :class:`FixedDelay`, :class:`RouteDelay`,
  :class:`LatenessStats`, :func:`lateness_stats`; in a child process:
  :class:`EmulatorHost`, :class:`RemoteEmulator`
- scenarios (pure): :class:`FleetScenario`, :class:`LandmarkSpec`, :class:`ChipSpec`,
  :data:`CASES`, :data:`DEFAULT_LANDMARK_CODES`
- runtime: :class:`SimulatedWorld` (landmarks + agents + emulators on 127.0.0.1)
- fleet scale (pure data, no sockets): :class:`FleetWorld` (thousands of chips, hundreds
  of landmarks), :func:`sign_chip_reports` (each report signed alone),
  :func:`sign_fleet_reports` (landmark batch signatures), :func:`world_rtts_ms`,
  :func:`probe_rtts_ns`;
  adaptive vs all-landmarks measurement: :func:`run_adaptive`, :class:`AdaptiveOutcome`
  (fault scenarios of fleet runs on Dask and PostgreSQL: ``chiploc.sim._fleet_faults``)
"""

from __future__ import annotations

from ._adaptive import AdaptiveOutcome, run_adaptive
from ._attack_lab import AttackOutcome
from ._attacks import ATTACKS, run_attacks
from ._cities import CITIES, CITIES_BY_CODE, EUROPE, City, city
from ._delay import (
    Address,
    DelayEmulator,
    DelayScheduler,
    DelaySource,
    FixedDelay,
    LatenessStats,
    RouteDelay,
    lateness_stats,
)
from ._fault_kills import landmark_kill_restart, verifier_kill
from ._fault_lab import FaultOutcome
from ._fault_relay import FaultPlan, FaultyRelay
from ._fault_rounds import agent_restart, lossy_rounds, wall_clock_jump
from ._faults import run_faults
from ._fleet import (
    FleetChip,
    FleetSite,
    FleetWorld,
    probe_rtts_ns,
    sign_chip_reports,
    sign_fleet_reports,
    world_rtts_ms,
)
from ._fuzz_daemons import HttpFuzzTally, fuzz_agent, fuzz_http
from ._fuzz_inputs import http_requests, mutate, random_json
from ._fuzz_lab import FUZZ_TARGETS, FuzzLab, FuzzResult
from ._host import EmulatorHost, RemoteEmulator
from ._load import LoadResult, raise_nofile_limit, run_load
from ._paths import (
    FIBER_SPEED_KM_PER_MS,
    Hop,
    PathModel,
    Point,
    Route,
    draw_hop,
    draw_route,
    fastest_route,
    geodesic_km,
)
from ._scenario import CASES, DEFAULT_LANDMARK_CODES, ChipSpec, FleetScenario, LandmarkSpec
from ._world import SimulatedWorld

__all__ = [
    "ATTACKS",
    "CASES",
    "CITIES",
    "CITIES_BY_CODE",
    "DEFAULT_LANDMARK_CODES",
    "EUROPE",
    "FIBER_SPEED_KM_PER_MS",
    "FUZZ_TARGETS",
    "AdaptiveOutcome",
    "Address",
    "AttackOutcome",
    "ChipSpec",
    "City",
    "DelayEmulator",
    "DelayScheduler",
    "DelaySource",
    "EmulatorHost",
    "FaultOutcome",
    "FaultPlan",
    "FaultyRelay",
    "FixedDelay",
    "FleetChip",
    "FleetScenario",
    "FleetSite",
    "FleetWorld",
    "FuzzLab",
    "FuzzResult",
    "Hop",
    "HttpFuzzTally",
    "LandmarkSpec",
    "LatenessStats",
    "LoadResult",
    "PathModel",
    "Point",
    "RemoteEmulator",
    "Route",
    "RouteDelay",
    "SimulatedWorld",
    "agent_restart",
    "city",
    "draw_hop",
    "draw_route",
    "fastest_route",
    "fuzz_agent",
    "fuzz_http",
    "geodesic_km",
    "http_requests",
    "landmark_kill_restart",
    "lateness_stats",
    "lossy_rounds",
    "mutate",
    "probe_rtts_ns",
    "raise_nofile_limit",
    "random_json",
    "run_adaptive",
    "run_attacks",
    "run_faults",
    "run_load",
    "sign_chip_reports",
    "sign_fleet_reports",
    "verifier_kill",
    "wall_clock_jump",
    "world_rtts_ms",
]
