"""Long, coverage-guided fuzzing of chiploc's readers with atheris (opt-in, not in the suite).

    pip install atheris            # a cp311 manylinux wheel exists; no compiler needed
    python scripts/fuzz_atheris.py TARGET [-atheris_runs=1000000] [-max_total_time=600] [CORPUS_DIR]

TARGET is one of ``sim.FUZZ_TARGETS`` (datagram, hello, response, report, registry,
registry_signed, private_key, public_key, certificate, measurement_csv, calibration_csv,
region_geojson, region_spec). Each input goes through ``sim.FuzzLab.check``, the same
check the suite and ``benchmarks/robustness.py`` use: an exception that is not one of the
project's own errors, or an altered signed input that verifies, aborts the run with the
input saved by libFuzzer (``crash-*``). The lab's valid inputs seed the corpus.

Without atheris, ``--mutate N`` runs N seeded mutations per target instead (no coverage
guidance): ``python scripts/fuzz_atheris.py all --mutate 100000``.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Packages atheris instruments for coverage (imported under ``instrument_imports``).
_OURS = ["chiploc"]


def _mutation_run(targets: list[str], count: int, seed: int) -> int:
    from chiploc.sim import FuzzLab

    lab = FuzzLab(tempfile.mkdtemp(prefix="chiploc-fuzz-"))
    rng = random.Random(seed)
    failures = 0
    for target in targets:
        tally: dict[str, int] = {}
        for data in lab.inputs(target, rng, count):
            result = lab.check(target, data)
            tally[result.outcome] = tally.get(result.outcome, 0) + 1
            if result.failed:
                failures += 1
                print(f"{target}: {result.outcome}: {result.detail[:300]}", file=sys.stderr)
        print(target, tally, flush=True)
    return 1 if failures else 0


def main() -> int:
    args = sys.argv[1:]
    if "--mutate" in args:
        from chiploc.sim import FUZZ_TARGETS

        if not args or args[0] not in (*FUZZ_TARGETS, "all"):
            print(__doc__, file=sys.stderr)
            return 2
        count = int(args[args.index("--mutate") + 1])
        return _mutation_run(list(FUZZ_TARGETS) if args[0] == "all" else [args[0]], count, 0)
    try:
        import atheris  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("atheris is not installed: pip install atheris, or use --mutate N", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=_OURS):
        from chiploc.sim import FUZZ_TARGETS, FuzzLab
    if not args or args[0] not in FUZZ_TARGETS:
        print(__doc__, file=sys.stderr)
        return 2
    target = args[0]
    lab = FuzzLab(tempfile.mkdtemp(prefix="chiploc-atheris-"))
    corpus_args = [a for a in args[1:] if not a.startswith("-")]
    if not corpus_args:  # seed a fresh corpus with the valid inputs
        seed_dir = Path(tempfile.mkdtemp(prefix=f"chiploc-corpus-{target}-"))
        for i, data in enumerate(lab.corpus[target]):
            (seed_dir / f"seed-{i}").write_bytes(data)
        args.append(str(seed_dir))

    def one_input(data: bytes) -> None:
        result = lab.check(target, data)
        if result.failed:
            raise RuntimeError(f"{target}: {result.outcome}: {result.detail[:500]}")

    atheris.Setup([sys.argv[0], *args[1:]], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
