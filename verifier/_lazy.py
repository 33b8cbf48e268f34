"""Lazy verification with a sampled full check: the policy, as a pure value.

:func:`protocol.verify_report_lazy` checks what a report's distance bound rests on
(the landmark's signature over the transcript and the chip's signature on the
minimum-RTT probe) at a cost independent of probes per report. :class:`LazyVerification`
says which reports ALSO get :func:`protocol.verify_report` (every chip signature): a
report is sampled when a keyed BLAKE2b of its digest falls below ``rate``.

Invariants:

- the key is randomness passed in by the edge (``os.urandom(32)`` at verifier start;
  fixed bytes in tests): a landmark that does not know it cannot tell which of its
  reports will be fully checked, so each forged report is caught with probability
  ``rate``, independently of the others;
- the choice is a pure function of (key, report digest): the same report is sampled or
  not however often a batch is retried, on whichever worker runs it;
- ``rate = 1`` checks every report in full; ``rate = 0`` never does (a development
  setting: it gives up catching a landmark that forges slower probes).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_FULL_CHECK_RATE", "LazyVerification"]

#: Share of reports fully checked by default (docs/protocol.md: detection probability).
DEFAULT_FULL_CHECK_RATE: Final = 0.01
_SCALE: Final = 1 << 64


@dataclass(frozen=True, slots=True, kw_only=True)
class LazyVerification:
    """Lazy checks for every report, full checks for a keyed random sample of ``rate``."""

    key: bytes = field(repr=False)
    rate: float = DEFAULT_FULL_CHECK_RATE

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes) or not 16 <= len(self.key) <= 64:
            raise ValueError("key must be 16..64 random bytes")
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1], got {rate!r}")

    def selects(self, digest_hex: str) -> bool:
        """Whether the report with this digest gets the full check."""
        if self.rate >= 1:
            return True
        h = hashlib.blake2b(bytes.fromhex(digest_hex), key=self.key, digest_size=8).digest()
        return int.from_bytes(h, "big") < int(self.rate * _SCALE)

    def detection_probability(self, forged_reports: int) -> float:
        """Chance that at least one of ``forged_reports`` forged reports is fully checked."""
        if forged_reports < 0:
            raise ValueError("forged_reports must be >= 0")
        return 1.0 - (1.0 - self.rate) ** forged_reports
