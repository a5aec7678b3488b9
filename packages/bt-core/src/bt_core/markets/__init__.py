"""Market presets: named bundles of run settings (``RunConfig(market=...)``), expanded once
the data's symbols and calendar are known into settings any run may also give on its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bt_core.markets import cn_ashare

#: Preset names ``RunConfig.market`` accepts.
MARKETS: tuple[str, ...] = ("cn_ashare",)


def check_options(market: str, raw: Mapping[str, Any] | None) -> None:
    """Raise a ParameterError naming the option when ``raw`` is not valid for ``market``."""
    if market == "cn_ashare":
        cn_ashare.options(raw)


def expand(
    market: str,
    raw: Mapping[str, Any] | None,
    symbols: Sequence[str],
    times: pd.DatetimeIndex,
    **kw: Any,
) -> dict[str, Any]:
    """The settings preset ``market`` gives a run on ``symbols`` over ``times``."""
    if market == "cn_ashare":
        return cn_ashare.expand(raw, symbols, times, **kw)
    raise ValueError(f"unknown market {market!r}")  # RunConfig validates the name first


__all__ = ["MARKETS", "check_options", "cn_ashare", "expand"]
