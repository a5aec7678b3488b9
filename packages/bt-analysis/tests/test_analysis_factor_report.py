"""MultiFactorAnalyzer, the factor tear sheet (incl. headless Chromium) and the examples."""

from __future__ import annotations

import json
import pathlib
import re
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bt_analysis.factor import (
    CrossSectionFactorBacktester,
    FactorInputError,
    MultiFactorAnalyzer,
    factor_ic,
    factor_tear_sheet,
    ic_summary,
    prepare_factor_data,
)

REPO = pathlib.Path(__file__).resolve().parents[3]


def make_universe(seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    n_dates, n_assets = 90, 30
    dates = pd.bdate_range("2022-03-01", periods=n_dates)
    assets = [f"E{i:02d}" for i in range(n_assets)]
    rets = rng.normal(0, 0.015, (n_dates, n_assets))
    prices = pd.DataFrame(30 * np.exp(np.cumsum(rets, 0)), index=dates, columns=assets)
    nxt = pd.DataFrame(np.vstack([rets[1:], np.zeros((1, n_assets))]), index=dates, columns=assets)
    signal = nxt + rng.normal(0, 0.01, nxt.shape)
    factors = {
        "signal": signal,
        "signal_cubed": signal**3,  # same ranks as signal
        "weak": nxt + rng.normal(0, 0.05, nxt.shape),
        "noise": pd.DataFrame(rng.normal(size=nxt.shape), index=dates, columns=assets),
    }
    return prices, factors


@pytest.fixture(scope="module")
def mfa() -> MultiFactorAnalyzer:
    prices, factors = make_universe()
    return MultiFactorAnalyzer(factors, prices, periods=(1, 3), quantiles=5)


def test_summary_matches_single_factor_functions(mfa: MultiFactorAnalyzer) -> None:
    s = mfa.summary()
    fd = mfa.factor_data("weak")
    ref = ic_summary(factor_ic(fd, "spearman")).loc["fwd_1"]
    assert s.loc["weak", "rank_ic_mean"] == pytest.approx(ref["ic_mean"], abs=1e-15)
    assert s.loc["weak", "rank_icir"] == pytest.approx(ref["icir"], abs=1e-15)
    ic = factor_ic(fd, "spearman")["fwd_1"].dropna()
    assert s.loc["weak", "stability"] == pytest.approx((ic > 0).mean())
    assert s.loc["signal", "monotonicity"] == pytest.approx(1.0)


def test_ranking_puts_signal_first_and_sorts_numerically(mfa: MultiFactorAnalyzer) -> None:
    r = mfa.rank()
    assert list(r["rank"]) == [1, 2, 3, 4]
    assert set(r.index[:2]) == {"signal", "signal_cubed"}
    assert r.index[-1] == "noise"
    assert (np.diff(r["score"].to_numpy()) <= 0).all()
    assert r["score"].between(0, 1).all()
    only_turnover = mfa.rank({"turnover": 1.0})
    assert (np.diff(only_turnover["turnover"].to_numpy()) >= 0).all()
    with pytest.raises(FactorInputError, match="unknown criteria"):
        mfa.rank({"sharpe": 1.0})


def test_correlation_matrix(mfa: MultiFactorAnalyzer) -> None:
    c = mfa.correlation()
    np.testing.assert_allclose(c.to_numpy(), c.to_numpy().T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert c.loc["signal", "signal_cubed"] == pytest.approx(1.0, abs=1e-12)
    assert abs(c.loc["signal", "noise"]) < 0.1
    assert (
        c.loc["signal", "signal_cubed"] > mfa.correlation("pearson").loc["signal", "signal_cubed"]
    )


def test_exports_are_strict_json_and_csv(mfa: MultiFactorAnalyzer, tmp_path: pathlib.Path) -> None:
    path = mfa.to_json(tmp_path / "f.json")
    data = json.loads(path.read_text())  # allow_nan=False on write: no NaN/inf
    assert set(data["ranking"]) == set(mfa.names)
    assert data["ranking"]["signal"]["rank"] in (1, 2)
    files = mfa.to_csv(tmp_path / "csv")
    ranking = pd.read_csv(files["ranking"], index_col="factor")
    assert list(ranking.index) == list(mfa.rank().index)
    ic = pd.read_csv(files["ic"], index_col=["factor", "period"])
    assert len(ic) == 4 * 2


def test_bad_factor_is_named() -> None:
    prices, factors = make_universe()
    factors["broken"] = factors["noise"].iloc[::-1]
    with pytest.raises(FactorInputError, match="broken"):
        MultiFactorAnalyzer(factors, prices)


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    pytest.importorskip("plotly")
    prices, factors = make_universe()
    fd = prepare_factor_data(factors["weak"], prices, periods=(1, 3), quantiles=5)
    bt = CrossSectionFactorBacktester(factors["weak"], prices, rebalance=2, cost_bps=5).run()
    path = tmp_path_factory.mktemp("sheet") / "factor.html"
    factor_tear_sheet(fd, path, title="weak <factor>", backtest=bt)
    return path


def test_tear_sheet_is_self_contained(sheet: pathlib.Path) -> None:
    text = sheet.read_text()
    assert "weak &lt;factor&gt;" in text  # title escaped
    for div in ("ic_series", "ic_hist", "quantile_returns", "cumulative", "turnover"):
        assert f"id='{div}'" in text
    assert not re.search(r"<script[^>]*\ssrc=", text)  # plotly.js is inlined, nothing fetched
    assert text.count('class="plotly-graph-div"') == 5
    assert "Quantile portfolio backtest" in text


def test_tear_sheet_without_plotly_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    prices, factors = make_universe()
    fd = prepare_factor_data(factors["weak"], prices, periods=(1,), quantiles=3)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"bt-analysis\[report\]"):
        factor_tear_sheet(fd)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian package chromium is not installed")
def test_headless_chromium_renders_every_factor_chart(sheet: pathlib.Path) -> None:
    browser = _chromium()
    assert browser
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=http://127.0.0.1:9",  # no network: the page must be self-contained
            "--virtual-time-budget=15000",
            "--dump-dom",
            sheet.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    # plotly replaces each placeholder with rendered SVG layers once it has drawn
    assert dom.count('class="main-svg"') >= 5 * 2
    names = ("ic_series", "ic_hist", "quantile_returns", "cumulative", "turnover")
    starts = [dom.index(f'id="{div}"') for div in names] + [len(dom)]
    for div, a, b in zip(names, starts[:-1], starts[1:], strict=True):
        assert "main-svg" in dom[a:b], f"chart {div} was not drawn"


@pytest.mark.parametrize("script", ["run_cs_momentum_sample.py", "run_cs_quantile_portfolios.py"])
def test_examples_run(
    script: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # in-process (runpy) to skip a fresh interpreter's pandas/scipy import time
    examples = REPO / "examples"
    monkeypatch.syspath_prepend(str(examples))
    argv = [script, "--out-dir", str(tmp_path), "--assets", "60", "--dates", "160"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(examples / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "long_short" in out or "factor ranking" in out
    produced = {p.name for p in tmp_path.iterdir()}
    expected = {
        "run_cs_momentum_sample.py": {"factor_ranking.csv", "factors.json"},
        "run_cs_quantile_portfolios.py": {"quantile_equity.csv", "quantile_backtest.json"},
    }[script]
    assert expected <= produced
    for name in produced:
        if name.endswith(".json"):
            json.loads((tmp_path / name).read_text())
