"""Entry point of the emulator host's child process: ``python -m sim._emulator_child FD SEED MAXQ``.

Kept apart from :mod:`sim._host` so that running it never re-imports a module
the package ``__init__`` already imported.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from chiploc.sim._host import child_main

if __name__ == "__main__":  # pragma: no cover - runs in the child
    child_main(Connection(int(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]))
