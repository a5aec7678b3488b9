"""The built bt-analysis wheel works alone: installed into a fresh virtual environment with only
its declared dependencies (numpy, pandas, scipy; no engine, no bt-core, no plotly), it computes
performance metrics and a factor analysis equal to the workspace's.

Builds with ``uv build --package bt-analysis`` and installs with ``uv venv`` + ``uv pip install``,
first offline from the uv cache (fast, no network), then online if the cache lacks something.
Skipped only when the ``uv`` executable is not available.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

import bt_analysis as ba
from bt_analysis.factor import factor_ic, prepare_factor_data

UV = shutil.which("uv")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(UV is None, reason="the uv executable is not on PATH")

# Runs inside the fresh venv; prints one JSON document.
PROBE = r"""
import importlib.util, json, sys
import numpy as np, pandas as pd
import bt_analysis as ba
from bt_analysis.factor import factor_ic, prepare_factor_data

OTHERS = ("bt_engine", "bt_core", "bt_data", "plotly")
absent = {m: importlib.util.find_spec(m) is None for m in OTHERS}
rng = np.random.default_rng(11)
index = pd.bdate_range("2022-01-03", periods=300, tz="UTC")
equity = pd.Series(1e6 * np.exp(np.cumsum(rng.normal(4e-4, 0.01, index.size))), index=index)
metrics = ba.performance_metrics(equity)

assets = [f"A{i:02d}" for i in range(20)]
prices = pd.DataFrame(
    100 * np.exp(np.cumsum(rng.normal(0, 0.02, (index.size, len(assets))), axis=0)),
    index=index, columns=assets,
)
factor = prices.pct_change(5).iloc[5:-10]
fd = prepare_factor_data(factor, prices, periods=(1, 5), quantiles=5)
ic = factor_ic(fd)
try:
    ba.report(equity, path="never.html")
    report_error = None
except ImportError as exc:
    report_error = str(exc)
print(json.dumps({
    "file": ba.__file__,
    "absent": absent,
    "metrics": metrics,
    "ic_mean": {str(c): float(ic[c].mean()) for c in ic.columns},
    "report_error": report_error,
}))
"""


def _uv(args: list[str], env: dict[str, str]) -> None:
    """Run uv offline (cache only) first, then online if the cache was not enough."""
    assert UV is not None
    offline = subprocess.run([UV, *args, "--offline"], env=env, capture_output=True, text=True)
    if offline.returncode == 0:
        return
    online = subprocess.run([UV, *args], env=env, capture_output=True, text=True)
    assert online.returncode == 0, (
        f"uv {' '.join(args)} failed offline:\n{offline.stderr}\nand online:\n{online.stderr}"
    )


def _expected_in_workspace() -> dict:
    rng = np.random.default_rng(11)
    index = pd.bdate_range("2022-01-03", periods=300, tz="UTC")
    equity = pd.Series(1e6 * np.exp(np.cumsum(rng.normal(4e-4, 0.01, index.size))), index=index)
    assets = [f"A{i:02d}" for i in range(20)]
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.02, (index.size, len(assets))), axis=0)),
        index=index,
        columns=assets,
    )
    fd = prepare_factor_data(prices.pct_change(5).iloc[5:-10], prices, periods=(1, 5))
    ic = factor_ic(fd)
    return {
        "metrics": ba.performance_metrics(equity),
        "ic_mean": {str(c): float(ic[c].mean()) for c in ic.columns},
    }


def test_wheel_installs_and_runs_alone(tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    dist = tmp_path / "dist"
    _uv(["build", "--package", "bt-analysis", "--wheel", "--out-dir", str(dist), "-q"], env)
    wheels = list(dist.glob("bt_analysis-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "bt_analysis/py.typed" in names
    assert "bt_analysis/metrics.py" in names and "bt_analysis/factor/__init__.py" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]

    venv = tmp_path / "venv"
    _uv(["venv", str(venv), "--python", sys.executable, "-q"], env)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _uv(["pip", "install", "--python", str(python), str(wheels[0]), "-q"], env)

    probe = subprocess.run(
        [str(python), "-c", PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr
    got = json.loads(probe.stdout)
    assert pathlib.Path(got["file"]).is_relative_to(venv), got["file"]
    assert got["absent"] == {"bt_engine": True, "bt_core": True, "bt_data": True, "plotly": True}
    assert "bt-analysis[report]" in got["report_error"]
    expected = _expected_in_workspace()
    assert got["metrics"].keys() == expected["metrics"].keys()
    for key, value in expected["metrics"].items():
        if isinstance(value, float):
            assert got["metrics"][key] == pytest.approx(value, rel=1e-12), key
        else:
            assert got["metrics"][key] == value, key
    assert got["ic_mean"] == pytest.approx(expected["ic_mean"], rel=1e-12)
    assert len(got["ic_mean"]) == 2
