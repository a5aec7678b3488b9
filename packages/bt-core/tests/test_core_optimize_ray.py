"""The Ray backend against a local Ray instance (started once for the session): the same
table as the process pool, for a built-in strategy and for a strategy class of a file."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bt_core import Backtest, load_data
from bt_core.loading import import_strategy_file

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    # As bt_core's Ray backend does: workers of a local instance run in this environment.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'bt-core[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"a local Ray instance cannot start here: {type(e).__name__}: {e}")
    yield ray
    ray.shutdown()


def _table(res: Any) -> pd.DataFrame:
    return res.table.drop(columns="duration_s")


def test_ray_gives_the_process_pools_table(ray_local: Any, make_ohlc: Any, tmp_path: Path) -> None:
    md = load_data(make_ohlc(300, seed=2))
    bt = Backtest(md, "sma_cross", commission=0.001)
    space = {"fast": [3, 5, 8], "slow": [12, 25]}
    ray_res = bt.optimize(space, backend="ray", n_jobs=2, chunk=2)
    proc = bt.optimize(space, backend="process", n_jobs=2)
    pd.testing.assert_frame_equal(_table(ray_res), _table(proc))
    for row in ray_res.rows:
        assert row.stats == bt.run(**row.params).stats

    path = tmp_path / "ray_strategy.py"
    path.write_text(
        textwrap.dedent("""
        from bt_core import Strategy
        from bt_core.indicators import sma

        class RayCross(Strategy):
            fast = 5
            slow = 20

            def on_start(self):
                if self.slow == 13:
                    raise ValueError("thirteen")
                self.f = self.I(sma, self.data.close, self.fast)
                self.s = self.I(sma, self.data.close, self.slow)

            def next(self, bar):
                if self.f.crossed_above(self.s) and self.position == 0:
                    self.buy(2)
                elif self.f.crossed_below(self.s):
                    self.close()
    """)
    )
    cls = import_strategy_file(path).RayCross
    bt2 = Backtest(md, cls)
    space2 = {"fast": [3, 6], "slow": [13, 20]}
    a = bt2.optimize(space2, backend="ray", n_jobs=2)
    b = bt2.optimize(space2, backend="process", n_jobs=2, start_method="spawn")
    pd.testing.assert_frame_equal(_table(a), _table(b))
    assert a.n_failed == 2 and "thirteen" in a.failed["error"].iloc[0]


def test_ray_reports_each_trial_in_the_driver(ray_local: Any, make_ohlc: Any) -> None:
    bt = Backtest(load_data(make_ohlc(200, seed=3)), "sma_cross")
    calls: list[tuple[int, int, dict[str, Any]]] = []
    res = bt.optimize(
        {"fast": [3, 5, 8], "slow": [15, 30]},
        backend="ray",
        n_jobs=2,
        on_trial=lambda done, total, row: calls.append((done, total, row)),
    )
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5, 6] and {c[1] for c in calls} == {6}
    table = res.table.set_index("trial")
    assert sorted(c[2]["trial"] for c in calls) == sorted(table.index)
    for _, _, row in calls:
        assert row["sharpe"] == table.loc[row["trial"], "sharpe"]


def test_ray_workers_serve_each_sweep_its_own_data(ray_local: Any, make_ohlc: Any) -> None:
    # Ray's worker processes outlive a sweep and keep the Backtest of the sweep they last
    # served: a following sweep on other data must not be run on it.
    space = {"fast": [3, 5], "slow": [12, 20]}
    for seed in (4, 5, 4):
        bt = Backtest(load_data(make_ohlc(250, seed=seed)), "sma_cross")
        res = bt.optimize(space, backend="ray", n_jobs=2)
        for row in res.rows:
            assert row.stats == bt.run(**row.params).stats
