"""One import name, and every import points down.

The distribution owns exactly one top-level name, ``chiploc``; its parts are the folders at
the top of the checkout, reached as ``chiploc.<part>`` through ``chiploc/<part>`` symlinks
(docs/architecture.md, "Packaging"). The checks read every module's import statements
(static, so a lazy import inside a function counts too, and relative imports are resolved)
and fail on:

- an import of one of our parts that the table below does not allow;
- an import by a bare top-level name (``import solver``) instead of ``chiploc.solver``;
- a table that is not layered (some arrow pointing up or sideways into a cycle);
- a sans-I/O core that reaches for the network, an event loop or a database.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: The floors, bottom first. An arrow may only point to a lower floor.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"common"}),
    frozenset({"protocol", "solver"}),
    frozenset({"chip_agent", "landmarks", "store"}),
    frozenset({"verifier", "maps"}),
    frozenset({"sim"}),
    frozenset({"cli"}),
)

ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "protocol": {"common"},
    "solver": {"common"},
    "chip_agent": {"protocol", "common"},
    # The landmark checks its mesh links against the solver's vacuum bound (docs/mesh.md).
    "landmarks": {"protocol", "solver", "common"},
    "store": {"common"},
    "verifier": {"protocol", "solver", "store", "common"},
    "maps": {"solver", "common"},
    # The simulation drives every edge (faults include killing the verifier mid-write).
    "sim": {"protocol", "chip_agent", "landmarks", "solver", "store", "verifier", "common"},
    "cli": {
        "protocol",
        "chip_agent",
        "landmarks",
        "solver",
        "store",
        "verifier",
        "maps",
        "sim",
        "common",
    },
}
PARTS = frozenset(ALLOWED)
# The sans-I/O cores must not reach for the network, an event loop or a database.
FORBIDDEN_IN_CORE = {"socket", "asyncio", "aiohttp", "uvloop", "sqlite3", "selectors", "psycopg"}
CORES = {"protocol", "solver"}


def _floor(part: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if part in floor)


def _module_name(path: Path) -> str:
    """``chiploc.<part>.<...>`` for a file of a part folder, ``chiploc`` for chiploc/."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts if parts[0] == "chiploc" else ["chiploc", *parts])


def _imports(path: Path) -> set[str]:
    """Absolute names of every module this file imports (``chiploc.solver``, ``numpy``...)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package)


def _imports_in(source: str, package: str) -> set[str]:
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "chiploc":  # from chiploc import solver / __version__
                found.update(
                    f"chiploc.{a.name}" if a.name in PARTS else "chiploc" for a in node.names
                )
            else:
                found.add(module)
    return found


def _part_of(name: str) -> str | None:
    """The part an absolute module name belongs to, or None for the root or foreign names."""
    bits = name.split(".")
    if bits[0] == "chiploc" and len(bits) > 1 and bits[1] in PARTS:
        return bits[1]
    return None


def _modules(part: str) -> list[Path]:
    return sorted((ROOT / part).rglob("*.py"))


def test_every_part_is_a_folder_at_the_top_reached_through_chiploc() -> None:
    for part in PARTS:
        assert (ROOT / part / "__init__.py").is_file(), f"{part}/ is missing"
        link = ROOT / "chiploc" / part
        assert link.is_symlink(), f"chiploc/{part} is not a symlink"
        assert link.resolve() == (ROOT / part).resolve(), f"chiploc/{part} points elsewhere"
    real = {p.name for p in (ROOT / "chiploc").iterdir() if p.is_dir() and not p.is_symlink()}
    assert real <= {"__pycache__"}, f"chiploc/ holds real folders: {sorted(real)}"


def test_the_table_is_layered() -> None:
    assert set().union(*FLOORS) == PARTS
    up = [
        f"{part} -> {dep}"
        for part, deps in ALLOWED.items()
        for dep in deps
        if _floor(dep) >= _floor(part)
    ]
    assert not up, f"arrows that do not point down: {up}"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_part_imports_only_downwards(part: str) -> None:
    bad = []
    for path in _modules(part):
        for name in _imports(path):
            dep = _part_of(name)
            if name == "chiploc" and part != "cli":
                bad.append(f"{path.relative_to(ROOT)} imports the chiploc root")
            elif dep is not None and dep != part and dep not in ALLOWED[part]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_root_package_loads_only_the_ground_floor() -> None:
    names = _imports(ROOT / "chiploc" / "__init__.py")
    assert {_part_of(n) for n in names} - {None} <= {"common"}


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for top in ["chiploc", *PARTS, "tests", "benchmarks", "scripts"]
        for p in (ROOT / top).rglob("*.py")
        if "chiploc" not in p.relative_to(ROOT).parts[1:]
    ),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_import_by_a_bare_part_name(path: Path) -> None:
    bare = sorted(n for n in _imports(path) if n.split(".")[0] in PARTS)
    # Code in strings too: the `python -c "..."` a child process is started with (this
    # file's own strings are made-up input for the reader).
    strings = [] if path == Path(__file__).resolve() else ast.walk(ast.parse(path.read_bytes()))
    for node in strings:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "import" in node.value
        ):
            try:
                bare += [n for n in _imports_in(node.value, "chiploc") if n.split(".")[0] in PARTS]
            except SyntaxError:
                continue  # prose, not code
    assert not bare, f"{path.relative_to(ROOT)} imports {bare}: use chiploc.<part>"


@pytest.mark.parametrize("part", sorted(CORES))
def test_cores_are_sans_io(part: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(part)
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN_IN_CORE
    ]
    assert not bad, "\n".join(bad)


def test_the_reader_sees_every_form_of_import() -> None:
    # The reader itself must notice the imports it is meant to forbid.
    source = (
        "from chiploc.verifier import x\n"
        "from ..store import y\n"
        "from . import _z\n"
        "import protocol\n"
        "from chiploc import maps\n"
        "def f():\n    import chiploc.sim._faults\n"
    )
    names = _imports_in(source, "chiploc.solver")
    assert {
        "chiploc.verifier",
        "chiploc.store",
        "chiploc.solver",
        "protocol",
        "chiploc.maps",
        "chiploc.sim._faults",
    } <= names
    assert {_part_of(n) for n in names} >= {"verifier", "store", "maps", "sim"}
