"""Cross-sectional factor analysis (pandas in, pandas out).

* :func:`prepare_factor_data` aligns a factor with prices: forward returns per
  asset, NaN factors dropped, equal-count quantiles, ``min_assets`` per date.
* :mod:`~bt_analysis.factor.stats`: IC / rank IC per date and their summary
  (ICIR, t-stat, p-value), IC decay, mean return by quantile with standard
  errors, long-short spread, monotonicity, turnover, rank autocorrelation,
  by-group statistics; :func:`neutralize` removes group / size exposure.
* :class:`MultiFactorAnalyzer` ranks many factors; :class:`CrossSectionFactorBacktester`
  simulates quantile portfolios with costs; :func:`factor_tear_sheet` writes HTML.

Conventions and where they differ from alphalens-reloaded are documented in
:mod:`bt_analysis.factor.core`, :mod:`~bt_analysis.factor.stats` and
:mod:`~bt_analysis.factor.backtester`.
"""

from bt_analysis.factor._validate import FactorInputError
from bt_analysis.factor.backtester import CrossSectionFactorBacktester, FactorBacktestResult
from bt_analysis.factor.core import (
    FactorData,
    average_ranks,
    forward_returns,
    neutralize,
    period_column,
    prepare_factor_data,
    quantize,
)
from bt_analysis.factor.multi import DEFAULT_RANK_WEIGHTS, MultiFactorAnalyzer
from bt_analysis.factor.report import factor_tear_sheet
from bt_analysis.factor.stats import (
    factor_ic,
    factor_rank_autocorrelation,
    factor_summary,
    group_ic_summary,
    ic_decay,
    ic_summary,
    mean_return_by_quantile,
    monotonicity,
    quantile_spread,
    quantile_turnover,
)

__all__ = [
    "DEFAULT_RANK_WEIGHTS",
    "CrossSectionFactorBacktester",
    "FactorBacktestResult",
    "FactorData",
    "FactorInputError",
    "MultiFactorAnalyzer",
    "average_ranks",
    "factor_ic",
    "factor_rank_autocorrelation",
    "factor_summary",
    "factor_tear_sheet",
    "forward_returns",
    "group_ic_summary",
    "ic_decay",
    "ic_summary",
    "mean_return_by_quantile",
    "monotonicity",
    "neutralize",
    "period_column",
    "prepare_factor_data",
    "quantile_spread",
    "quantile_turnover",
    "quantize",
]
