"""The narrow interfaces of DESIGN.md: who may import whom, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
