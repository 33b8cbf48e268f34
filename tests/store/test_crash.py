"""A writer killed with SIGKILL mid-loop loses no committed round, verdict or audit entry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chiploc.store import open_store
from chiploc.verifier import verify_audit

_WRITER = r"""
import sys
from dataclasses import dataclass
from chiploc.store import open_store

@dataclass(frozen=True)
class R:
    raw: bytes
    landmark_id: str
    chip_id: str
    min_rtt_ns: int

result = {"target": "chip-1", "verdict": "COMPLIANT", "proof": True, "model": "vacuum",
          "region_spec": "country:DEU", "region": None, "margin_km": 1.0}
T0 = 1_700_000_000_000_000_000
with open_store(sys.argv[1]) as s:
    i = 0
    while True:
        d = s.add_round(R(b"raw-%d" % i, "lm", "chip-1", 1000 + i), received_at_unix_ns=T0 + i)
        s.add_verdict(result, evidence_digests=[d.record.digest_hex], certificate=None,
                      issued_at_unix_ns=T0 + i)
        print(i, flush=True)
        i += 1
"""


@pytest.mark.slow
def test_sigkill_mid_write_keeps_every_committed_entry(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    open_store(db).close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    committed = -1
    deadline = time.monotonic() + 60
    try:
        while committed < 200 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert committed >= 200, "writer did not make progress"
    with open_store(db) as s:
        report = verify_audit(s)
        # Everything acknowledged is there; at most the in-flight pair beyond it.
        assert report.rounds >= committed + 1
        assert report.verdicts >= committed + 1
        assert report.entries == report.rounds + report.verdicts
        assert report.rounds - report.verdicts in (0, 1)
        # And the store keeps working after the crash.
        assert s.add_round(_Again(), received_at_unix_ns=0).inserted
        verify_audit(s)


class _Again:
    raw = b"after-crash"
    landmark_id = "lm"
    chip_id = "chip-1"
    min_rtt_ns = 5
