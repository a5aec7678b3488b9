"""bt-analysis: performance metrics, drawdowns, round trips, factor analysis and HTML tear
sheets for pyrust-bt. pandas in, pandas out; depends only on numpy, pandas and scipy (plotly for
the HTML reports, via the ``report`` extra). It never imports the engine or bt-core.
"""

from bt_analysis import stats
from bt_analysis._json import json_safe
from bt_analysis._validation import AnalysisInputError
from bt_analysis.drawdown import drawdown_segments, underwater
from bt_analysis.metrics import (
    METRIC_KEYS,
    exposure_figures,
    performance_metrics,
    return_moments,
    returns_from_equity,
)
from bt_analysis.periods import infer_periods_per_year, per_period_rate
from bt_analysis.tearsheet import monthly_returns, report, report_html
from bt_analysis.trades import round_trips, trade_metrics, trade_stats_by_symbol

__version__ = "0.1.0"

__all__ = [
    "METRIC_KEYS",
    "AnalysisInputError",
    "drawdown_segments",
    "exposure_figures",
    "infer_periods_per_year",
    "json_safe",
    "monthly_returns",
    "per_period_rate",
    "performance_metrics",
    "report",
    "report_html",
    "return_moments",
    "returns_from_equity",
    "round_trips",
    "stats",
    "trade_metrics",
    "trade_stats_by_symbol",
    "underwater",
]

# --- factor analysis (bt_analysis.factor) ---
from bt_analysis import factor  # noqa: E402
from bt_analysis.factor import (  # noqa: E402
    CrossSectionFactorBacktester,
    FactorBacktestResult,
    FactorData,
    FactorInputError,
    MultiFactorAnalyzer,
    factor_ic,
    factor_rank_autocorrelation,
    factor_summary,
    factor_tear_sheet,
    forward_returns,
    group_ic_summary,
    ic_decay,
    ic_summary,
    mean_return_by_quantile,
    monotonicity,
    neutralize,
    prepare_factor_data,
    quantile_spread,
    quantile_turnover,
    quantize,
)

__all__ += [
    "CrossSectionFactorBacktester",
    "FactorBacktestResult",
    "FactorData",
    "FactorInputError",
    "MultiFactorAnalyzer",
    "factor",
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
    "prepare_factor_data",
    "quantile_spread",
    "quantile_turnover",
    "quantize",
]
# --- end factor analysis ---
