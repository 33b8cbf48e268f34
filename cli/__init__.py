"""The ``chiploc`` command: one entry point, one subcommand module per area.

Each module named in :data:`COMMAND_MODULES` lives beside this file and exposes
``register(subparsers)``, which adds its subcommands and sets ``handler`` (a
callable taking the parsed namespace and returning an exit status) on each.
Modules import their heavy dependencies inside the handler, so ``chiploc
--help`` stays fast.

Exit status: 0 success; 1 a verification or runtime failure; 2 bad input
(:class:`~chiploc.common.errors.InputError`, including argparse usage errors).
Errors print one line of diagnosis on stderr; ``--verbose`` adds the trace.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from chiploc import __version__
from chiploc.common.errors import ChiplocError, InputError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "keys",
    "registry",
    "agent",
    "landmark",
    "solve",
    "ingest",
    "maps",
    "demo",
    "certificate",
    "audit",
    "verifier",
)

Handler = Callable[[argparse.Namespace], int]


class _CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chiploc",
        description="Prove where an AI chip is, using nothing but the speed of light.",
    )
    parser.add_argument("--version", action="version", version=f"chiploc {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the full trace on errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"chiploc.cli._{name}")
        except ModuleNotFoundError as e:
            if e.name != f"chiploc.cli._{name}":
                raise
            continue  # that area has not been built into this checkout
        cast(_CommandModule, module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except ChiplocError as e:
        if args.verbose:
            traceback.print_exc()
        print(f"chiploc {args.command}: error: {e} [{e.reason}]", file=sys.stderr)
        return 2 if isinstance(e, InputError) else 1
    except KeyboardInterrupt:
        print(f"chiploc {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``chiploc solve ... | head``): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
