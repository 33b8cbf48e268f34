"""One exit-status scheme across every command: each command's failure modes, run.

0 success; 1 a check failed (bad signature, tampering, revoked); 2 bad input or usage,
including a missing or unreadable file and a key of the wrong kind; 3 transient (a
landmark, server or database unreachable). Every failure prints one line on stderr.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from chiploc.cli import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_TRANSIENT,
    exit_status,
    main,
)
from chiploc.common.errors import (
    BadSignature,
    IntegrityError,
    KeyFileError,
    ProbeTimeout,
    RegistryNotTrusted,
    RevokedIdentity,
    StoreError,
    StoreUnavailable,
    Superseded,
    TransportError,
)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    for role, ident in (
        ("authority", "authority"),
        ("chip", "c1"),
        ("chip", "c2"),
        ("verifier", "v1"),
    ):
        assert main(["keys", "new", "--role", role, "--id", ident, "--out", str(keys)]) == 0
    reg = tmp_path / "registry.json"
    auth = ["--authority", str(keys / "authority.key")]
    assert main(["registry", "init", str(reg), *auth]) == 0
    assert (
        main(
            [
                "registry",
                "add-chip",
                str(reg),
                *auth,
                "--public-key",
                str(keys / "c1.pub"),
                "--region",
                "country:DEU",
            ]
        )
        == 0
    )
    (tmp_path / "m.csv").write_text("target,landmark,lat,lon,rtt_ms\nc1,fra,50.1,8.7,1.0\n")
    return tmp_path


def _tamper(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"country:DEU", b"country:FRA"))


# (name, argv builder, setup, expected status, a word the one-line diagnosis contains)
CASES: list[tuple[str, Callable[[Path], list[str]], Callable[[Path], None] | None, int, str]] = [
    ("keys new over an existing key",
     lambda w: ["keys", "new", "--role", "chip", "--id", "c1", "--out", str(w / "keys")],
     None, EXIT_BAD_INPUT, "already exists"),
    ("keys new with a bad id",
     lambda w: ["keys", "new", "--role", "chip", "--id", "a b", "--out", str(w / "keys")],
     None, EXIT_BAD_INPUT, "id"),
    ("registry verify, missing file",
     lambda w: ["registry", "verify", str(w / "nope.json")], None, EXIT_BAD_INPUT, "nope.json"),
    ("registry verify, tampered",
     lambda w: ["registry", "verify", str(w / "registry.json")],
     lambda w: _tamper(w / "registry.json"), EXIT_CHECK_FAILED, "bad_signature"),
    ("registry verify, private key pinned as the authority key",
     lambda w: ["registry", "verify", str(w / "registry.json"),
                "--authority-key", str(w / "keys/authority.key")],
     None, EXIT_BAD_INPUT, "private_key_given"),
    ("registry add-chip, private key given to enrol",
     lambda w: ["registry", "add-chip", str(w / "registry.json"),
                "--authority", str(w / "keys/authority.key"),
                "--public-key", str(w / "keys/v1.key"), "--region", "country:DEU"],
     None, EXIT_BAD_INPUT, "private_key_given"),
    ("registry revoke, public key given to sign",
     lambda w: ["registry", "revoke", str(w / "registry.json"),
                "--authority", str(w / "keys/authority.pub"), "--id", "c1"],
     None, EXIT_BAD_INPUT, "public_key_given"),
    ("registry add-chip, bad region",
     lambda w: ["registry", "add-chip", str(w / "registry.json"),
                "--authority", str(w / "keys/authority.key"),
                "--public-key", str(w / "keys/c2.pub"), "--region", "country:XXX"],
     None, EXIT_BAD_INPUT, "XXX"),
    ("agent run, public key as the chip key",
     lambda w: ["agent", "run", "--key", str(w / "keys/c1.pub"),
                "--registry", str(w / "registry.json"), "--listen", "127.0.0.1:0"],
     None, EXIT_BAD_INPUT, "public_key_given"),
    ("agent run, missing registry",
     lambda w: ["agent", "run", "--key", str(w / "keys/c1.key"),
                "--registry", str(w / "nope.json"), "--listen", "127.0.0.1:0"],
     None, EXIT_BAD_INPUT, "nope.json"),
    ("landmark serve, missing config",
     lambda w: ["landmark", "serve", "--config", str(w / "nope.toml")],
     None, EXIT_BAD_INPUT, "nope.toml"),
    ("solve, missing measurements",
     lambda w: ["solve", str(w / "nope.csv"), "--region", "country:DEU"],
     None, EXIT_BAD_INPUT, "nope.csv"),
    ("solve, bad region",
     lambda w: ["solve", str(w / "m.csv"), "--region", "circle:1,2"],
     None, EXIT_BAD_INPUT, "circle"),
    ("solve, ok", lambda w: ["solve", str(w / "m.csv"), "--region", "country:DEU"],
     None, EXIT_OK, ""),
    ("map, missing results", lambda w: ["map", str(w / "nope.jsonl"), "--out", str(w / "m.html")],
     None, EXIT_BAD_INPUT, "nope.jsonl"),
    ("coverage, missing landmarks",
     lambda w: ["coverage", "--landmarks", str(w / "nope.json"), "--region", "country:DEU",
                "--overhead-us", "10", "--out", str(w / "c.html")],
     None, EXIT_BAD_INPUT, "nope.json"),
    ("certificate verify, missing file",
     lambda w: ["certificate", "verify", str(w / "nope.json"), "--registry",
                str(w / "registry.json")],
     None, EXIT_BAD_INPUT, "nope.json"),
    ("certificate status, missing store",
     lambda w: ["certificate", "status", str(w / "m.csv"), "--db", str(w / "nope.db")],
     None, EXIT_BAD_INPUT, "nope.db"),
    ("audit verify, missing store", lambda w: ["audit", "verify", "--db", str(w / "nope.db")],
     None, EXIT_BAD_INPUT, "nope.db"),
    ("verifier run, missing config",
     lambda w: ["verifier", "run", "--config", str(w / "nope.toml")],
     None, EXIT_BAD_INPUT, "nope.toml"),
    ("usage error", lambda w: ["solve"], None, EXIT_BAD_INPUT, "usage"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "setup", "status", "word"),
    [pytest.param(a, s, st, w, id=name) for name, a, s, st, w in CASES],
)
def test_each_command_failure_has_its_status_and_one_line(
    world: Path,
    capsys: pytest.CaptureFixture[str],
    argv: Callable[[Path], list[str]],
    setup: Callable[[Path], None] | None,
    status: int,
    word: str,
) -> None:
    if setup is not None:
        setup(world)
    capsys.readouterr()
    try:
        got = main(argv(world))
    except SystemExit as e:  # argparse usage errors
        got = int(e.code or 0)
    err = capsys.readouterr().err
    assert got == status, err
    if status != EXIT_OK:
        assert word in err
        assert "Traceback" not in err
        if word != "usage":
            assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadSignature("x"), EXIT_CHECK_FAILED),
        (RevokedIdentity("x", reason="chip_revoked"), EXIT_CHECK_FAILED),
        (Superseded("x"), EXIT_CHECK_FAILED),
        (IntegrityError("x"), EXIT_CHECK_FAILED),
        (RegistryNotTrusted("x"), EXIT_CHECK_FAILED),
        (KeyFileError("x"), EXIT_BAD_INPUT),
        (StoreError("x", reason="missing"), EXIT_BAD_INPUT),
        (FileNotFoundError(errno.ENOENT, "no such file", "f"), EXIT_BAD_INPUT),
        (PermissionError(errno.EACCES, "denied", "f"), EXIT_BAD_INPUT),
        (ProbeTimeout("x"), EXIT_TRANSIENT),
        (TransportError("x"), EXIT_TRANSIENT),
        (StoreUnavailable("x"), EXIT_TRANSIENT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), EXIT_TRANSIENT),
        (TimeoutError(), EXIT_TRANSIENT),
    ],
)
def test_the_exception_tree_maps_to_one_scheme(error: BaseException, status: int) -> None:
    assert exit_status(error) == status
