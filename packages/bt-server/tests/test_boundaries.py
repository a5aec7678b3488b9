"""DESIGN.md's narrow interfaces, for bt-server: it builds on bt-core, bt-data and bt-analysis
through their public modules; none of them depends on it (bt-core's CLI only mounts
`bt serve` when bt-server is installed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SERVER = ROOT / "packages/bt-server/src/bt_server"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_bt_server_uses_only_public_modules_of_the_others() -> None:
    private = {
        f"{f.relative_to(SERVER).as_posix()}: {m}"
        for f in SERVER.rglob("*.py")
        for m in _imports(f)
        if m.split(".")[0] in ("bt_core", "bt_data", "bt_analysis", "bt_engine")
        and any(part.startswith("_") for part in m.split(".")[1:])
    }
    assert private == set()


def test_no_other_package_imports_bt_server_but_the_cli_mount() -> None:
    users = sorted(
        f.relative_to(ROOT).as_posix()
        for pkg in ("bt-core/src", "bt-data/src", "bt-analysis/src", "engine-rs/python")
        for f in (ROOT / "packages" / pkg).rglob("*.py")
        if any(m.split(".")[0] == "bt_server" for m in _imports(f))
    )
    assert users == ["packages/bt-core/src/bt_core/cli.py"]
