"""Starting loopback servers under an :class:`contextlib.AsyncExitStack`.

Shared by the attack and fault scenarios: each helper starts one server (a landmark
daemon, a chip agent, a UDP relay) and registers its stop on the caller's stack.

Invariants:

* A server is registered for stopping only once its start succeeded, so the stack never
  stops something that never ran.
* Every stop is bounded (daemon 10 s, agent 5 s) and its errors are swallowed
  (:func:`bounded`), so one failing stop never keeps the rest of the stack from unwinding.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from chiploc.chip_agent import ChipAgent
from chiploc.landmarks import LandmarkDaemon

__all__ = ["bounded", "started_agent", "started_daemon", "started_relay"]


class _Closable(Protocol):
    async def start(self) -> None: ...

    def close(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)


async def bounded(awaitable: Awaitable[Any], timeout_s: float) -> None:
    """Await ``awaitable`` for at most ``timeout_s``; a timeout or error is swallowed."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(awaitable, timeout_s)


async def started_daemon(
    stack: contextlib.AsyncExitStack[Any], daemon: LandmarkDaemon
) -> LandmarkDaemon:
    """``daemon``, started; ``stack`` stops it (bounded, 10 s)."""
    await daemon.start()
    stack.push_async_callback(bounded, daemon.stop(), 10.0)
    return daemon


async def started_agent(stack: contextlib.AsyncExitStack[Any], agent: ChipAgent) -> ChipAgent:
    """``agent``, started; ``stack`` stops it (bounded, 5 s)."""
    await agent.start()
    stack.push_async_callback(bounded, agent.stop(), 5.0)
    return agent


async def started_relay(stack: contextlib.AsyncExitStack[Any], relay: _C) -> _C:
    """``relay``, started; ``stack`` closes it."""
    await relay.start()
    stack.callback(relay.close)
    return relay
