"""Optional dependencies: each feature that needs one says which bt-core extra installs it, and
the extras named in those messages exist in bt-core's pyproject.toml with that package in them.

A missing package is simulated by ``sys.modules[name] = None`` (then ``import name`` raises
ImportError), so these run in the full dev environment; the wheelhouse CI (`.ci/wheels`) runs the
same features for real in an environment without the extras.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from packaging.requirements import Requirement

from bt_core import Backtest, load_data
from bt_core._optional import EXTRAS, require

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def hide(monkeypatch: pytest.MonkeyPatch, top: str) -> None:
    for name in list(sys.modules):
        if name == top or name.startswith(top + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, top, None)


@pytest.fixture(scope="module")
def bt(make_ohlc: Any) -> Backtest:
    return Backtest(load_data(make_ohlc(300, seed=5)), "sma_cross")


def test_every_extra_in_a_message_installs_its_package() -> None:
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for extra, package in EXTRAS.items():
        assert extra in declared, extra
        names = {Requirement(r).name for r in declared[extra]}
        assert package in names, (extra, names)


def test_optuna_is_not_a_base_dependency() -> None:
    base = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert "optuna" not in {Requirement(r).name for r in base}


def test_require_returns_the_module_or_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("json", extra="report", feature="x").__name__ == "json"
    hide(monkeypatch, "plotly")
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[report]'")) as e:
        require("plotly.graph_objects", extra="report", feature="the thing")
    assert e.value.name == "plotly"
    assert str(e.value).startswith("the thing needs plotly")
    with pytest.raises(ValueError, match="unknown bt-core extra 'plots'"):
        require("json", extra="plots", feature="x")


def test_report_without_plotly_names_the_extra_and_writes_nothing(
    bt: Backtest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = bt.run(fast=5, slow=20)
    hide(monkeypatch, "plotly")
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[report]'")):
        result.report(tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_optimizer_report_without_plotly_names_the_extra(
    bt: Backtest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    res = bt.optimize({"fast": [5, 10], "slow": [20]}, progress=False)
    hide(monkeypatch, "plotly")
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[report]'")):
        res.report(tmp_path / "o.html")


def test_bayes_without_optuna_names_the_extra_grid_needs_none(
    bt: Backtest, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "optuna")
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[optimize]'")):
        bt.optimize({"fast": [5, 10], "slow": [20]}, method="bayes", n_trials=2, progress=False)
    grid = bt.optimize({"fast": [5, 10], "slow": [20]}, progress=False)
    assert len(grid.table) == 2


def test_ray_backend_without_ray_names_the_extra(
    bt: Backtest, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "ray")
    with pytest.raises(ImportError, match=re.escape("pip install 'bt-core[ray]'")):
        bt.optimize({"fast": [5, 10], "slow": [20]}, backend="ray", progress=False)
