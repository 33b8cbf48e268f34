"""Words for people: counts that agree in number ("1 chip", "2 chips")."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 chip"``, ``"2 chips"``, ``"1,000 countries"`` (with ``plural_form``)."""
    word = singular if n == 1 else (plural_form or singular + "s")
    return f"{n:,} {word}"
