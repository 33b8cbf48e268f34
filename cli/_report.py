"""Verdict tables shared by the CLI commands that print verdicts (``demo``, ``verifier run``).

Private to :mod:`chiploc.cli`; rich is imported inside :func:`verdict_table`, so importing
this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

    from chiploc.solver import SolveResult

#: Rich colour of each verdict; anything else is printed in white.
VERDICT_COLOURS: Final = {
    "COMPLIANT": "green",
    "VIOLATION": "red",
    "INCONCLUSIVE": "yellow",
    "INCONSISTENT": "magenta",
    "UNREACHABLE": "bright_black",
}

#: The columns :func:`verdict_cells` fills, in order.
VERDICT_COLUMNS: Final[tuple[tuple[str, JustifyMethod], ...]] = (
    ("verdict", "left"),
    ("margin km", "right"),
    ("area km²", "right"),
    ("binding landmarks", "left"),
)


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


def verdict_cells(result: SolveResult) -> tuple[str, str, str, str]:
    """The :data:`VERDICT_COLUMNS` cells of ``result``: coloured verdict, margin, area,
    binding landmarks."""
    verdict = result.verdict.value
    return (
        f"[{VERDICT_COLOURS.get(verdict, 'white')}]{verdict}[/]",
        fmt_number(result.margin_km),
        fmt_number(result.area_km2, 0),
        ", ".join(result.binding_landmarks) or "-",
    )
