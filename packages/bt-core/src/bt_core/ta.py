"""Indicator libraries that work on pandas, through :meth:`Strategy.I <bt_core.Strategy.I>`.

``Strategy.I`` calls its function with plain numpy arrays and takes back arrays (or a tuple
of them). Libraries such as `ta <https://pypi.org/project/ta/>`_ (``pip install
'bt-core[ta]'``) want pandas Series in and give Series, DataFrames or indicator objects
back; :func:`ta_indicator` is the adapter between the two::

    import ta
    from bt_core.ta import ta_indicator

    class MacdTrend(Strategy):
        def on_start(self):
            d = self.data
            self.macd, self.signal = self.I(
                ta_indicator(ta.trend.MACD, "macd", "macd_signal"), d.close, window_fast=12
            )
            self.adx = self.I(ta_indicator(ta.trend.adx), d.high, d.low, d.close, window=14)

Nothing here imports an indicator library: any function of Series works (ta's functions
and classes, a hand-written pandas expression). TA-Lib's functions take and return numpy
arrays already, so they go into ``self.I`` as they are.

The function must be causal (its value at bar t uses bars up to t only); ``I`` reveals the
values bar by bar, but cannot see whether the library looked ahead to compute them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = ["ta_indicator"]

Output: TypeAlias = np.ndarray | tuple[np.ndarray, ...]


def _series(a: Any) -> Any:
    # Only whole-data arrays (what I passes for a Line) become Series; numbers, strings and
    # anything else reach the library untouched.
    if isinstance(a, np.ndarray) and a.ndim == 1:
        return pd.Series(a, copy=False)
    return a


def _array(v: Any, name: str) -> np.ndarray:
    if isinstance(v, pd.Series):
        return v.to_numpy(dtype=np.float64)
    if isinstance(v, np.ndarray):
        return v
    raise TypeError(f"{name} returned {type(v).__name__}; expected a pandas Series or an array")


def _arrays(out: Any, name: str) -> Output:
    if isinstance(out, pd.DataFrame):
        return tuple(out[c].to_numpy(dtype=np.float64) for c in out.columns)
    if isinstance(out, (tuple, list)):
        return tuple(_array(v, name) for v in out)
    return _array(out, name)


def ta_indicator(func: Callable[..., Any], *outputs: str, **kwargs: Any) -> Callable[..., Output]:
    """Wrap a pandas-based indicator ``func`` for :meth:`Strategy.I <bt_core.Strategy.I>`.

    The returned function turns each 1-D array argument (the whole series of a Line) into a
    pandas Series, calls ``func`` with them and with ``kwargs`` (keywords given to ``I`` are
    added and win), and gives back numpy float64 arrays:

    - a Series becomes one array (``I`` makes it one Line);
    - a DataFrame, or a tuple/list of Series, becomes a tuple of arrays, one per column or
      item (``I`` makes a tuple of Lines);
    - with ``outputs``, ``func`` is taken to build an indicator object (e.g.
      ``ta.trend.MACD``) and each name in ``outputs`` is a method called on it: one name gives
      one array, several a tuple in that order.
    """
    name = getattr(func, "__qualname__", repr(func))
    fixed = dict(kwargs)

    def indicator(*args: Any, **more: Any) -> Output:
        merged = {**fixed, **more}
        out = func(*(_series(a) for a in args), **{k: _series(v) for k, v in merged.items()})
        if outputs:
            values = tuple(_array(getattr(out, m)(), f"{name}.{m}()") for m in outputs)
            return values[0] if len(values) == 1 else values
        return _arrays(out, name)

    indicator.__name__ = indicator.__qualname__ = f"ta_indicator({name})"
    indicator.__doc__ = getattr(func, "__doc__", None)
    return indicator
