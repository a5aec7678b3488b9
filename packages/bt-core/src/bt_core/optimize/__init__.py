"""The optimizer: grid, random and Bayesian / multi-objective search (optuna) over a
strategy's parameters, on a process pool, threads, Ray or the engine's Rust batch sweep;
walk-forward analysis; purged k-fold and combinatorial purged cross-validation; the deflated
Sharpe ratio and the probability of backtest overfitting.

    from bt_core import Backtest
    res = Backtest(data, "sma_cross").optimize({"fast": "5:50:5", "slow": range(20, 201, 10)},
                                               constraint=lambda p: p["fast"] < p["slow"])
    res.table, res.best_params, res.best_result(), res.overfitting()

The same sweep on a Ray cluster: start Ray on one machine (``ray start --head``), join the
others to it (``ray start --address=HEAD_IP:6379``), point the driver at it
(``export RAY_ADDRESS=HEAD_IP:6379``), then run the same code with ``backend="ray"`` (or
``bt optimize ... --backend ray``); every machine needs the same Python environment
(``pip install 'bt-core[ray]' bt-engine``). Without ``RAY_ADDRESS`` a local Ray starts.
Strategy classes from files are shipped to the workers by value.
"""

from bt_core.optimize.cv import CombinatorialPurgedKFold, CVResult, PurgedKFold
from bt_core.optimize.objective import Objective
from bt_core.optimize.overfit import (
    PBO,
    DeflatedSharpe,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo,
    pbo_from_blocks,
    probabilistic_sharpe_ratio,
)
from bt_core.optimize.result import OptimizeResult
from bt_core.optimize.search import METHODS, optimize
from bt_core.optimize.space import Categorical, Float, Int, Space, parse_dimension
from bt_core.optimize.walkforward import WalkForwardResult, Window, walk_forward, windows

__all__ = [
    "METHODS",
    "PBO",
    "CVResult",
    "Categorical",
    "CombinatorialPurgedKFold",
    "DeflatedSharpe",
    "Float",
    "Int",
    "Objective",
    "OptimizeResult",
    "PurgedKFold",
    "Space",
    "WalkForwardResult",
    "Window",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "optimize",
    "parse_dimension",
    "pbo",
    "pbo_from_blocks",
    "probabilistic_sharpe_ratio",
    "walk_forward",
    "windows",
]
