"""Verdict and mesh tables shared by the CLI commands that print verdicts (``demo``,
``verifier run``).

Private to :mod:`chiploc.cli`; rich is imported inside :func:`verdict_table`, so importing
this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from chiploc.common.text import plural

__all__ = [
    "VERDICT_COLOURS",
    "VERDICT_COLUMNS",
    "fmt_number",
    "mesh_table",
    "plural",
    "verdict_cells",
    "verdict_table",
    "verdict_why",
    "warn_region",
]

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

    from chiploc.solver import AuthorizedRegion, SolveResult
    from chiploc.verifier import MeshStatus

#: Rich colour of each verdict; anything else is printed in white.
VERDICT_COLOURS: Final = {
    "COMPLIANT": "green",
    "VIOLATION": "red",
    "INCONCLUSIVE": "yellow",
    "INCONSISTENT": "magenta",
    "UNREACHABLE": "bright_black",
}

#: The columns :func:`verdict_cells` fills, in order. Every table prints km with one
#: decimal, km² with none, ms with three, with thousands separators.
VERDICT_COLUMNS: Final[tuple[tuple[str, JustifyMethod], ...]] = (
    ("verdict", "left"),
    ("margin km", "right"),
    ("area km²", "right"),
    ("binding landmarks", "left"),
    ("why", "left"),
)


def warn_region(region: AuthorizedRegion) -> None:
    """Print the zone's warnings (e.g. a GeoJSON that looks like [lat, lon]) on stderr."""
    import sys

    from chiploc.solver import swapped_lat_lon_warning

    warning = swapped_lat_lon_warning(region)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def verdict_why(result: SolveResult) -> str:
    """Why the verdict is what it is, in a table cell: the conflicting landmarks of an
    INCONSISTENT verdict, the landmark and RTT that would settle an INCONCLUSIVE one."""
    verdict = result.verdict.value
    if verdict == "INCONSISTENT":
        text = "landmarks conflict: " + (", ".join(result.conflicting_landmarks) or "-")
        if result.likely_liars:
            text += "; likely liar: " + " or ".join("+".join(x) for x in result.likely_liars)
        return text
    if verdict == "INCONCLUSIVE":
        if result.settle:
            s = result.settle[0]
            return (
                f"would settle: {s.landmark} at ≤ {s.rtt_needed_ms:,.3f} ms "
                f"(now {s.rtt_ms:,.3f} ms) gives {s.would_give.value}"
            )
        return "overlaps the border; no single landmark would settle it"
    if verdict == "UNREACHABLE":
        return "no valid answer from any landmark"
    return ""


def fmt_number(value: float | None, digits: int = 1) -> str:
    """``value`` with thousands separators and ``digits`` decimals; ``-`` for None."""
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict_table(title: str, columns: Iterable[tuple[str, JustifyMethod]]) -> Table:
    """An empty rich table titled ``title`` with ``columns`` (name, justification)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    return table


def verdict_cells(result: SolveResult, *, more: str = "") -> tuple[str, str, str, str, str]:
    """The :data:`VERDICT_COLUMNS` cells of ``result``: coloured verdict, margin, area,
    binding landmarks, why (``more`` appended to it)."""
    verdict = result.verdict.value
    why = "; ".join(x for x in (verdict_why(result), more) if x)
    return (
        f"[{VERDICT_COLOURS.get(verdict, 'white')}]{verdict}[/]",
        fmt_number(result.margin_km),
        fmt_number(result.area_km2, 0),
        ", ".join(result.binding_landmarks) or "-",
        why or "-",
    )


def mesh_table(mesh: MeshStatus) -> Table | None:
    """The landmark mesh's suspects (out of proofs) and cleared landmarks, one row each with
    why and the links that beat light; None when there is neither (docs/mesh.md)."""
    if not mesh.suspects and not mesh.cleared:
        return None
    from rich.markup import escape

    table = verdict_table(
        "landmark mesh: suspects are out of every proof until an operator clears them",
        [
            ("landmark", "left"),
            ("status", "left"),
            ("why", "left"),
            ("links beating light", "left"),
        ],
    )
    checks = [c for c in mesh.assessment.checks if c.violation]
    for landmark in sorted(mesh.suspects | set(mesh.cleared)):
        links = [
            f"{c.link.landmark}→{c.link.peer} {c.link.rtt_ms:,.3f} ms: light reaches "
            f"≤ {c.bound_km:,.1f} km, registered {c.registered_km:,.1f} km apart"
            for c in checks
            if landmark in (c.link.landmark, c.link.peer)
        ]
        if landmark in mesh.suspects:
            status = (
                "[bold red]SUSPECT[/] (new)"
                if landmark in mesh.newly_flagged
                else ("[bold red]SUSPECT[/]")
            )
            why = mesh.why(landmark)
        else:
            flag = mesh.cleared[landmark]
            status = "[green]cleared[/]"
            why = (
                f"cleared by {flag.details.get('operator', '?')}: {flag.details.get('reason', '')}"
            )
        table.add_row(escape(landmark), status, escape(why), escape("; ".join(links)) or "-")
    return table
