"""Conversion of analysis results to values the standard ``json`` module can carry."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["json_safe"]


def json_safe(obj: Any) -> Any:
    """Return a copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Recursively, through dicts, lists, tuples (become lists) and numpy arrays (become lists):

    * NaN, +inf and -inf floats (python or numpy) become ``None``;
    * numpy scalars become the python ``bool``/``int``/``float``/``str`` they hold;
    * ``pd.NaT`` and ``None`` stay/become ``None``; timestamps and dates become ISO-8601
      strings; ``Timedelta``/``timedelta`` become seconds (float);
    * pandas Series become ``{str(label): value}`` dicts, DataFrames lists of row dicts;
    * dict keys that are not ``str`` become ``str(key)`` (timestamps: ISO string).

    Anything else (str, int, bool) is returned unchanged.
    """
    # numpy first: np.float64 subclasses float, and the result must be a python scalar.
    if isinstance(obj, np.generic):
        if isinstance(obj, np.datetime64):
            return None if np.isnat(obj) else pd.Timestamp(obj).isoformat()
        if isinstance(obj, np.timedelta64):
            return None if np.isnat(obj) else pd.Timedelta(obj).total_seconds()
        return json_safe(obj.item())
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, int):
        return obj
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, (pd.Timestamp, _dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, (pd.Timedelta, _dt.timedelta)):
        return obj.total_seconds()
    if isinstance(obj, Mapping):
        return {_key(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [json_safe(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return {_key(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (pd.Timestamp, _dt.datetime, _dt.date)):
        return key.isoformat()
    if isinstance(key, np.generic):
        return str(key.item())
    return str(key)
