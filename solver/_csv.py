"""Measurement CSV text -> :class:`Measurement` lists per target (pure; no file I/O).

Invariants: every row is either turned into a validated :class:`Measurement` or
reported with its line number; a duplicate (target, landmark) pair is an error,
never a silent override; non-finite numbers are refused.
"""

from __future__ import annotations

import csv
import math

from chiploc.common.errors import MeasurementError

from ._models import Measurement

__all__ = ["MEASUREMENT_COLUMNS", "parse_measurements_csv"]

#: Required columns of a measurement CSV (``overhead_ms`` is optional).
MEASUREMENT_COLUMNS = ("target", "landmark", "lat", "lon", "rtt_ms")


def parse_measurements_csv(text: str, *, source: str) -> dict[str, list[Measurement]]:
    """Parse measurement CSV text into measurements per target, in file order.

    Header: ``target,landmark,lat,lon,rtt_ms`` plus an optional ``overhead_ms``
    (a landmark-side, proven lower bound). Every bad row is collected and reported
    with its line number in one :class:`MeasurementError` naming ``source``;
    nothing is silently dropped. Blank lines are skipped.
    """
    try:
        return _parse(text, source)
    except csv.Error as e:  # e.g. a field over csv's size limit
        raise MeasurementError(f"{source}: not a readable CSV: {e}", reason="bad_row") from e


def _parse(text: str, path: str) -> dict[str, list[Measurement]]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise MeasurementError(f"{path}: empty file (no header)", reason="no_header")
    cols = [h.strip() for h in header]
    missing = [c for c in MEASUREMENT_COLUMNS if c not in cols]
    if missing:
        raise MeasurementError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}", reason="missing_column"
        )
    pos = {c: cols.index(c) for c in (*MEASUREMENT_COLUMNS, "overhead_ms") if c in cols}
    errors: list[str] = []
    out: dict[str, list[Measurement]] = {}
    seen: dict[tuple[str, str], int] = {}
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(cols):
            errors.append(f"line {line_no}: {len(row)} fields, expected {len(cols)}")
            continue
        target, landmark = row[pos["target"]].strip(), row[pos["landmark"]].strip()
        if not target or not landmark:
            errors.append(f"line {line_no}: empty target or landmark")
            continue
        nums: dict[str, float] = {}
        bad = False
        for c in ("lat", "lon", "rtt_ms", "overhead_ms"):
            if c not in pos:
                continue
            raw = row[pos[c]].strip()
            if c == "overhead_ms" and raw == "":
                continue
            try:
                v = float(raw)
            except ValueError:
                errors.append(f"line {line_no}: {c} {raw!r} is not a number")
                bad = True
                continue
            if not math.isfinite(v):
                errors.append(f"line {line_no}: {c} {raw!r} is not finite")
                bad = True
                continue
            nums[c] = v
        if bad:
            continue
        key = (target, landmark)
        if key in seen:
            errors.append(
                f"line {line_no}: duplicate landmark {landmark!r} for target {target!r} "
                f"(first on line {seen[key]})"
            )
            continue
        seen[key] = line_no
        try:
            m = Measurement(
                landmark=landmark,
                lat=nums["lat"],
                lon=nums["lon"],
                rtt_ms=nums["rtt_ms"],
                overhead_ms=nums.get("overhead_ms", 0.0),
            )
        except MeasurementError as e:
            errors.append(f"line {line_no}: {e}")
            continue
        out.setdefault(target, []).append(m)
    if errors:
        raise MeasurementError(
            f"{path}: {len(errors)} bad row(s):\n  " + "\n  ".join(errors), reason="bad_row"
        )
    return out
