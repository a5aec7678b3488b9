"""bt-analysis stands alone: it never imports the engine, bt-core or bt-data, and importing it
does not load plotly (an optional extra used only by the HTML reports)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import bt_analysis

SRC = pathlib.Path(bt_analysis.__file__).resolve().parent
FORBIDDEN = {"bt_engine", "bt_core", "bt_data", "bt_server"}


def imported_roots(path: pathlib.Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_imports_the_engine_or_other_packages() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) >= 8
    offenders = {str(f.relative_to(SRC)): imported_roots(f) & FORBIDDEN for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_runtime_imports_are_numpy_pandas_scipy_and_stdlib_only() -> None:
    allowed = {"numpy", "pandas", "scipy", "bt_analysis", "plotly", "__future__"}
    stdlib = set(sys.stdlib_module_names)
    extra = {
        str(f.relative_to(SRC)): imported_roots(f) - allowed - stdlib for f in SRC.rglob("*.py")
    }
    assert {k: v for k, v in extra.items() if v} == {}


def test_importing_bt_analysis_does_not_load_plotly_or_the_engine() -> None:
    code = (
        "import sys, bt_analysis\n"
        "loaded = sorted(m for m in ('plotly', 'bt_engine', 'bt_core', 'bt_data') "
        "if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
