"""Faults of fleet verification at scale: a Dask worker killed mid-batch, the PostgreSQL
server restarted mid-run (``benchmarks/robustness.py`` and ``tests/verifier/test_fleet.py``).

:class:`KillWorkerOnce` is a Dask worker plugin that SIGKILLs its own worker
process the moment a chosen batch starts executing, once per marker file (an
exclusive create: after the nanny restarts the worker, or on the other
worker, the batch then runs normally). The kill is real: the process dies
without cleanup, as under the OOM killer or a node loss.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from distributed import Worker
from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["KillWorkerOnce"]


class KillWorkerOnce(WorkerPlugin):
    """SIGKILL the worker that starts executing a task whose key contains ``key_part``."""

    name = "chiploc-kill-worker-once"

    def __init__(self, key_part: str, marker: str) -> None:
        self.key_part = key_part
        self.marker = marker

    def setup(self, worker: Worker) -> None:
        self.worker = worker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or self.key_part not in str(key):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
