"""Physical constants and unit conversions shared by every package.

Units live in names (``rtt_ns``, ``radius_km``, ``speed_km_per_ms``). The speed
of light is the SI definition; it is the only speed that yields a *proof*.
"""

from __future__ import annotations

from typing import Final

#: Speed of light in vacuum, exact by definition of the metre (km per millisecond).
SPEED_OF_LIGHT_KM_PER_MS: Final = 299.792458

#: Nanoseconds per millisecond.
NS_PER_MS: Final = 1_000_000


def one_way_km(rtt_ns: int, *, speed_km_per_ms: float = SPEED_OF_LIGHT_KM_PER_MS) -> float:
    """Distance a signal covers in half of ``rtt_ns`` at ``speed_km_per_ms``."""
    return rtt_ns / NS_PER_MS / 2.0 * speed_km_per_ms


def overhead_km(overhead_ns: float, *, speed_km_per_ms: float = SPEED_OF_LIGHT_KM_PER_MS) -> float:
    """Distance, one way, that ``overhead_ns`` of round-trip software time is worth."""
    return overhead_ns / NS_PER_MS / 2.0 * speed_km_per_ms
