"""Request and response bodies of the API.

Run settings are :class:`bt_core.RunConfig` itself (nested, never a copy of its fields); a
strategy's parameters are checked against that strategy's own schema when a run is submitted.
Every string a client sends has a pattern: ids are hex, symbols and tags are short words
without path separators, so no field can name a server file.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints
from pydantic import Tag as Case

import bt_core
from bt_data import ADJUSTS, PERIODS

Id = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Symbol = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._=^-]{0,63}$", max_length=64)
]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
StrategyId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,199}$", max_length=200)
]
Period = Literal[PERIODS]  # type: ignore[valid-type]
Adjust = Literal[ADJUSTS]  # type: ignore[valid-type]
When = dt.datetime | dt.date
Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- errors
class FieldError(BaseModel):
    path: list[str | int] = Field(description="Where in the request: e.g. body, params, fast.")
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable snake_case code to branch on.")
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)
    errors: list[FieldError] = Field(default_factory=list)


class JobError(BaseModel):
    code: str
    kind: str
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- data
class DatasetData(_Strict):
    """Bars of an uploaded dataset (yours, or a shared one such as the sample)."""

    source: Literal["dataset"] = "dataset"
    dataset_id: Id
    symbol: Symbol | None = Field(
        default=None,
        description="Pick one symbol of a multi-symbol dataset, or name single-symbol data.",
    )


class StoreData(_Strict):
    """Bars from the server's bt-data store."""

    source: Literal["store"] = "store"
    symbols: list[Symbol] = Field(min_length=1, max_length=200)
    period: Period = "1d"
    adjust: Adjust = "none"
    start: When | None = None
    end: When | None = None


def _data_source(v: Any) -> str | None:
    # "source" may be left out: a dataset id or a list of symbols says which one is meant.
    if isinstance(v, dict):
        given = v.get("source")
        if given is not None:
            return str(given)
        return "store" if "symbols" in v else "dataset"
    return getattr(v, "source", None)


DataSpec = Annotated[
    Annotated[DatasetData, Case("dataset")] | Annotated[StoreData, Case("store")],
    Discriminator(_data_source),
]


# ----------------------------------------------------------------------------- runs
class RunRequest(_Strict):
    strategy: StrategyId = Field(description="An id from GET /strategies.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Strategy parameters (see the strategy's schema)."
    )
    config: bt_core.RunConfig = Field(default_factory=bt_core.RunConfig)
    data: DataSpec
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    timeout: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds; at most the server's."
    )


class Accepted(BaseModel):
    id: str
    status: Status
    location: str


class RunOut(BaseModel):
    id: str
    status: Status
    progress: float
    strategy: str
    params: dict[str, Any]
    config: dict[str, Any]
    data: dict[str, Any]
    tags: list[str]
    timeout: float
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    stats: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: JobError | None
    resubmitted_from: str | None


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class TablePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int | None


# ----------------------------------------------------------------------------- optimisations
ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
StatName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,63}$")]
SpaceScalar = (
    Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[str, StringConstraints(max_length=100)]
)
Dimension = (
    Annotated[str, StringConstraints(min_length=1, max_length=200)]
    | Annotated[list[SpaceScalar], Field(min_length=1, max_length=1000)]
)


class OptimizationRequest(_Strict):
    strategy: StrategyId = Field(description="An id from GET /strategies.")
    space: dict[ParamName, Dimension] = Field(
        min_length=1,
        max_length=16,
        description='Parameter -> range text ("5:50:5", "0.1:1.0:0.1", "1e-3:1e-1:log") or '
        "a list of values.",
    )
    method: Literal["grid", "random", "bayes"] = "grid"
    maximize: StatName | list[StatName] | None = Field(
        default=None, description="Statistic(s) to maximise (default: sharpe)."
    )
    minimize: StatName | list[StatName] | None = None
    trials: int | None = Field(
        default=None, ge=1, description="Parameter sets to try (random, bayes; not grid)."
    )
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    params: dict[str, Any] = Field(
        default_factory=dict, description="Fixed parameters of the strategy."
    )
    config: bt_core.RunConfig = Field(default_factory=bt_core.RunConfig)
    data: DataSpec
    tags: list[Tag] = Field(default_factory=list, max_length=16)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class OptimizationOut(BaseModel):
    id: str
    status: Status
    progress: float
    strategy: str
    request: dict[str, Any]
    tags: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    summary: dict[str, Any] | None = Field(
        description="n_trials, n_failed, best_params, best_score, objectives."
    )
    trials: list[dict[str, Any]] | None = Field(
        description="The best trials (at most 100, ranked); all of them at /trials. While "
        "the optimisation runs: the trials finished so far (at most 100), in the order they "
        "finished."
    )
    error: JobError | None


class OptimizationPage(BaseModel):
    items: list[OptimizationOut]
    total: int
    limit: int
    offset: int


# ----------------------------------------------------------------------------- datasets
class DatasetOut(BaseModel):
    id: str
    name: str
    format: str
    size_bytes: int
    symbols: list[str]
    symbol: str | None
    n_bars: int
    start: str | None
    end: str | None
    created_at: dt.datetime
    shared: bool = Field(description="Offered to every user by the server (e.g. the sample).")


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    total: int
    limit: int
    offset: int


# ----------------------------------------------------------------------------- strategies
class StrategyOut(BaseModel):
    id: str
    kind: Literal["builtin", "python"]
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON schema of the parameters.")


# ----------------------------------------------------------------------------- store data
class SymbolsOut(BaseModel):
    symbols: list[str]


class CoverageRow(BaseModel):
    symbol: str
    period: str
    adjust: str
    first: dt.datetime
    last: dt.datetime
    count: int


class CoverageOut(BaseModel):
    items: list[CoverageRow]


class BackfillRequest(_Strict):
    symbols: list[Symbol] = Field(min_length=1, max_length=200)
    start: When
    end: When | None = None
    period: Period = "1d"
    adjust: Adjust = "none"


class BackfillOut(BaseModel):
    id: str
    status: Status
    progress: float
    request: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    summary: dict[str, Any] | None
    error: JobError | None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    schema_version: int
    workers: int
    queued: int
    running: int


__all__ = [
    "Accepted",
    "BackfillOut",
    "BackfillRequest",
    "CoverageOut",
    "DatasetData",
    "DatasetOut",
    "DatasetPage",
    "ErrorBody",
    "Health",
    "OptimizationOut",
    "OptimizationPage",
    "OptimizationRequest",
    "RunOut",
    "RunPage",
    "RunRequest",
    "StoreData",
    "StrategyOut",
    "SymbolsOut",
    "TablePage",
]
