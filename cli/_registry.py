"""``chiploc registry``: build, sign, inspect and verify an enrolment registry by hand.

Every mutating subcommand loads the registry against the pinned authority public key, applies
one change, re-signs with the authority private key and rewrites the file atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chiploc.protocol import PrivateKey, Registry


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reg = subparsers.add_parser("registry", help="build, sign and verify the enrolment registry")
    sub = reg.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser, *, signing: bool) -> None:
        p.add_argument("registry", help="registry JSON file")
        if signing:
            p.add_argument(
                "--authority", required=True, help="authority private key file (signs the result)"
            )
        else:
            p.add_argument(
                "--authority-key",
                help="pinned authority public key (default: authority.pub beside the registry)",
            )

    init = sub.add_parser("init", help="create an empty registry signed by the authority")
    common(init, signing=True)
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_init)

    lm = sub.add_parser("add-landmark", help="enrol a landmark at known coordinates")
    common(lm, signing=True)
    lm.add_argument("--public-key", required=True, help="the landmark's .pub file")
    lm.add_argument(
        "--lat", required=True, type=float, help="the landmark's latitude, degrees (-90..90)"
    )
    lm.add_argument(
        "--lon", required=True, type=float, help="the landmark's longitude, degrees (-180..180)"
    )
    lm.add_argument("--operator", default="", help="who runs the landmark (free text)")
    lm.set_defaults(handler=_add_landmark)

    chip = sub.add_parser("add-chip", help="enrol a chip with its authorized-region spec")
    common(chip, signing=True)
    chip.add_argument("--public-key", required=True, help="the chip's .pub file")
    chip.add_argument("--region", required=True, help="authorized-region spec, e.g. country:DEU")
    chip.set_defaults(handler=_add_chip)

    ver = sub.add_parser("add-verifier", help="enrol a verifier")
    common(ver, signing=True)
    ver.add_argument("--public-key", required=True, help="the verifier's .pub file")
    ver.set_defaults(handler=_add_verifier)

    rev = sub.add_parser("revoke", help="mark an identity revoked")
    common(rev, signing=True)
    rev.add_argument("--id", required=True, help="the identity to revoke")
    rev.add_argument(
        "--role",
        choices=["chip", "landmark", "verifier"],
        help="its role, when one id is enrolled in more than one (default: the only one)",
    )
    rev.set_defaults(handler=_revoke)

    show = sub.add_parser("show", help="verify the signature and print the registry")
    common(show, signing=False)
    show.add_argument("--json", action="store_true", help="print the verified body as JSON")
    show.set_defaults(handler=_show)

    verify = sub.add_parser("verify", help="verify the authority signature (exit 0 if valid)")
    common(verify, signing=False)
    verify.set_defaults(handler=_verify)


def _authority(args: argparse.Namespace) -> PrivateKey:
    from chiploc.protocol import Role, load_private_key

    return load_private_key(args.authority, role=Role.AUTHORITY)


def _load_for_update(args: argparse.Namespace) -> tuple[PrivateKey, Registry]:
    from chiploc.protocol import load_registry

    authority = _authority(args)
    registry = load_registry(args.registry, authority_public_key=authority.public_key.key_bytes)
    return authority, registry


def _write(path: str, registry: Registry, authority: PrivateKey) -> None:
    data = registry.to_signed_json(authority)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _init(args: argparse.Namespace) -> int:
    from chiploc.common.errors import RegistryError
    from chiploc.protocol import Registry, write_keypair  # noqa: F401  (documented companion)

    authority = _authority(args)
    if Path(args.registry).exists() and not args.force:
        raise RegistryError(f"{args.registry}: already exists (use --force to overwrite)")
    registry = Registry(authority_public_key=authority.public_key.key_bytes)
    _write(args.registry, registry, authority)
    pub = Path(args.registry).parent / "authority.pub"
    if not pub.exists():
        pub.write_text(json.dumps(authority.public_key.to_json_dict(), indent=2) + "\n")
        print(f"pinned authority key written to {pub}")
    print(f"created {args.registry}")
    return 0


def _public(args: argparse.Namespace, role_name: str) -> tuple[str, bytes]:
    from chiploc.protocol import Role, load_public_key

    key = load_public_key(args.public_key, role=Role(role_name))
    return key.id, key.key_bytes


def _apply(args: argparse.Namespace, entry: object) -> int:
    from chiploc.common.errors import ConfigError

    authority, registry = _load_for_update(args)
    try:
        updated = registry.with_entry(entry)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(str(e)) from e
    _write(args.registry, updated, authority)
    print(f"enrolled {type(entry).__name__.removesuffix('Entry').lower()} {entry.id}")  # type: ignore[attr-defined]
    return 0


def _entry_error(e: ValueError) -> Exception:
    from chiploc.common.errors import ConfigError

    return ConfigError(str(e))


def _add_landmark(args: argparse.Namespace) -> int:
    from chiploc.protocol import LandmarkEntry

    identity, key = _public(args, "landmark")
    try:
        entry = LandmarkEntry(
            id=identity, lat=args.lat, lon=args.lon, public_key=key, operator=args.operator
        )
    except ValueError as e:
        raise _entry_error(e) from e
    return _apply(args, entry)


def _add_chip(args: argparse.Namespace) -> int:
    from chiploc.protocol import ChipEntry
    from chiploc.solver import load_region

    identity, key = _public(args, "chip")
    load_region(args.region)  # never enrol a chip for a zone no verifier can load
    try:
        entry = ChipEntry(id=identity, public_key=key, region=args.region)
    except ValueError as e:
        raise _entry_error(e) from e
    return _apply(args, entry)


def _add_verifier(args: argparse.Namespace) -> int:
    from chiploc.protocol import VerifierEntry

    identity, key = _public(args, "verifier")
    return _apply(args, VerifierEntry(id=identity, public_key=key))


def _revoke(args: argparse.Namespace) -> int:
    from chiploc.protocol import Role

    authority, registry = _load_for_update(args)
    updated = registry.with_revoked(args.id, kind=Role(args.role) if args.role else None)
    _write(args.registry, updated, authority)
    print(f"revoked {args.id}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from chiploc.protocol import load_registry_pinned

    registry = load_registry_pinned(args.registry, args.authority_key)
    if args.json:
        json.dump(registry.body_json_dict(), sys.stdout, indent=1, sort_keys=True)
        print()
        return 0
    print(f"{args.registry}: signature OK, serial {registry.serial}")
    for lm in registry.landmarks.values():
        flag = " REVOKED" if lm.revoked else ""
        print(f"landmark {lm.id:<24} {lm.lat:9.4f} {lm.lon:10.4f}  {lm.operator}{flag}")
    for chip in registry.chips.values():
        flag = " REVOKED" if chip.revoked else ""
        print(f"chip     {chip.id:<24} {chip.region}{flag}")
    for ver in registry.verifiers.values():
        flag = " REVOKED" if ver.revoked else ""
        print(f"verifier {ver.id:<24}{flag}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from chiploc.common.text import plural
    from chiploc.protocol import load_registry_pinned

    registry = load_registry_pinned(args.registry, args.authority_key)
    print(
        f"{args.registry}: signature OK (serial {registry.serial}, "
        f"{plural(len(registry.landmarks), 'landmark')}, {plural(len(registry.chips), 'chip')}, "
        f"{plural(len(registry.verifiers), 'verifier')})"
    )
    return 0
