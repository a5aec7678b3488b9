"""Shared fixtures for the bt-analysis tests (sample data and small equity-curve builders)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
SAMPLE_CSV = REPO_ROOT / "examples" / "data" / "sample.csv"


def _equity_from_returns(
    returns: np.ndarray, start: float = 100.0, tz: str | None = "UTC"
) -> pd.Series:
    values = start * np.cumprod(np.concatenate(([1.0], 1.0 + np.asarray(returns, float))))
    index = pd.bdate_range("2020-01-01", periods=values.size, tz=tz)
    return pd.Series(values, index=index, name="equity")


@pytest.fixture(scope="session")
def equity_from_returns() -> Callable[..., pd.Series]:
    """Build an equity curve on weekday bars (from 2020-01-01) whose bar-to-bar returns are
    the given array: ``equity_from_returns(returns, start=100.0, tz="UTC")``."""
    return _equity_from_returns


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_close() -> pd.Series:
    """Close prices of examples/data/sample.csv on a UTC DatetimeIndex (weekday daily bars)."""
    frame = pd.read_csv(SAMPLE_CSV, parse_dates=["datetime"])
    index = pd.DatetimeIndex(frame["datetime"]).tz_localize("UTC")
    return pd.Series(frame["close"].to_numpy(dtype=np.float64), index=index, name="close")
