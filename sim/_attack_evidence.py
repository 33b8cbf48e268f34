"""Measuring and judging in the attacks: rounds on every landmark at once
(``_measure_all``), reports verified and solved under the vacuum model (``_solve``),
the soundness check on the chip's true position, reports re-signed the way a
dishonest landmark could, and the reason code a refusal ends with.

Invariants:

* Every figure comes from the real system: :func:`protocol.verify_report` on the
  raw bytes, the landmark's own rounds, :func:`solver.solve`; an error is kept as
  a value (``_measure_all``) or a reason code, never swallowed into a pass.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from chiploc.common.errors import ChiplocError
from chiploc.landmarks import LandmarkDaemon
from chiploc.protocol import (
    MeasurementReport,
    PrivateKey,
    ProbeRecord,
    Registry,
    sign_report,
    verify_report,
)

from ._attack_lab import _PROBES
from ._delay import Address
from ._paths import Point, geodesic_km

if TYPE_CHECKING:
    from chiploc.solver import SolveResult

__all__ = [
    "_measure_all",
    "_measure_refusal",
    "_report_refusal",
    "_reports",
    "_resign",
    "_rtts",
    "_solve",
    "_true_position_kept",
    "_verdict",
]


async def _measure_all(
    daemons: Iterable[LandmarkDaemon],
    chip_id: str,
    addresses: Address | Mapping[str, Address],
    *,
    probes: int = _PROBES,
) -> dict[str, MeasurementReport | ChiplocError]:
    """Every landmark measures ``chip_id`` concurrently; an error is a value here."""

    async def one(d: LandmarkDaemon) -> MeasurementReport | ChiplocError:
        address = addresses[d.id] if isinstance(addresses, Mapping) else addresses
        try:
            return await d.measure(chip_id, address, probes=probes)
        except ChiplocError as e:
            return e

    ds = list(daemons)
    results = await asyncio.gather(*(one(d) for d in ds))
    return {d.id: r for d, r in zip(ds, results, strict=True)}


def _reports(results: Mapping[str, MeasurementReport | ChiplocError]) -> list[MeasurementReport]:
    return [r for r in results.values() if isinstance(r, MeasurementReport)]


def _solve(
    chip_id: str,
    raws: Iterable[bytes],
    registry: Registry,
    region_spec: str,
    *,
    tolerate: int = 0,
) -> SolveResult:
    """Verify every report (raises on a bad one), then solve under the vacuum model."""
    from chiploc.solver import Measurement, load_region, solve  # lazy: keeps `import sim` light

    measurements = []
    for raw in raws:
        report = verify_report(raw, registry)
        if report.min_rtt_ns is None:
            continue
        entry = registry.landmark(report.landmark_id)
        measurements.append(
            Measurement(
                landmark=report.landmark_id,
                lat=entry.lat,
                lon=entry.lon,
                rtt_ms=report.min_rtt_ns / 1e6,
                overhead_ms=report.overhead_lower_bound_ns / 1e6,
            )
        )
    return solve(chip_id, measurements, load_region(region_spec), tolerate=tolerate)


def _rtts(reports: Iterable[MeasurementReport]) -> str:
    parts = [
        f"{r.landmark_id}={'lost' if r.min_rtt_ns is None else f'{r.min_rtt_ns / 1e6:.2f}ms'}"
        for r in sorted(reports, key=lambda r: r.landmark_id)
    ]
    return ", ".join(parts)


def _true_position_kept(result: SolveResult, where: Point) -> tuple[str, bool, str]:
    """Is the chip's true position inside every landmark's vacuum disk? (soundness)"""
    worst = math.inf
    for bound in result.landmarks:
        m = bound.measurement
        slack = bound.radius_km - geodesic_km(m.lat, m.lon, where.lat, where.lon)
        worst = min(worst, slack)
    return (
        "sound: the true position is inside every vacuum disk",
        worst >= 0,
        f"least slack {worst:.0f} km",
    )


def _verdict(result: SolveResult) -> str:
    return str(result.verdict.value)


def _resign(
    key: PrivateKey, report: MeasurementReport, probes: Sequence[ProbeRecord]
) -> MeasurementReport:
    """``report``'s round with ``probes`` in place of its own, signed by ``key``: what a
    dishonest landmark (or one holding another's id) can produce."""
    return sign_report(
        key,
        chip_id=report.chip_id,
        session_id=report.session_id,
        chip_address=report.chip_address,
        started_at_unix_ns=report.started_at_unix_ns,
        finished_at_unix_ns=report.finished_at_unix_ns,
        probes=probes,
    )


def _report_refusal(raw: bytes, registry: Registry, error: type[ChiplocError]) -> str:
    """The reason code of the ``error`` :func:`protocol.verify_report` refuses ``raw``
    with, or ``"ACCEPTED"``."""
    try:
        verify_report(raw, registry)
    except error as e:
        return e.reason
    return "ACCEPTED"


async def _measure_refusal(
    daemon: LandmarkDaemon, chip_id: str, address: Address, error: type[ChiplocError]
) -> str:
    """The reason code of the ``error`` the round ``daemon`` runs on ``chip_id`` ends
    with, or ``"measured"``."""
    try:
        await daemon.measure(chip_id, address)
    except error as e:
        return e.reason
    return "measured"
