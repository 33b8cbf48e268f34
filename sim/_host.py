"""Run the delay emulators in a child process, away from the caller's GIL.

In one process, the emulator's sender thread must win the GIL back from the
event loop (landmarks, agents) at every deadline; the interpreter hands it over
only every ``sys.getswitchinterval()`` (5 ms by default), so datagrams leave
late and, worse, the spin before each deadline stalls the event loop. An
:class:`EmulatorHost` runs one :class:`~sim._delay.DelayScheduler` and all its
emulators in a child process (``python -m sim._emulator_child``, started with
``subprocess`` so that it never re-imports the caller's ``__main__`` as
``multiprocessing``'s spawn would) and drives it over a socket pair. The
parent-side :class:`RemoteEmulator` offers the same methods as
:class:`~sim._delay.DelayEmulator`.

Invariants: the same never-early guarantee as the in-process emulator (the
child runs the very same code); every call has a timeout; ``stop`` ends the
child (waited for with a timeout, then killed), and the child exits as soon
as its end of the socket pair reports EOF (the parent is gone).
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from chiploc.common.errors import ChiplocError, InputError, TransportError

from ._delay import Address, DelayEmulator, DelayScheduler, DelaySource, LatenessStats

__all__ = ["EmulatorHost", "RemoteEmulator"]


def child_main(conn: Connection, seed: int, max_queue: int) -> None:  # pragma: no cover - child
    scheduler = DelayScheduler(rng=random.Random(seed), max_queue=max_queue)
    scheduler.start()
    emulators: dict[str, DelayEmulator] = {}
    try:
        try:
            conn.send(("ready", None))  # imported and running: calls may start
        except OSError:
            return  # the parent is gone
        while True:
            try:
                if not conn.poll(1.0):
                    continue
                op, args = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            try:
                result: Any = None
                if op == "stop":
                    conn.send(("ok", None))
                    return
                if op == "emulator":
                    name, backends = args
                    if name in emulators:
                        raise InputError(f"emulator {name!r} exists", reason="duplicate")
                    emulators[name] = DelayEmulator(scheduler, backends=backends, name=name)
                    result = emulators[name].address
                elif op == "set_path":
                    name, source, delay, backend = args
                    result = emulators[name].set_path(source, delay=delay, backend=backend)
                elif op == "stats":
                    result = emulators[args].stats() if args else scheduler.stats()
                elif op == "counters":
                    result = dict(emulators[args].counters) if args else scheduler.counters
                elif op == "close":
                    emulators[args].close()
                else:
                    raise InputError(f"unknown host command {op!r}", reason="bad_command")
                conn.send(("ok", result))
            except ChiplocError as exc:
                conn.send(("err", (type(exc).__name__, str(exc), exc.reason)))
            except (KeyError, OSError) as exc:
                conn.send(("err", ("TransportError", repr(exc), "host")))
    finally:
        scheduler.stop()
        conn.close()


class EmulatorHost:
    """A child process hosting a :class:`DelayScheduler` and its emulators."""

    def __init__(
        self,
        *,
        seed: int,
        max_queue: int = 100_000,
        timeout_s: float = 10.0,
        start_timeout_s: float = 60.0,
    ) -> None:
        self._seed = int(seed)
        self._max_queue = int(max_queue)
        self._timeout_s = timeout_s
        # A new interpreter importing chiploc (numpy, shapely, ...): seconds on a busy
        # machine, which is not an unanswered call. ``start`` waits for it, apart.
        self._start_timeout_s = start_timeout_s
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def start(self) -> None:
        if self._process is not None:
            raise InputError("emulator host already started", reason="already_started")
        parent_sock, child_sock = socket.socketpair()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "chiploc.sim._emulator_child",
                    str(child_sock.fileno()),
                    str(self._seed),
                    str(self._max_queue),
                ],
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            parent_sock.close()
            raise TransportError(f"cannot start the emulator host: {exc}", reason="spawn") from exc
        finally:
            child_sock.close()
        self._conn = Connection(parent_sock.detach())
        try:
            ready = self._conn.poll(self._start_timeout_s) and self._conn.recv() == ("ready", None)
        except (OSError, EOFError):
            ready = False
        if not ready:
            self._stopped = True
            self._conn.close()
            self._process.kill()
            self._process.wait(5.0)
            raise TransportError(
                f"emulator host did not start within {self._start_timeout_s:g} s", reason="spawn"
            )

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def is_alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, *, timeout_s: float = 5.0) -> None:
        if self._process is None or self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(TransportError, OSError, EOFError):
            self._call("stop", None)
        if self._conn is not None:
            self._conn.close()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout_s)

    def __enter__(self) -> EmulatorHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, op: str, args: object) -> Any:
        if self._conn is None or self._stopped:
            raise TransportError("emulator host not running", reason="not_started")
        try:
            self._conn.send((op, args))
            if not self._conn.poll(self._timeout_s):
                raise TransportError(f"emulator host: no answer to {op}", reason="timeout")
            status, result = self._conn.recv()
        except (OSError, EOFError) as exc:
            raise TransportError(f"emulator host is gone: {exc!r}", reason="host_gone") from exc
        if status == "ok":
            return result
        kind, message, reason = result
        if kind == "InputError":
            raise InputError(message, reason=reason)
        raise TransportError(f"emulator host: {kind}: {message}", reason=reason)

    def emulator(self, name: str, *, backends: Sequence[Address]) -> RemoteEmulator:
        """A new emulator in the child, in front of ``backends``."""
        backends = tuple((str(h), int(p)) for h, p in backends)
        address = self._call("emulator", (name, backends))
        return RemoteEmulator(self, name=name, address=tuple(address), backends=backends)

    def stats(self) -> LatenessStats:
        """Lateness over every emulator of the child."""
        result: LatenessStats = self._call("stats", None)
        return result

    @property
    def counters(self) -> Mapping[str, int]:
        result: dict[str, int] = self._call("counters", None)
        return result


class RemoteEmulator:
    """Parent-side handle of an emulator running in an :class:`EmulatorHost`."""

    def __init__(
        self,
        host: EmulatorHost,
        *,
        name: str,
        address: tuple[Any, ...],
        backends: tuple[Address, ...],
    ) -> None:
        self._host = host
        self.name = name
        self.address: Address = (str(address[0]), int(address[1]))
        self.backends = backends
        self._floors: dict[Address, int] = {}

    def set_path(self, source: Address, *, delay: DelaySource, backend: int = 0) -> Address:
        source = (str(source[0]), int(source[1]))
        inner = self._host._call("set_path", (self.name, source, delay, backend))
        self._floors[source] = delay.floor_ns
        return (str(inner[0]), int(inner[1]))

    def delay_floor_ns(self, source: Address) -> int:
        return self._floors[(str(source[0]), int(source[1]))]

    def stats(self) -> LatenessStats:
        result: LatenessStats = self._host._call("stats", self.name)
        return result

    @property
    def counters(self) -> Mapping[str, int]:
        result: dict[str, int] = self._host._call("counters", self.name)
        return result

    def close(self) -> None:
        self._host._call("close", self.name)
