"""Cross-sectional factor evaluation (the seed's run_cs_momentum_sample.py), bt-analysis only.

Generates a synthetic equity universe (industries, market caps, prices with a
planted 20-day momentum premium), builds a few candidate factors and evaluates
them with ``bt_analysis.factor``:

* ``MultiFactorAnalyzer``: IC / rank IC, ICIR, monotonicity, stability,
  turnover; a ranking and the factor correlation matrix, exported to CSV/JSON;
* a closer look at momentum: IC by horizon (decay), mean return by quantile,
  by-industry IC, and the effect of industry + size neutralisation;
* an HTML factor tear sheet (needs plotly, the ``report`` extra).

    uv run python examples/run_cs_momentum_sample.py [--out-dir DIR] [--assets 300] [--dates 750]

Writes factor_ranking.csv, factor_ic.csv, factor_correlation.csv, factors.json and
momentum_tear_sheet.html into DIR (default: ``pyrust-bt-cs-momentum`` in the temp directory).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile

import numpy as np
import pandas as pd

from bt_analysis.factor import (
    MultiFactorAnalyzer,
    factor_ic,
    factor_tear_sheet,
    group_ic_summary,
    ic_decay,
    ic_summary,
    mean_return_by_quantile,
    neutralize,
    prepare_factor_data,
    quantile_spread,
)

INDUSTRIES = ["bank", "tech", "energy", "retail", "health", "industrial", "utility", "media"]


def make_universe(
    n_assets: int, n_dates: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Prices, market caps and industries of a synthetic universe.

    Daily return = market + industry + 0.04 x (cross-sectional z-score of the
    past 20-day return) x 1% + idiosyncratic noise, so momentum has a real but
    small edge; the industry factor makes raw momentum partly an industry bet.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    assets = [f"{600000 + i:06d}.SH" if i % 2 else f"{i:06d}.SZ" for i in range(n_assets)]
    industry = pd.Series(rng.choice(INDUSTRIES, n_assets), index=assets, name="industry")
    ind_code = pd.Categorical(industry, categories=INDUSTRIES).codes
    market = rng.normal(0.0003, 0.01, n_dates)
    ind_ret = rng.normal(0.0, 0.006, (n_dates, len(INDUSTRIES)))[:, ind_code]
    idio = rng.normal(0.0, 0.018, (n_dates, n_assets))
    log_p = np.zeros((n_dates, n_assets))
    log_p[0] = np.log(rng.uniform(5, 80, n_assets))
    for t in range(1, n_dates):  # the premium depends on past prices: build bar by bar
        mom = log_p[t - 1] - log_p[max(t - 21, 0)]
        z = (mom - mom.mean()) / (mom.std() + 1e-12)
        log_p[t] = log_p[t - 1] + market[t] + ind_ret[t] + 0.0004 * z + idio[t]
    prices = pd.DataFrame(np.exp(log_p), index=dates, columns=assets)
    shares = rng.lognormal(19, 1.0, n_assets)
    caps = prices * shares
    # a few late listings: no price (and so no factor) before they list
    for j in rng.choice(n_assets, n_assets // 20, replace=False):
        prices.iloc[: rng.integers(30, n_dates // 2), j] = np.nan
    return prices, caps.where(prices.notna()), industry


def build_factors(prices: pd.DataFrame, caps: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed + 1)
    ret1 = prices.pct_change(fill_method=None)
    return {
        "momentum_20": prices.pct_change(20, fill_method=None),
        "reversal_5": -prices.pct_change(5, fill_method=None),
        "low_vol_20": -ret1.rolling(20).std(),
        "small_size": -np.log(caps),
        "noise": pd.DataFrame(
            rng.normal(size=prices.shape), index=prices.index, columns=prices.columns
        ).where(prices.notna()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=pathlib.Path, default=None)
    parser.add_argument("--assets", type=int, default=300)
    parser.add_argument("--dates", type=int, default=750)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = args.out_dir or pathlib.Path(tempfile.gettempdir()) / "pyrust-bt-cs-momentum"
    out.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 140)

    prices, caps, industry = make_universe(args.assets, args.dates, args.seed)
    factors = build_factors(prices, caps, args.seed)
    print(
        f"universe: {prices.shape[1]} assets x {prices.shape[0]} dates, "
        f"{industry.nunique()} industries"
    )

    mfa = MultiFactorAnalyzer(factors, prices, periods=(1, 5, 10), quantiles=5, groups=industry)
    ranking = mfa.rank()
    print("\n== factor ranking (horizon 1 bar; score = weighted percentile ranks) ==")
    cols = [
        "rank",
        "score",
        "rank_ic_mean",
        "rank_icir",
        "t_stat",
        "monotonicity",
        "stability",
        "turnover",
        "direction",
    ]
    print(ranking[cols].round(4).to_string())
    print("\n== mean cross-sectional rank correlation between factors ==")
    print(mfa.correlation().round(3).to_string())
    paths = mfa.to_csv(out)
    mfa.to_json(out / "factors.json")

    # --- momentum in detail
    mom = factors["momentum_20"]
    fd = mfa.factor_data("momentum_20")
    print("\n== momentum_20: rank IC by horizon ==")
    print(ic_summary(factor_ic(fd)).round(4).to_string())
    print("\n== momentum_20: IC decay (each horizon cleaned on its own) ==")
    print(
        ic_decay(mom, prices, horizons=(1, 2, 5, 10, 20))[["ic_mean", "icir", "t_stat"]]
        .round(4)
        .to_string()
    )
    mean, se = mean_return_by_quantile(fd)
    spread, spread_se = quantile_spread(mean, se)
    print("\n== momentum_20: mean demeaned forward return by quantile (bps) ==")
    print((mean * 1e4).round(2).to_string())
    print("top - bottom (bps):", (spread * 1e4).round(2).to_dict())
    print("\n== momentum_20: rank IC by industry (1 bar) ==")
    print(
        group_ic_summary(fd)
        .xs("fwd_1", level="period")[["ic_mean", "icir", "n"]]
        .round(4)
        .to_string()
    )

    neutral = neutralize(mom, groups=industry, size=caps)
    fd_n = prepare_factor_data(neutral, prices, periods=(1, 5, 10), quantiles=5)
    before = ic_summary(factor_ic(fd)).loc["fwd_1", ["ic_mean", "icir"]]
    after = ic_summary(factor_ic(fd_n)).loc["fwd_1", ["ic_mean", "icir"]]
    print("\n== momentum_20 before / after industry + size neutralisation (1 bar) ==")
    print(pd.DataFrame({"raw": before, "neutralised": after}).round(4).to_string())

    try:
        html_path = out / "momentum_tear_sheet.html"
        factor_tear_sheet(fd, html_path, title="momentum_20 (synthetic universe)")
        print(f"\ntear sheet: {html_path}")
    except ImportError as exc:
        print(f"\n(no tear sheet: {exc})")
    top = json.loads((out / "factors.json").read_text())["ranking"]
    print("best factor:", next(iter(top)), "| files:", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
