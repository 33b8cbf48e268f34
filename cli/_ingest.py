"""``chiploc ingest atlas``: RIPE Atlas ping results -> chiploc's measurement CSV.

Atlas RTTs are not signed: what this writes is for studies, calibration and coverage
planning, never for a certificate (docs/ingest.md).

Invariants: every result read is either kept or counted under one drop reason; the
minimum RTT per (target, probe) is kept, over every round and every reply that is not a
duplicate; a probe without a location, or with a disputed one, never gives a row.
RIPE's own parser, ``ripe.atlas.sagan``, reads each result (every firmware generation it
knows); its exceptions are converted here, at this one seam.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chiploc.cli._ingest_read import JsonRecords, unwrap
from chiploc.common.errors import InputError

__all__ = ["AtlasProbe", "IngestReport", "ingest_atlas", "read_json_records", "read_probes"]

#: Drop reasons, in the order the summary prints them.
DROP_REASONS = (
    "malformed",
    "not_ping",
    "error",
    "no_reply",
    "unknown_probe",
    "no_location",
    "disputed_location",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AtlasProbe:
    """A probe's id and registered position (None if it has none) and whether it is disputed."""

    id: int
    lat: float | None
    lon: float | None
    disputed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestReport:
    """Kept rows ``(target, landmark, lat, lon, rtt_ms)`` and what happened to each result."""

    rows: tuple[tuple[str, str, float, float, float], ...]
    read: int
    used: int
    dropped: Mapping[str, int] = field(default_factory=dict)
    #: the ``type`` of each result counted ``not_ping`` (traceroute, dns, ...)
    other_types: Mapping[str, int] = field(default_factory=dict)
    #: distinct ``msm_id`` among the results used
    measurements: int = 0

    def summary(self) -> str:
        parts = []
        for k in DROP_REASONS:
            if self.dropped.get(k):
                why = ""
                if k == "not_ping" and self.other_types:
                    kinds = sorted(self.other_types.items(), key=lambda kv: (-kv[1], kv[0]))
                    why = " (" + ", ".join(f"{t} {n}" for t, n in kinds) + ")"
                parts.append(f"{k} {self.dropped[k]}{why}")
        dropped = ", ".join(parts)
        return (
            f"results read {self.read}, used {self.used}, dropped {self.read - self.used}"
            + (f" ({dropped})" if dropped else "")
            + (f"; from {self.measurements} measurements" if self.measurements > 1 else "")
            + f"; rows written {len(self.rows)} (minimum per target and probe)"
        )

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["target", "landmark", "lat", "lon", "rtt_ms"])
        for target, landmark, lat, lon, rtt in self.rows:
            w.writerow([target, landmark, repr(lat), repr(lon), repr(rtt)])
        return out.getvalue()


def read_json_records(text: str, *, source: str) -> list[Any]:
    """Records from text already in memory: a JSON array, an API page (``{"results": [...]}``),
    the probe archive (``{"objects": [...]}``) or JSON lines (files: :class:`JsonRecords`).

    A JSON-lines line that does not parse is kept as None (counted as malformed later);
    a document that is none of these forms is an error."""
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise InputError(f"{source}: empty file", reason="empty")
    if body[0] in "[{":
        try:
            return unwrap(json.loads(body))
        except json.JSONDecodeError:
            pass  # perhaps JSON lines of objects
    records: list[Any] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            records.extend(unwrap(json.loads(line)))
        except json.JSONDecodeError:
            records.append(None)
    if not any(r is not None for r in records):
        raise InputError(f"{source}: neither a JSON array nor JSON lines", reason="bad_json")
    return records


def _disputed(tags: Any) -> bool:
    names: list[str] = []
    for t in tags if isinstance(tags, list) else []:
        if isinstance(t, str):
            names.append(t)
        elif isinstance(t, dict):
            names.extend(str(t.get(k, "")) for k in ("slug", "name"))
    return any("disputed" in n.lower() for n in names)


def read_probes(records: Iterable[Any], *, source: str) -> dict[int, AtlasProbe]:
    """Probe metadata: ``id`` and ``geometry.coordinates`` = [lon, lat] (the API's form), or
    ``latitude`` / ``longitude`` (the probe archive's form, without ``geometry``)."""
    probes: dict[int, AtlasProbe] = {}
    for k, rec in enumerate(records, start=1):
        if not isinstance(rec, dict) or isinstance(rec.get("id"), bool):
            raise InputError(f"{source}: probe {k} is not a probe object", reason="bad_probe")
        try:
            pid = int(rec["id"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{source}: probe {k} has no integer id", reason="bad_probe") from e
        lat = lon = None
        geometry = rec.get("geometry")
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if coords is None and "geometry" not in rec and "latitude" in rec:
            coords = [rec.get("longitude"), rec.get("latitude")]  # the probe archive's form
        if isinstance(coords, list) and len(coords) == 2:
            try:
                x, y = float(coords[0]), float(coords[1])
            except (TypeError, ValueError):
                x = y = math.nan
            if math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90:
                lat, lon = y, x
        probes[pid] = AtlasProbe(id=pid, lat=lat, lon=lon, disputed=_disputed(rec.get("tags")))
    return probes


def _min_rtt(result: Any) -> float | None:
    """Smallest RTT (ms) of a parsed ping: its fastest non-duplicate reply, or its ``min``
    when it reports no duplicate (a ``min`` may count a duplicate reply)."""
    rtts = [p.rtt for p in result.packets if p.rtt is not None and not p.dup and p.rtt > 0]
    dups = bool(result.duplicates) or any(p.dup for p in result.packets)
    if not dups and result.rtt_min is not None and result.rtt_min > 0:
        rtts.append(result.rtt_min)
    finite = [float(r) for r in rtts if math.isfinite(float(r))]
    return min(finite) if finite else None


def ingest_atlas(records: Iterable[Any], probes: Mapping[int, AtlasProbe]) -> IngestReport:
    """Atlas ping results -> the minimum RTT per (target, probe), with drop counts."""
    from ripe.atlas.sagan import PingResult, ResultParseError

    dropped: Counter[str] = Counter()
    other_types: Counter[str] = Counter()
    msm_ids: set[object] = set()
    best: dict[tuple[str, int], tuple[float, float, float]] = {}
    read = used = 0
    for rec in records:
        read += 1
        if not isinstance(rec, dict):
            dropped["malformed"] += 1
            continue
        if rec.get("type") not in (None, "ping"):
            dropped["not_ping"] += 1
            other_types[str(rec.get("type"))[:40]] += 1
            continue
        try:
            res = PingResult(
                rec, on_error=PingResult.ACTION_IGNORE, on_malformation=PingResult.ACTION_IGNORE
            )
        except (ResultParseError, KeyError, TypeError, ValueError, OverflowError, OSError):
            dropped["malformed"] += 1
            continue
        target = res.destination_address or res.destination_name
        if res.is_malformed or res.probe_id is None or not target:
            dropped["malformed"] += 1
            continue
        rtt = _min_rtt(res)
        if rtt is None:
            dropped["error" if res.is_error or _all_errors(rec) else "no_reply"] += 1
            continue
        probe = probes.get(res.probe_id)
        if probe is None:
            dropped["unknown_probe"] += 1
            continue
        if probe.lat is None or probe.lon is None:
            dropped["no_location"] += 1
            continue
        if probe.disputed:
            dropped["disputed_location"] += 1
            continue
        used += 1
        msm_ids.add(res.measurement_id)
        key = (str(target), res.probe_id)
        if key not in best or rtt < best[key][0]:
            best[key] = (rtt, probe.lat, probe.lon)
    rows = [
        (target, str(pid), lat, lon, rtt) for (target, pid), (rtt, lat, lon) in sorted(best.items())
    ]
    return IngestReport(
        rows=tuple(rows),
        read=read,
        used=used,
        dropped=dict(dropped),
        other_types=dict(other_types),
        measurements=len(msm_ids),
    )


def _all_errors(rec: Mapping[str, Any]) -> bool:
    replies = rec.get("result")
    return (
        isinstance(replies, list)
        and bool(replies)
        and all(isinstance(r, dict) and "error" in r for r in replies)
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="turn third-party measurements into chiploc's measurement CSV",
        description="Convert third-party RTTs into a measurement CSV. They are not signed: "
        "for studies, calibration and coverage planning, never for a certificate.",
    )
    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    a = sub.add_parser(
        "atlas",
        help="RIPE Atlas ping results (JSON array, API pages or JSON lines; gz/bz2/xz)",
        description="RIPE Atlas ping results -> target,landmark,lat,lon,rtt_ms with the minimum "
        "RTT per (target, probe); landmark = the probe id, target = the destination address. "
        "Atlas RTTs are not signed: never use them for a certificate.",
    )
    a.add_argument(
        "results",
        help="ping results: a JSON array, API pages or JSON lines, plain or compressed "
        "(gzip, bzip2, xz: told by content); other result types are counted and skipped "
        "('-': stdin)",
    )
    a.add_argument(
        "--probes",
        required=True,
        type=Path,
        help="probe metadata: the API's form (array or pages) or the probe archive's, "
        "plain or compressed",
    )
    a.add_argument("--out", required=True, help="measurement CSV to write ('-': stdout)")
    a.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    probe_records = JsonRecords(str(args.probes))
    probe_list = list(probe_records)
    if probe_records.bad_lines:  # probe metadata must be whole: a lost probe loses its rows
        raise InputError(
            f"{probe_records.bad_places[0]}: probe metadata line is not JSON", reason="bad_json"
        )
    probes = read_probes(probe_list, source=str(args.probes))
    records = JsonRecords(args.results)
    report = ingest_atlas(records, probes)
    for source in (probe_records, records):
        if source.bad_lines:
            print(
                f"chiploc ingest: warning: {source.bad_lines} line(s) of {source.name} are not "
                f"JSON, counted malformed: {'; '.join(source.bad_places)}"
                + (" ..." if source.bad_lines > len(source.bad_places) else ""),
                file=sys.stderr,
            )
    if not report.rows:
        raise InputError(f"{args.results}: no usable result; {report.summary()}", reason="empty")
    if args.out == "-":
        sys.stdout.write(report.to_csv())
    else:
        try:
            Path(args.out).write_text(report.to_csv(), encoding="utf-8")
        except OSError as e:
            raise InputError(f"{args.out}: cannot write: {e}", reason="unwritable") from e
    print(f"{args.results} ({records.describe()}): {report.summary()}", file=sys.stderr)
    print(
        "note: Atlas RTTs are not signed - for studies, calibration and coverage planning, "
        "never for a certificate",
        file=sys.stderr,
    )
    return 0
