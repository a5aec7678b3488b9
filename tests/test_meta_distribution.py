"""The meta-distribution pyrust-bt names every part of the workspace, with the distribution
names the parts really have, and its [all] extra installs every other extra."""

from __future__ import annotations

from pathlib import Path

import tomllib
from packaging.requirements import Requirement

import pyrust_bt

ROOT = Path(__file__).resolve().parents[1]
META = ROOT / "packages" / "pyrust-bt" / "pyproject.toml"


def project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


def test_parts_are_the_workspace_members() -> None:
    members = {
        project(p)["name"]
        for p in [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("apps/*/pyproject.toml")]
    }
    assert set(pyrust_bt.PARTS.values()) == members - {"pyrust-bt"}
    for module, dist in pyrust_bt.PARTS.items():
        assert any(ROOT.glob(f"*/*/src/{module}")) or module == "bt_engine", (module, dist)


def test_version_matches_the_pyproject() -> None:
    assert pyrust_bt.__version__ == project(META)["version"]


def test_extras_name_real_distributions_and_all_covers_them() -> None:
    meta = project(META)
    extras = meta["optional-dependencies"]
    assert set(extras) == {"data", "analysis", "report", "server", "app", "optimize", "ray", "all"}
    known = set(pyrust_bt.PARTS.values())
    for name, reqs in extras.items():
        for r in map(Requirement, reqs):
            assert r.name in known | {"pyrust-bt"}, (name, r.name)
    (self_ref,) = [Requirement(r) for r in extras["all"] if Requirement(r).name == "pyrust-bt"]
    assert self_ref.extras == set(extras) - {"all"}


def test_installed_reports_every_part() -> None:
    versions = pyrust_bt.installed()
    assert set(versions) == set(pyrust_bt.PARTS.values())
    assert versions["bt-core"] == pyrust_bt.__version__


def test_every_distribution_has_its_readme_changelog_and_typing_marker() -> None:
    missing = []
    for pyproject in [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("apps/*/pyproject.toml")]:
        d = pyproject.parent
        for name in ("README.md", "CHANGELOG.md"):
            if not (d / name).is_file():
                missing.append(str((d / name).relative_to(ROOT)))
        if not list(d.glob("**/py.typed")):
            missing.append(f"{d.relative_to(ROOT)}: py.typed")
        # Every dependency is bounded above (a new major release is not assumed compatible).
        for req in project(pyproject).get("dependencies", []):
            spec = Requirement(req).specifier
            if not any(s.operator in ("<", "<=", "==", "~=") for s in spec):
                missing.append(f"{d.relative_to(ROOT)}: {req} has no upper bound")
    assert missing == []
