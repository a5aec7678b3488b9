"""POST /factors/analyze (a factor and prices analysed by bt-analysis) and GET /runs/{id}/bars
(the bars a run was tested on), against the shared server."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from srvkit import SAMPLE, Server

from bt_analysis.factor import (
    factor_ic,
    factor_rank_autocorrelation,
    ic_decay,
    prepare_factor_data,
    quantile_turnover,
)


def make_panel(n_dates: int = 120, n_assets: int = 10, seed: int = 7) -> tuple[pd.DataFrame, ...]:
    """Wide prices and a factor that knows tomorrow's return (plus noise): a positive IC."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_dates)
    assets = [f"A{i:02d}" for i in range(n_assets)]
    rets = rng.normal(0.0, 0.02, size=(n_dates, n_assets))
    prices = pd.DataFrame(100 * np.cumprod(1 + rets, axis=0), index=dates, columns=assets)
    nxt = prices.shift(-1) / prices - 1
    factor = nxt + rng.normal(0.0, 0.02, size=nxt.shape)
    return factor.iloc[:-1], prices


def long_csv(wide: pd.DataFrame, value: str, date: str = "date", asset: str = "asset") -> bytes:
    df = wide.stack().rename(value).rename_axis([date, asset]).reset_index()
    return df.to_csv(index=False).encode()


def wide_parquet(wide: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    wide.rename_axis("date").reset_index().to_parquet(buf, index=False)
    return buf.getvalue()


def two_values(csv: bytes) -> bytes:
    """Prices whose value column is not called close, beside another one: ambiguous."""
    lines = csv.replace(b"close", b"last").splitlines()
    return b"\n".join(line + (b",volume" if i == 0 else b",1") for i, line in enumerate(lines))


def post(server: Server, factor: bytes, prices: bytes, who: str | None = "alice", **form: str):
    headers = server.h(who) if who else {}
    return server.client.post(
        "/factors/analyze",
        headers=headers,
        files={"factor": ("factor.csv", factor), "prices": ("prices.csv", prices)},
        data={"periods": "1,5", "quantiles": "5", "max_horizon": "5", **form},
    )


def test_long_csv_matches_bt_analysis(server: Server) -> None:
    factor, prices = make_panel()
    r = post(server, long_csv(factor, "factor"), long_csv(prices, "close", "datetime", "symbol"))
    assert r.status_code == 200, r.text
    out = r.json()
    fd = prepare_factor_data(factor, prices, (1, 5), 5)
    want = factor_ic(fd, "spearman")
    got = pd.DataFrame(out["rank_ic"]).set_index("date")
    assert len(got) == len(want)
    np.testing.assert_allclose(got["fwd_1"].to_numpy(), want["fwd_1"].to_numpy(), rtol=1e-12)
    pearson = pd.DataFrame(out["ic"]).set_index("date")
    np.testing.assert_allclose(
        pearson["fwd_5"].to_numpy(float), factor_ic(fd, "pearson")["fwd_5"].to_numpy(), rtol=1e-12
    )
    # The factor knows tomorrow: rank IC at one bar is high, and fades with the horizon.
    assert out["summary"]["rank_ic"]["fwd_1"]["ic_mean"] > 0.4
    decay = pd.DataFrame(out["decay"]).set_index("horizon")
    assert list(decay.index) == [1, 2, 3, 4, 5]
    want_decay = ic_decay(factor, prices, range(1, 6))
    np.testing.assert_allclose(decay["ic_mean"], want_decay["ic_mean"], rtol=1e-12)
    # Top bucket beats the bottom one; turnover per bucket per date, as bt-analysis has it.
    q = pd.DataFrame(out["quantile_returns"]).set_index("factor_quantile")
    assert list(q.index) == [1, 2, 3, 4, 5] and q.loc[5, "fwd_1"] > q.loc[1, "fwd_1"]
    turnover = pd.DataFrame(out["turnover"]).set_index("date")
    assert list(turnover.columns) == ["q1", "q2", "q3", "q4", "q5"]
    np.testing.assert_allclose(
        turnover["q3"].to_numpy(float), quantile_turnover(fd)[3].to_numpy(), equal_nan=True
    )
    auto = pd.DataFrame(out["rank_autocorrelation"])["value"].to_numpy(float)
    np.testing.assert_allclose(auto, factor_rank_autocorrelation(fd, 1).to_numpy(), equal_nan=True)
    assert out["periods"] == ["fwd_1", "fwd_5"]


def test_wide_parquet_gives_the_same_answer(server: Server) -> None:
    factor, prices = make_panel(seed=3)
    a = post(server, long_csv(factor, "factor"), long_csv(prices, "close"))
    b = server.client.post(
        "/factors/analyze",
        headers=server.h(),
        files={
            "factor": ("f.parquet", wide_parquet(factor)),
            "prices": ("p.parquet", wide_parquet(prices)),
        },
        data={"periods": "1,5", "quantiles": "5", "max_horizon": "5"},
    )
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json()["rank_ic"] == b.json()["rank_ic"]
    assert a.json()["decay"] == b.json()["decay"]


def _error(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


@pytest.mark.parametrize(
    ("change", "status", "code", "words"),
    [
        (lambda f, p: (f, two_values(p)), 422, "missing_column", "'close'"),
        (lambda f, p: (f.replace(b"0.0", b"x0.0", 1), p), 422, "not_numeric", "row"),
        (lambda f, p: (f, b""), 422, "empty_file", "prices: the file is empty"),
        (lambda f, p: (f, p.replace(b"A03", b"B03")), 422, "unknown_asset", "'A03'"),
        (lambda f, p: (f + f.splitlines()[1] + b"\n", p), 422, "duplicate_row", "more than once"),
        (lambda f, p: (f.replace(b"2022-01-04", b"not a day"), p), 422, "invalid_dates", "date"),
    ],
)
def test_bad_uploads_are_4xx_naming_what(server: Server, change, status, code, words) -> None:  # type: ignore[no-untyped-def]
    factor, prices = make_panel(n_dates=30)
    f, p = change(long_csv(factor, "factor"), long_csv(prices, "close"))
    body = _error(post(server, f, p), status, code)
    assert words in body["message"], body


def test_limits_and_auth(server: Server) -> None:
    factor, prices = make_panel(n_dates=30)
    f, p = long_csv(factor, "factor"), long_csv(prices, "close")
    _error(post(server, f, p, who=None), 401, "unauthorized")
    r = post(server, f, p, periods="1,x")
    assert r.status_code == 422 and r.json()["errors"][0]["path"][-1] == "periods", r.text
    assert post(server, f, p, quantiles="1").status_code == 422
    assert post(server, f, p, max_horizon="61").status_code == 422
    # The upload limit of the shared server is 1 MB per file.
    big = f + b"\n".join([f.splitlines()[1]] * 40_000)
    _error(post(server, big, p), 413, "request_too_large")
    # Too few assets for the buckets: every date is dropped, and the message says why.
    body = _error(post(server, f, p, quantiles="20"), 422, "no_observations")
    assert "below_min_assets" in body["message"] and "20 assets" in body["message"]
    assert body["errors"][0]["path"] == ["body", "factor"]
    # bt-analysis' own checks surface as 422 with its message (a negative price here).
    neg = p.replace(b"\n2022-01-03,A00,", b"\n2022-01-03,A00,-", 1)
    assert neg != p
    body = _error(post(server, f, neg), 422, "factor_input")
    assert "positive finite price" in body["message"]


def test_run_bars(server: Server) -> None:
    run = server.run(params={"fast": 5, "slow": 20})
    assert run["status"] == "succeeded"
    r = server.client.get(f"/runs/{run['id']}/bars", headers=server.h(accept="text/csv"))
    assert r.status_code == 200, r.text
    got = pd.read_csv(io.StringIO(r.text))
    want = pd.read_csv(SAMPLE)
    assert len(got) == len(want) == run["stats"]["n_bars"]
    np.testing.assert_array_equal(got["close"].to_numpy(), want["close"].to_numpy())
    js = server.client.get(f"/runs/{run['id']}/bars", headers=server.h()).json()
    assert js["total"] == len(want) and set(js["items"][0]) >= {"datetime", "close", "symbol"}
    _error(
        server.client.get(f"/runs/{run['id']}/bars?symbol=NOPE", headers=server.h()),
        422,
        "unknown_symbol",
    )
    _error(server.client.get(f"/runs/{run['id']}/bars", headers=server.h("bob")), 404, "not_found")


def test_run_bars_from_the_store(server: Server) -> None:
    data = {"source": "store", "symbols": ["600000.SH", "510300.SH"], "period": "1d"}
    run = server.run(data=data)
    r = server.client.get(
        f"/runs/{run['id']}/bars?symbol=510300.SH", headers=server.h(accept="text/csv")
    )
    assert r.status_code == 200, r.text
    got = pd.read_csv(io.StringIO(r.text))
    assert set(got["symbol"]) == {"510300.SH"} and len(got) == 1304
