"""The optimizer: spaces and their errors, the grid, the ranking, seeds, failing trials, and
every backend giving the table of single runs bit for bit."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bt_engine
from bt_core import Backtest, ParameterError, Strategy, load_data
from bt_core.indicators import sma
from bt_core.loading import import_strategy_file
from bt_core.optimize import Categorical, Float, Int, Space, parse_dimension
from bt_core.optimize import backends as be
from bt_core.optimize.objective import ranking

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Cross(Strategy):
    """An SMA cross that raises for one parameter set (a failing trial)."""

    fast = 5
    slow = 20
    order_size = 10.0

    def on_start(self) -> None:
        if self.fast == 7:
            raise RuntimeError("seven is unlucky")
        self.f = self.I(sma, self.data.close, self.fast)
        self.s = self.I(sma, self.data.close, self.slow)

    def next(self, bar: Any) -> None:
        if self.f.crossed_above(self.s) and self.position == 0:
            self.buy()
        elif self.f.crossed_below(self.s):
            self.close()


@pytest.fixture(scope="module")
def md(make_ohlc: Any) -> Any:
    return load_data(make_ohlc(400, seed=11))


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (stats are JSON-safe, so None stands for NaN already)."""
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


def assert_rows_are_single_runs(bt: Backtest, res: Any) -> None:
    assert len(res.table)
    for row in res.rows:
        if row.error is not None:
            with pytest.raises(Exception, match=".") as e:
                bt.run(**row.params)
            assert row.error_type == type(e.value).__name__
            continue
        single = bt.run(**row.params).stats
        assert row.stats == single, row.params  # exact: every float bit for bit
        t = res.table[res.table["trial"] == row.trial].iloc[0]
        for k, v in single.items():
            assert same(t[k], v) or (v is None and pd.isna(t[k])), (k, t[k], v)


# ----- spaces ------------------------------------------------------------------------------


def test_range_text() -> None:
    assert parse_dimension("fast", "5:50:5").values("fast") == list(range(5, 51, 5))
    assert parse_dimension("x", "1:3").values("x") == [1, 2, 3]
    assert parse_dimension("x", "0.1:0.3:0.1").values("x") == [0.1, 0.2, 0.3]
    assert parse_dimension("x", "a,b,true,none,2").values("x") == ["a", "b", True, None, 2]
    d = parse_dimension("lr", "log:0.001:1")
    assert isinstance(d, Float) and d.log
    assert parse_dimension("n", "log:1:100") == Int(1, 100, 1, log=True)


@pytest.mark.parametrize(
    "text, match",
    [
        ("5:50:0", "parameter fast: step must be > 0, got 0"),
        ("5:50:-5", "step must be > 0"),
        ("50:5", "empty range, low 50 > high 5"),
        ("5:x", "'x' is not a number"),
        ("5:", "bad range"),
        ("1:2:3:4", "bad range"),
        ("", "empty range"),
        ("log:0:1", "log range needs low > 0"),
        ("log:1:10:2", "takes no step"),
        ("a,,b", "empty value"),
    ],
)
def test_bad_range_text_names_the_parameter(text: str, match: str) -> None:
    with pytest.raises(ParameterError, match=match) as e:
        parse_dimension("fast", text)
    assert e.value.parameter == "fast"


def test_space_errors(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    with pytest.raises(ParameterError, match="search space is empty"):
        bt.optimize({})
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['fats'\] for sma_cross"):
        bt.optimize({"fats": [1, 2]})
    with pytest.raises(ParameterError, match="no values to choose from") as e:
        bt.optimize({"fast": []})
    assert e.value.parameter == "fast"
    with pytest.raises(ParameterError, match="empty range"):
        bt.optimize({"fast": range(5, 5)})
    with pytest.raises(ParameterError, match="fast: step must be > 0, got 0"):
        Space.from_strings(["fast=5:50:0"])
    with pytest.raises(ParameterError, match="expects name=range"):
        Space.from_strings(["fast"])
    with pytest.raises(ParameterError, match="given twice"):
        Space.from_strings(["fast=1:3", "fast=4:5"])
    with pytest.raises(ParameterError, match="needs a step for a grid"):
        bt.optimize({"fast": Float(0.5, 2.0)})
    with pytest.raises(ParameterError, match="unknown statistic 'sharp'"):
        bt.optimize({"fast": [5]}, maximize="sharp")
    with pytest.raises(ParameterError, match="unknown method"):
        bt.optimize({"fast": [5]}, method="genetic")
    with pytest.raises(ParameterError, match="unknown backend"):
        bt.optimize({"fast": [5]}, backend="dask")
    with pytest.raises(ParameterError, match="constraint excludes all 4"):
        bt.optimize({"fast": [5, 6], "slow": [2, 3]}, constraint=lambda p: p["fast"] < p["slow"])
    with pytest.raises(ParameterError, match="n_trials is for random and bayes"):
        bt.optimize({"fast": [5]}, n_trials=3)
    with pytest.raises(ParameterError, match="storage= keeps an optuna study"):
        bt.optimize({"fast": [5]}, storage="sqlite://")
    with pytest.raises(ParameterError, match="several objectives need method='bayes'"):
        bt.optimize({"fast": [5]}, maximize=["sharpe", "cagr"])
    with pytest.raises(ParameterError, match="n_jobs must be a non-zero integer"):
        bt.optimize({"fast": [5]}, n_jobs=0)
    with pytest.raises(ParameterError, match="backend='rust' runs the built-in"):
        Backtest(md, Cross).optimize({"fast": [5]}, backend="rust", n_jobs=1)


def test_grid_is_the_cartesian_product_with_the_constraint(md: Any) -> None:
    space = {"fast": [3, 5, 8, 13], "slow": range(5, 30, 5), "size": [1.0, 2.0]}
    res = Backtest(md, "sma_cross").optimize(
        space, constraint=lambda p: p["fast"] < p["slow"], n_jobs=1
    )
    want = {(f, s, z) for f in space["fast"] for s in space["slow"] for z in space["size"] if f < s}
    got = [(r.params["fast"], r.params["slow"], r.params["size"]) for r in res.rows]
    assert len(got) == len(set(got)) == len(want) and set(got) == want
    assert res.n_infeasible == 4 * 5 * 2 - len(want)
    # Trial numbers follow the grid's order: the last dimension varies fastest.
    by_trial = sorted(res.rows, key=lambda r: r.trial)
    assert [r.params for r in by_trial[:2]] == [
        {"fast": 3, "slow": 5, "size": 1.0},
        {"fast": 3, "slow": 5, "size": 2.0},
    ]


# ----- ranking -----------------------------------------------------------------------------


def test_ranking_maximize_minimize_nan_zero_negative_and_ties() -> None:
    scores = np.array([[0.0], [-1.0], [math.nan], [2.0], [0.0], [-0.0], [-3.0], [2.0]])
    failed = np.array([False] * 7 + [True])
    up = ranking(scores, [True], failed)
    # 2.0 first; zeros (0.0, 0.0, -0.0) tie and keep trial order; negatives; NaN; failed.
    assert up.tolist() == [3, 0, 4, 5, 1, 6, 2, 7]
    down = ranking(scores, [False], failed)
    assert down.tolist() == [6, 1, 0, 4, 5, 3, 2, 7]


def test_pareto_ranking() -> None:
    # maximize a, minimize b: (3, 1) and (1, 0) are the front; (2, 2) is dominated by (3,1).
    scores = np.array([[2.0, 2.0], [3.0, 1.0], [1.0, 0.0], [math.nan, 0.0], [0.5, 5.0]])
    order = ranking(scores, [True, False], np.zeros(5, dtype=bool))
    assert order.tolist()[:2] == [1, 2] and order.tolist()[-1] == 3


def test_table_sort_with_failures_and_a_callable_objective(md: Any) -> None:
    bt = Backtest(md, Cross)
    res = bt.optimize(
        {"fast": [3, 5, 7, 9], "slow": [20, 30]}, n_jobs=1, maximize=lambda s: s["total_return"]
    )
    failed = res.table[res.table["error"].notna()]
    assert set(failed["fast"]) == {7} and len(failed) == 2, failed["error"].tolist()
    assert "seven is unlucky" in failed["error"].iloc[0]
    assert res.table.tail(2)["fast"].tolist() == [7, 7]  # failed trials last
    ok = res.table[res.table["error"].isna()]
    assert ok["score"].tolist() == sorted(ok["score"], reverse=True)
    assert ok["score"].tolist() == ok["total_return"].tolist()
    assert res.best_params == dict(ok.iloc[0][["fast", "slow"]])
    res_min = bt.optimize({"fast": [3, 5, 9], "slow": [20, 30]}, n_jobs=1, minimize="max_drawdown")
    s = res_min.table["score"].tolist()
    assert s == sorted(s)
    assert res.n_failed == 2


def test_best_result_is_the_best_row(md: Any) -> None:
    res = Backtest(md, "sma_cross").optimize({"fast": [3, 5], "slow": [10, 20]}, n_jobs=1)
    best = res.best_result()
    assert best.stats == res.best_stats and best.params["fast"] == res.best_params["fast"]
    assert best.stats["sharpe"] == res.best_score


# ----- seeds ---------------------------------------------------------------------------------


def test_random_and_bayes_are_reproducible_with_a_seed(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    space = {"fast": Int(2, 15), "slow": Int(16, 60, 2)}
    a = bt.optimize(space, "random", n_trials=6, seed=7, n_jobs=1)
    b = bt.optimize(space, "random", n_trials=6, seed=7, n_jobs=1)
    c = bt.optimize(space, "random", n_trials=6, seed=8, n_jobs=1)
    key = ["trial", "fast", "slow", "score"]
    pd.testing.assert_frame_equal(a.table[key], b.table[key])
    assert a.table[key].to_dict() != c.table[key].to_dict()
    assert len({(r.params["fast"], r.params["slow"]) for r in a.rows}) == 6  # distinct
    x = bt.optimize(space, "bayes", n_trials=8, seed=3, n_jobs=2, backend="thread")
    y = bt.optimize(space, "bayes", n_trials=8, seed=3, n_jobs=2, backend="thread")
    pd.testing.assert_frame_equal(x.table[key], y.table[key])
    assert x.study is not None and len(x.study.trials) == 8


def test_random_stops_when_a_small_space_is_exhausted(md: Any) -> None:
    res = Backtest(md, "sma_cross").optimize(
        {"fast": [3, 4], "slow": [10]}, "random", n_trials=50, seed=0, n_jobs=1
    )
    assert res.n_trials == 2


def test_multi_objective_pareto_front(md: Any) -> None:
    res = Backtest(md, "sma_cross").optimize(
        {"fast": Int(2, 12), "slow": Int(14, 50)},
        "bayes",
        maximize="total_return",
        minimize="max_drawdown",
        n_trials=10,
        seed=1,
        n_jobs=1,
    )
    cols = set(res.table.columns)
    assert {"score_total_return", "score_max_drawdown", "pareto_rank"} <= cols
    assert res.table.columns.is_unique
    assert (res.table["score_total_return"] == res.table["total_return"]).all()
    front = res.pareto_front
    assert len(front) >= 1 and (front["pareto_rank"] == 0).all()
    pts = res.table[["total_return", "max_drawdown"]].to_numpy()
    for f in front[["total_return", "max_drawdown"]].to_numpy():
        dominated = (
            (pts[:, 0] >= f[0]) & (pts[:, 1] <= f[1]) & ((pts[:, 0] > f[0]) | (pts[:, 1] < f[1]))
        )
        assert not dominated.any()


def test_a_resumed_study_continues_where_it_stopped(md: Any, tmp_path: Path) -> None:
    bt = Backtest(md, "sma_cross")
    space = {"fast": Int(2, 12), "slow": Int(14, 50)}
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = bt.optimize(space, "bayes", n_trials=4, seed=5, storage=url, n_jobs=1)
    calls: list[Any] = []
    orig = Backtest._run  # what every trial runs (run() without the exposure curve)

    def counting(self: Backtest, params: dict[str, Any], *a: Any, **k: Any) -> Any:
        calls.append(params)
        return orig(self, params, *a, **k)

    try:
        Backtest._run = counting  # type: ignore[method-assign]
        again = bt.optimize(space, "bayes", n_trials=7, seed=5, storage=url, n_jobs=1)
    finally:
        Backtest._run = orig  # type: ignore[method-assign]
    assert len(calls) == 3  # only the trials still missing ran
    assert again.n_trials == 7
    old = first.table.set_index("trial")["score"]
    assert again.table.set_index("trial").loc[old.index, "score"].tolist() == old.tolist()


# ----- backends --------------------------------------------------------------------------------


def test_every_backend_gives_the_single_runs_table(md: Any, monkeypatch: Any) -> None:
    space = {"fast": [3, 5, 8], "slow": [10, 21], "size": [2.0]}
    bt = Backtest(md, "sma_cross", commission=0.001)
    calls = []
    real = bt_engine.sweep_sma_cross

    def spy(*a: Any, **k: Any) -> Any:
        calls.append(len(a[2]))
        return real(*a, **k)

    monkeypatch.setattr(be.bt_engine, "sweep_sma_cross", spy)
    tables = {}
    for backend, kw in [
        ("sequential", {}),
        ("thread", {}),
        ("process", {}),
        ("process", {"start_method": "spawn"}),
        ("rust", {}),
    ]:
        res = bt.optimize(space, backend=backend, n_jobs=2, **kw)
        assert_rows_are_single_runs(bt, res)
        tables[(backend, kw.get("start_method"))] = res.table.drop(columns="duration_s")
    assert calls == [6]  # the rust backend ran every set in one batch
    first = next(iter(tables.values()))
    for t in tables.values():
        pd.testing.assert_frame_equal(t, first)


def test_a_forked_pool_freezes_the_inherited_objects_only_while_it_runs(md: Any) -> None:
    # The workers' collections must not copy the parent's pages (gc.freeze before the fork);
    # the parent's objects are collectable again once the sweep is over, also after an error.
    import gc

    seen: list[int] = []

    def during(done: int, total: int, row: Any) -> None:
        seen.append(gc.get_freeze_count())

    before = gc.get_freeze_count()
    bt = Backtest(md, "sma_cross")
    bt.optimize({"fast": [3, 5], "slow": [10]}, backend="process", n_jobs=2, on_trial=during)
    assert seen and min(seen) > before
    assert gc.get_freeze_count() == before

    def fail(done: int, total: int, row: Any) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        bt.optimize({"fast": [3, 5], "slow": [10]}, backend="process", n_jobs=2, on_trial=fail)
    assert gc.get_freeze_count() == before


def test_a_strategy_file_reaches_spawned_workers(md: Any, tmp_path: Path) -> None:
    path = tmp_path / "file_strategy.py"
    path.write_text(
        textwrap.dedent("""
        from bt_core import Strategy
        from bt_core.indicators import sma

        class FileCross(Strategy):
            fast = 5
            slow = 20
            order_size = 3.0

            def on_start(self):
                if self.fast == 4:
                    raise ValueError("no fours")
                self.f = self.I(sma, self.data.close, self.fast)
                self.s = self.I(sma, self.data.close, self.slow)

            def next(self, bar):
                if self.f.crossed_above(self.s) and self.position == 0:
                    self.buy()
                elif self.f.crossed_below(self.s):
                    self.close()
    """)
    )
    cls = import_strategy_file(path).FileCross
    bt = Backtest(md, cls)
    space = {"fast": [3, 4, 6], "slow": [15, 25]}
    res = bt.optimize(space, n_jobs=2, start_method="spawn")
    assert_rows_are_single_runs(bt, res)
    assert res.n_failed == 2 and "no fours" in res.failed["error"].iloc[0]
    fork = bt.optimize(space, n_jobs=2, start_method="fork")
    pd.testing.assert_frame_equal(
        res.table.drop(columns="duration_s"), fork.table.drop(columns="duration_s")
    )


def test_python_strategy_rows_equal_single_runs_with_failures(md: Any) -> None:
    bt = Backtest(md, Cross)
    res = bt.optimize({"fast": [5, 7], "slow": [20, 30]}, n_jobs=2, backend="thread")
    assert_rows_are_single_runs(bt, res)


@pytest.mark.parametrize("symbols", [1, 2])  # one symbol runs sparse, two run every bar
def test_batch_runs_without_exposure_curves_keep_their_figures(
    make_ohlc: Any, symbols: int
) -> None:
    # The batch's runs without exposure curves: the figures a single run's curve has, bit
    # for bit, and a clear error for the curve they did not keep.
    frames = {f"S{k}": make_ohlc(3_000, seed=20 + k) for k in range(symbols)}
    md = load_data(frames)
    fast, slow = [2, 3, 5], [9, 20, 40]
    got: dict[int, Any] = {}
    bt_engine.sweep_sma_cross(
        md.handle, None, fast, slow, [1.0] * 3, got.__setitem__, exposure_curves=False
    )
    for i, run in got.items():
        eng = bt_engine.Engine(md.handle)
        eng.run_sma_cross(fast[i], slow[i], 1.0, "units")
        curve = eng.exposure_curve()
        n, total, nonzero, bad = run.exposure_summary()
        assert (n, nonzero, bad) == (curve.size, np.count_nonzero(curve), None)
        assert np.float64(total).tobytes() == np.add.reduce(curve).tobytes()
        assert 0 < nonzero < n
        np.testing.assert_array_equal(run.equity_curve(), eng.equity_curve())
        with pytest.raises(bt_engine.ConfigError, match="kept no exposure curves"):
            run.exposure_curve()


def test_rust_backend_falls_back_for_sets_it_cannot_batch(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    res = bt.optimize(
        {"fast": [3, 40], "slow": [10, 20], "size": [1.0, 0.0]}, backend="rust", n_jobs=2
    )
    assert_rows_are_single_runs(bt, res)  # fast >= slow and size 0 fail as run() fails
    assert res.n_failed == 6


def test_rust_backend_batches_percent_sized_sets(md: Any, monkeypatch: Any) -> None:
    # The built-in's default (no size: all of equity) and explicit pct run in the batch;
    # a negative pct fails as run() fails.
    bt = Backtest(md, "sma_cross", commission=0.001)
    batched = []
    real = bt_engine.sweep_sma_cross

    def spy(*a: Any, **k: Any) -> Any:
        batched.append(list(k["sizing"]))
        return real(*a, **k)

    monkeypatch.setattr(be.bt_engine, "sweep_sma_cross", spy)
    res = bt.optimize({"fast": [3, 5], "slow": [12, 21]}, backend="rust", n_jobs=2)
    assert_rows_are_single_runs(bt, res)
    assert batched == [["pct"] * 4]
    res = bt.optimize(
        {"fast": [3, 5], "slow": [12], "pct": [0.5, 1.0, -0.2]}, backend="rust", n_jobs=2
    )
    assert_rows_are_single_runs(bt, res)
    assert batched[1] == ["pct"] * 4 and res.n_failed == 2
    assert "pct" in res.failed["error"].iloc[0]


def test_ctrl_c_keeps_what_finished(md: Any, monkeypatch: Any) -> None:
    bt = Backtest(md, "sma_cross")
    from bt_core.optimize import _work

    real = _work.evaluate
    seen = []

    def stop_on_third(*a: Any) -> Any:
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(be, "evaluate", stop_on_third)
    res = bt.optimize({"fast": [2, 3, 4, 5, 6], "slow": [20]}, n_jobs=1)
    assert res.interrupted and res.n_trials == 2


def test_progress_bar_runs(md: Any, capsys: Any) -> None:
    Backtest(md, "sma_cross").optimize({"fast": [3, 5]}, n_jobs=1, progress=True)
    assert "grid search" in capsys.readouterr().err


def test_categorical_and_float_dimensions(md: Any) -> None:
    res = Backtest(md, "sma_cross").optimize(
        {"fast": Categorical([3, 6]), "size": Float(1.0, 2.0, 0.5)}, n_jobs=1
    )
    assert sorted(res.table["size"].unique()) == [1.0, 1.5, 2.0] and res.n_trials == 6


def test_bayes_with_folds_prunes_trials_early(md: Any) -> None:
    import optuna

    from bt_core.optimize._work import fold_bounds, slice_data

    bt = Backtest(md, "sma_cross")
    space = {"fast": Int(2, 8), "slow": Int(10, 30)}
    full = bt.optimize(
        space, "bayes", n_trials=4, seed=2, folds=3, n_jobs=1, pruner=optuna.pruners.NopPruner()
    )
    assert full.n_failed == 0 and (full.table["folds_run"] == 3).all()
    # A trial's score is the mean of its score on each fold, each fold its own backtest.
    row = full.rows[0]
    scores = []
    for k in range(3):
        lo, hi = fold_bounds(md.n_bars, 3, k)
        scores.append(
            Backtest(slice_data(md, lo, hi), "sma_cross").run(**row.params).stats["sharpe"]
        )
    t = full.table.set_index("trial").loc[row.trial]
    assert t["score"] == pytest.approx(np.mean(scores), rel=1e-12)

    calls: list[Any] = []
    orig = Backtest._run  # what every trial runs (run() without the exposure curve)

    def counting(self: Backtest, params: dict[str, Any], *a: Any, **k: Any) -> Any:
        calls.append(params)
        return orig(self, params, *a, **k)

    Backtest._run = counting  # type: ignore[method-assign]
    try:
        # Prunes every trial whose running mean is below an unreachable bar: one fold each.
        pruned = bt.optimize(
            space,
            "bayes",
            n_trials=4,
            seed=2,
            folds=3,
            n_jobs=1,
            pruner=optuna.pruners.ThresholdPruner(lower=1e9),
        )
    finally:
        Backtest._run = orig  # type: ignore[method-assign]
    assert len(calls) == 4  # fold 0 of each trial only
    assert (pruned.table["error"].str.startswith("pruned after fold 0")).all()
    assert [t.state.name for t in pruned.study.trials] == ["PRUNED"] * 4
    with pytest.raises(ParameterError, match="folds= scores each Bayesian trial"):
        bt.optimize(space, "random", n_trials=2, folds=3)
    with pytest.raises(ParameterError, match="folds must be an integer >= 2"):
        bt.optimize(space, "bayes", n_trials=2, folds=1)


def test_any_stat_of_result_stats_is_an_objective(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    res = bt.optimize({"fast": [3, 5], "slow": [20]}, maximize="n_orders", n_jobs=1)
    assert res.table["score"].tolist() == sorted(res.table["n_orders"], reverse=True)


# ----- on_trial: progress and each finished trial, in the calling process ------------------


class Trials:
    """Records every on_trial call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict[str, Any]]] = []

    def __call__(self, done: int, total: int, row: dict[str, Any]) -> None:
        self.calls.append((done, total, row))


def assert_reported(seen: Trials, res: Any, total: int) -> None:
    """One call per trial, counting up to ``total``; each row is the trial's table row."""
    assert [c[0] for c in seen.calls] == list(range(1, res.n_trials + 1))
    assert {c[1] for c in seen.calls} == {total}
    table = res.table.set_index("trial")
    assert sorted(c[2]["trial"] for c in seen.calls) == sorted(table.index)
    for _, _, row in seen.calls:
        expected = table.loc[row["trial"]]
        for key, value in row.items():
            if key == "trial":
                continue
            assert same(value, expected[key]) or (value is None and pd.isna(expected[key])), key


@pytest.mark.parametrize("backend", ["sequential", "process", "thread", "rust"])
def test_on_trial_reports_every_grid_trial(md: Any, backend: str) -> None:
    seen = Trials()
    bt = Backtest(md, "sma_cross")
    res = bt.optimize(
        {"fast": [3, 5, 8], "slow": [10, 20, 30]},
        constraint=lambda p: p["fast"] * 3 < p["slow"],
        backend=backend,
        n_jobs=2,
        on_trial=seen,
    )
    assert res.n_trials == 6
    assert_reported(seen, res, 6)


def test_on_trial_reports_failing_trials(md: Any) -> None:
    seen = Trials()
    res = Backtest(md, Cross).optimize({"fast": [5, 7], "slow": [20]}, n_jobs=1, on_trial=seen)
    assert_reported(seen, res, 2)
    failed = [row for _, _, row in seen.calls if row["error"] is not None]
    assert len(failed) == 1 and failed[0]["fast"] == 7 and "seven" in failed[0]["error"]


def test_on_trial_random_and_bayes(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    space = {"fast": Int(2, 12), "slow": Int(15, 60)}
    seen = Trials()
    res = bt.optimize(space, "random", n_trials=6, seed=1, n_jobs=1, on_trial=seen)
    assert_reported(seen, res, 6)
    seen = Trials()
    res = bt.optimize(space, "bayes", n_trials=5, seed=1, n_jobs=2, backend="thread", on_trial=seen)
    assert_reported(seen, res, 5)
    assert all(c[2]["score"] == c[2]["sharpe"] or c[2]["error"] for c in seen.calls)


def test_on_trial_walk_forward_counts_over_the_windows(make_ohlc: Any) -> None:
    from bt_core.optimize import walk_forward

    bt = Backtest(load_data(make_ohlc(500, seed=4)), "sma_cross")
    seen = Trials()
    wf = walk_forward(
        bt, {"fast": [3, 5], "slow": [15, 30]}, train=200, test=100, n_jobs=1, on_trial=seen
    )
    assert len(wf.windows) == 3
    assert [c[0] for c in seen.calls] == list(range(1, 13))
    assert {c[1] for c in seen.calls} == {12}
    assert [c[2]["window"] for c in seen.calls] == [0] * 4 + [1] * 4 + [2] * 4
    for k, res in enumerate(wf.results):
        rows = [c[2] for c in seen.calls if c[2]["window"] == k]
        table = res.table.set_index("trial")
        for row in rows:
            assert same(row["score"], table.loc[row["trial"], "score"])


def test_on_trial_errors(md: Any) -> None:
    bt = Backtest(md, "sma_cross")
    with pytest.raises(ParameterError, match="on_trial must be a callable"):
        bt.optimize({"fast": [3, 5]}, n_jobs=1, on_trial=5)

    def stop(done: int, total: int, row: dict[str, Any]) -> None:
        if done == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        bt.optimize({"fast": [3, 4, 5, 6]}, n_jobs=1, on_trial=stop)


def test_fold_data_reads_the_same_memory_and_equals_a_copy(make_ohlc: Any) -> None:
    from bt_core.data import MarketData
    from bt_core.optimize._work import columns, slice_data

    md = load_data({"A": make_ohlc(300, seed=1), "B": make_ohlc(260, seed=2)})
    part = slice_data(md, 50, 200)
    assert np.shares_memory(part.fields["close"], md.fields["close"])
    copy = MarketData.from_handle(bt_engine.Data(*columns(md, 50, 200)), md.index[50:200])
    assert not np.shares_memory(copy.fields["close"], md.fields["close"])
    a = Backtest(part, "sma_cross").run(fast=3, slow=12)
    b = Backtest(copy, "sma_cross").run(fast=3, slow=12)
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert a.stats == b.stats
    # B's bars end before row 270: that window is A's alone, as a copy.
    late = slice_data(md, 270, 300)
    assert late.symbols == ("A",) and not np.shares_memory(
        late.fields["close"], md.fields["close"]
    )


def test_spawned_workers_map_the_data_file_read_only(make_ohlc: Any) -> None:
    import os

    from bt_core.optimize._work import SharedData, attach

    md = load_data({"A": make_ohlc(300, seed=1), "B": make_ohlc(260, seed=2)})
    shared = SharedData(md)
    try:
        mapped = attach(shared.layout)
        for f in md.fields:
            np.testing.assert_array_equal(mapped.fields[f], md.fields[f])
        # Computed once by the parent and taken over, not computed again.
        assert {k: mapped.__dict__[k] for k in md.FACTS} == md.facts()
        a = Backtest(mapped, "sma_cross").run(fast=3, slow=12)
        b = Backtest(md, "sma_cross").run(fast=3, slow=12)
        assert a.stats == b.stats
    finally:
        shared.close()
    assert not os.path.exists(shared.layout.path)
    shared.close()  # twice is harmless


def test_a_ray_worker_copies_data_it_may_not_share(make_ohlc: Any) -> None:
    # Ray hands out read-only views of its object store; should it hand out writable
    # memory, the worker copies it once into immutable bytes rather than fail the sweep.
    from bt_core.optimize import backends as be
    from bt_core.optimize._work import Job

    md = load_data(make_ohlc(200, seed=3))
    writable = {k: np.array(v) for k, v in md.fields.items()}
    with pytest.raises(bt_engine.ConfigError, match="writable memory"):
        bt_engine.Data.shared(list(md.symbols), md.ts, writable)
    frozen = {k: be._immutable(v) for k, v in writable.items()}
    handle = bt_engine.Data.shared(list(md.symbols), be._immutable(np.array(md.ts)), frozen)
    np.testing.assert_array_equal(handle.field("close"), md.fields["close"])

    class FakeRay:
        @staticmethod
        def get(refs: Any) -> Any:
            return refs

    import sys

    bt = Backtest(md, "sma_cross")
    job = Job(strategy="sma_cross", config=bt.config)
    data = (list(md.symbols), np.array(md.ts), writable, md.facts())
    saved = sys.modules.get("ray")
    sys.modules["ray"] = FakeRay  # type: ignore[assignment]
    try:
        be._RAY_HELD.clear()
        rows = be._ray_chunk("t", [data, job], [(0, {"fast": 3, "slow": 12})])
    finally:
        be._RAY_HELD.clear()
        if saved is None:
            del sys.modules["ray"]
        else:
            sys.modules["ray"] = saved
    assert rows[0].error is None
    assert rows[0].stats == bt.run(fast=3, slow=12).stats
