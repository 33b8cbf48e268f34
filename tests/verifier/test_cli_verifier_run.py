"""``chiploc verifier run`` against a small simulated world, and its config checks."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from chiploc.cli import main
from chiploc.cli._verifier import CURSORS_FORMAT, VerifierConfig, load_cursors
from chiploc.protocol import PrivateKey, Role, VerifierEntry, generate_private_key, write_keypair
from chiploc.sim import FleetScenario, SimulatedWorld
from chiploc.store import open_store
from chiploc.verifier import verify_audit

VERIFIER_ID = "test-verifier"


def _scenario() -> tuple[FleetScenario, PrivateKey]:
    scenario = FleetScenario.generate(seed=0, chips=5, landmarks=4)
    key = generate_private_key(Role.VERIFIER, VERIFIER_ID, seed=bytes([7]) * 32)
    entry = VerifierEntry(id=key.id, public_key=key.public_key.key_bytes)
    registry = scenario.registry.with_entry(entry)
    return dataclasses.replace(scenario, registry=registry), key


def _toml(
    *,
    registry: Path,
    authority: Path,
    key: Path,
    landmarks: Mapping[str, str],
    chips: Mapping[str, str],
    regions: Mapping[str, str],
) -> str:
    lines = [
        "[verifier]",
        f'id = "{VERIFIER_ID}"',
        f'key = "{key}"',
        f'registry = "{registry}"',
        f'authority_key = "{authority}"',
        'db = "verifier.db"',
        'certificates_dir = "certs"',
        "probes = 4",
        "",
        "[verifier.landmarks]",
        *(f'"{lid}" = "{url}"' for lid, url in landmarks.items()),
        "",
        "[verifier.chips]",
    ]
    for cid, address in chips.items():
        if cid in regions:
            lines.append(f'"{cid}" = {{ address = "{address}", region = "{regions[cid]}" }}')
        else:
            lines.append(f'"{cid}" = "{address}"')
    return "\n".join(lines) + "\n"


def _setup_files(
    tmp_path: Path, scenario: FleetScenario, key: PrivateKey
) -> tuple[Path, Path, Path]:
    key_path, _ = write_keypair(key, tmp_path / "vkeys")
    return key_path, tmp_path / "world" / "registry.json", tmp_path / "world" / "authority.pub"


@pytest.mark.slow
async def test_verifier_run_certifies_every_chip_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, key = _scenario()
    key_path, registry_path, authority_path = _setup_files(tmp_path, scenario, key)
    async with SimulatedWorld(
        scenario,
        tmp_path / "world",
        probes_per_round=4,
        probe_timeout_ms=2000,
        max_concurrent_rounds=2,
    ) as world:
        config = tmp_path / "verifier.toml"
        config.write_text(
            _toml(
                registry=registry_path,
                authority=authority_path,
                key=key_path,
                landmarks=world.landmark_urls,
                chips={cid: f"{h}:{p}" for cid, (h, p) in world.chip_addresses.items()},
                regions={c.id: c.region for c in scenario.chips if not c.enrolled},
            ),
            encoding="utf-8",
        )
        argv = ["verifier", "run", "--config", str(config)]
        assert await asyncio.to_thread(main, argv) == 0
        first = capsys.readouterr()
        assert "chiploc verifier: verdicts" in first.out
        assert "audit log intact" in first.out
        db = tmp_path / "verifier.db"
        with open_store(db, read_only=True) as store:
            rounds_1 = len(list(store.rounds()))
            assert len(list(store.verdicts())) == len(scenario.chips)
        cursors_1, warning = load_cursors(
            db.with_name("verifier.db.cursors.json"), world.landmark_urls
        )
        assert warning is None
        assert set(cursors_1) == set(world.landmark_urls)
        assert all(c > 0 for c in cursors_1.values())

        # Second run: only the new reports are fetched (cursors persisted), verdicts appended.
        assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
        second = capsys.readouterr()

        # --interval: repeats until SIGTERM, which lets the current run finish; exit 0.
        interval_db = tmp_path / "interval.db"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chiploc",
            "verifier",
            "run",
            "--config",
            str(config),
            "--db",
            str(interval_db),
            "--interval",
            "0.2",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            runs = 0
            async with asyncio.timeout(60):
                while runs < 2:
                    line = await proc.stdout.readline()
                    assert line, "verifier exited early"
                    runs += b"audit log intact" in line
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                _, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        with open_store(interval_db, read_only=True) as store:
            assert len(list(store.verdicts())) % len(scenario.chips) == 0  # whole runs only
            assert len(list(store.verdicts())) >= 2 * len(scenario.chips)
            verify_audit(store)
    lines = [json.loads(line) for line in second.out.splitlines() if line.strip()]
    assert [o["chip"] for o in lines] == [c.id for c in scenario.chips]
    for obj in lines:
        assert obj["verdict"] in scenario.chip(obj["chip"]).expected, obj
    m = re.search(r"reports: (\d+) verified \((\d+) new\)", second.err)
    assert m is not None, second.err
    verified, new = int(m[1]), int(m[2])
    assert verified == new > 0  # nothing re-fetched from before the cursors
    with open_store(db, read_only=True) as store:
        assert len(list(store.rounds())) == rounds_1 + new
        verdicts = list(store.verdicts())
        assert len(verdicts) == 2 * len(scenario.chips)
        for v in verdicts:
            assert v.verdict in scenario.chip(v.chip_id).expected
        audit = verify_audit(store)
    assert audit.verdicts == 2 * len(scenario.chips)
    assert f"head {audit.head}" in second.err

    certs = tmp_path / "certs"
    for chip in scenario.chips:
        cert = certs / f"{chip.id}.json"
        status = main(["certificate", "verify", str(cert), "--registry", str(registry_path)])
        if chip.enrolled:
            assert status == 0
            assert f"chip {chip.id}" in capsys.readouterr().out
        else:  # the registry vouches for no such chip: its certificate is not trusted
            assert status == 1
            assert "[unknown_chip]" in capsys.readouterr().err
    assert json.loads(db.with_name("verifier.db.cursors.json").read_text())["format"] == (
        CURSORS_FORMAT
    )


def _write_registry(tmp_path: Path, scenario: FleetScenario) -> tuple[Path, Path]:
    registry = tmp_path / "registry.json"
    registry.write_bytes(scenario.signed_registry())
    _, pub = write_keypair(scenario.authority, tmp_path / "authority")
    return registry, pub


def _config_text(tmp_path: Path, **overrides: str) -> tuple[str, FleetScenario]:
    scenario, key = _scenario()
    key_path, _ = write_keypair(key, tmp_path / "vkeys")
    registry, pub = _write_registry(tmp_path, scenario)
    landmarks = {lm.id: "http://127.0.0.1:9" for lm in scenario.landmarks}
    landmarks.update(overrides)
    text = _toml(
        registry=registry,
        authority=pub,
        key=key_path,
        landmarks=landmarks,
        chips={c.id: "127.0.0.1:9" for c in scenario.chips},
        regions={c.id: c.region for c in scenario.chips if not c.enrolled},
    )
    return text, scenario


def test_unenrolled_landmark_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = _config_text(tmp_path, **{"lm-nowhere": "http://127.0.0.1:9"})
    config = tmp_path / "verifier.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["verifier", "run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "lm-nowhere" in err
    assert "landmark_not_enrolled" in err
    assert not (tmp_path / "verifier.db").exists()  # refused before anything was opened


def test_unenrolled_chip_needs_a_claimed_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = _config_text(tmp_path)
    text = re.sub(r'\{ address = "([^"]+)", region = "[^"]+" \}', r'"\1"', text)
    config = tmp_path / "verifier.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["verifier", "run", "--config", str(config)]) == 2
    assert "chip-005-unenrolled" in capsys.readouterr().err


def test_config_paths_resolve_from_the_file_and_db_override(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "verifier.toml"
    path.write_text(
        '[verifier]\nid = "v"\nkey = "v.key"\nregistry = "r.json"\ndb = "x.db"\n'
        '[verifier.landmarks]\nlm = "http://127.0.0.1:1"\n'
        '[verifier.chips]\nc = "127.0.0.1:2"\n',
        encoding="utf-8",
    )
    cfg = VerifierConfig.from_toml(path)
    assert cfg.key_path == tmp_path / "conf" / "v.key"
    assert cfg.db_path == tmp_path / "conf" / "x.db"
    assert cfg.cursors_path == tmp_path / "conf" / "x.db.cursors.json"
    assert cfg.model == "vacuum"
    other = tmp_path / "o.db"
    assert VerifierConfig.from_toml(path, db_override=other).db_path == other
    assert cfg.db_target == str(tmp_path / "conf" / "x.db")
    assert (cfg.verification, cfg.full_check_rate) == ("full", 0.01)
    url = "postgresql://chiploc@127.0.0.1:5432/fleet"
    pg = VerifierConfig.from_toml(path, db_override=url)
    assert (pg.db_url, pg.db_target) == (url, url)
    assert pg.cursors_path == tmp_path / "conf" / "verifier-v.cursors.json"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'db = "x.db"', f'db = "{url}"\nverification = "lazy"\nfull_check_rate = 0.05'
        ),
        encoding="utf-8",
    )
    lazy = VerifierConfig.from_toml(path)
    assert (lazy.db_target, lazy.verification, lazy.full_check_rate) == (url, "lazy", 0.05)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("bogus = 1\n", "unknown keys"),
        ('model = "warp"\n', "model"),
        ('model = "calibrated"\n', "calibration"),
        ("probes = 0\n", "probes"),
        ("tolerate = true\n", "tolerate"),
        ('verification = "sometimes"\n', "verification"),
        ("full_check_rate = 2\n", "full_check_rate"),
    ],
)
def test_bad_config_values_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    from chiploc.common.errors import ConfigError

    path = tmp_path / "verifier.toml"
    path.write_text(
        f'[verifier]\nid = "v"\nkey = "v.key"\nregistry = "r.json"\ndb = "x.db"\n{extra}'
        '[verifier.landmarks]\nlm = "http://127.0.0.1:1"\n'
        '[verifier.chips]\nc = "127.0.0.1:2"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=message):
        VerifierConfig.from_toml(path)


def test_malformed_cursor_file_warns_and_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "x.db.cursors.json"
    path.write_text("{not json", encoding="utf-8")
    cursors, warning = load_cursors(path, {"lm": "http://a"})
    assert cursors == {}
    assert warning is not None
    assert "malformed" in warning
    path.write_text(
        json.dumps(
            {
                "format": CURSORS_FORMAT,
                "landmarks": {
                    "lm": {"url": "http://a", "cursor": 7},
                    "moved": {"url": "http://old", "cursor": 9},
                },
            }
        ),
        encoding="utf-8",
    )
    assert load_cursors(path, {"lm": "http://a", "moved": "http://new"}) == ({"lm": 7}, None)


def test_no_landmark_reached_exits_3_and_certifies_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = _config_text(tmp_path)  # every landmark at 127.0.0.1:9 (nothing listens)
    config = tmp_path / "verifier.toml"
    config.write_text(text, encoding="utf-8")
    assert (
        main(["verifier", "run", "--config", str(config)]) == 3
    )  # transient: a retry may reach them
    assert "no landmark could be reached" in capsys.readouterr().err
    with open_store(tmp_path / "verifier.db", read_only=True) as store:
        assert list(store.verdicts()) == []
    assert not (tmp_path / "certs").exists()


@pytest.mark.slow
async def test_verifier_run_on_postgres_with_lazy_verification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """`--db postgresql://…` with `verification = "lazy"`: the same verdicts, one valid
    audit chain, read back by `chiploc audit verify` and `chiploc map --db`."""
    from chiploc.store import PostgresStore

    scenario, key = _scenario()
    key_path, registry_path, authority_path = _setup_files(tmp_path, scenario, key)
    async with SimulatedWorld(
        scenario,
        tmp_path / "world",
        probes_per_round=4,
        probe_timeout_ms=2000,
        max_concurrent_rounds=2,
    ) as world:
        config = tmp_path / "verifier.toml"
        text = _toml(
            registry=registry_path,
            authority=authority_path,
            key=key_path,
            landmarks=world.landmark_urls,
            chips={cid: f"{h}:{p}" for cid, (h, p) in world.chip_addresses.items()},
            regions={c.id: c.region for c in scenario.chips if not c.enrolled},
        )
        # Every report lazily checked AND (rate 1) fully: an honest world flags nobody.
        text = text.replace(
            "probes = 4\n", 'probes = 4\nverification = "lazy"\nfull_check_rate = 1\n'
        )
        config.write_text(text, encoding="utf-8")
        argv = ["verifier", "run", "--config", str(config), "--db", postgres_url]
        assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr()
    assert "audit log intact" in out.out
    assert "FLAGGED" not in out.out + out.err
    with PostgresStore.open(postgres_url, read_only=True) as store:
        verdicts = list(store.verdicts())
        assert len(verdicts) == len(scenario.chips)
        for v in verdicts:
            assert v.verdict in scenario.chip(v.chip_id).expected
        assert verify_audit(store).verdicts == len(scenario.chips)
    assert main(["audit", "verify", "--db", postgres_url]) == 0
    assert "audit log intact" in capsys.readouterr().out
    fleet = tmp_path / "fleet.html"
    assert main(["map", "--db", postgres_url, "--fleet", "--out", str(fleet)]) == 0
    assert (await asyncio.to_thread(fleet.stat)).st_size > 0
    # With a PostgreSQL db the cursors live beside the config file.
    cursors = tmp_path / f"verifier-{VERIFIER_ID}.cursors.json"
    assert await asyncio.to_thread(cursors.exists)


@pytest.mark.slow
async def test_verifier_run_on_a_local_dask_cluster_certifies_every_chip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario, key = _scenario()
    key_path, registry_path, authority_path = _setup_files(tmp_path, scenario, key)
    async with SimulatedWorld(
        scenario,
        tmp_path / "world",
        probes_per_round=4,
        probe_timeout_ms=2000,
        max_concurrent_rounds=2,
    ) as world:
        config = tmp_path / "verifier.toml"
        config.write_text(
            _toml(
                registry=registry_path,
                authority=authority_path,
                key=key_path,
                landmarks=world.landmark_urls,
                chips={cid: f"{h}:{p}" for cid, (h, p) in world.chip_addresses.items()},
                regions={c.id: c.region for c in scenario.chips if not c.enrolled},
            ),
            encoding="utf-8",
        )
        argv = ["verifier", "run", "--config", str(config), "--json", "--cluster", "local:1"]
        assert await asyncio.to_thread(main, argv) == 0
        out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines() if line.strip()]
    assert sorted(o["chip"] for o in lines) == sorted(c.id for c in scenario.chips)
    for obj in lines:
        assert obj["verdict"] in scenario.chip(obj["chip"]).expected, obj
    assert "batches: 1 on 1 worker process(es)" in out.err
    assert "local cluster of 1 worker processes" in out.err
    with open_store(tmp_path / "verifier.db", read_only=True) as store:
        audit = verify_audit(store)
        assert audit.verdicts == len(scenario.chips)
        assert {v.chip_id for v in store.verdicts()} == {c.id for c in scenario.chips}
    capsys.readouterr()
    for chip in scenario.chips:
        cert = tmp_path / "certs" / f"{chip.id}.json"
        status = main(["certificate", "verify", str(cert), "--registry", str(registry_path)])
        if chip.enrolled:
            assert status == 0
        else:  # the registry vouches for no such chip: its certificate is not trusted
            assert status == 1
            assert "[unknown_chip]" in capsys.readouterr().err


async def test_table_names_landmarks_that_did_not_answer_and_those_missing_since_last_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps table cells to the terminal's width
    scenario, key = _scenario()
    key_path, registry_path, authority_path = _setup_files(tmp_path, scenario, key)
    async with SimulatedWorld(
        scenario, tmp_path / "world", probes_per_round=4, probe_timeout_ms=2000
    ) as world:
        config = tmp_path / "verifier.toml"

        def write(landmarks: Mapping[str, str]) -> None:
            config.write_text(
                _toml(
                    registry=registry_path,
                    authority=authority_path,
                    key=key_path,
                    landmarks=landmarks,
                    chips={cid: f"{h}:{p}" for cid, (h, p) in world.chip_addresses.items()},
                    regions={c.id: c.region for c in scenario.chips if not c.enrolled},
                ),
                encoding="utf-8",
            )

        argv = ["verifier", "run", "--config", str(config)]
        write(world.landmark_urls)
        assert await asyncio.to_thread(main, argv) == 0
        first = capsys.readouterr().out
        assert "missing now" not in first
        # The same landmark ids, one of them now unreachable (nothing listens on port 9).
        gone = sorted(world.landmark_urls)[0]
        write({**world.landmark_urls, gone: "http://127.0.0.1:9"})
        assert await asyncio.to_thread(main, argv) == 0
        second = capsys.readouterr().out
    db = tmp_path / "verifier.db"
    with open_store(db, read_only=True) as store:
        took_part = {
            v.chip_id
            for v in store.verdicts()
            if gone in {b["id"] for b in json.loads(v.result_json)["landmarks"]}
        }
    assert took_part, "the landmark answered no chip in the first run"
    lines = second.splitlines()
    for chip_id in took_part:
        (start,) = [i for i, line in enumerate(lines) if line.startswith(f"│ {chip_id} ")]
        block = [lines[start]]
        for line in lines[start + 1 :]:  # rich wraps a long cell onto lines of its own
            if not line.startswith("│ ") or line[2] != " ":
                break
            block.append(line)
        cells: list[list[str]] = [[] for _ in block[0].split("│")]
        for line in block:
            for k, cell in enumerate(line.split("│")):
                cells[k].append(cell.strip())
        row = " | ".join(" ".join(x for x in c if x) for c in cells)
        assert f"no answer from {gone}" in row
        assert f"in the previous verdict but missing now: {gone}" in row
