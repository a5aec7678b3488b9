"""Multiple timeframes: coarse bars read from a strategy.

The property: on random bars (one or two symbols, gaps, missing bars, random spacing, bar
length and trading-day offset) and a random rule, what a strategy reads of the coarse bars at
bar i (every visible coarse bar of every field, and an indicator on them) is (a) identical
when the data is cut after bar i, and (b) equal to an independent pandas ``resample`` of the
buckets complete at bar i; and the vectorized ``align_timeframe`` row i holds the newest of
them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bt_core import Backtest, ParameterError, Strategy, StrategyError, load_data
from bt_core.indicators import sma
from bt_core.timeframes import align_timeframe, timeframe_bars

FIELDS = ("open", "high", "low", "close", "volume")
UNITS = {  # fine spacing unit -> rules strictly coarser than it
    "1min": ["3min", "5min", "1h", "2bars"],
    "1h": ["4h", "1D", "1W", "3bars"],
    "1D": ["3D", "1W", "W-FRI", "1M", "3M", "2bars", "5bars"],
}
# Our rule -> (pandas rule, resample options, bucket end from pandas' label).
DAY = pd.Timedelta("1D")
PANDAS: dict[str, tuple[str, dict[str, Any], Any]] = {
    "3min": ("3min", {"origin": "epoch"}, lambda lab: lab + pd.Timedelta("3min")),
    "5min": ("5min", {"origin": "epoch"}, lambda lab: lab + pd.Timedelta("5min")),
    "1h": ("1h", {"origin": "epoch"}, lambda lab: lab + pd.Timedelta("1h")),
    "4h": ("4h", {"origin": "epoch"}, lambda lab: lab + pd.Timedelta("4h")),
    "1D": ("1D", {"origin": "epoch"}, lambda lab: lab + DAY),
    "3D": ("3D", {"origin": "epoch"}, lambda lab: lab + 3 * DAY),
    # pandas labels weeks, months and quarters by their last day (closed on the right).
    "1W": ("W-SUN", {}, lambda lab: lab + DAY),
    "W-FRI": ("W-FRI", {}, lambda lab: lab + DAY),
    "1M": ("ME", {}, lambda lab: lab + DAY),
    "3M": ("QE-DEC", {}, lambda lab: lab + DAY),
}

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


class Reader(Strategy):
    """Records every visible coarse bar (all fields) and an indicator on each bar."""

    rule = "1W"
    bar_length = ""
    warmup = 0
    _sink: ClassVar[list[list[dict[str, Any]]]] = []

    def on_start(self) -> None:
        self.tf = self.timeframe(self.rule, bar_length=self.bar_length or None)
        self.ind = {s: self.I(sma, self.tf[s].close, 2) for s in self.symbols}
        self.log: list[dict[str, Any]] = []

    def next(self, bar: Any) -> None:
        row: dict[str, Any] = {}
        for s in self.symbols:
            lines = self.tf[s]
            row[s] = {f: lines.field(f).values.copy() for f in FIELDS}
            row[s]["sma"] = self.ind[s].values.copy()
            row[s]["n"] = len(lines.close)
        self.log.append(row)

    def on_stop(self) -> None:
        type(self)._sink.append(self.log)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    unit = draw(st.sampled_from(sorted(UNITS)))
    rule = draw(st.sampled_from(UNITS[unit]))
    n = draw(st.integers(5, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 2, 3, 10], size=n - 1)
    steps[0] = 1  # the finest spacing is one unit, so the rule is coarser than the data
    start = pd.Timestamp("2021-03-01", tz="UTC") + int(rng.integers(0, 50)) * pd.Timedelta(unit)
    times = start + pd.to_timedelta(np.concatenate([[0], np.cumsum(steps)]), unit="s") * (
        pd.Timedelta(unit).total_seconds()
    )
    n_symbols = draw(st.integers(1, 2))
    frames = []
    for k in range(n_symbols):
        keep = np.ones(n, bool) if k == 0 else rng.random(n) < 0.7
        keep[0] = True  # every symbol has a bar in every cut of the data
        m = int(keep.sum())
        o = 10 + rng.random(m) * 5
        c = 10 + rng.random(m) * 5
        frames.append(
            pd.DataFrame(
                {
                    "symbol": f"S{k}",
                    "datetime": times[keep],
                    "open": o,
                    "high": np.maximum(o, c) * (1 + rng.random(m) * 0.05),
                    "low": np.minimum(o, c) * (1 - rng.random(m) * 0.05),
                    "close": c,
                    "volume": rng.integers(0, 1000, m).astype(float),
                }
            )
        )
    return {
        "df": pd.concat(frames, ignore_index=True),
        "rule": rule,
        "bar_length": draw(st.sampled_from(["", unit])),
        "offset": draw(st.sampled_from([0.0, 5.0, -3.0])),
        "cut": draw(st.floats(0, 1)),
    }


def run(df: pd.DataFrame, sc: dict[str, Any]) -> list[dict[str, Any]]:
    Reader._sink.clear()
    Backtest(df, Reader, day_offset_hours=sc["offset"]).run(
        rule=sc["rule"], bar_length=sc["bar_length"]
    )
    return Reader._sink[-1]


def reference(df: pd.DataFrame, sc: dict[str, Any], fine: pd.DatetimeIndex) -> dict[str, Any]:
    """Per symbol: the completed buckets (pandas) and the fine row from which each shows."""
    rule, offset = sc["rule"], pd.Timedelta(hours=sc["offset"])
    length = pd.Timedelta(sc["bar_length"] or 0)
    out = {}
    for sym, g in df.groupby("symbol"):
        g = g.set_index(pd.DatetimeIndex(g["datetime"]))[list(FIELDS)]
        rows = fine.get_indexer(g.index)
        agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        if rule.endswith("bars"):
            n = int(rule[: -len("bars")])
            groups = np.arange(len(g)) // n
            bars = g.groupby(groups).agg(agg)
            count = g.groupby(groups)["close"].count().to_numpy()
            last = pd.Series(rows).groupby(groups).max().to_numpy()
            complete = count == n
            bars, visible = bars[complete], last[complete]
        else:
            pd_rule, kw, end_of = PANDAS[rule]
            # Naive clock times: pandas anchors day multiples at the epoch only without a zone.
            shifted = g.set_axis((g.index + offset).tz_localize(None))
            res = shifted.resample(pd_rule, **kw)
            bars = res.agg(agg)
            count = res["close"].count()
            bars = bars[count.to_numpy() > 0]
            ends = pd.DatetimeIndex([end_of(lab) for lab in bars.index]).tz_localize("UTC")
            ends = (ends - offset).as_unit("ns")
            # Shown from the first fine row whose close time reaches the end, and not before
            # the bucket's own last bar.
            last_row = pd.Series(rows, index=shifted.index).resample(pd_rule, **kw).max()
            last_row = last_row[count.to_numpy() > 0].to_numpy()
            closes = (fine + length).as_unit("ns")
            first_reach = np.searchsorted(closes.asi8, ends.asi8, side="left")
            visible = np.maximum(first_reach, last_row)
            complete = first_reach < len(fine)
            bars, visible = bars[complete], visible[complete]
        out[sym] = (bars, np.asarray(visible))
    return out


@SETTINGS
@given(sc=scenarios())
def test_coarse_bars_have_no_look_ahead_and_match_pandas(sc: dict[str, Any]) -> None:
    df = sc["df"]
    md = load_data(df)
    fine = md.index
    full = run(df, sc)
    assert len(full) == len(fine)

    # (a) Cut the data after bar i: what the strategy read at i does not change.
    i = min(int(sc["cut"] * len(fine)), len(fine) - 1)
    cut = run(df[df["datetime"] <= fine[i]], sc)
    assert len(cut) == i + 1
    for sym, got in cut[i].items():
        for k, v in got.items():
            np.testing.assert_array_equal(v, full[i][sym][k], err_msg=f"{sym} {k} at bar {i}")

    # (b) Equal to pandas' buckets that are complete at each bar.
    ref = reference(df, sc, fine)
    aligned = align_timeframe(df, sc["rule"], bar_length=sc["bar_length"] or None,
                              day_offset_hours=sc["offset"])  # fmt: skip
    for t, row in enumerate(full):
        for sym, got in row.items():
            bars, visible = ref[sym]
            shown = bars[visible <= t]
            assert got["n"] == len(shown), f"{sym} at bar {t}"
            for f in FIELDS:
                np.testing.assert_allclose(got[f], shown[f].to_numpy(), rtol=1e-12, err_msg=f)
                newest = shown[f].to_numpy()[-1] if len(shown) else np.nan
                np.testing.assert_allclose(aligned[f][sym].iloc[t], newest, rtol=1e-12)
            # The indicator on the coarse line is sma over the coarse closes shown so far.
            want = pd.Series(shown["close"].to_numpy()).rolling(2).mean().to_numpy()
            np.testing.assert_allclose(got["sma"], want, rtol=1e-12)


def daily(n: int = 30) -> pd.DataFrame:
    idx = pd.bdate_range("2024-01-01", periods=n, tz="UTC")  # Monday 2024-01-01
    c = np.arange(1.0, n + 1)
    return pd.DataFrame(
        {"open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": 1.0}, index=idx
    )


def test_week_ending_friday_shows_at_fridays_close_with_a_daily_bar_length() -> None:
    bars = timeframe_bars(daily(), "W-FRI", bar_length="1D")
    first = bars.iloc[0]
    assert first["visible_at"] == pd.Timestamp("2024-01-05", tz="UTC")  # Friday
    assert (first["open"], first["high"], first["low"], first["close"]) == (1, 5.5, 0.5, 5)
    assert first["volume"] == 5
    # As instants (no bar length), the same week shows from Monday's bar.
    assert timeframe_bars(daily(), "W-FRI").iloc[0]["visible_at"] == pd.Timestamp(
        "2024-01-08", tz="UTC"
    )
    # The last week (Mon 2024-02-05 .. Fri 2024-02-09) is cut off by the data's end on
    # Friday 02-09 only without the bar length; with it, its Friday bar completes it.
    assert bars.iloc[-1]["datetime"] == pd.Timestamp("2024-02-03", tz="UTC")
    assert timeframe_bars(daily(), "W-FRI").iloc[-1]["datetime"] == pd.Timestamp(
        "2024-01-27", tz="UTC"
    )


class WeeklyCross(Strategy):
    ran: ClassVar[list[WeeklyCross]] = []

    def on_stop(self) -> None:
        type(self).ran.append(self)

    def on_start(self) -> None:
        self.w = self.timeframe("W-FRI", bar_length="1D")
        self.fast = self.I(sma, self.w.close, 2)
        self.level = self.I(lambda c: np.full(len(c), 12.0), self.w.close)
        self.crosses: list[int] = []
        self.first: int | None = None

    def next(self, bar: Any) -> None:
        if self.first is None:
            self.first = bar.i
        if self.w.close.crossed_above(self.level):
            self.crosses.append(bar.i)


def test_indicators_on_a_timeframe_warm_up_and_cross_once_per_coarse_bar() -> None:
    Backtest(daily(20), WeeklyCross).run()
    strat = WeeklyCross.ran[-1]
    # Weekly closes 5, 10, 15, 20 show on Fridays, bars 4, 9, 14, 19. sma(2) of them first
    # has a value when the second week shows, so next() starts on bar 9.
    assert strat.first == 9
    # The close crosses above 12 with the third week: reported on bar 14 only, not on every
    # fine bar until the next week shows.
    assert strat.crosses == [14]


def test_bad_rules_name_the_rule() -> None:
    md = load_data(daily())
    for rule in ("1x", "2W", "W-XYZ", "0h"):
        with pytest.raises(ParameterError, match=re.escape(f'unknown timeframe rule "{rule}"')):
            timeframe_bars(md, rule)
    with pytest.raises(ParameterError, match='rule "1h" is not coarser than the data') as e:
        timeframe_bars(md, "1h")
    assert e.value.parameter == "rule"
    with pytest.raises(ParameterError, match="bar_length"):
        timeframe_bars(md, "1W", bar_length="soon")

    class Bad(Strategy):
        def on_start(self) -> None:
            self.timeframe("1D")

    with pytest.raises(ParameterError, match="1D"):
        Backtest(md, Bad).run()


def test_a_timeframe_line_hides_what_is_not_complete() -> None:
    class Peek(Strategy):
        warmup = 0
        ran: ClassVar[list[Peek]] = []

        def on_stop(self) -> None:
            type(self).ran.append(self)

        def on_start(self) -> None:
            self.w = self.timeframe("W-FRI", bar_length="1D")
            self.errors = 0

        def next(self, bar: Any) -> None:
            if bar.i < 4:
                assert len(self.w.close) == 0
                with pytest.raises(IndexError):
                    self.w.close[-1]
                self.errors += 1
            with pytest.raises(ValueError, match="full series"):
                self.w.close.full()

    Backtest(daily(), Peek).run()
    strat = Peek.ran[-1]
    assert strat.errors == 4


class FineOverWeekly(Strategy):
    warmup = 0
    ran: ClassVar[list[FineOverWeekly]] = []

    def on_start(self) -> None:
        self.w = self.timeframe("W-FRI", bar_length="1D")
        self.crosses: list[int] = []

    def next(self, bar: Any) -> None:
        if self.data.close.crossed_above(self.w.close):
            self.crosses.append(bar.i)

    def on_stop(self) -> None:
        type(self).ran.append(self)


def test_a_fine_line_crosses_a_coarse_line_as_each_was_seen() -> None:
    df = daily(15)
    # Closes dip below the first week's close (5) on Monday and Tuesday of week two, then rise.
    df.loc[df.index[5:7], ["open", "high", "low", "close"]] = 3.0
    Backtest(df, FineOverWeekly).run()
    # Bar 5: the week shows (close 5) while the fine close is 3 (below); bar 7: the fine close
    # (8) is above the weekly close seen on bar 6 and now: one cross.
    assert FineOverWeekly.ran[-1].crosses == [7]


def test_several_symbols_need_a_symbol() -> None:
    df = daily(10)
    md = load_data({"A": df, "B": df * 2})

    class Two(Strategy):
        def on_start(self) -> None:
            tf = self.timeframe("W-FRI", bar_length="1D")
            assert len(tf) == 2 and tf["B"].close.full()[0] == 2 * tf["A"].close.full()[0]
            tf.close  # noqa: B018 - the attribute read is what raises

    with pytest.raises(StrategyError, match=r"2 symbols: use timeframe\[symbol\]"):
        Backtest(md, Two).run()
