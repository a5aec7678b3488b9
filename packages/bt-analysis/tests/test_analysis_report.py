"""The strategy tear sheet: self-contained HTML, its sections, the monthly table, the optional
plotly dependency, and that headless Chromium actually draws the charts offline."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import bt_analysis as ba

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
SECTIONS = [
    "Performance metrics",
    "Equity vs benchmark",
    "Underwater (drawdown from the running peak)",
    "Monthly returns (%)",
    "Rolling Sharpe and volatility (126 bars)",
    "Return distribution",
    "Worst drawdowns",
    "Trades by symbol",
    "Trades",
]


def load_script():
    spec = importlib.util.spec_from_file_location("bt_analysis_screenshot_report", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> pathlib.Path:
    equity, trades, bench = load_script().demo_inputs()
    out = tmp_path_factory.mktemp("tearsheet") / "sub" / "report.html"
    path = ba.report(equity, trades, benchmark=bench, path=out, title="Demo <&> run")
    assert path == out
    return path


def test_report_is_one_self_contained_file(demo_report: pathlib.Path) -> None:
    text = demo_report.read_text(encoding="utf-8")
    assert "<script src" not in text and "cdn.plot.ly" not in text.split("</script>", 1)[1]
    assert len(re.findall(r"<script", text)) >= 6  # plotly.js inline + one per chart
    assert "Plotly.newPlot" in text
    assert "Demo &lt;&amp;&gt; run" in text  # the title is escaped
    for heading in SECTIONS:
        assert f"<h2>{heading}</h2>" in text, heading
    assert "profit_factor" in text and "max_drawdown_duration_days" in text


def test_trades_table_is_truncated_with_a_note(tmp_path: pathlib.Path) -> None:
    equity, trades, _ = load_script().demo_inputs()
    path = ba.report(equity, trades, path=tmp_path / "r.html", max_trades=3)
    text = path.read_text(encoding="utf-8")
    assert f"first 3 of {len(trades)} trades" in text
    assert "Equity vs benchmark" not in text and "<h2>Equity</h2>" in text


def test_monthly_returns_by_hand() -> None:
    index = pd.DatetimeIndex(
        ["2023-12-28", "2023-12-29", "2024-01-15", "2024-01-31", "2024-03-01"], tz="UTC"
    )
    eq = pd.Series([100.0, 110.0, 99.0, 121.0, 133.1], index=index)
    table = ba.monthly_returns(eq)
    assert table.columns.tolist() == list(range(1, 13))
    assert table.index.tolist() == [2023, 2024]
    assert table.loc[2023, 12] == pytest.approx(0.10)  # first month: from the first equity
    assert table.loc[2024, 1] == pytest.approx(121 / 110 - 1)
    assert np.isnan(table.loc[2024, 2])  # no bar in February
    assert table.loc[2024, 3] == pytest.approx(0.10)


def test_missing_plotly_gives_a_clear_import_error(monkeypatch, tmp_path) -> None:
    for name in list(sys.modules):
        if name == "plotly" or name.startswith("plotly."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)
    equity = pd.Series([1.0, 1.1, 1.2], index=pd.bdate_range("2024-01-01", periods=3))
    with pytest.raises(ImportError, match=r"bt-analysis\[report\]"):
        ba.report(equity, path=tmp_path / "r.html")
    # the metrics themselves do not need plotly
    assert ba.performance_metrics(equity)["n_bars"] == 3


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian package chromium is not installed")
def test_headless_chromium_draws_every_chart_offline(demo_report: pathlib.Path, tmp_path) -> None:
    browser = _chromium()
    assert browser
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=http://127.0.0.1:9",  # no network: everything must be inline
            "--virtual-time-budget=15000",
            "--dump-dom",
            demo_report.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    # plotly replaces each chart's empty div by an <svg class="main-svg"> once it has drawn
    drawn = re.findall(r'<div id="[^"]+" class="plotly-graph-div js-plotly-plot"', dom)
    assert len(drawn) == 5, f"{len(drawn)} of 5 charts drawn"
    assert dom.count('class="main-svg"') >= 5

    png = tmp_path / "shot.png"
    load_script().screenshot(demo_report, png, height=2400)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400)
    # A blank page of that size compresses to a few kB; drawn charts and tables do not.
    assert len(data) > 100_000


def test_long_curves_are_thinned_for_plotting_only() -> None:
    from bt_analysis.tearsheet import _thin

    index = pd.date_range("2024-01-01", periods=10, freq="min", tz="UTC")
    values = pd.Series([5.0, 1.0, 4.0, 3.0, 9.0, 0.0, 8.0, 7.0, 2.0, 6.0], index=index)
    last = _thin(values, "last", 3)  # buckets of bars 0-3, 4-6, 7-9
    assert last.index.tolist() == [index[3], index[6], index[9]]
    assert last.tolist() == [3.0, 8.0, 6.0]
    assert _thin(values, "min", 3).tolist() == [1.0, 0.0, 2.0]
    assert _thin(values, "last", 10) is values


def test_a_minute_bar_run_gives_a_small_page(tmp_path: pathlib.Path) -> None:
    """150,000 one-minute bars: statistics on every bar, charts on at most max_points."""
    rng = np.random.default_rng(5)
    index = pd.date_range("2024-01-01", periods=150_000, freq="min", tz="UTC")
    equity = pd.Series(1e6 * np.exp(np.cumsum(rng.normal(0, 1e-4, index.size))), index=index)
    small = ba.report_html(equity, max_points=2000)
    from plotly.offline import get_plotlyjs

    assert len(small) - len(get_plotlyjs()) < 1_500_000
    assert f"{150_000:,}" in small  # n_bars in the metrics table
    with pytest.raises(ValueError, match="max_points"):
        ba.report_html(equity, max_points=1)
