"""One test per attack, against real daemons on 127.0.0.1 (``sim.ATTACKS``).

Each test runs the attack and asserts that it was detected *and* by which mechanism: the
counter that rose, the reason ``verify_report`` gave, the verdict ``solver.solve`` gave.
``detected`` itself is computed by the attack from what the system did, so a regression
that lets an attack through fails here with the attack's evidence in the message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chiploc.sim import ATTACKS, AttackOutcome, run_attacks

# attack name -> patterns its evidence must show (the specific mechanism that stopped it)
MECHANISM: dict[str, tuple[str, ...]] = {
    "relay": (
        r"verdict is never COMPLIANT: (INCONCLUSIVE|VIOLATION)",
        r"sound: the true position is inside every vacuum disk: least slack \d+ km",
    ),
    "replay": (
        r"landmark unknown_session \+[5-9]",
        r"landmark bad_signature \+[5-9]",
        r"landmark replayed \+[4-9]",
        r"agent replayed \+1",
    ),
    "forged_signature": (
        r"landmark bad_signature \+[5-9]",
        r"verify_report: bad_chip_signature",
    ),
    "wrong_key_signature": (
        r"landmark bad_signature \+[5-9]",
        r"verify_report: bad_chip_signature",
    ),
    "early_answer": (
        r"landmark bad_signature \+[5-9]",
        r"every early answer counted: (\d+) sent",
        r"min RTT \d+\.\d+ ms >= 20.0 ms held",
    ),
    "added_delay": (
        r"with 20 ms (INCONCLUSIVE|VIOLATION)",
        r"sound: the true position is inside every vacuum disk",
    ),
    "lying_landmark": (
        r"lie verifies; tolerate=0 \w+, tolerate=1 (INCONCLUSIVE|VIOLATION|INCONSISTENT)",
    ),
    "cloned_key": (r"INCONSISTENT: no location satisfies all bounds",),
    "revoked_landmark": (r"agent revoked=[1-9]", r"verify_report \(earlier report\): revoked"),
    "revoked_chip": (
        r"measure: revoked; HTTP 404 revoked; agent sessions 0",
        r"\('revoked', [1-9]\), \('round_refused', [1-9]\)",
        r"verify_report \(earlier\): revoked",
    ),
    "unenrolled_chip": (
        r"measure: unknown_identity; HTTP 404 unknown_identity; agent sessions 0",
        r"\('round_refused', [2-9]\), \('unknown_identity', [2-9]\)",
        r"verdict UNREACHABLE",
    ),
    "impersonated_landmark": (
        r"agent bad_signature \+1",
        r"agent wrong_source \+1",
        r"agent replayed \+1",
        r"verify_report: bad_signature",
    ),
}


def test_every_attack_has_a_mechanism_check() -> None:
    assert set(MECHANISM) == set(ATTACKS)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(ATTACKS))
async def test_attack_is_detected(name: str, tmp_path: Path) -> None:
    [outcome] = await run_attacks(tmp_path, names=[name])
    assert outcome.name == name
    assert outcome.detected, f"{name} NOT detected: {outcome.evidence}"
    assert "[FAILED]" not in outcome.evidence
    assert outcome.mechanism
    for pattern in MECHANISM[name]:
        assert re.search(pattern, outcome.evidence), f"{name}: no {pattern!r} in {outcome.evidence}"


@pytest.mark.slow
async def test_lying_landmark_succeeds_without_tolerate(tmp_path: Path) -> None:
    """The honest limit, shown: a lie verifies, and with tolerate=0 it forges COMPLIANT when
    no honest landmark is near enough to contradict it."""
    [outcome] = await run_attacks(tmp_path, names=["lying_landmark"])
    assert "lie verifies; tolerate=0 COMPLIANT, tolerate=1 INCONCLUSIVE" in outcome.evidence


async def test_a_failing_check_is_not_detected(tmp_path: Path) -> None:
    async def half(directory: Path) -> AttackOutcome:
        from chiploc.sim._attack_lab import _Checks

        checks = _Checks()
        checks.check("counter rose", True, "+1")
        checks.check("verdict", False, "COMPLIANT")
        return checks.outcome("half", "none")

    [outcome] = await run_attacks(tmp_path, attacks={"half": half})
    assert not outcome.detected
    assert "verdict [FAILED]: COMPLIANT" in outcome.evidence


async def test_a_crashing_or_hanging_attack_is_reported_not_detected(tmp_path: Path) -> None:
    import asyncio

    async def crash(directory: Path) -> AttackOutcome:
        raise RuntimeError("boom")

    async def hang(directory: Path) -> AttackOutcome:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    outcomes = await run_attacks(tmp_path, attacks={"crash": crash, "hang": hang}, timeout_s=0.2)
    assert [(o.name, o.detected) for o in outcomes] == [("crash", False), ("hang", False)]
    assert "RuntimeError: boom" in outcomes[0].evidence
    assert "timed out" in outcomes[1].evidence


def test_outcome_is_validated() -> None:
    with pytest.raises(ValueError, match="name"):
        AttackOutcome(name="", detected=True, mechanism="m", evidence="e")
    with pytest.raises(ValueError, match="bool"):
        AttackOutcome(name="x", detected=1, mechanism="m", evidence="e")  # type: ignore[arg-type]
    outcome = AttackOutcome(name="x", detected=True, mechanism="m", evidence="e")
    assert outcome.to_json_dict() == {
        "name": "x",
        "detected": True,
        "mechanism": "m",
        "evidence": "e",
    }
