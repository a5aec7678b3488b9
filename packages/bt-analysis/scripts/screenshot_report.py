"""Prove that the strategy tear sheet renders: build one from generated data, open it in
headless Chromium (Debian package ``chromium``) and save a full-page PNG.

    uv run python packages/bt-analysis/scripts/screenshot_report.py --out-dir /tmp/tearsheet

Prints the HTML and PNG paths. The page needs no network: plotly.js is inlined, and the
browser is started with networking pointed at an unroutable proxy to prove it.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd

import bt_analysis as ba


def demo_inputs(seed: int = 7) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """Three years of weekday bars: a random-walk benchmark, a strategy equity curve and
    fills of a simple alternating long/short trader, turned into round trips."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2021-01-01", periods=756, tz="UTC")
    bench = pd.Series(100 * np.exp(np.cumsum(rng.normal(0.0003, 0.011, index.size))), index=index)
    strat = 1_000_000 * np.exp(np.cumsum(rng.normal(0.0005, 0.009, index.size)))
    equity = pd.Series(strat, index=index)
    when = index[::15]
    fills = pd.DataFrame(
        {
            "order_id": np.arange(when.size),
            "symbol": np.where(np.arange(when.size) % 3 == 0, "600000.SH", "000001.SZ"),
            "datetime": when,
            "side": np.where(np.arange(when.size) % 2 == 0, "buy", "sell"),
            "size": 100.0 * (1 + np.arange(when.size) % 4),
            "price": bench.loc[when].to_numpy(),
            "commission": 5.0,
        }
    )
    return equity, ba.round_trips(fills), bench


def screenshot(html_path: pathlib.Path, png_path: pathlib.Path, height: int = 5200) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",  # running as root in a container
        "--disable-gpu",
        "--hide-scrollbars",
        "--proxy-server=http://127.0.0.1:9",  # any network fetch would fail: page is offline
        f"--window-size=1280,{height}",
        "--virtual-time-budget=15000",  # let plotly finish drawing before the capture
        f"--screenshot={png_path}",
        html_path.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=180)
    if not png_path.exists() or png_path.stat().st_size == 0:
        sys.exit(f"chromium did not write {png_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("tearsheet_out"))
    parser.add_argument("--height", type=int, default=5200)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    equity, trades, bench = demo_inputs()
    html_path = ba.report(
        equity, trades, benchmark=bench, path=args.out_dir / "tearsheet.html", title="Demo"
    )
    png_path = args.out_dir / "tearsheet.png"
    screenshot(html_path, png_path, args.height)
    print(html_path)
    print(png_path)


if __name__ == "__main__":
    main()
