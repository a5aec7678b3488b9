"""Every page of the app driven by streamlit's AppTest against the live test server (real
HTTP, real worker processes): what a user does on each page and what they see."""

from __future__ import annotations

import datetime as dt
import io
import time

import numpy as np
import pandas as pd
import pytest
from appkit import APP, MAIN, SAMPLE, Live
from streamlit.testing.v1 import AppTest

from bt_app.client import ApiError

TIMEOUT = 60


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(APP / "views" / f"{name}.py"), default_timeout=TIMEOUT)
    return at


def clean(at: AppTest) -> None:
    """No exception element (no traceback on screen) and no error message."""
    assert [e.value for e in at.exception] == []
    assert [e.value for e in at.error] == []


def charts(at: AppTest) -> list:  # type: ignore[type-arg]
    return list(at.get("plotly_chart"))


def run_sma(live: Live, **params: int) -> dict:  # type: ignore[type-arg]
    with live.client() as c:
        rid = c.submit_run(
            {
                "strategy": "sma_cross",
                "params": params or {"fast": 5, "slow": 20},
                "data": {"dataset_id": live.sample_id},
            }
        )
        job = c.wait(rid, timeout=TIMEOUT)
    assert job["status"] == "succeeded", job
    return job


def test_navigation_reaches_every_page(live: Live) -> None:
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.run()
    clean(at)
    assert at.header[0].value == "New run"
    for view, title in [
        ("runs", "Runs"),
        ("run_detail", "Run detail"),
        ("compare", "Compare runs"),
        ("optimise", "Optimise"),
        ("data", "Data"),
        ("factors", "Factor analysis"),
    ]:
        at.switch_page(f"views/{view}.py").run()
        assert [e.value for e in at.exception] == [], view
        assert at.header[0].value == title
    # The sidebar says which server it reached.
    assert any("bt-server" in c.value for c in at.sidebar.caption)


def test_new_run_submit_follow_and_open(live: Live) -> None:
    at = page("new_run")
    at.run()
    clean(at)
    at.selectbox(key="new.strategy").select("sma_cross")
    at.number_input(key="new.params.sma_cross.fast").set_value(7)
    at.number_input(key="new.params.sma_cross.slow").set_value(25)
    at.selectbox(key="new.data.dataset_pick").select(live.sample_id)
    at.number_input(key="new.config.commission").set_value(0.0005)
    at.text_input(key="new.tags").input("apptest, first")
    at.button(key="new.submit").click().run(timeout=90)
    clean(at)
    assert "finished" in at.success[0].value, at.success
    run_id = at.session_state["new.last_run"]
    with live.client() as c:
        job = c.run(run_id)
    # What was shown is what the server computed, with the widgets' values.
    assert job["params"]["fast"] == 7 and job["params"]["slow"] == 25
    assert job["config"]["commission"] == pytest.approx(0.0005)
    assert job["tags"] == ["apptest", "first"]
    assert f"Trades {job['stats']['n_trades']}" in at.success[0].value
    assert at.get("progress")[0].proto.value == 100

    # ... and the detail page of that run.
    detail = page("run_detail")
    detail.query_params["run"] = run_id
    detail.run()
    clean(detail)
    metrics = {m.label: m.value for m in detail.metric}
    assert metrics["Trades"] == str(job["stats"]["n_trades"])
    assert metrics["Total return"] == f"{job['stats']['total_return']:.2%}"
    assert len(charts(detail)) == 3  # equity + drawdown, price with markers, monthly heatmap
    frames = [d.value for d in detail.dataframe]
    trades = next(f for f in frames if "entry_price" in f.columns)
    assert len(trades) == job["stats"]["n_trades"]
    assert any("reason_code" in f.columns for f in frames)  # the orders, with reasons
    labels = [b.proto.label for b in detail.get("download_button")]
    assert {"trades.csv", "trades.parquet", "equity.csv", "report.html"} <= set(labels)


def test_new_run_on_the_store(live: Live) -> None:
    at = page("new_run")
    at.run()
    at.radio(key="new.data.source").set_value("Market data store").run()
    clean(at)
    at.multiselect(key="new.data.symbols").set_value(["510300.SH", "600000.SH"])
    at.date_input(key="new.data.start").set_value(dt.date(2020, 1, 1))
    at.date_input(key="new.data.end").set_value(dt.date(2021, 12, 31))
    at.button(key="new.submit").click().run(timeout=90)
    clean(at)
    assert "finished" in at.success[0].value
    with live.client() as c:
        job = c.run(at.session_state["new.last_run"])
    assert job["data"]["source"] == "store"
    assert job["data"]["symbols"] == ["510300.SH", "600000.SH"]
    assert job["stats"]["start"].startswith("2020-01") and job["stats"]["end"].startswith("2021-12")
    # Its detail page draws the symbol picked, with that symbol's trades.
    detail = page("run_detail")
    detail.query_params["run"] = job["id"]
    detail.run()
    clean(detail)
    assert detail.selectbox(key="detail.symbol").options == ["510300.SH", "600000.SH"]
    detail.selectbox(key="detail.symbol").select("600000.SH").run()
    clean(detail)
    price = charts(detail)[1].proto.spec
    assert "600000.SH" in price and "510300.SH" not in price


def test_invalid_parameter_shows_the_servers_message(live: Live) -> None:
    at = page("new_run")
    at.run()
    at.selectbox(key="new.data.dataset_pick").select(live.sample_id)
    at.number_input(key="new.config.cash").set_value(-1000.0)
    at.button(key="new.submit").click().run()
    assert [e.value for e in at.exception] == []
    # The same request, straight to the server: its answer is what the page shows.
    with live.client() as c, pytest.raises(ApiError) as err:
        c.submit_run(
            {
                "strategy": "sma_cross",
                "params": {"fast": 10, "slow": 30},
                "config": {"cash": -1000.0},
                "data": {"dataset_id": live.sample_id},
            }
        )
    assert err.value.status == 422
    shown = at.error[0].value
    assert "the run was not accepted" in shown and err.value.message in shown
    assert "HTTP 422" in shown and "Traceback" not in shown


def test_a_failing_run_shows_its_error(live: Live) -> None:
    at = page("new_run")
    at.run()
    at.selectbox(key="new.data.dataset_pick").select(live.sample_id)
    # Accepted (the types are right) but the engine refuses fast >= slow when it runs.
    at.number_input(key="new.params.sma_cross.fast").set_value(40)
    at.number_input(key="new.params.sma_cross.slow").set_value(10)
    at.button(key="new.submit").click().run(timeout=90)
    assert [e.value for e in at.exception] == []
    with live.client() as c:
        job = c.run(at.session_state["new.last_run"])
    assert job["status"] == "failed"
    assert job["error"]["message"] in at.error[0].value


def test_runs_page_filters_cancels_and_deletes(live: Live) -> None:
    done = run_sma(live, fast=6, slow=21)
    with live.client() as c:
        slow = c.submit_run(
            {
                "strategy": "app_strategies.Slow",
                "data": {"dataset_id": live.sample_id},
                "tags": ["slow"],
            }
        )
    at = page("runs")
    at.run()
    clean(at)
    table = at.dataframe[0].value
    assert done["id"][:8] in set(table["id"]) and slow[:8] in set(table["id"])
    # Filter by tag: only the slow run.
    at.text_input(key="runs.tag").input("slow").run()
    assert list(at.dataframe[0].value["id"]) == [slow[:8]]
    at.multiselect(key="runs.selected").select(slow).run()
    at.button(key="runs.cancel").click().run()
    clean(at)
    assert any("cancelled" in s.value for s in at.success), [s.value for s in at.success]
    with live.client() as c:
        assert c.run(slow)["status"] == "cancelled"
    # Delete it; the table, read after the action, no longer has it.
    at.multiselect(key="runs.selected").set_value([slow]).run()
    at.button(key="runs.delete").click().run()
    clean(at)
    assert any("deleted" in s.value for s in at.success)
    assert slow[:8] not in set(at.dataframe[0].value["id"]) if at.dataframe else True
    with live.client() as c, pytest.raises(ApiError) as err:
        c.run(slow)
    assert err.value.status == 404
    # Auto-refresh turns on without breaking the page.
    at.toggle(key="runs.auto").set_value(True).run()
    assert [e.value for e in at.exception] == []


def test_compare_two_runs(live: Live) -> None:
    a = run_sma(live, fast=5, slow=20)
    b = run_sma(live, fast=10, slow=40)
    at = page("compare")
    at.session_state["compare.ids"] = [a["id"], b["id"]]
    at.run()
    clean(at)
    assert len(charts(at)) == 1
    overlay = charts(at)[0]
    assert '"name":"' + a["id"][:8] in overlay.proto.spec.replace(" ", "")
    stats, diff = at.dataframe[0].value, at.dataframe[1].value
    assert list(stats.columns) == [f"{a['id'][:8]} sma_cross", f"{b['id'][:8]} sma_cross"]
    assert stats.loc["Trades"].tolist() == [
        str(a["stats"]["n_trades"]),
        str(b["stats"]["n_trades"]),
    ]
    assert set(diff.index) == {"params.fast", "params.slow"}
    assert diff.loc["params.slow"].tolist() == ["20", "40"]


def test_optimise_a_small_grid_and_run_the_best(live: Live) -> None:
    at = page("optimise")
    at.run()
    clean(at)
    at.text_input(key="opt.space.sma_cross.fast").input("5, 10")
    at.text_input(key="opt.space.sma_cross.slow").input("20:30:10")
    at.selectbox(key="opt.data.dataset_pick").select(live.sample_id)
    at.button(key="opt.submit").click().run(timeout=120)
    clean(at)
    opt_id = at.session_state["opt.last"]
    with live.client() as c:
        opt = c.optimization(opt_id)
    assert opt["status"] == "succeeded" and opt["summary"]["n_trials"] == 4
    best = opt["summary"]["best_params"]
    assert all(f"{k}={v}" in at.success[0].value for k, v in best.items())
    assert len(charts(at)) == 1  # the heatmap of two parameters
    trials = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert len(trials) == 4 and set(trials["fast"]) == {5, 10} and set(trials["slow"]) == {20, 30}
    at.button(key="opt.run_best").click().run()
    clean(at)
    rid = at.session_state["detail.run"]
    with live.client() as c:
        job = c.wait(rid, timeout=TIMEOUT)
    assert job["params"]["fast"] == best["fast"] and job["params"]["slow"] == best["slow"]
    assert job["stats"]["sharpe"] == pytest.approx(opt["summary"]["best_score"])


def test_optimise_page_shows_the_trials_so_far(live: Live) -> None:
    with live.client() as c:
        opt_id = c.submit_optimization(
            {
                "strategy": "app_strategies.Nap",
                "space": {"k": [1, 2, 3, 4, 5, 6, 7, 8]},
                "data": {"dataset_id": live.sample_id},
            }
        )
        deadline = time.monotonic() + TIMEOUT
        while not (c.optimization(opt_id).get("trials") or []):
            assert time.monotonic() < deadline, "no trial arrived"
            time.sleep(0.1)
        at = page("optimise")
        at.session_state["opt.last"] = opt_id
        at.run()
        clean(at)
        progress = at.get("progress")[0].proto.text
        n = int(progress.split("·")[1].split()[0])
        assert progress.startswith("running") and 1 <= n < 8, progress
        shown = at.dataframe[0].value
        assert len(shown) == n and set(shown["k"]) <= set(range(1, 9))
        done = c.wait(opt_id, kind="optimizations", timeout=TIMEOUT)
    assert done["status"] == "succeeded" and done["summary"]["n_trials"] == 8
    at.button(key="opt.refresh").click().run()
    clean(at)
    assert at.get("progress")[0].proto.text.startswith("succeeded · 8 trial(s)")


def test_invalid_space_shows_the_servers_message(live: Live) -> None:
    at = page("optimise")
    at.run()
    at.text_input(key="opt.space.sma_cross.fast").input("1:100000:1")
    at.text_input(key="opt.space.sma_cross.slow").input("1:100000:1")
    at.selectbox(key="opt.data.dataset_pick").select(live.sample_id)
    at.button(key="opt.submit").click().run()
    assert [e.value for e in at.exception] == []
    assert "too_many_trials" in at.error[0].value and "HTTP 422" in at.error[0].value


def test_data_page_coverage_and_uploads(live: Live) -> None:
    at = page("data")
    at.run()
    clean(at)
    coverage = at.dataframe[0].value
    assert set(coverage["symbol"]) == {"600000.SH", "000001.SZ", "513500.SH", "510300.SH"}
    assert set(coverage["count"]) == {1304}
    # A file without a close column: the server's validation message, as it words it.
    bad = pd.read_csv(SAMPLE).drop(columns="close").to_csv(index=False).encode()
    at.file_uploader(key="data.file").upload("broken.csv", bad, "text/csv").run()
    at.button(key="data.upload").click().run()
    assert [e.value for e in at.exception] == []
    shown = at.error[0].value
    assert "upload refused" in shown and "HTTP 422" in shown and "close" in shown
    # A good one is stored and listed.
    good = pd.read_csv(SAMPLE).head(200).to_csv(index=False).encode()
    at.file_uploader(key="data.file").upload("mine.csv", good, "text/csv")
    at.text_input(key="data.symbol").input("MINE")
    at.button(key="data.upload").click().run()
    clean(at)
    assert "200 bars" in at.success[0].value
    listed = next(d.value for d in at.dataframe if "n_bars" in d.value.columns)
    assert "mine.csv" in set(listed["name"])
    # Too large for the server (4 MB): 413 in words.
    at.file_uploader(key="data.file").upload("big.csv", b"a,b\n" + b"1,2\n" * 1_200_000)
    at.button(key="data.upload").click().run()
    assert "HTTP 413" in at.error[0].value and "too large" in at.error[0].value


def _panel(n_dates: int = 80, n_assets: int = 8) -> tuple[bytes, bytes]:
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2023-01-02", periods=n_dates)
    assets = [f"S{i}" for i in range(n_assets)]
    prices = pd.DataFrame(
        100 * np.cumprod(1 + rng.normal(0, 0.02, (n_dates, n_assets)), axis=0),
        index=dates,
        columns=assets,
    )
    factor = (prices.shift(-1) / prices - 1) + rng.normal(0, 0.01, prices.shape)
    long = factor.iloc[:-1].stack().rename("factor").rename_axis(["date", "asset"]).reset_index()
    buf = io.BytesIO()
    prices.rename_axis("date").reset_index().to_parquet(buf, index=False)
    return long.to_csv(index=False).encode(), buf.getvalue()


def test_factors_page(live: Live) -> None:
    factor, prices = _panel()
    at = page("factors")
    at.run()
    clean(at)
    at.file_uploader(key="fac.factor").upload("factor.csv", factor, "text/csv")
    at.file_uploader(key="fac.prices").upload("prices.parquet", prices).run()
    at.text_input(key="fac.periods").input("1,3")
    at.button(key="fac.go").click().run()
    clean(at)
    result = at.session_state["fac.result"]
    assert result["periods"] == ["fwd_1", "fwd_3"]
    assert len(charts(at)) == 4  # IC over time, quantile returns, turnover, decay
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean rank IC"] == f"{result['summary']['rank_ic']['fwd_1']['ic_mean']:.3f}"
    assert result["summary"]["rank_ic"]["fwd_1"]["ic_mean"] > 0.3  # it knows tomorrow
    # Prices missing an asset of the factor: the server's message.
    at.file_uploader(key="fac.prices").upload("prices.csv", b"date,S0\n2023-01-02,1\n")
    at.button(key="fac.go").click().run()
    assert [e.value for e in at.exception] == []
    assert "analysis refused" in at.error[0].value and "unknown_asset" in at.error[0].value


def test_server_errors_are_sentences(live: Live) -> None:
    # 401: a wrong token.
    at = page("runs")
    at.session_state["api_token"] = "btk_000000000000_not-a-token"
    at.run()
    assert [e.value for e in at.exception] == []
    assert "not signed in" in at.error[0].value and "HTTP 401" in at.error[0].value
    # 404: a run id that is nobody's.
    detail = page("run_detail")
    detail.query_params["run"] = "0" * 32
    detail.run()
    assert [e.value for e in detail.exception] == []
    assert "HTTP 404" in detail.error[0].value and "no such run" in detail.error[0].value
    # No server at all.
    gone = page("runs")
    gone.session_state["api_url"] = "http://127.0.0.1:9"
    gone.run()
    assert [e.value for e in gone.exception] == []
    assert "cannot reach bt-server" in gone.error[0].value


def test_a_full_queue_is_a_429_sentence(live: Live) -> None:
    slow = {"strategy": "app_strategies.Slow", "data": {"dataset_id": live.sample_id}}
    submitted: list[str] = []
    with live.client() as c:
        try:
            # Two workers busy and three waiting fill this server; the next one is refused.
            for _ in range(10):
                try:
                    submitted.append(c.submit_run(slow))
                except ApiError as e:
                    assert e.status == 429 and e.code == "queue_full"
                    break
            else:
                raise AssertionError("the queue never filled")
            at = page("new_run")
            at.run()
            at.selectbox(key="new.strategy").select("app_strategies.Slow")
            at.selectbox(key="new.data.dataset_pick").select(live.sample_id)
            at.button(key="new.submit").click().run()
            assert [e.value for e in at.exception] == []
            shown = at.error[0].value
            assert "queue is full" in shown and "HTTP 429" in shown and "retry in" in shown
        finally:
            for rid in submitted:
                try:
                    c.cancel_run(rid)
                except ApiError as e:  # finished or cancelled in between
                    assert e.status == 409
