"""Propagation models: from a landmark's minimum RTT to a geodesic-radius bound.

Invariants enforced here:

* ``vacuum`` (the default) is the only model that yields a proof: light at
  :data:`~chiploc.common.units.SPEED_OF_LIGHT_KM_PER_MS` covers at most
  ``D = (rtt - overhead) / 2 * c`` in a straight line, converted to a geodesic
  radius with :func:`~solver._geodesy.chord_to_geodesic_km`.
* ``fiber`` assumes a path along the surface at 2/3 c (an assumption, no proof).
* ``calibrated`` uses a CBG bestline ``rtt = m * d + b`` per landmark, fitted by
  linear programming below all landmark-to-landmark points, with ``m`` no
  faster than light and ``b >= 0`` (an estimate, no proof).
* Only ``overhead_ms`` that the landmark itself proved (a lower bound of its
  own processing time) is ever subtracted; the chip's word never is.
* The landmark's clock may run off rate by up to ``clock_tolerance_ppm``
  (default :data:`~chiploc.common.units.MAX_CLOCK_RATE_ERROR_PPM`): an interval it
  measured as ``t`` lasted between ``t / (1 + e)`` and ``t / (1 - e)``, so the
  distance bound uses the largest possible true RTT minus the smallest
  possible true overhead, ``rtt / (1 - e) - overhead / (1 + e)``.
* A :class:`Measurement` is validated once, in ``__post_init__``.
"""

from __future__ import annotations

import csv
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from chiploc.common.errors import MeasurementError
from chiploc.common.units import MAX_CLOCK_RATE_ERROR_PPM, SPEED_OF_LIGHT_KM_PER_MS

from ._geodesy import R0_KM, chord_to_geodesic_km, geodesic_km, geodesic_to_chord_km

__all__ = [
    "FIBER_KM_PER_MS",
    "Bestline",
    "Calibration",
    "Measurement",
    "Model",
    "check_clock_tolerance_ppm",
    "radii_km",
    "radius_km",
    "rtt_for_radius_ms",
    "rtts_for_radii_ms",
]

#: Signal speed in fibre: 2/3 of c (an assumption about a surface path).
FIBER_KM_PER_MS: Final = SPEED_OF_LIGHT_KM_PER_MS * 2.0 / 3.0
#: Fewest landmark-to-landmark points for a per-landmark bestline.
MIN_CALIBRATION_POINTS: Final = 2
#: Largest accepted clock-rate tolerance (10 %, the kernel's tick-adjustment range).
MAX_CLOCK_TOLERANCE_PPM: Final = 100_000.0


def check_clock_tolerance_ppm(ppm: float) -> float:
    """Validate a clock-rate tolerance (ppm): a finite number in [0, 100,000]."""
    if (
        isinstance(ppm, bool)
        or not isinstance(ppm, int | float)
        or not 0.0 <= ppm <= MAX_CLOCK_TOLERANCE_PPM
    ):
        raise ValueError(
            f"clock_tolerance_ppm must be a number in [0, {MAX_CLOCK_TOLERANCE_PPM:g}], got {ppm!r}"
        )
    return float(ppm)


def true_rtt_bound_ms(m: Measurement, clock_tolerance_ppm: float) -> float:
    """Largest possible true RTT minus smallest possible true overhead (ms), at least 0."""
    e = check_clock_tolerance_ppm(clock_tolerance_ppm) * 1e-6
    return max(m.rtt_ms / (1.0 - e) - m.overhead_ms / (1.0 + e), 0.0)


class Model(enum.Enum):
    VACUUM = "vacuum"
    FIBER = "fiber"
    CALIBRATED = "calibrated"

    @property
    def is_proof(self) -> bool:
        return self is Model.VACUUM


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeasurementError(f"{name} must be a number, got {value!r}", reason="not_a_number")
    if not math.isfinite(value):
        raise MeasurementError(f"{name} must be finite, got {value!r}", reason="not_finite")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One landmark's minimum RTT to a target, with the landmark's coordinates."""

    landmark: str
    lat: float
    lon: float
    rtt_ms: float
    overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.landmark, str) or not self.landmark.strip():
            raise MeasurementError("landmark id must be a non-empty string", reason="bad_landmark")
        lat = _finite("lat", self.lat)
        lon = _finite("lon", self.lon)
        rtt = _finite("rtt_ms", self.rtt_ms)
        overhead = _finite("overhead_ms", self.overhead_ms)
        if not -90.0 <= lat <= 90.0:
            raise MeasurementError(f"lat {lat} outside [-90, 90]", reason="bad_lat")
        if not -180.0 <= lon <= 180.0:
            raise MeasurementError(f"lon {lon} outside [-180, 180]", reason="bad_lon")
        if rtt < 0:
            raise MeasurementError(f"rtt_ms {rtt} is negative", reason="negative_rtt")
        if overhead < 0:
            raise MeasurementError(
                f"overhead_ms {overhead} is negative", reason="negative_overhead"
            )
        if overhead > rtt:
            raise MeasurementError(
                f"overhead_ms {overhead} exceeds rtt_ms {rtt}", reason="overhead_exceeds_rtt"
            )

    @property
    def effective_rtt_ms(self) -> float:
        return max(self.rtt_ms - self.overhead_ms, 0.0)

    def to_json_dict(self) -> dict[str, object]:
        return {
            "landmark": self.landmark,
            "lat": self.lat,
            "lon": self.lon,
            "rtt_ms": self.rtt_ms,
            "overhead_ms": self.overhead_ms,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, object]) -> Measurement:
        try:
            return cls(
                landmark=str(data["landmark"]),
                lat=data["lat"],  # type: ignore[arg-type]
                lon=data["lon"],  # type: ignore[arg-type]
                rtt_ms=data["rtt_ms"],  # type: ignore[arg-type]
                overhead_ms=data.get("overhead_ms", 0.0),  # type: ignore[arg-type]
            )
        except KeyError as e:
            raise MeasurementError(f"missing field {e.args[0]!r}", reason="missing_field") from e


@dataclass(frozen=True, slots=True, kw_only=True)
class Bestline:
    """``rtt_ms = slope_ms_per_km * distance_km + intercept_ms``, below every calibration point."""

    slope_ms_per_km: float
    intercept_ms: float
    points: int

    def __post_init__(self) -> None:
        if not self.slope_ms_per_km >= 2.0 / SPEED_OF_LIGHT_KM_PER_MS * (1 - 1e-9):
            raise MeasurementError("bestline slope faster than light", reason="bad_calibration")
        if not self.intercept_ms >= 0 or not math.isfinite(self.intercept_ms):
            raise MeasurementError("bestline intercept must be >= 0", reason="bad_calibration")

    def distance_km(self, rtt_ms: float) -> float:
        return max(rtt_ms - self.intercept_ms, 0.0) / self.slope_ms_per_km

    def rtt_ms(self, distance_km: float) -> float:
        return self.slope_ms_per_km * distance_km + self.intercept_ms


def fit_bestline(distances_km: Iterable[float], rtts_ms: Iterable[float]) -> Bestline:
    """CBG bestline: the line below all (distance, rtt) points closest to them (scipy linprog)."""
    from scipy.optimize import linprog

    d = np.asarray(list(distances_km), dtype=np.float64)
    t = np.asarray(list(rtts_ms), dtype=np.float64)
    if d.size < 1:
        raise MeasurementError("no calibration points", reason="bad_calibration")
    min_slope = 2.0 / SPEED_OF_LIGHT_KM_PER_MS
    # maximise sum(m d_k + b)  <=>  minimise -(sum d) m - n b
    res = linprog(
        c=[-float(d.sum()), -float(d.size)],
        A_ub=np.column_stack([d, np.ones_like(d)]),
        b_ub=t,
        bounds=[(min_slope, None), (0.0, None)],
        method="highs",
    )
    if not res.success:
        # No line with a speed below c and b >= 0 lies under the points: a point is faster than
        # light. Fall back to the physical limit through the origin.
        return Bestline(slope_ms_per_km=min_slope, intercept_ms=0.0, points=int(d.size))
    slope, intercept = float(res.x[0]), float(res.x[1])
    return Bestline(
        slope_ms_per_km=max(slope, min_slope), intercept_ms=max(intercept, 0.0), points=int(d.size)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """Per-landmark bestlines, fitted to landmark-to-landmark measurements.

    CSV format (header required)::

        landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms

    one row per (landmark, peer) pair: the landmark's minimum RTT to a peer at a
    known position. Landmarks with fewer than two rows use the fibre line.
    """

    bestlines: Mapping[str, Bestline] = field(default_factory=dict)

    @classmethod
    def fit(cls, rows: Iterable[tuple[str, float, float, float, float, float]]) -> Calibration:
        """Fit from ``(landmark, lat, lon, peer_lat, peer_lon, rtt_ms)`` tuples."""
        grouped: dict[str, list[tuple[float, float, float, float, float]]] = {}
        for lm, lat, lon, plat, plon, rtt in rows:
            grouped.setdefault(lm, []).append((lat, lon, plat, plon, rtt))
        lines: dict[str, Bestline] = {}
        for lm, pts in grouped.items():
            if len(pts) < MIN_CALIBRATION_POINTS:
                continue
            arr = np.asarray(pts, dtype=np.float64)
            dist = geodesic_km(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
            lines[lm] = fit_bestline(dist, arr[:, 4])
        return cls(bestlines=lines)

    @classmethod
    def from_csv(cls, path: str | Path) -> Calibration:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MeasurementError(f"{path}: cannot read: {e}", reason="unreadable") from e
        try:
            return cls._from_csv_text(text, path)
        except csv.Error as e:  # e.g. a field over csv's size limit
            raise MeasurementError(f"{path}: not a readable CSV: {e}", reason="bad_row") from e

    @classmethod
    def _from_csv_text(cls, text: str, path: Path) -> Calibration:
        reader = csv.DictReader(text.splitlines())
        need = ["landmark", "lat", "lon", "peer", "peer_lat", "peer_lon", "rtt_ms"]
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise MeasurementError(
                f"{path}: missing columns {', '.join(missing)}", reason="missing_column"
            )
        rows = []
        errors = []
        for line_no, row in enumerate(reader, start=2):
            try:
                vals = [float(row[c] or "nan") for c in need[1:] if c != "peer"]
                lat, lon, plat, plon, rtt = vals
                for name, v in zip(
                    ("lat", "lon", "peer_lat", "peer_lon", "rtt_ms"), vals, strict=True
                ):
                    if not math.isfinite(v):
                        raise ValueError(f"{name} not a finite number")
                if not (-90 <= lat <= 90 and -90 <= plat <= 90):
                    raise ValueError("latitude outside [-90, 90]")
                if not (-180 <= lon <= 180 and -180 <= plon <= 180):
                    raise ValueError("longitude outside [-180, 180]")
                if rtt < 0:
                    raise ValueError("negative rtt_ms")
                rows.append((row["landmark"], lat, lon, plat, plon, rtt))
            except ValueError as e:
                errors.append(f"line {line_no}: {e}")
        if errors:
            raise MeasurementError(f"{path}: " + "; ".join(errors), reason="bad_row")
        return cls.fit(rows)

    def bestline(self, landmark: str) -> Bestline:
        line = self.bestlines.get(landmark)
        if line is None:
            return Bestline(slope_ms_per_km=2.0 / FIBER_KM_PER_MS, intercept_ms=0.0, points=0)
        return line


def radius_km(
    m: Measurement,
    model: Model,
    calibration: Calibration | None = None,
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> float:
    """Geodesic-radius bound (km) of the disk that must hold the target; ``inf`` = whole Earth.

    The RTT is first widened for the landmark clock's rate error (see the module docstring).
    """
    rtt = true_rtt_bound_ms(m, clock_tolerance_ppm)
    if model is Model.VACUUM:
        return chord_to_geodesic_km(rtt / 2.0 * SPEED_OF_LIGHT_KM_PER_MS)
    if model is Model.FIBER:
        return rtt / 2.0 * FIBER_KM_PER_MS
    cal = calibration if calibration is not None else Calibration()
    return cal.bestline(m.landmark).distance_km(rtt)


def radii_km(
    ms: Sequence[Measurement],
    model: Model,
    calibration: Calibration | None = None,
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> npt.NDArray[np.float64]:
    """:func:`radius_km` of every measurement, vectorised for the vacuum and fibre models."""
    if model is Model.CALIBRATED or not ms:
        return np.array(
            [radius_km(m, model, calibration, clock_tolerance_ppm=clock_tolerance_ppm) for m in ms],
            dtype=np.float64,
        )
    e = check_clock_tolerance_ppm(clock_tolerance_ppm) * 1e-6
    rtt = np.array([m.rtt_ms for m in ms], dtype=np.float64) / (1.0 - e)
    rtt -= np.array([m.overhead_ms for m in ms], dtype=np.float64) / (1.0 + e)
    np.maximum(rtt, 0.0, out=rtt)  # true_rtt_bound_ms
    if model is Model.FIBER:
        out: npt.NDArray[np.float64] = rtt / 2.0 * FIBER_KM_PER_MS
        return out
    chord = rtt / 2.0 * SPEED_OF_LIGHT_KM_PER_MS  # chord_to_geodesic_km
    out = np.full(chord.shape, np.inf)
    near = chord < 2 * R0_KM
    out[near] = 2 * R0_KM * np.arcsin(chord[near] / (2 * R0_KM))
    return out


def rtt_for_radius_ms(
    m: Measurement,
    radius: float,
    model: Model,
    calibration: Calibration | None = None,
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> float:
    """The measured RTT (ms, overhead included) at which :func:`radius_km` is ``radius`` km."""
    if model is Model.VACUUM:
        rtt = 2.0 * geodesic_to_chord_km(radius) / SPEED_OF_LIGHT_KM_PER_MS
    elif model is Model.FIBER:
        rtt = 2.0 * radius / FIBER_KM_PER_MS
    else:
        cal = calibration if calibration is not None else Calibration()
        rtt = cal.bestline(m.landmark).rtt_ms(radius)
    e = check_clock_tolerance_ppm(clock_tolerance_ppm) * 1e-6
    return (rtt + m.overhead_ms / (1.0 + e)) * (1.0 - e)


def rtts_for_radii_ms(
    ms: Sequence[Measurement],
    radii: npt.NDArray[np.float64],
    model: Model,
    calibration: Calibration | None = None,
    *,
    clock_tolerance_ppm: float = MAX_CLOCK_RATE_ERROR_PPM,
) -> npt.NDArray[np.float64]:
    """:func:`rtt_for_radius_ms` of every measurement, vectorised for the vacuum and fibre
    models."""
    if model is Model.CALIBRATED or not ms:
        return np.array(
            [
                rtt_for_radius_ms(
                    m, float(r), model, calibration, clock_tolerance_ppm=clock_tolerance_ppm
                )
                for m, r in zip(ms, radii.tolist(), strict=True)
            ],
            dtype=np.float64,
        )
    if model is Model.VACUUM:  # geodesic_to_chord_km
        chord = 2 * R0_KM * np.sin(np.maximum(radii, 0.0) / (2 * R0_KM))
        chord[radii >= math.pi * R0_KM] = 2 * R0_KM
        rtt = 2.0 * chord / SPEED_OF_LIGHT_KM_PER_MS
    else:
        rtt = 2.0 * radii / FIBER_KM_PER_MS
    e = check_clock_tolerance_ppm(clock_tolerance_ppm) * 1e-6
    rtt += np.array([m.overhead_ms for m in ms], dtype=np.float64) / (1.0 + e)
    out: npt.NDArray[np.float64] = rtt * (1.0 - e)
    return out
