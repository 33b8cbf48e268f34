"""Measurement CSV text -> :class:`Measurement` lists per target (pure; no file I/O).

Invariants: every row is either turned into a validated :class:`Measurement` or
reported with its line number; non-finite numbers are refused. Several rows for one
(target, landmark) pair (rounds of a campaign) keep the smallest RTT only when they put
the landmark at the same coordinates; otherwise the conflict is an error naming both
lines, never a silent choice. A file with a header and no rows is an error.

Accepted as people write them: a UTF-8 byte-order mark, ``,`` ``;`` or tab separators
(the one the header uses), header names in any case and with spaces around them.
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
    nothing is silently dropped. Blank lines are skipped. Repeated (target, landmark)
    rows at the same coordinates keep the one with the smallest ``rtt_ms - overhead_ms``.
    """
    try:
        return _parse(text, source)
    except csv.Error as e:  # e.g. a field over csv's size limit
        raise MeasurementError(f"{source}: not a readable CSV: {e}", reason="bad_row") from e


#: Coordinates of two rows for one landmark agree if within this many degrees (~1 cm).
_SAME_DEG = 1e-7


def _delimiter(line: str) -> str:
    """The separator the header line uses: ``,`` ``;`` or tab, whichever it has most of."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _parse(text: str, path: str) -> dict[str, list[Measurement]]:
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise MeasurementError(f"{path}: empty file (no header)", reason="no_header")
    reader = csv.reader(lines, delimiter=_delimiter(first))
    header = next(reader, None)
    while header is not None and all(not h.strip() for h in header):
        header = next(reader, None)  # leading blank lines
    if header is None:
        raise MeasurementError(f"{path}: empty file (no header)", reason="no_header")
    header_line = reader.line_num
    cols = [h.strip().lower() for h in header]
    missing = [c for c in MEASUREMENT_COLUMNS if c not in cols]
    if missing:
        raise MeasurementError(
            f"{path}: line {header_line}: missing column(s) {', '.join(missing)}; the header "
            f"found is {first.strip()[:200]!r}, expected {','.join(MEASUREMENT_COLUMNS)}"
            "[,overhead_ms]",
            reason="missing_column",
        )
    pos = {c: cols.index(c) for c in (*MEASUREMENT_COLUMNS, "overhead_ms") if c in cols}
    errors: list[str] = []
    out: dict[str, list[Measurement]] = {}
    seen: dict[tuple[str, str], tuple[int, int]] = {}  # -> (line, index in out[target])
    rows = 0
    for row in reader:
        line_no = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        rows += 1
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
        key = (target, landmark)
        if key in seen:
            first_line, k = seen[key]
            prev = out[target][k]
            if abs(prev.lat - m.lat) > _SAME_DEG or abs(prev.lon - m.lon) > _SAME_DEG:
                errors.append(
                    f"line {line_no}: duplicate landmark {landmark!r} for target {target!r} "
                    f"at other coordinates: ({m.lat:g}, {m.lon:g}) here, "
                    f"({prev.lat:g}, {prev.lon:g}) on line {first_line}"
                )
            elif m.effective_rtt_ms < prev.effective_rtt_ms:
                out[target][k] = m  # another round of the same pair: keep the minimum
            continue
        seen[key] = (line_no, len(out.setdefault(target, [])))
        out[target].append(m)
    if errors:
        raise MeasurementError(
            f"{path}: {len(errors)} bad row(s):\n  " + "\n  ".join(errors), reason="bad_row"
        )
    if rows == 0:
        raise MeasurementError(f"{path}: a header and no rows", reason="no_rows")
    return out
