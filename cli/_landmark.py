"""``chiploc landmark serve`` (daemon) and ``chiploc landmark verify-report`` (offline check)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lm = subparsers.add_parser("landmark", help="run a landmark daemon, verify its reports")
    sub = lm.add_subparsers(dest="landmark_command", metavar="ACTION", required=True)
    serve = sub.add_parser(
        "serve",
        help="UDP prober + HTTP control plane (+ the mesh agent side on mesh_listen);"
        " SIGTERM drains",
    )
    serve.add_argument(
        "--config", required=True, metavar="FILE", help="landmark.toml (docs/operations.md)"
    )
    serve.set_defaults(handler=_serve)
    check = sub.add_parser("verify-report", help="verify a report file (raw bytes or base64)")
    check.add_argument("report", help="report file")
    check.add_argument("--registry", required=True, help="signed registry JSON file")
    check.add_argument(
        "--authority-key",
        help="pinned authority public key (default: authority.pub beside the registry)",
    )
    check.set_defaults(handler=_verify_report)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import sys

    from chiploc.chip_agent import ChipAgent
    from chiploc.cli._agent import _run_loop
    from chiploc.common.errors import ChiplocError, VerificationError
    from chiploc.landmarks import LandmarkConfig, LandmarkDaemon
    from chiploc.protocol import Role, load_private_key, reload_registry

    config = LandmarkConfig.from_toml(args.config)
    key = load_private_key(config.key_path, role=Role.LANDMARK)
    daemon = LandmarkDaemon(config, key=key)
    # The mesh's agent side (docs/mesh.md): peers probe this landmark, which answers with
    # its own landmark key (PEER_HELLO only; chip HELLOs are refused ``wrong_role``).
    peer_agent = (
        None
        if config.mesh_listen is None
        else ChipAgent(key, daemon.registry, host=config.mesh_listen[0], port=config.mesh_listen[1])
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def reload() -> None:  # SIGHUP: pick up revocations (never a rollback)
            try:
                new = reload_registry(
                    daemon.registry, config.registry_path, config.authority_key_path
                )
                daemon.update_registry(new)
                if peer_agent is not None:
                    peer_agent.update_registry(new)
            except VerificationError as e:  # this landmark itself is revoked: stop
                print(f"landmark {daemon.id}: {e}; stopping", file=sys.stderr, flush=True)
                stop.set()
                return
            except ChiplocError as e:
                print(f"registry not reloaded: {e} [{e.reason}]", file=sys.stderr, flush=True)
                return
            print(f"registry reloaded (serial {new.serial})", file=sys.stderr, flush=True)

        loop.add_signal_handler(signal.SIGHUP, reload)
        if peer_agent is not None:
            await peer_agent.start()
        await daemon.start()
        host, port = daemon.udp_address
        mesh = ""
        if peer_agent is not None:
            mesh_host, mesh_port = peer_agent.address
            mesh = f", mesh agent {mesh_host}:{mesh_port}"
        print(f"landmark {daemon.id}: udp {host}:{port}, http {daemon.http_url}{mesh}", flush=True)
        try:
            await stop.wait()
        finally:
            print("draining in-flight rounds", flush=True)
            await daemon.stop()
            if peer_agent is not None:
                await peer_agent.stop()
            print("stopped", flush=True)

    _run_loop(main())
    return 0


def _verify_report(args: argparse.Namespace) -> int:
    import base64
    import binascii
    import json
    from pathlib import Path

    from chiploc.common.errors import InputError
    from chiploc.protocol import MAGIC, MessageType, Role, load_registry_pinned, verify_report

    try:
        data = Path(args.report).read_bytes()
    except OSError as e:
        raise InputError(f"{args.report}: cannot read: {e.strerror}") from e
    if not data.startswith(MAGIC):
        try:
            data = base64.b64decode(data.strip(), validate=True)
        except binascii.Error as e:
            raise InputError(f"{args.report}: neither a raw report nor base64") from e
    registry = load_registry_pinned(args.registry, args.authority_key)
    # a mesh report (a landmark measuring a peer) is verified as one, never as a chip's
    peer = len(data) > 3 and data[3] in (MessageType.PEER_REPORT, MessageType.BATCH_PEER_REPORT)
    report = verify_report(data, registry, target_role=Role.LANDMARK if peer else Role.CHIP)
    summary = {k: v for k, v in report.to_json_dict().items() if k not in ("probes", "report_b64")}
    print(json.dumps(summary, indent=1))
    return 0
