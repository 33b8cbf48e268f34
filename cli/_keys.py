"""``chiploc keys new``: generate an Ed25519 identity (``<id>.key`` mode 0600 + ``<id>.pub``)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser("keys", help="generate identity keys")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = sub.add_parser(
        "new", help="generate a key pair for a chip, landmark, verifier or authority"
    )
    new.add_argument(
        "--role",
        required=True,
        choices=["chip", "landmark", "verifier", "authority"],
        help="what the key is for (a key of one role is refused for another)",
    )
    new.add_argument("--id", required=True, help="identity: 1-64 chars of [A-Za-z0-9._-]")
    new.add_argument("--out", required=True, help="directory to write <id>.key and <id>.pub into")
    new.set_defaults(handler=_new)


def _new(args: argparse.Namespace) -> int:
    from chiploc.common.errors import ConfigError
    from chiploc.protocol import Role, generate_private_key, validate_id, write_keypair

    try:
        validate_id(args.id)
    except ValueError as e:
        raise ConfigError(f"--id: {e}") from e
    from pathlib import Path

    from chiploc.cli._files import ensure_dir

    ensure_dir(Path(args.out))
    key = generate_private_key(Role(args.role), args.id)
    private_path, public_path = write_keypair(key, args.out)
    print(f"wrote {private_path} (mode 0600) and {public_path}")
    print(f"public key: {key.public_key.key_bytes.hex()}")
    return 0
