"""The narrow interfaces of DESIGN.md: who may import whom, checked on the source."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    # package source dir: imports it must never make (top-level module names)
    "packages/engine-rs/python/bt_engine": {
        "pandas",
        "duckdb",
        "bt_core",
        "bt_data",
        "bt_analysis",
    },
    "packages/bt-data/src/bt_data": {"bt_engine", "bt_core", "bt_analysis"},
    "packages/bt-analysis/src/bt_analysis": {"bt_engine", "bt_core", "bt_data", "duckdb"},
    "packages/bt-core/src/bt_core": {"duckdb", "fastapi"},
    # The app talks to bt-server over HTTP only.
    "apps/bt-app/src/bt_app": {"bt_engine", "bt_core", "bt_server", "bt_data", "bt_analysis"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_imports_only_what_design_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources under {package}"
    bad = {str(f.relative_to(ROOT)): sorted(imported_modules(f) & PACKAGES[package]) for f in files}
    assert {f: m for f, m in bad.items() if m} == {}


def test_bt_core_reaches_bt_data_only_through_the_optional_cli_mount() -> None:
    users = [
        f.name
        for f in (ROOT / "packages/bt-core/src/bt_core").rglob("*.py")
        if "bt_data" in imported_modules(f)
    ]
    assert users == ["cli.py"]


# ----- imports against declared dependencies --------------------------------------------------
# Each wheel's source may import, at module level, only the standard library, itself and its
# base dependencies; inside functions (lazily) also its extras. What a wheel imports without
# declaring it, on purpose, is listed here with the reason.
WHEELS = {
    "packages/engine-rs": "python/bt_engine",
    "packages/bt-core": "src/bt_core",
    "packages/bt-analysis": "src/bt_analysis",
    "packages/bt-data": "src/bt_data",
    "packages/bt-server": "src/bt_server",
    "packages/pyrust-bt": "src/pyrust_bt",
    "apps/bt-app": "src/bt_app",
}
UNDECLARED = {
    # `bt data` / `bt serve` / `bt app` are mounted only when those wheels are installed.
    "bt_core": {"bt_data", "bt_server", "bt_app"},
    # QMT's xtquant ships Windows binaries only and needs a running MiniQMT client: imported
    # when an XtDataProvider is first used, never a dependency (packages/bt-data/README.md).
    "bt_data": {"xtquant"},
}


def _dist_modules() -> dict[str, set[str]]:
    """distribution name (normalised) -> its top-level import names, from the installed
    environment (editable workspace members list no files, so theirs are read from the tree)."""
    from importlib import metadata

    out: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for d in dists:
            out.setdefault(_norm(d), set()).add(module)
    for project, src in WHEELS.items():
        name = tomllib.loads((ROOT / project / "pyproject.toml").read_text())["project"]["name"]
        out[_norm(name)] = {Path(src).name}
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _modules_of(reqs: list[str], dist_modules: dict[str, set[str]]) -> set[str]:
    out: set[str] = set()
    for r in reqs:
        name = _norm(Requirement(r).name)
        # A dependency that is not installed here (e.g. an extra's) imports under its own name.
        out |= dist_modules.get(name, {name.replace("-", "_")})
    return out


def _imports_by_laziness(path: Path) -> tuple[set[str], set[str]]:
    """(top-level modules imported when the file is imported, those imported only later:
    inside functions or classes' methods, or guarded by try/except or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    eager: set[str] = set()

    def names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name.split(".")[0] for a in node.names}
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            return {node.module.split(".")[0]}
        return set()

    def module_level(body: list[ast.stmt]) -> None:
        for stmt in body:
            eager.update(names(stmt))
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" not in ast.unparse(stmt.test):
                module_level(stmt.body)
                module_level(stmt.orelse)

    module_level(tree.body)
    return eager, imported_modules(path) - eager


@pytest.mark.parametrize("project", sorted(WHEELS))
def test_a_wheel_imports_only_what_it_declares(project: str) -> None:
    meta = tomllib.loads((ROOT / project / "pyproject.toml").read_text())["project"]
    dist_modules = _dist_modules()
    own = Path(WHEELS[project]).name
    base = _modules_of(meta.get("dependencies", []), dist_modules)
    extras = _modules_of(
        [r for reqs in meta.get("optional-dependencies", {}).values() for r in reqs], dist_modules
    )
    allowed = set(sys.stdlib_module_names) | {own, "__future__"}
    eager_bad: dict[str, list[str]] = {}
    lazy_bad: dict[str, list[str]] = {}
    for f in sorted((ROOT / project / WHEELS[project]).rglob("*.py")):
        eager, lazy = _imports_by_laziness(f)
        if e := sorted(eager - allowed - base):
            eager_bad[str(f.relative_to(ROOT))] = e
        if z := sorted(lazy - allowed - base - extras - UNDECLARED.get(own, set())):
            lazy_bad[str(f.relative_to(ROOT))] = z
    assert eager_bad == {}, "imported at module level but not a base dependency"
    assert lazy_bad == {}, "imported lazily but neither a dependency nor an extra"


# Runs in a fresh interpreter: imports every module of a package (but those named after it),
# then prints the top-level modules that appeared in sys.modules.
_PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
pkg = importlib.import_module(sys.argv[1])
for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if m.name.split(".")[-1] != "__main__" and m.name not in sys.argv[2:]:
        importlib.import_module(m.name)
print(json.dumps(sorted({n.split(".")[0] for n in set(sys.modules) - before})))
"""


@pytest.mark.parametrize(
    "module, never, skip",
    [
        ("bt_engine", {"pandas", "bt_core", "bt_analysis", "bt_data", "duckdb", "pyarrow"}, []),
        # scipy.stats takes seconds to import (a CLI start, every Ray or spawned worker): the
        # statistics every run computes do without it, the rest imports it on first use.
        ("bt_analysis", {"bt_engine", "bt_core", "bt_data", "plotly", "duckdb", "scipy"}, []),
        ("bt_data", {"bt_engine", "bt_core", "bt_analysis", "plotly"}, []),
        # The CLI (bt_core.cli, which cli_optimize extends) mounts `bt data` / `bt serve` when
        # those wheels are installed, by design.
        (
            "bt_core",
            {"bt_data", "bt_server", "duckdb", "fastapi", "optuna", "plotly", "ray", "scipy"},
            ["bt_core.cli", "bt_core.cli_optimize"],
        ),
    ],
)
def test_importing_a_package_pulls_in_nothing_it_must_not(
    module: str, never: set[str], skip: list[str]
) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _PROBE, module, *skip], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert sorted(set(json.loads(res.stdout)) & never) == []


def test_bt_core_reaches_bt_app_only_through_the_optional_cli_mount() -> None:
    users = [
        f.name
        for f in (ROOT / "packages/bt-core/src/bt_core").rglob("*.py")
        if "bt_app" in imported_modules(f)
    ]
    assert users == ["cli.py"]


def test_bt_app_does_not_load_the_engine_or_the_server() -> None:
    """Imported for real: every module of the app, in a fresh interpreter (AST checks miss
    an import done by a dependency or through importlib)."""
    import subprocess
    import sys

    modules = sorted(
        "bt_app." + ".".join(f.relative_to(ROOT / "apps/bt-app/src/bt_app").with_suffix("").parts)
        for f in (ROOT / "apps/bt-app/src/bt_app").glob("*.py")
        if f.name != "main.py"  # the Streamlit entry script runs pages; it is not imported
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(n for n in ('bt_engine', 'bt_core', 'bt_server', 'bt_data', 'bt_analysis')"
        " if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
