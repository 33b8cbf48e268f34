"""``chiploc certificate``: verify, ask the standing of, or show a verdict certificate.

``verify`` checks a certificate against the registry it is given: exit 0 and one line
for a valid certificate; exit 1 with the reason (the root prints ``error: ... [reason]``)
for a tampered, malformed, wrongly signed, expired or not-yet-valid one, for a revoked
chip (``chip_revoked``) or verifier (``verifier_revoked``), and for a chip whose
authorized region changed since issue (``region_changed``). ``status`` asks the
verifier's store (read-only) whether a certificate still stands: issued there, and
neither expired nor withdrawn by a revocation or region change the store has recorded
since. Bad files or arguments exit 2 (exit codes: cli/__init__.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chiploc.common.errors import InputError
from chiploc.common.text import plural

if TYPE_CHECKING:
    from chiploc.protocol import Registry
    from chiploc.verifier import SignedCertificate

_MAX_READ = (1 << 20) + 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = subparsers.add_parser("certificate", help="verify or show a verdict certificate")
    sub = cert.add_subparsers(dest="certificate_command", metavar="ACTION", required=True)

    verify = sub.add_parser("verify", help="verify a certificate (exit 0 if valid)")
    verify.add_argument("cert", help="certificate file (JSON)")
    verify.add_argument("--registry", required=True, help="signed registry JSON file")
    verify.add_argument(
        "--authority-key",
        help="pinned authority public key (default: authority.pub beside the registry)",
    )
    verify.add_argument(
        "--now", type=int, help="judge validity at this Unix time in seconds (default: now)"
    )
    verify.add_argument(
        "--leeway", type=int, default=0, help="clock-skew allowance in seconds (default: 0)"
    )
    verify.set_defaults(handler=_verify)

    status = sub.add_parser(
        "status", help="does a certificate still stand? (asks the verifier's store; exit 0 if so)"
    )
    status.add_argument("cert", help="certificate file (JSON)")
    status.add_argument("--db", required=True, help="the verifier's store (sqlite file)")
    status.add_argument(
        "--now", type=int, help="judge expiry at this Unix time in seconds (default: now)"
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_status)

    show = sub.add_parser("show", help="print a certificate's fields (signature NOT checked)")
    show.add_argument("cert", help="certificate file (JSON)")
    show.add_argument("--json", action="store_true", help="print the certificate body as JSON")
    show.set_defaults(handler=_show)


def _read(path: str) -> bytes:
    try:
        with Path(path).open("rb") as f:
            return f.read(_MAX_READ)
    except OSError as e:
        raise InputError(f"{path}: cannot read certificate: {e.strerror}", reason="bad_file") from e


def _verify(args: argparse.Namespace) -> int:
    from chiploc.protocol import load_registry_pinned
    from chiploc.verifier import SignedCertificate, verify_certificate

    if args.leeway < 0:
        raise InputError(f"--leeway must be >= 0 s, got {args.leeway} s", reason="bad_argument")
    data = _read(args.cert)
    registry = load_registry_pinned(args.registry, args.authority_key)
    now_s = int(time.time()) if args.now is None else args.now
    cert = verify_certificate(
        data,
        registry,
        now_unix_s=now_s,
        leeway_s=args.leeway,
        region_digest_hex=_file_zone_digest(registry, SignedCertificate.from_bytes(data)),
    )
    digest = SignedCertificate.from_bytes(data).digest_hex
    print(f"certificate valid: {cert.summary()}; sha256 {digest}")
    return 0


def _file_zone_digest(registry: Registry, signed: SignedCertificate) -> str | None:
    """The digest of the chip's zone as it is now, when the zone is a GeoJSON file (whose
    contents can change under the same spec); None for country and circle specs, whose
    geometry is fixed by this version of chiploc and judged by the spec alone."""
    from chiploc.common.errors import ChiplocError
    from chiploc.solver import load_region

    cert = signed.certificate
    try:
        chip = registry.chip(cert.chip_id)
    except ChiplocError:
        return None  # verify_certificate reports the chip with its own reason
    if chip.region != cert.authorized_region_spec:
        return None
    zone = load_region(chip.region)
    return zone.digest_hex if "geojson:" in zone.canonical else None


def _status(args: argparse.Namespace) -> int:
    from chiploc.store import open_store
    from chiploc.verifier import certificate_status

    data = _read(args.cert)
    if not Path(args.db).is_file():
        raise InputError(f"{args.db}: no such store database", reason="missing_file")
    now_s = int(time.time()) if args.now is None else args.now
    with open_store(args.db, read_only=True) as store:
        status = certificate_status(data, store, now_unix_s=now_s)
    c = status.certificate
    if args.json:
        doc = {
            "digest": status.digest_hex,
            "stands": status.stands,
            "reason": status.reason,
            "detail": status.detail,
            "chip_id": c.chip_id,
            "verifier_id": c.verifier_id,
            "verdict": c.verdict,
            "issued_at": c.issued_at_unix_s,
            "expires_at": c.expires_at_unix_s,
            "revoked_at_unix_ns": status.revoked_at_unix_ns,
        }
        print(json.dumps(doc, sort_keys=True))
    else:
        print(status.summary())
        print(f"  expires at {_when(c.expires_at_unix_s)}")
        if status.revoked_at_unix_ns is not None:
            print(f"  revocation recorded at {_when(status.revoked_at_unix_ns // 1_000_000_000)}")
    return 0 if status.stands else 1


def _show(args: argparse.Namespace) -> int:
    from chiploc.verifier import SignedCertificate

    signed = SignedCertificate.from_bytes(_read(args.cert))
    c = signed.certificate
    if args.json:
        json.dump(c.to_json_dict(), sys.stdout, indent=2, sort_keys=True)
        print()
        return 0
    margin = "n/a" if c.margin_km is None else f"{c.margin_km:.3f} km"
    rows = [
        ("signature", "NOT checked (use `chiploc certificate verify`)"),
        ("sha256", signed.digest_hex),
        ("format", c.format),
        ("chip", c.chip_id),
        ("verdict", c.verdict),
        ("model", f"{c.model} ({'proof' if c.proof else 'estimate'})"),
        ("authorized region", f"{c.authorized_region_spec} ({c.authorized_region_digest_hex})"),
        ("region digest", c.region_digest_hex or "n/a"),
        ("margin", margin),
        ("issued at", _when(c.issued_at_unix_s)),
        ("expires at", _when(c.expires_at_unix_s)),
        ("verifier", c.verifier_id),
        ("evidence", plural(len(c.evidence), "report")),
    ]
    rows += [("", d) for d in c.evidence]
    for key, value in rows:
        print(f"{key:>18}  {value}")
    return 0


def _when(unix_s: int) -> str:
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(unix_s))} ({unix_s})"
