"""The attack runner: :data:`ATTACKS` names every attack on chiploc, and
:func:`run_attacks` runs them one after another against real daemons on 127.0.0.1,
each bounded by ``timeout_s``, returning the outcomes in order.

Every attack is an ``async def attack(directory) -> AttackOutcome`` (the families
live in ``_attack_physics``, ``_attack_replay``, ``_attack_forgery`` and
``_attack_registry``; their shared lab in ``_attack_lab``): it starts real daemons
and agents, runs the attack, stops everything, and reports what the system did.

Invariants:

* ``AttackOutcome.detected`` is computed from what the system actually did — a
  drop counter that rose, a report :func:`protocol.verify_report` refused, a
  verdict of :func:`solver.solve` — never set by hand. An attack that works
  comes out ``detected=False``; that is a finding, not something to hide.
* An attack that times out or raises is reported as not detected, with the error
  as its evidence: never silently dropped.
* Nothing here changes what it attacks: only public APIs are used, and forged
  messages are built with the same codec (:mod:`protocol`) an attacker could use.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from ._attack_forgery import (
    early_answer_attack,
    forged_signature_attack,
    wrong_key_signature_attack,
)
from ._attack_lab import AttackOutcome
from ._attack_physics import (
    added_delay_attack,
    cloned_key_attack,
    lying_landmark_attack,
    relay_attack,
)
from ._attack_registry import revoked_chip_attack, revoked_landmark_attack, unenrolled_chip_attack
from ._attack_replay import impersonated_landmark_attack, replay_attack

__all__ = ["ATTACKS", "run_attacks"]

#: Every attack, by name, in the order :func:`run_attacks` runs them.
ATTACKS: Final[Mapping[str, Callable[[Path], Awaitable[AttackOutcome]]]] = {
    "relay": relay_attack,
    "replay": replay_attack,
    "forged_signature": forged_signature_attack,
    "wrong_key_signature": wrong_key_signature_attack,
    "early_answer": early_answer_attack,
    "added_delay": added_delay_attack,
    "lying_landmark": lying_landmark_attack,
    "cloned_key": cloned_key_attack,
    "revoked_landmark": revoked_landmark_attack,
    "revoked_chip": revoked_chip_attack,
    "unenrolled_chip": unenrolled_chip_attack,
    "impersonated_landmark": impersonated_landmark_attack,
}


async def run_attacks(
    directory: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
    timeout_s: float = 20.0,
    attacks: Mapping[str, Callable[[Path], Awaitable[AttackOutcome]]] = ATTACKS,
) -> list[AttackOutcome]:
    """Run ``attacks`` (all, or those in ``names``) one after another under ``directory``.

    An attack that fails to finish in ``timeout_s`` or raises is reported as not
    detected, with the error as its evidence (never silently dropped).
    """
    root = Path(directory)
    outcomes = []
    for name in names if names is not None else list(attacks):
        attack = attacks[name]
        try:
            outcome = await asyncio.wait_for(attack(root / name), timeout_s)
        except TimeoutError:
            outcome = AttackOutcome(
                name=name,
                detected=False,
                mechanism="(none)",
                evidence=f"timed out after {timeout_s} s",
            )
        except Exception as e:  # an attack that crashes is a result to report, not to hide
            outcome = AttackOutcome(
                name=name,
                detected=False,
                mechanism="(none)",
                evidence=f"attack raised {type(e).__name__}: {e}",
            )
        outcomes.append(outcome)
    return outcomes
