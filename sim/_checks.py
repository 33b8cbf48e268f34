"""The observations one attack or fault scenario makes, and the evidence line they give.

Invariants:

* A scenario passes (:attr:`Checks.ok`) only if it checked something and every check
  held: no checks is never a pass.
* The evidence names every check in order, with ``[FAILED]`` after each that did not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Checks"]


@dataclass(slots=True)
class Checks:
    """Observations ``(label, held, detail)``, in the order they were made."""

    items: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, label: str, ok: bool, detail: object = "") -> bool:
        self.items.append((label, bool(ok), str(detail)))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(ok for _, ok, _ in self.items)

    def evidence(self) -> str:
        return "; ".join(
            f"{label}{'' if ok else ' [FAILED]'}: {detail}" for label, ok, detail in self.items
        )
