"""``chiploc certificate``: verify or show a signed verdict certificate.

``verify`` exits 0 and prints one line for a valid certificate; a tampered,
expired, not-yet-valid, malformed or wrongly signed one exits 1 with the
reason (the root prints ``error: ... [reason]``); bad files or arguments exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chiploc.common.errors import InputError
from chiploc.common.text import plural

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
    cert = verify_certificate(data, registry, now_unix_s=now_s, leeway_s=args.leeway)
    digest = SignedCertificate.from_bytes(data).digest_hex
    print(f"certificate valid: {cert.summary()}; sha256 {digest}")
    return 0


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
