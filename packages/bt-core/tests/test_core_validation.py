"""Every bad input gets a clear error that names the column, row, symbol or parameter."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bt_core import (
    ActionError,
    Backtest,
    DataError,
    ParameterError,
    Strategy,
    StrategyError,
    load_data,
)

# ----------------------------------------------------------------------------------------
# market data
# ----------------------------------------------------------------------------------------


def test_unsorted_timestamps(ohlc: pd.DataFrame) -> None:
    df = ohlc.iloc[[0, 1, 2, 4, 3, 5]]
    with pytest.raises(DataError, match=r"unsorted timestamps at row 4"):
        load_data(df)


def test_duplicate_timestamps(ohlc: pd.DataFrame) -> None:
    df = ohlc.iloc[[0, 1, 2, 2, 3]]
    with pytest.raises(DataError, match=r"duplicate timestamps at row 3"):
        load_data(df)


@pytest.mark.parametrize("col", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", [np.nan, 0.0, -1.0, np.inf])
def test_bad_price(ohlc: pd.DataFrame, col: str, bad: float) -> None:
    df = ohlc.copy()
    df.iloc[7, df.columns.get_loc(col)] = bad
    with pytest.raises(DataError) as info:
        load_data(df)
    msg = str(info.value)
    assert f"'{col}'" in msg or f"{col}=" in msg, msg
    assert "row 7" in msg, msg


def test_nan_price_message_names_the_column_first(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    df.iloc[9, df.columns.get_loc("close")] = np.nan
    with pytest.raises(DataError, match=r"column 'close' must hold finite prices > 0; row 9"):
        load_data(df)


def test_bad_volume(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    df.iloc[5, df.columns.get_loc("volume")] = -3.0
    with pytest.raises(DataError, match=r"'volume'.*row 5"):
        load_data(df)


def test_high_below_low(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    h, lo = df["high"].iloc[11], df["low"].iloc[11]
    df.iloc[11, df.columns.get_loc("high")] = lo
    df.iloc[11, df.columns.get_loc("low")] = h
    with pytest.raises(DataError, match=r"high < low at row 11"):
        load_data(df)


@pytest.mark.parametrize(("col", "where"), [("open", "above"), ("close", "below")])
def test_open_close_outside_range(ohlc: pd.DataFrame, col: str, where: str) -> None:
    df = ohlc.copy()
    r = 13
    df.iloc[r, df.columns.get_loc(col)] = (
        df["high"].iloc[r] * 1.01 if where == "above" else df["low"].iloc[r] * 0.99
    )
    with pytest.raises(DataError, match=rf"outside \[low, high\] at row {r}"):
        load_data(df)


def test_non_numeric_column(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    df["close"] = df["close"].astype(object)
    df.iloc[4, df.columns.get_loc("close")] = "n/a"
    with pytest.raises(DataError, match=r"column 'close' is not numeric"):
        load_data(df)


@pytest.mark.parametrize("missing", ["open", "high", "low", "close"])
def test_csv_with_missing_column(ohlc: pd.DataFrame, tmp_path: Path, missing: str) -> None:
    path = tmp_path / "bars.csv"
    ohlc.drop(columns=missing).to_csv(path)
    with pytest.raises(DataError) as info:
        load_data(path)
    msg = str(info.value)
    assert f"missing columns ['{missing}']" in msg and "bars.csv" in msg


def test_missing_volume_is_allowed_as_zero(ohlc: pd.DataFrame) -> None:
    md = load_data(ohlc.drop(columns="volume"))
    assert (md.fields["volume"] == 0).all()


def test_no_datetime(ohlc: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no datetime"):
        load_data(ohlc.reset_index(drop=True))


def test_empty_data(ohlc: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows"):
        load_data(ohlc.iloc[:0])
    with pytest.raises(DataError, match="no rows"):
        load_data(pd.DataFrame())
    path = tmp_path / "empty.csv"
    path.write_text("datetime,open,high,low,close,volume\n")
    with pytest.raises(DataError, match=r"empty\.csv.*no rows"):
        load_data(path)
    with pytest.raises(DataError, match="empty"):
        load_data({})
    with pytest.raises(DataError, match=r"data\['B'\].*no rows"):
        load_data({"A": ohlc, "B": ohlc.iloc[:0]})


def test_unparsable_dates(tmp_path: Path, ohlc: pd.DataFrame) -> None:
    df = ohlc.reset_index()
    df["datetime"] = df["datetime"].dt.strftime("%Y-%m-%d")
    df.loc[6, "datetime"] = "2020-13-45"
    path = tmp_path / "dates.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_data(path)
    msg = str(info.value)
    assert "'datetime'" in msg and "dates.csv" in msg, msg
    df.loc[6, "datetime"] = ""
    with pytest.raises(DataError, match=r"'datetime'.*row 6"):
        load_data(df)


def test_long_data_errors_name_symbol_and_input_row(make_ohlc: Any, to_long: Any) -> None:
    long = to_long({"AAA": make_ohlc(10, seed=1), "BBB": make_ohlc(10, seed=2)})
    long.loc[14, "close"] = -5.0  # the 5th bar of BBB, row 14 of the input
    with pytest.raises(DataError, match=r"symbol 'BBB'.*'close'.*row 14"):
        load_data(long)
    long = to_long({"AAA": make_ohlc(10, seed=1), "BBB": make_ohlc(10, seed=2)})
    long.loc[3, "symbol"] = None
    with pytest.raises(DataError, match=r"'symbol' is empty at row 3"):
        load_data(long)
    with pytest.raises(DataError, match=r"symbol 'ZZZ' not found"):
        load_data(to_long({"AAA": make_ohlc(3, seed=1)}), symbol="ZZZ")


def test_long_data_duplicate_rows_of_one_symbol(make_ohlc: Any, to_long: Any) -> None:
    long = to_long({"AAA": make_ohlc(5, seed=1), "BBB": make_ohlc(5, seed=2)})
    long = long.iloc[[0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9]].reset_index(drop=True)
    with pytest.raises(DataError, match=r"symbol 'BBB'.*duplicate timestamps at row 8"):
        load_data(long)


def test_dict_errors_name_the_symbol(ohlc: pd.DataFrame) -> None:
    bad = ohlc.copy()
    bad.iloc[2, bad.columns.get_loc("low")] = bad["high"].iloc[2] * 2
    with pytest.raises(DataError, match=r"data\['X'\].*row 2"):
        load_data({"W": ohlc, "X": bad})
    with pytest.raises(DataError, match=r"data\['X'\] must be a DataFrame"):
        load_data({"X": [1, 2, 3]})


def test_bad_paths_and_types(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found: .*nope\.csv"):
        load_data(tmp_path / "nope.csv")
    p = tmp_path / "bars.xlsx"
    p.write_text("x")
    with pytest.raises(DataError, match=r"unsupported data file type '\.xlsx'"):
        load_data(p)
    with pytest.raises(DataError, match="got list"):
        load_data([1, 2, 3])
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    with pytest.raises(DataError, match=r"cannot read .*garbage\.parquet"):
        load_data(garbage)


def test_duplicate_columns_after_lowercasing(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    df["Close"] = df["close"]
    with pytest.raises(DataError, match=r"duplicate columns.*'close'"):
        load_data(df)


def test_bad_data_never_mutates_input(ohlc: pd.DataFrame) -> None:
    df = ohlc.copy()
    df.iloc[3, df.columns.get_loc("close")] = np.nan
    before = df.copy()
    with pytest.raises(DataError):
        load_data(df)
    pd.testing.assert_frame_equal(df, before)


# ----------------------------------------------------------------------------------------
# orders
# ----------------------------------------------------------------------------------------


def _fail_in_next(data: Any, action: Any) -> StrategyError:
    class Fails(Strategy):
        def next(self, bar: Any) -> Any:
            if self.i == 2:
                action(self)

    with pytest.raises(StrategyError) as info:
        Backtest(data, Fails).run()
    msg = str(info.value)
    assert "bar 2" in msg, msg
    return info.value


def test_unknown_symbol_in_order(make_ohlc: Any) -> None:
    frames = {"AAA": make_ohlc(5, seed=1), "BBB": make_ohlc(5, seed=2)}
    err = _fail_in_next(frames, lambda s: s.buy(1.0, symbol="XXX"))
    assert isinstance(err.__cause__, ActionError)
    assert "unknown symbol 'XXX'" in str(err) and "AAA, BBB" in str(err)
    err = _fail_in_next(frames, lambda s: s.buy(1.0))
    assert "symbol= is required" in str(err)
    err = _fail_in_next(frames, lambda s: s.position)
    assert "symbol= is required" in str(err)
    err = _fail_in_next(frames, lambda s: s.close("XXX"))
    assert "unknown symbol 'XXX'" in str(err)
    err = _fail_in_next(frames, lambda s: s.position_of(3))  # type: ignore[arg-type]
    assert "symbol must be a string" in str(err)


@pytest.mark.parametrize("size", [-1.0, 0.0, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_bad_order_size(tiny: pd.DataFrame, size: float, side: str) -> None:
    err = _fail_in_next(tiny, lambda s: getattr(s, side)(size))
    assert isinstance(err.__cause__, ValueError)
    assert "order size must be a finite number > 0" in str(err), str(err)


@pytest.mark.parametrize("size", ["1", True, [1.0]])
def test_non_numeric_order_size(tiny: pd.DataFrame, size: Any) -> None:
    err = _fail_in_next(tiny, lambda s: s.buy(size))
    assert isinstance(err.__cause__, ActionError)
    assert "order size must be a number" in str(err)


@pytest.mark.parametrize("limit", [-1.0, 0.0, math.nan, math.inf])
def test_bad_limit_price(tiny: pd.DataFrame, limit: float) -> None:
    err = _fail_in_next(tiny, lambda s: s.buy(1.0, limit=limit))
    assert "limit price must be a finite number > 0" in str(err), str(err)


def test_bad_tif_and_cancel_of_unknown_order(tiny: pd.DataFrame) -> None:
    err = _fail_in_next(tiny, lambda s: s.buy(1.0, tif="week"))
    assert "tif must be one of gtc, day, gtd, ioc, fok" in str(err)
    err = _fail_in_next(tiny, lambda s: s.cancel(999))
    assert "unknown order id 999" in str(err)


# ----------------------------------------------------------------------------------------
# run parameters
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cash", math.inf),
        ("cash", math.nan),
        ("cash", 0.0),
        ("cash", -5.0),
        ("commission", math.nan),
        ("commission", -0.001),
        ("commission", math.inf),
        ("commission_min", -1.0),
        ("commission_fixed", math.inf),
        ("slippage_bps", -1.0),
        ("slippage_bps", math.nan),
        ("periods_per_year", 0.0),
        ("periods_per_year", math.inf),
        ("cash", "1000"),
        ("commission", True),
    ],
)
def test_bad_run_parameter(ohlc: pd.DataFrame, name: str, value: Any) -> None:
    with pytest.raises(ParameterError, match=rf"parameter {name} must"):
        Backtest(ohlc, "sma_cross", **{name: value})


@pytest.mark.parametrize(("name", "value"), [("commission", 1.0), ("slippage_bps", 10_000.0)])
def test_out_of_range_costs(ohlc: pd.DataFrame, name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"parameter {name} .*must be <"):
        Backtest(ohlc, "sma_cross", **{name: value}).run()


def test_bad_fill_on_and_day_offset(ohlc: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="fill_on"):
        Backtest(ohlc, "sma_cross", fill_on="open")
    with pytest.raises(ValueError, match="day_offset_hours"):
        Backtest(ohlc, "sma_cross", day_offset_hours=30).run()


def test_day_offset_validated_like_other_parameters(ohlc: pd.DataFrame) -> None:
    # Used to be accepted by Backtest() and fail only inside the engine at run().
    with pytest.raises(ParameterError, match="day_offset_hours"):
        Backtest(ohlc, "sma_cross", day_offset_hours=math.nan)


class WithParams(Strategy):
    threshold = 0.5
    window = 10


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_non_finite_strategy_parameter(ohlc: pd.DataFrame, value: float) -> None:
    with pytest.raises(ParameterError, match=r"parameter 'threshold' of WithParams must be finite"):
        Backtest(ohlc, WithParams).run(threshold=value)


@pytest.mark.parametrize("value", [0, -1.0, "2", True])
def test_bad_order_size_parameter(ohlc: pd.DataFrame, value: Any) -> None:
    with pytest.raises(ParameterError, match="order_size"):
        Backtest(ohlc, WithParams).run(order_size=value)


@pytest.mark.parametrize("value", [-1, 2.5, True])
def test_bad_warmup(ohlc: pd.DataFrame, value: Any) -> None:
    class W(Strategy):
        def on_start(self) -> None:
            self.warmup = value

    with pytest.raises(ParameterError, match="warmup"):
        Backtest(ohlc, W).run()


def test_indicator_of_wrong_length(ohlc: pd.DataFrame) -> None:
    class Short(Strategy):
        def on_start(self) -> None:
            self.x = self.I(np.zeros(5))

    with pytest.raises(ParameterError, match=rf"one value per bar \({len(ohlc)}\)"):
        Backtest(ohlc, Short).run()


# ----------------------------------------------------------------------------------------
# vectorized inputs
# ----------------------------------------------------------------------------------------


def test_bad_signal_inputs(ohlc: pd.DataFrame) -> None:
    bt = Backtest(ohlc)
    n = len(ohlc)
    ok = np.zeros(n, dtype=bool)
    with pytest.raises(DataError, match=r"entries has shape \(5, 1\), expected"):
        bt.run_signals(np.zeros(5, dtype=bool), ok)
    with pytest.raises(DataError, match="exits must be boolean"):
        bt.run_signals(ok, np.full(n, 0.5))
    with pytest.raises(DataError, match="exits must be boolean"):
        bt.run_signals(ok, np.full(n, np.nan))
    with pytest.raises(ParameterError, match="size"):
        bt.run_signals(ok, ok, size=-1)
    shifted = pd.Series(ok, index=ohlc.index + pd.Timedelta("1h"))
    with pytest.raises(DataError, match="index does not match"):
        bt.run_signals(shifted, ok)
    with pytest.raises(DataError, match="indexed by datetime"):
        bt.run_signals(pd.Series(ok), ok)


def test_bad_weights(make_ohlc: Any) -> None:
    frames = {"A": make_ohlc(10, seed=1), "B": make_ohlc(10, seed=2)}
    bt = Backtest(frames)
    w = np.zeros((10, 2))
    w[4, 1] = -0.1
    with pytest.raises(ParameterError, match=r"bar 4, symbol B is -0.1 < 0.*may not be shorted"):
        bt.run_weights(w)
    w = np.zeros((10, 2))
    w[6] = [0.7, 0.7]
    with pytest.raises(ParameterError, match=r"bar 6 have a gross sum of 1.4 > 1"):
        bt.run_weights(w)
    w = np.zeros((10, 2))
    w[1, 0] = np.inf
    with pytest.raises(ParameterError, match=r"bar 1, symbol A must be finite"):
        bt.run_weights(w)
    df = pd.DataFrame(np.zeros((10, 1)), index=load_data(frames).index, columns=["A"])
    with pytest.raises(DataError, match=r"no column for symbols \['B'\]"):
        bt.run_weights(df)


def test_unparsable_date_names_its_row(ohlc: pd.DataFrame) -> None:
    df = ohlc.reset_index()
    df["datetime"] = df["datetime"].dt.strftime("%Y-%m-%d")
    df.loc[6, "datetime"] = "2020-13-45"
    with pytest.raises(DataError, match=r"'datetime'.*row 6"):
        load_data(df)


def test_non_finite_class_default_parameter(ohlc: pd.DataFrame) -> None:
    class NanDefault(Strategy):
        threshold = math.nan

    with pytest.raises(ParameterError, match="threshold"):
        Backtest(ohlc, NanDefault).run()


def test_iso_dates_of_mixed_precision_are_accepted() -> None:
    df = pd.DataFrame(
        {
            "datetime": ["2020-01-01 09:30", "2020-01-02", "2020-01-03T10:00:00"],
            "open": 1.0,
            "high": 1.0,
            "low": 1.0,
            "close": 1.0,
        }
    )
    md = load_data(df)
    assert list(md.index.strftime("%Y-%m-%d %H:%M")) == [
        "2020-01-01 09:30",
        "2020-01-02 00:00",
        "2020-01-03 10:00",
    ]
