"""Bad input at every edge: zero crashes, zero accepted forgeries, every rejection counted.

Each reader gets (a) hypothesis-drawn random bytes, (b) hypothesis-driven mutations of a
valid input (``sim.mutate`` with a hypothesis ``Random``), and (c) the regressions the
fuzzer found. Readers may only raise the project's own errors (``FuzzLab.check``).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chiploc.chip_agent import ChipAgent
from chiploc.landmarks import LandmarkDaemon
from chiploc.sim import FUZZ_TARGETS, FuzzLab, fuzz_agent, fuzz_http, http_requests, mutate
from chiploc.sim._fault_lab import _config, _identities


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> FuzzLab:
    return FuzzLab(tmp_path_factory.mktemp("fuzz"))


def _assert_ok(lab: FuzzLab, target: str, data: bytes) -> str:
    result = lab.check(target, data)
    assert not result.failed, f"{target}: {result.outcome}: {result.detail} for {data[:120]!r}"
    return result.outcome


@pytest.mark.parametrize("target", FUZZ_TARGETS)
def test_corpus_is_accepted(lab: FuzzLab, target: str) -> None:
    # the mutations start from inputs the readers really accept
    for data in lab.corpus[target]:
        assert lab.check(target, data).outcome == "accepted"


@pytest.mark.parametrize("target", FUZZ_TARGETS)
@given(data=st.binary(max_size=700))
def test_random_bytes(lab: FuzzLab, target: str, data: bytes) -> None:
    _assert_ok(lab, target, data)


@pytest.mark.parametrize("target", FUZZ_TARGETS)
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_valid_input(lab: FuzzLab, target: str, rnd: random.Random) -> None:
    seed = rnd.choice(lab.corpus[target])
    _assert_ok(lab, target, mutate(seed, rnd))


def test_signed_inputs_detect_every_single_bit_flip(lab: FuzzLab) -> None:
    # exhaustive over the signed bytes: one flipped bit is never accepted
    for target in ("hello", "response", "report", "certificate"):
        original = lab.originals[target]
        for i in range(len(original)):
            for bit in (0, 7):
                data = bytearray(original)
                data[i] ^= 1 << bit
                assert _assert_ok(lab, target, bytes(data)) == "rejected", (target, i, bit)


_DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("target", "data"),
    [
        # RecursionError from json.loads (fixed: protocol/_registry.py, protocol/_keys.py,
        # solver/_regions.py now convert it)
        ("registry", _DEEP),
        ("private_key", _DEEP),
        ("public_key", _DEEP),
        ("region_geojson", _DEEP),
        ("certificate", _DEEP),
        # a number that overflows to inf broke canonical re-encoding with a ValueError
        # (found by scripts/fuzz_atheris.py; fixed: chiploc/canonical.py parse_json_strict)
        ("certificate", b'{"certificate":{"issued_at":1e7777},"signature":"00"}'),
        # csv.Error "field larger than field limit" (fixed: chiploc/cli/_solve.py,
        # solver/_models.py)
        ("measurement_csv", b"target,landmark,lat,lon,rtt_ms\n" + b"a" * 140_000 + b",b,1,2,3\n"),
        ("calibration_csv", b"landmark,lat,lon,peer,peer_lat,peer_lon,rtt_ms\n" + b"a" * 140_000),
        # UnicodeDecodeError (fixed: solver/_models.py)
        ("calibration_csv", b"\xff\xfe landmark"),
        # OSError ENAMETOOLONG / ValueError NUL from Path.exists (fixed: solver/_regions.py)
        ("region_spec", b"x" * 5_000),
        ("region_spec", b"a\x00b.geojson"),
    ],
)
def test_regressions_found_by_the_fuzzer(lab: FuzzLab, target: str, data: bytes) -> None:
    assert _assert_ok(lab, target, data) == "rejected"


def test_seeded_mutation_run_like_the_benchmark(lab: FuzzLab) -> None:
    rng = random.Random(1)
    outcomes = {
        lab.check(target, data).outcome
        for target in FUZZ_TARGETS
        for data in lab.inputs(target, rng, 40)
    }
    assert outcomes <= {"accepted", "rejected"}


# ------------------------------------------------------------------ live edges


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["chip_id", "address", "probes", "targets", "since", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@pytest.mark.slow
async def test_http_api_answers_4xx_json_never_5xx(tmp_path: Path) -> None:
    ids = _identities("http-fuzz")
    config = _config(tmp_path, ids.landmark, hello_timeout_ms=50, probe_timeout_ms=50)
    async with LandmarkDaemon(config, key=ids.landmark, registry=ids.registry) as daemon:
        drawn: list[tuple[str, str, bytes]] = []

        @given(body=_JSON, since=st.text(max_size=25), raw=st.binary(max_size=200))
        def collect(body: object, since: str, raw: bytes) -> None:
            drawn.append(("POST", "/v1/rounds", json.dumps(body).encode()))
            drawn.append(("POST", "/v1/rounds", raw))
            drawn.append(("GET", "/v1/reports?" + _query(since), b""))

        collect()
        drawn += list(http_requests(random.Random(0), 200))
        drawn += [
            ("GET", "/v1/reports?since=99999999999999999999999", b""),
            ("GET", f"/v1/reports?since={2**63}", b""),
            ("POST", "/v1/rounds", b'{"chip_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            ("POST", "/v1/rounds", b'{"targets": []}'),
            ("POST", "/v1/rounds", b'{"chip_id": "chip-00000", "address": "h:99999"}'),
            ("POST", "/v1/rounds", b'{"chip_id": "chip-00000", "address": "1.2.3.4:x"}'),
            ("POST", "/v1/rounds", b'{"targets": [{"chip_id": 1, "address": 2}]}'),
            ("POST", "/v1/rounds", b'{"chip_id": "c", "address": "a:1", "probes": 1e400}'),
        ]
        tally = await fuzz_http(daemon.http_url, drawn)
    assert tally.sent == len(drawn)
    assert tally.server_errors == 0, tally.examples
    assert tally.not_json == 0, tally.examples
    assert tally.healthy_after
    assert tally.client_errors > len(drawn) // 2


def _query(since: str) -> str:
    from urllib.parse import quote

    return "since=" + quote(since, safe="")


@pytest.mark.slow
async def test_agent_counts_every_random_datagram_and_still_answers(tmp_path: Path) -> None:
    ids = _identities("agent-fuzz")
    lab = FuzzLab(tmp_path / "lab")
    datagrams: list[bytes] = []

    @given(data=st.binary(max_size=600), rnd=st.randoms(use_true_random=False))
    def collect(data: bytes, rnd: random.Random) -> None:
        datagrams.append(data)
        datagrams.append(mutate(rnd.choice(lab.corpus["datagram"]), rnd))

    collect()
    config = _config(tmp_path, ids.landmark)
    async with (
        LandmarkDaemon(config, key=ids.landmark, registry=ids.registry) as daemon,
        ChipAgent(ids.chips[0], ids.registry, host="127.0.0.1") as agent,
    ):
        sent, counted = await fuzz_agent(agent, datagrams)
        assert sent == len(datagrams)
        assert counted == sent  # every datagram dropped and counted (or answered)
        assert agent.counters.get("answered", 0) == 0
        assert agent.counters.get("internal_error", 0) == 0
        report = await asyncio.wait_for(
            daemon.measure(ids.chips[0].id, agent.address, probes=5), 10
        )
        assert report.answered == 5
