"""``chiploc audit``: verify the store's hash-chained audit log, or print its head.

``verify`` exits 0 with a one-line summary (entries, rows covered, head
``SEQ:HASH``) when intact, and 1 naming the first edited, deleted, inserted
or reordered entry or row. Publish the head (``chiploc audit head``) somewhere
the operator cannot rewrite, and pass it back with ``--anchor`` to catch a
full rewrite of history.
"""

from __future__ import annotations

import argparse
import json
import sys

from chiploc.common.errors import InputError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="verify the store's audit log")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = sub.add_parser("verify", help="verify the audit chain and every row it covers")
    verify.add_argument("--db", required=True, help="store: an SQLite file or a postgresql:// URL")
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a previously published head that must still be in the log (repeatable)",
    )
    verify.set_defaults(handler=_verify)

    head = sub.add_parser("head", help="print the head SEQ:HASH, for publication")
    head.add_argument("--db", required=True, help="store: an SQLite file or a postgresql:// URL")
    head.set_defaults(handler=_head)

    show = sub.add_parser("list", help="print audit entries as JSON lines (not verified)")
    show.add_argument("--db", required=True, help="store: an SQLite file or a postgresql:// URL")
    show.add_argument("--since", type=int, default=1, metavar="SEQ", help="first seq to print")
    show.set_defaults(handler=_list)


def _verify(args: argparse.Namespace) -> int:
    from chiploc.store import AuditAnchor, open_database
    from chiploc.verifier import verify_audit

    try:
        anchors = [AuditAnchor.parse(a) for a in args.anchor]
    except ValueError as e:
        raise InputError(f"--anchor: {e}", reason="bad_argument") from e
    with open_database(args.db, read_only=True, retry_budget_s=10.0) as store:
        report = verify_audit(store, anchors=anchors)
    print(report.summary())
    return 0


def _head(args: argparse.Namespace) -> int:
    from chiploc.store import open_database

    with open_database(args.db, read_only=True, retry_budget_s=10.0) as store:
        head = store.audit_head()
    print("empty" if head is None else f"{head.seq}:{head.hash_hex}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from chiploc.store import open_database

    with open_database(args.db, read_only=True, retry_budget_s=10.0) as store:
        for entry in store.audit_entries():
            if entry.seq >= args.since:
                sys.stdout.write(json.dumps(entry.to_json_dict(), sort_keys=True) + "\n")
    return 0
