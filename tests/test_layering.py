"""Dependencies point inward: each package imports only what docs/architecture.md allows.

The check reads every module's import statements (static, so a lazy import inside a
function counts too) and fails on any import of one of our packages that the table
does not allow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ALLOWED: dict[str, set[str]] = {
    "protocol": {"chiploc"},
    "solver": {"chiploc"},
    "chip_agent": {"protocol", "chiploc"},
    "landmarks": {"protocol", "chiploc"},
    "store": {"chiploc"},
    "verifier": {"protocol", "solver", "store", "chiploc"},
    "maps": {"solver", "chiploc"},
    # The simulation drives every edge (faults include killing the verifier mid-write).
    "sim": {"protocol", "chip_agent", "landmarks", "solver", "store", "verifier", "chiploc"},
}
OURS = {*ALLOWED, "chiploc"}
# The sans-I/O cores must not reach for the network or an event loop.
FORBIDDEN_IN_CORE = {"socket", "asyncio", "aiohttp", "uvloop", "sqlite3", "selectors"}
CORES = {"protocol", "solver"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_inward(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ is not in this checkout")
    bad = []
    for path in _modules(package):
        for name in _imports(path) & OURS:
            if name != package and name not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", sorted(CORES))
def test_cores_are_sans_io(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ is not in this checkout")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(package)
        for name in _imports(path) & FORBIDDEN_IN_CORE
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_package_reaches_back_into_the_cli(package: str) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ is not in this checkout")
    bad = []
    for path in _modules(package):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            bad += [
                f"{path.relative_to(ROOT)} imports {n}"
                for n in names
                if n.startswith("chiploc.cli")
            ]
    assert not bad, "\n".join(bad)


def test_errors_module_imports_nothing_of_ours() -> None:
    assert not (_imports(ROOT / "chiploc" / "errors.py") & OURS - {"chiploc"})
