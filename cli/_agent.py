"""``chiploc agent run``: run a chip agent until SIGINT/SIGTERM; SIGHUP reloads the registry.

A reload must verify under the pinned authority key and never roll back to a lower
serial (:func:`protocol.reload_registry`); a failed reload keeps the running registry.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agent = subparsers.add_parser("agent", help="run the chip agent")
    sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="answer enrolled landmarks' timed probes")
    run.add_argument("--key", required=True, help="the chip's private key file (mode 0600)")
    run.add_argument("--registry", required=True, help="signed registry JSON")
    run.add_argument(
        "--authority-key", help="pinned authority public key (default: authority.pub beside it)"
    )
    run.add_argument(
        "--listen",
        default="0.0.0.0:7401",
        help="UDP HOST:PORT to answer probes on (default: %(default)s)",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import sys

    from chiploc.chip_agent import ChipAgent
    from chiploc.common.errors import ChiplocError
    from chiploc.landmarks import parse_host_port
    from chiploc.protocol import Role, load_private_key, load_registry_pinned, reload_registry

    key = load_private_key(args.key, role=Role.CHIP)
    registry = load_registry_pinned(args.registry, args.authority_key)
    registry.chip(key.id)  # enrolled and not revoked, or a clear error now
    host, port = parse_host_port(args.listen, what="--listen")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ChipAgent(key, registry, host=host, port=port) as agent:

            def reload() -> None:  # SIGHUP: pick up revocations and new landmarks
                nonlocal registry
                try:
                    registry = reload_registry(registry, args.registry, args.authority_key)
                    registry.chip(key.id)
                except ChiplocError as e:
                    print(f"registry not reloaded: {e} [{e.reason}]", file=sys.stderr, flush=True)
                    return
                agent.update_registry(registry)
                print(f"registry reloaded (serial {registry.serial})", file=sys.stderr, flush=True)

            loop.add_signal_handler(signal.SIGHUP, reload)
            a_host, a_port = agent.address
            print(f"chip agent {key.id} listening on udp {a_host}:{a_port}", flush=True)
            await stop.wait()
            print(f"stopping; counters {dict(sorted(agent.counters.items()))}", file=sys.stderr)

    _run_loop(main())
    return 0


def _run_loop(coro: object) -> None:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(coro)  # type: ignore[arg-type]
        return
    uvloop.run(coro)  # type: ignore[arg-type]
