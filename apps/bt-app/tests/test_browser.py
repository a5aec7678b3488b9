"""The app in a real browser: ``bt app --with-server`` as a real process (the app and its own
bt-server on free ports), Debian's chromium driven by selenium through the system
chromedriver (no browser download). Submits a run through the UI, waits for it, opens its
detail page, checks the plotly charts drew (SVG), that Streamlit showed no exception and the
browser logged no error; screenshots are saved and their folder printed."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bt_app.cli import free_port

BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT = 90.0


def _need_browser() -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    if DRIVER is None:
        pytest.skip("no chromedriver on this machine (Debian: apt-get install chromium-driver)")
    if not (BIN / "bt").exists():
        pytest.skip("the bt command is not installed in this environment")


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    _need_browser()
    port, server_port = free_port(), free_port()
    log = tmp_path / "app.log"
    out = open(log, "ab")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [
            str(BIN / "bt"),
            "app",
            "--with-server",
            "--port",
            str(port),
            "--server-port",
            str(server_port),
            "--workers",
            "1",
            "--data-dir",
            str(tmp_path / "server"),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = f"http://127.0.0.1:{server_port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the app did not start: {log.read_text()}"
            time.sleep(0.3)
        assert httpx.get(f"{server}/health", timeout=5).json()["status"] == "ok"
        yield url, server, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(10)
        out.close()
    assert code == 0, log.read_text()[-3000:]
    # Stopping the app stopped its server too.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server}/health", timeout=2)


def _driver(downloads: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,2400",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)


def _wait(driver, what: str, predicate, timeout: float = WAIT):  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Streamlit redraws elements as the script reruns: a stale one is looked up again.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.3, ignored_exceptions=(StaleElementReferenceException,)
    ).until(lambda d: predicate(d), message=f"waiting for {what}")


def _button(driver, text: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    for b in driver.find_elements(By.CSS_SELECTOR, "button"):
        if b.text.strip() == text and b.is_enabled():
            return b
    return None


def _click(driver, text: str) -> bool:  # type: ignore[no-untyped-def]
    button = _button(driver, text)
    if button is None:
        return False
    button.click()
    return True


def _no_exception(driver) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    shown = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert shown == [], [e.text for e in shown]


def test_run_in_the_browser(app_process: tuple[str, str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    url, _, log = app_process
    shots = tmp_path / "screens"
    shots.mkdir()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _driver(downloads)
    try:
        driver.get(url)  # the New run page is the default one
        _wait(driver, "the Submit run button", lambda d: _button(d, "Submit run"))
        # The form was built from the server: its strategies and the sample dataset.
        _wait(
            driver,
            "the sample dataset in the form",
            lambda d: "sample · 1304 bars" in d.page_source,
        )
        assert "sma_cross (builtin)" in driver.page_source
        driver.save_screenshot(str(shots / "1-new-run.png"))
        _wait(driver, "a click on Submit run", lambda d: _click(d, "Submit run"))

        def finished(d):  # type: ignore[no-untyped-def]
            for alert in d.find_elements(By.CSS_SELECTOR, "[data-testid='stAlert']"):
                if "finished:" in alert.text:
                    return alert
            return None

        alert = _wait(driver, "the run to finish", finished)
        assert "Sharpe" in alert.text
        _no_exception(driver)
        driver.save_screenshot(str(shots / "2-run-finished.png"))

        def open_link(d):  # type: ignore[no-untyped-def]
            for a in d.find_elements(By.TAG_NAME, "a"):
                found = re.search(r"Open run ([0-9a-f]{8})", a.text)
                if found:
                    a.click()
                    return found
            return None

        run_id = _wait(driver, "the link to the run", open_link)
        _wait(driver, "the detail page", lambda d: "Equity and drawdown" in d.page_source)

        def drawn(d):  # type: ignore[no-untyped-def]
            plots = d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
            with_svg = [p for p in plots if p.find_elements(By.CSS_SELECTOR, "svg.main-svg")]
            return with_svg if len(with_svg) >= 3 else None

        plots = _wait(driver, "three plotly charts with their SVG", drawn)
        assert "run=" in driver.current_url and run_id.group(1) in driver.current_url
        # The equity chart drew its lines, the monthly heatmap its cells.
        assert plots[0].find_elements(By.CSS_SELECTOR, "g.scatterlayer path.js-line")
        assert driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot g.hm, image")
        _no_exception(driver)
        metrics = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']")
        assert len(metrics) == 6 and "Total return" in metrics[0].text
        driver.save_screenshot(str(shots / "3-run-detail.png"))
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight / 2)")
        scroller = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMain']")
        if scroller:
            driver.execute_script("arguments[0].scrollTop = 1500", scroller[0])
        time.sleep(0.5)
        driver.save_screenshot(str(shots / "4-run-detail-lower.png"))

        # A download is fetched from the server when it is clicked: the run's trades as CSV.
        n_trades = int(metrics[5].text.split()[-1])
        _wait(driver, "a click on trades.csv", lambda d: _click(d, "trades.csv"))
        saved = _wait(driver, "the downloaded file", lambda d: list(downloads.glob("*trades.csv")))
        trades = pd.read_csv(saved[0])
        assert len(trades) == n_trades and {"entry_time", "exit_price"} <= set(trades.columns)

        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == [], severe
    finally:
        driver.save_screenshot(str(shots / "last.png"))
        driver.quit()
        print(f"\nscreenshots in {shots}; app log {log}")
