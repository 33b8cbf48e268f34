"""The ``chiploc`` command: one entry point, one subcommand module per area.

Each module named in :data:`COMMAND_MODULES` lives beside this file and exposes
``register(subparsers)``, which adds its subcommands and sets ``handler`` (a
callable taking the parsed namespace and returning an exit status) on each.
Modules import their heavy dependencies inside the handler, so ``chiploc
--help`` stays fast.

Exit status, one scheme for every command, decided here from the exception tree
(:func:`exit_status`; README, "Exit status")::

    0  success
    1  a check failed: bad signature, tampering, revoked, superseded, an audit chain
       broken, a verdict not COMPLIANT where the command checks one
       (ProtocolError, VerificationError, StoreError)
    2  bad input or usage: a malformed or missing file, a bad argument
       (InputError, argparse errors, a store database that does not exist, and any
       other OSError about a file)
    3  transient, a retry may fix it: a landmark, server or database unreachable
       (TransientError: NetworkError, StoreUnavailable; ConnectionError, TimeoutError)

A handler returns 0 or 1 (a check it made failed) or :data:`EXIT_TRANSIENT`; every
other status comes from an exception. Errors print one line of diagnosis on stderr;
``--verbose`` adds the trace.
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
from chiploc.common.errors import (
    ChiplocError,
    InputError,
    StoreError,
    TransientError,
    VerificationError,
)

__all__ = [
    "COMMAND_MODULES",
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_OK",
    "EXIT_TRANSIENT",
    "build_parser",
    "exit_status",
    "main",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TRANSIENT = 3

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "keys",
    "registry",
    "agent",
    "landmark",
    "solve",
    "regions",
    "ingest",
    "maps",
    "demo",
    "certificate",
    "audit",
    "verifier",
    "mesh",
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
    _house_style(parser, top=True)
    return parser


def exit_status(error: BaseException) -> int:
    """The exit status for an error that ended a command (see the module docstring)."""
    if isinstance(error, TransientError | ConnectionError | TimeoutError):
        return EXIT_TRANSIENT
    if isinstance(error, VerificationError):  # before InputError: a registry that fails
        return EXIT_CHECK_FAILED  # its authority signature is both (RegistryNotTrusted)
    if isinstance(error, InputError):
        return EXIT_BAD_INPUT
    if isinstance(error, StoreError) and error.reason == "missing":
        return EXIT_BAD_INPUT  # open_store(read_only=True) of a database that does not exist
    if isinstance(error, ChiplocError):
        return EXIT_CHECK_FAILED
    if isinstance(error, OSError):
        return EXIT_BAD_INPUT  # a file: missing, unreadable, a directory, ...
    return EXIT_CHECK_FAILED


class _HelpFormatter(argparse.HelpFormatter):
    """Shows every meaningful default as ``(default: X)``, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, "", [], argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def _house_style(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """One style for every (sub)command: the formatter above, upper-case metavars for
    positionals too, and ``-v/--verbose`` accepted after the subcommand as well as before."""
    parser.formatter_class = _HelpFormatter
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in parser._actions:
        if not action.option_strings and action.metavar is None and not subcommands:
            action.metavar = action.dest.upper()
    for action in subcommands:
        for child in action.choices.values():
            _house_style(child)
    has_verbose = any("--verbose" in a.option_strings for a in parser._actions)
    if not top and not subcommands and not has_verbose:
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show the full trace on errors (also accepted before the command)",
        )


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
        return exit_status(e)
    except KeyboardInterrupt:
        print(f"chiploc {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``chiploc solve ... | head``): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:  # a file or socket the handler did not convert: still one line
        if args.verbose:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(
            f"chiploc {args.command}: error: {where}{e.strerror or e} [{type(e).__name__}]",
            file=sys.stderr,
        )
        return exit_status(e)
