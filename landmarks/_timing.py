"""Turning clock readings into a sound RTT (pure functions; the edge reads the clocks).

Invariants enforced here:

* The send time is ``perf_counter_ns()`` (CLOCK_MONOTONIC) read immediately before ``sendto``;
  the userspace receive time is ``perf_counter_ns()`` read immediately *after* ``recvmsg``
  returned the datagram. Their difference is always an upper bound of the true RTT.
* A kernel receive stamp (``SO_TIMESTAMPNS``) is CLOCK_REALTIME. It is mapped onto the monotonic
  clock with the *smallest* lower bound of the realtime-monotonic offset read at send and at
  receive (each read as ``a = mono; w = real; b = mono``, offset ≥ ``w - b``). The two clocks
  are slewed together, so their offset changes only on a wall-clock step; a step between the
  two reads can only make the smaller bound smaller, which lengthens the RTT. If the two
  bounds disagree by more than ``max_offset_drift_ns`` the kernel stamp is not used at all.
* The kernel-derived RTT is used only if it is positive and not longer than the userspace RTT
  (both are upper bounds; the minimum of two upper bounds is one). So the result is never
  shorter than the userspace figure would justify, whatever the wall clock does.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_MAX_OFFSET_DRIFT_NS", "rtt_from_stamps"]

#: How far apart the send- and receive-side offset bounds may be (clock-read gap jitter).
DEFAULT_MAX_OFFSET_DRIFT_NS: Final = 20_000


def rtt_from_stamps(
    *,
    sent_ns: int,
    received_ns: int,
    kernel_rx_realtime_ns: int | None,
    send_offset_lo_ns: int,
    receive_offset_lo_ns: int,
    max_offset_drift_ns: int = DEFAULT_MAX_OFFSET_DRIFT_NS,
) -> tuple[int, str]:
    """Return ``(rtt_ns, source)`` with source ``"kernel"`` or ``"userspace"``.

    ``sent_ns``/``received_ns`` are monotonic; ``kernel_rx_realtime_ns`` is the SO_TIMESTAMPNS
    stamp or None; ``*_offset_lo_ns`` are lower bounds of (realtime - monotonic).
    """
    user_rtt = received_ns - sent_ns
    if user_rtt <= 0:
        raise ValueError("receive time does not follow send time on the monotonic clock")
    if kernel_rx_realtime_ns is None or kernel_rx_realtime_ns <= 0:
        return user_rtt, "userspace"
    if abs(send_offset_lo_ns - receive_offset_lo_ns) > max_offset_drift_ns:
        return user_rtt, "userspace"
    offset_lo = min(send_offset_lo_ns, receive_offset_lo_ns)
    kernel_rtt = kernel_rx_realtime_ns - offset_lo - sent_ns
    if 0 < kernel_rtt <= user_rtt:
        return kernel_rtt, "kernel"
    return user_rtt, "userspace"
