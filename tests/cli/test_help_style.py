"""What a person reading ``chiploc … --help`` sees: every option explained, one metavar style
(upper case, or the choices), every meaningful default shown, limits stated, and ``-v`` taken
after the subcommand as well as before."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from chiploc.cli import build_parser, main


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, (*path, name))


LEAVES = list(_leaves(build_parser()))
IDS = [" ".join(p) for p, _ in LEAVES]


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=IDS)
def test_every_option_explained_in_one_style(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    text = parser.format_help()
    for action in parser._actions:
        if action.dest == "help":
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"chiploc {' '.join(path)} {name}: no help text"
        if action.nargs == 0:
            continue
        metavar = action.metavar or action.dest.upper()
        if action.choices is None:
            assert re.fullmatch(r"[A-Z][A-Z0-9_:.,-]*", str(metavar)), (
                f"{name}: metavar {metavar!r}"
            )
        if action.option_strings and action.default not in (None, False, "", [], argparse.SUPPRESS):
            # The default is shown on the option's own help lines.
            start = text.index(action.option_strings[-1], text.index("options:"))
            block = text[start : start + 400].split("\n  -", 1)[0]
            assert "default" in block, f"chiploc {' '.join(path)} {name}: default not shown"


def test_tolerate_states_its_limits() -> None:
    solve = dict(LEAVES)[("solve",)]
    assert "0..8" in solve.format_help().replace("\n", " ")


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "solve", "missing.csv", "--region", "country:DEU"],
        ["solve", "missing.csv", "--region", "country:DEU", "-v"],
        ["solve", "-v", "missing.csv", "--region", "country:DEU"],
    ],
)
def test_verbose_before_or_after_the_subcommand(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_parser().parse_args(argv).verbose is True
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "Traceback" in err  # -v: the trace, wherever it was typed
    assert "missing.csv" in err


def test_without_verbose_one_line() -> None:
    assert build_parser().parse_args(["solve", "x.csv", "--region", "country:DEU"]).verbose is False
