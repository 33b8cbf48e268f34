from __future__ import annotations

import pytest

from chiploc.cli import build_parser, main
from chiploc.common.errors import ChiplocError, DecodeError, InputError, RegionSpecError


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: chiploc" in capsys.readouterr().out


def test_version() -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--version"])
    assert info.value.code == 0


def test_reason_codes_default_and_override() -> None:
    assert DecodeError("x").reason == "malformed"
    assert DecodeError("x", reason="truncated").reason == "truncated"
    assert isinstance(RegionSpecError("x"), ValueError)
    assert isinstance(RegionSpecError("x"), InputError)
    assert isinstance(DecodeError("x"), ChiplocError)
