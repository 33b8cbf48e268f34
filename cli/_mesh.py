"""``chiploc mesh check|clear|export``: the landmark mesh kept in the verifier's store.

- ``check`` runs the mesh check on the stored mesh rounds against the registry and records
  new suspects in the flag log (audited), then prints every violating pair and who is kept
  out of proofs (``--json`` for one JSON object).
- ``clear LANDMARK --operator NAME --reason TEXT`` lets an operator vouch for a suspect
  (audited); later checks look only at mesh rounds received after the clear.
- ``export --out calibration.csv`` writes the mesh's minimum RTTs in the calibration CSV
  format ``chiploc solve --model calibrated --calibration`` reads (suspects left out).

See ``docs/mesh.md``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chiploc.protocol import Registry
    from chiploc.store import PostgresStore, SqliteStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mesh = subparsers.add_parser(
        "mesh", help="landmark mesh: check the network, clear a suspect, export a calibration"
    )
    sub = mesh.add_subparsers(dest="mesh_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--db",
            required=True,
            metavar="DB",
            help="the verifier's store: an SQLite file or a postgresql:// URL",
        )
        p.add_argument(
            "--registry",
            required=True,
            metavar="FILE",
            help="signed registry JSON file (the landmarks' registered sites)",
        )
        p.add_argument(
            "--authority-key",
            metavar="FILE",
            help="pinned authority public key (default: authority.pub beside the registry)",
        )

    check = sub.add_parser("check", help="check stored mesh RTTs against the registered sites")
    common(check)
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(handler=_check)

    clear = sub.add_parser("clear", help="an operator vouches for a suspect landmark (audited)")
    common(clear)
    clear.add_argument("landmark", metavar="LANDMARK", help="the suspect landmark's id")
    clear.add_argument(
        "--operator", required=True, metavar="NAME", help="who clears it (recorded, audited)"
    )
    clear.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded, audited)")
    clear.set_defaults(handler=_clear)

    export = sub.add_parser(
        "export", help="write the mesh's minimum RTTs as a calibration CSV (suspects left out)"
    )
    common(export)
    export.add_argument(
        "--out", required=True, metavar="FILE", help="calibration CSV to write ('-': stdout)"
    )
    export.set_defaults(handler=_export)


def _open(args: argparse.Namespace) -> tuple[SqliteStore | PostgresStore, Registry]:
    from chiploc.protocol import load_registry_pinned
    from chiploc.store import open_database

    registry = load_registry_pinned(args.registry, args.authority_key)
    return open_database(args.db, retry_budget_s=10.0), registry


def _check(args: argparse.Namespace) -> int:
    import json
    import time

    from chiploc.verifier import assess_and_flag

    store, registry = _open(args)
    with store:
        status = assess_and_flag(store, registry, now_unix_ns=time.time_ns())
    if args.json:
        print(json.dumps(status.to_json_dict(), sort_keys=True))
        return 0
    print(status.summary())
    for check in status.assessment.violations:
        link = check.link
        print(
            f"  {link.landmark} -> {link.peer}: {link.rtt_ms:.3f} ms reaches at most "
            f"{check.bound_km:.1f} km at c, registered {check.registered_km:.1f} km apart"
        )
    for landmark in status.newly_flagged:
        print(f"  flagged {landmark} (audited); clear with: chiploc mesh clear {landmark} ...")
    return 0


def _clear(args: argparse.Namespace) -> int:
    import time

    from chiploc.verifier import clear_suspect

    store, _ = _open(args)
    with store:
        record = clear_suspect(
            store,
            args.landmark,
            operator=args.operator,
            reason=args.reason,
            now_unix_ns=time.time_ns(),
        )
    print(
        f"cleared {record.landmark_id} (flag log entry {record.flag_id}, by {args.operator}); "
        "later checks use only mesh rounds received from now on"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    import csv
    import io
    import sys

    from chiploc.cli._verifier import _write_atomic
    from chiploc.common.errors import InputError
    from chiploc.solver import CALIBRATION_COLUMNS, assess_mesh, calibration_rows
    from chiploc.verifier import mesh_links

    store, registry = _open(args)
    with store:
        sites = {i: (e.lat, e.lon) for i, e in registry.landmarks.items() if not e.revoked}
        links = [x for x in mesh_links(store) if x.landmark in sites and x.peer in sites]
        flagged = set(store.mesh_suspects())
    suspects = flagged | assess_mesh(links, sites).suspects
    rows = calibration_rows(links, sites, exclude=suspects)
    if not rows:
        raise InputError("the store holds no usable mesh RTTs to export", reason="no_mesh")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CALIBRATION_COLUMNS)
    for landmark, lat, lon, peer, plat, plon, rtt_ms in rows:
        writer.writerow([landmark, lat, lon, peer, plat, plon, f"{rtt_ms:.6f}"])
    if args.out == "-":
        sys.stdout.write(buffer.getvalue())
    else:
        from pathlib import Path

        _write_atomic(Path(args.out), buffer.getvalue().encode("utf-8"))
        left_out = f"; left out (suspect): {', '.join(sorted(suspects))}" if suspects else ""
        print(f"wrote {len(rows)} landmark-to-peer minimum RTTs to {args.out}{left_out}")
    return 0
