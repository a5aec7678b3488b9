"""Overfitting statistics of a parameter search.

- The deflated Sharpe ratio: D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal of
  Portfolio Management 40(5), 2014, 94-107. The probability that the selected strategy's
  true Sharpe ratio is above the best Sharpe ratio expected from ``N`` trials of pure noise.
- The probabilistic Sharpe ratio it builds on: D. H. Bailey and M. López de Prado, "The
  Sharpe Ratio Efficient Frontier", Journal of Risk 15(2), 2012.
- The probability of backtest overfitting by combinatorially symmetric cross-validation
  (CSCV): D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of
  Backtest Overfitting", Journal of Computational Finance 20(4), 2017.

The formulas take the Sharpe ratio per observation (not annualised) and the raw kurtosis
(3 for a normal distribution, not the excess kurtosis 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist
from typing import Any

import numpy as np

from bt_core.errors import ParameterError

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def expected_max_sharpe(n_trials: int, var_sharpe: float) -> float:
    """E[max SR] of ``n_trials`` independent trials whose true Sharpe ratio is 0 and whose
    estimated Sharpe ratios have variance ``var_sharpe`` (Bailey & López de Prado 2014,
    eq. 6 via the false strategy theorem):

        sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))

    with γ the Euler-Mascheroni constant. 0 for a single trial.
    """
    if n_trials < 1:
        raise ParameterError(f"n_trials must be >= 1, got {n_trials}", parameter="n_trials")
    if not var_sharpe >= 0:
        raise ParameterError(f"var_sharpe must be >= 0, got {var_sharpe}", parameter="var_sharpe")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z = (1 - EULER_GAMMA) * _N.inv_cdf(1 - 1 / n) + EULER_GAMMA * _N.inv_cdf(1 - 1 / (n * math.e))
    return math.sqrt(var_sharpe) * z


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true SR > ``sr_benchmark``) given the estimated per-observation ``sr`` over
    ``n_obs`` returns with ``skew`` and raw ``kurtosis`` (Bailey & López de Prado 2012):

        Φ( (SR - SR*) sqrt(T - 1) / sqrt(1 - γ3 SR + (γ4 - 1)/4 SR²) )
    """
    if n_obs < 2:
        raise ParameterError(f"n_obs must be >= 2, got {n_obs}", parameter="n_obs")
    if not all(math.isfinite(v) for v in (sr, sr_benchmark, skew, kurtosis)):
        return math.nan
    denom = 1 - skew * sr + (kurtosis - 1) / 4 * sr * sr
    if denom <= 0:
        return math.nan
    return _N.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a selected strategy and what it was computed from.

    dsr: probability that the true Sharpe ratio exceeds ``sr0``; sr0: the expected maximum
    Sharpe ratio of ``n_trials`` noise trials (per observation); sr: the selected per-
    observation Sharpe ratio; the others are the inputs."""

    dsr: float
    sr0: float
    sr: float
    n_trials: int
    var_sharpe: float
    n_obs: int
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(
    sr: float, n_trials: int, var_sharpe: float, n_obs: int, skew: float, kurtosis: float
) -> DeflatedSharpe:
    """The deflated Sharpe ratio (Bailey & López de Prado 2014): the probabilistic Sharpe
    ratio of ``sr`` against the expected maximum of ``n_trials`` noise trials.

    All Sharpe figures are per observation; ``kurtosis`` is raw. Worked example of the paper:
    SR 2.5 annualised over 1250 daily returns (0.1581 per day), 100 trials with variance
    0.5 / 250 per day, skew -3, kurtosis 10: SR0 = 0.1132 and DSR = 0.9004.
    """
    sr0 = expected_max_sharpe(n_trials, var_sharpe)
    dsr = probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis)
    return DeflatedSharpe(dsr, sr0, sr, n_trials, var_sharpe, n_obs, skew, kurtosis)


# ----- CSCV -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBO:
    """The probability of backtest overfitting by CSCV.

    pbo: the share of the C(S, S/2) splits in which the trial that is best in-sample ranks
    at or below the median out-of-sample (logit <= 0); logits: one per split;
    is_best, oos_of_best: the in-sample performance of the best trial and its
    out-of-sample performance, per split (the "performance degradation" pairs);
    prob_oos_loss: the share of splits where that out-of-sample performance is < 0."""

    pbo: float
    logits: np.ndarray
    is_best: np.ndarray
    oos_of_best: np.ndarray
    prob_oos_loss: float
    n_blocks: int
    n_trials: int


def _merge(blocks: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, mean, M2) per trial of the union of the blocks ``idx`` (Chan et al.'s
    pairwise combination, so the result is that of the concatenated returns)."""
    b = blocks[:, idx, :]
    n = b[..., 0].sum(axis=1)
    mean = (b[..., 0] * b[..., 1]).sum(axis=1) / n
    m2 = b[..., 2].sum(axis=1) + (b[..., 0] * (b[..., 1] - mean[:, None]) ** 2).sum(axis=1)
    return n, mean, m2


def _sharpe(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(m2 / (n - 1))
        return np.where(sd > 0, mean / sd, np.nan)


def _rank_of(values: np.ndarray, i: int) -> float:
    """Average rank (1 = worst) of ``values[i]`` among ``values`` (NaN worst)."""
    v = np.where(np.isnan(values), -np.inf, values)
    x = v[i]
    less = float((v < x).sum())
    equal = float((v == x).sum())
    return less + (equal + 1) / 2


def pbo_from_blocks(blocks: np.ndarray, *, max_splits: int | None = None) -> PBO:
    """CSCV on per-block (count, mean, M2) of each trial's returns, shape
    (trials, S blocks, 3), performance = the Sharpe ratio of the union of blocks.

    For each of the C(S, S/2) ways to pick half of the blocks as the in-sample set J (the
    rest, its complement, out-of-sample): the trial n* with the best in-sample Sharpe, its
    relative out-of-sample rank ω = rank / (N + 1) and logit λ = ln(ω / (1 - ω)); PBO is the
    share of λ <= 0 (Bailey, Borwein, López de Prado & Zhu). ``max_splits`` keeps the first
    splits of the enumeration only (for very large S).
    """
    blocks = np.asarray(blocks, dtype=np.float64)
    if blocks.ndim != 3 or blocks.shape[2] != 3:
        raise ParameterError("blocks must have shape (trials, blocks, 3)", parameter="blocks")
    n_trials, s, _ = blocks.shape
    if n_trials < 2:
        raise ParameterError(
            "the probability of overfitting needs at least 2 trials", parameter="n_trials"
        )
    if s < 2 or s % 2:
        raise ParameterError(
            f"CSCV needs an even number of blocks >= 2, got {s}", parameter="n_blocks"
        )
    logits, is_best, oos_best = [], [], []
    all_blocks = np.arange(s)
    for k, comb in enumerate(combinations(range(s), s // 2)):
        if max_splits is not None and k >= max_splits:
            break
        j = np.array(comb)
        jc = np.setdiff1d(all_blocks, j)
        is_perf = _sharpe(*_merge(blocks, j))
        oos_perf = _sharpe(*_merge(blocks, jc))
        if np.isnan(is_perf).all():
            continue
        best = int(np.nanargmax(is_perf))
        w = _rank_of(oos_perf, best) / (n_trials + 1)
        logits.append(math.log(w / (1 - w)))
        is_best.append(is_perf[best])
        oos_best.append(oos_perf[best])
    lg = np.array(logits)
    oos = np.array(oos_best)
    return PBO(
        pbo=float((lg <= 0).mean()) if lg.size else math.nan,
        logits=lg,
        is_best=np.array(is_best),
        oos_of_best=oos,
        prob_oos_loss=float((oos < 0).mean()) if oos.size else math.nan,
        n_blocks=s,
        n_trials=n_trials,
    )


def pbo(
    returns: Any,
    n_blocks: int = 16,
    *,
    metric: Callable[[np.ndarray], np.ndarray] | None = None,
) -> PBO:
    """CSCV on a (T observations x N trials) matrix of returns, split into ``n_blocks`` row
    blocks (Bailey, Borwein, López de Prado & Zhu). ``metric(sub_matrix) -> (N,)`` scores
    the trials on a sub-matrix of rows (default: the per-observation Sharpe ratio, computed
    from block moments)."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ParameterError(
            "returns must be a (observations x trials) matrix", parameter="returns"
        )
    if n_blocks < 2 or n_blocks % 2:
        raise ParameterError(
            f"n_blocks must be even and >= 2, got {n_blocks}", parameter="n_blocks"
        )
    if m.shape[0] < n_blocks:
        raise ParameterError(
            f"{m.shape[0]} observations cannot make {n_blocks} blocks", parameter="n_blocks"
        )
    parts = np.array_split(np.arange(m.shape[0]), n_blocks)
    if metric is None:
        blocks = np.empty((m.shape[1], n_blocks, 3))
        for b, rows in enumerate(parts):
            x = m[rows]
            mean = x.mean(axis=0)
            blocks[:, b, 0] = len(rows)
            blocks[:, b, 1] = mean
            blocks[:, b, 2] = ((x - mean) ** 2).sum(axis=0)
        return pbo_from_blocks(blocks)
    n_trials = m.shape[1]
    logits, is_best, oos_best = [], [], []
    for comb in combinations(range(n_blocks), n_blocks // 2):
        rows_is = np.concatenate([parts[b] for b in comb])
        rows_oos = np.concatenate([parts[b] for b in range(n_blocks) if b not in comb])
        is_perf = np.asarray(metric(m[rows_is]), dtype=np.float64)
        oos_perf = np.asarray(metric(m[rows_oos]), dtype=np.float64)
        best = int(np.nanargmax(is_perf))
        w = _rank_of(oos_perf, best) / (n_trials + 1)
        logits.append(math.log(w / (1 - w)))
        is_best.append(is_perf[best])
        oos_best.append(oos_perf[best])
    lg, oos = np.array(logits), np.array(oos_best)
    return PBO(
        float((lg <= 0).mean()),
        lg,
        np.array(is_best),
        oos,
        float((oos < 0).mean()),
        n_blocks,
        n_trials,
    )


__all__ = [
    "PBO",
    "DeflatedSharpe",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "pbo",
    "pbo_from_blocks",
    "probabilistic_sharpe_ratio",
]
