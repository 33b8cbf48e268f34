"""Physical constants and unit conversions shared by every package.

Units live in names (``rtt_ns``, ``radius_km``, ``speed_km_per_ms``). The speed
of light is the SI definition; it is the only speed that yields a *proof*.
"""

from __future__ import annotations

from typing import Final

#: Speed of light in vacuum, exact by definition of the metre (km per millisecond).
SPEED_OF_LIGHT_KM_PER_MS: Final = 299.792458

#: Default bound (parts per million) on a landmark clock's rate error, used by the solver's
#: proof. A landmark times RTTs on ``CLOCK_MONOTONIC``, which NTP may slew: the Linux kernel
#: caps the NTP frequency correction at 500 ppm (``MAXFREQ``) and an ``adjtime`` slew at
#: 500 ppm (``MAX_TICKADJ``). A clock running slow under-measures an RTT, so the solver takes
#: the true duration of an interval measured as ``t`` to lie in ``[t / (1 + e), t / (1 - e)]``
#: (``e = ppm * 1e-6``) and bounds distances with ``rtt / (1 - e)`` (about ``rtt * (1 + e)``).
#: Not covered, so a landmark host must avoid them or the solver be given a larger tolerance:
#: a frequency correction and an ``adjtime`` slew at once (up to 1,000 ppm), and tick
#: adjustment (``ADJ_TICK``, up to 10 %), which chrony uses to slew faster (its documented
#: default ``maxslewrate`` is 83,333 ppm; set ``maxslewrate 500``).
MAX_CLOCK_RATE_ERROR_PPM: Final = 500.0

#: Nanoseconds per millisecond.
NS_PER_MS: Final = 1_000_000


def one_way_km(rtt_ns: int, *, speed_km_per_ms: float = SPEED_OF_LIGHT_KM_PER_MS) -> float:
    """Distance a signal covers in half of ``rtt_ns`` at ``speed_km_per_ms``."""
    return rtt_ns / NS_PER_MS / 2.0 * speed_km_per_ms


def overhead_km(overhead_ns: float, *, speed_km_per_ms: float = SPEED_OF_LIGHT_KM_PER_MS) -> float:
    """Distance, one way, that ``overhead_ns`` of round-trip software time is worth."""
    return overhead_ns / NS_PER_MS / 2.0 * speed_km_per_ms
