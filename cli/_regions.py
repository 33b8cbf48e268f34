"""``chiploc regions``: the country codes region specs accept, with their names."""

from __future__ import annotations

import argparse

_SPECS = (
    "Region specs: country:DEU | countries:DEU,FRA,NLD | not:CHN | not:countries:CHN,RUS | "
    "not:SPEC | circle:LAT,LON,KM | FILE.geojson (RFC 7946: [lon, lat], closed rings)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "regions",
        help="list the country codes region specs accept (ISO 3166 alpha-3) and their names",
        description=_SPECS,
    )
    p.add_argument(
        "filter",
        nargs="?",
        metavar="TEXT",
        help="show only codes or names containing TEXT (case-insensitive), e.g. germ or DE",
    )
    p.set_defaults(handler=_regions)


def _regions(args: argparse.Namespace) -> int:
    from chiploc.common.errors import InputError
    from chiploc.solver import country_geometries, suggest_countries

    table = country_geometries()
    want = (args.filter or "").strip().upper()
    rows = [
        (code, name)
        for code, (name, _) in sorted(table.items())
        if not want or want in code or want in name.upper()
    ]
    if not rows:
        hint = suggest_countries(want)
        raise InputError(
            f"no country code or name contains {args.filter!r}"
            + (f"; did you mean {' or '.join(hint)}?" if hint else ""),
            reason="no_match",
        )
    for code, name in rows:
        print(f"{code}  {name}")
    noun = "country" if len(rows) == 1 else "countries"
    print(f"{len(rows)} {noun}. {_SPECS}")
    return 0
