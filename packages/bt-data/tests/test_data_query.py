"""BarQuery: one validated query value for the store, the service and the command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bt_data import (
    BarQuery,
    BarStore,
    FileProvider,
    MarketDataService,
    UnknownAdjustError,
    UnknownPeriodError,
    WeekdayCalendar,
)
from bt_data.cli import app

DAYS = pd.bdate_range("2020-01-01", "2020-03-31")


@pytest.fixture
def store(bars_factory) -> BarStore:  # type: ignore[no-untyped-def]
    store = BarStore(":memory:")
    for i, sym in enumerate(["AAA.SH", "BBB.SZ"]):
        store.write(bars_factory(sym, DAYS, seed=i), period="1d")
    store.write(bars_factory("AAA.SH", DAYS[:10], seed=9), period="1d", adjust="front")
    return store


def test_fields_are_validated_and_normalized_once() -> None:
    q = BarQuery(["AAA.SH", "BBB.SZ", "AAA.SH"], "2020-01-02 09:31+08:00", "20200131", "1m")
    assert q.symbols == ("AAA.SH", "BBB.SZ")  # repeats dropped, order kept
    assert q.start == pd.Timestamp("2020-01-02 01:31", tz="UTC")
    # A date-only end covers its whole (UTC) day; naive values mean UTC.
    assert q.end == pd.Timestamp("2020-01-31 23:59:59.999999", tz="UTC")
    assert q.naive_end == pd.Timestamp("2020-01-31 23:59:59.999999")
    assert (q.period, q.adjust) == ("1m", "none")
    assert BarQuery("AAA.SH").symbols == ("AAA.SH",)
    assert BarQuery().symbols is None and BarQuery().start is None and BarQuery().end is None
    assert BarQuery(np.array(["AAA.SH"]), dt.date(2020, 1, 1)).start == pd.Timestamp(
        "2020-01-01", tz="UTC"
    )


def test_same_query_written_differently_is_equal_and_hashable() -> None:
    a = BarQuery("AAA.SH", "2020-01-01", dt.date(2020, 2, 1))
    b = BarQuery(["AAA.SH"], dt.datetime(2020, 1, 1), "2020-02-01", "1d", "none")
    assert a == b and hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a  # crosses process pools intact


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"period": "1M"}, UnknownPeriodError, "case-sensitive"),
        ({"period": "daily"}, UnknownPeriodError, "unknown period 'daily'"),
        ({"adjust": "qfq"}, UnknownAdjustError, "unknown adjust type 'qfq'"),
        ({"start": "2020-02-01", "end": "2020-01-01"}, ValueError, "start '2020-02-01'.*after end"),
        ({"start": "yesterday-ish"}, ValueError, "parameter 'start': cannot parse"),
        ({"end": "2020-13-45"}, ValueError, "parameter 'end'"),
        ({"symbols": []}, ValueError, "parameter 'symbols': the list is empty"),
        ({"symbols": ["AAA.SH", ""]}, ValueError, "parameter 'symbols': '' is not"),
        ({"symbols": ["AAA.SH", 5]}, ValueError, "parameter 'symbols': 5 is not"),
        ({"symbols": 600000}, ValueError, "expected a symbol, a list of symbols or None"),
    ],
)
def test_bad_fields_name_the_parameter(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        BarQuery(**kwargs)


def test_frozen_and_replace_validates_again() -> None:
    q = BarQuery("AAA.SH", "2020-01-01", "2020-01-31")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.period = "1m"  # type: ignore[misc]
    m = q.replace(period="1m")
    assert (m.period, m.symbols, m.start, m.end) == ("1m", q.symbols, q.start, q.end)
    assert q.replace(end=None).end is None
    with pytest.raises(UnknownPeriodError):
        q.replace(period="1M")
    with pytest.raises(ValueError, match="after end"):
        q.replace(start="2021-01-01")


def test_store_reads_a_query_exactly_like_the_shorthand(store: BarStore, tmp_path: Path) -> None:
    q = BarQuery(["BBB.SZ", "AAA.SH"], "2020-01-06", "2020-01-17")
    got = store.read(q)
    pd.testing.assert_frame_equal(got, store.read(["BBB.SZ", "AAA.SH"], "2020-01-06", "2020-01-17"))
    assert len(got) == 20 and got["symbol"].unique().tolist() == ["AAA.SH", "BBB.SZ"]
    assert store.read_arrow(q).equals(
        store.read_arrow(["AAA.SH", "BBB.SZ"], "2020-01-06", "2020-01-17")
    )
    front = store.read(q.replace(adjust="front"))
    assert front["symbol"].unique().tolist() == ["AAA.SH"] and len(front) == 7  # Jan 6..14
    assert store.export(tmp_path / "q.parquet", q) == 20
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "q.parquet").astype({"datetime": "datetime64[ns, UTC]"}), got
    )
    # Coverage of exactly the query: its symbols, period, adjustment and range.
    cov = store.coverage(q)
    assert cov[["symbol", "adjust", "count"]].values.tolist() == [
        ["AAA.SH", "none", 10],
        ["BBB.SZ", "none", 10],
    ]
    assert cov["first"].tolist() == [pd.Timestamp("2020-01-06", tz="UTC")] * 2
    assert len(store.coverage()) == 3  # the filter form still lists everything


def test_a_query_and_shorthand_arguments_together_are_refused(store: BarStore) -> None:
    q = BarQuery("AAA.SH")
    with pytest.raises(TypeError, match="period='1d'.*not both"):
        store.read(q, period="1d")
    with pytest.raises(TypeError, match="start="):
        store.export("x.csv", q, start="2020-01-01")
    with pytest.raises(TypeError, match="adjust="):
        store.coverage(q, adjust="none")
    svc = MarketDataService(store)
    with pytest.raises(TypeError, match="end="):
        svc.find_gaps(q.replace(start="2020-01-01"), end="2020-02-01")


def test_service_takes_a_query(store: BarStore, tmp_path: Path, bars_factory) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "files"
    root.mkdir()
    bars_factory("CCC.SZ", DAYS, seed=3).drop(columns="symbol").to_csv(
        root / "CCC.SZ.csv", index=False
    )
    svc = MarketDataService(store, FileProvider(root), WeekdayCalendar(holidays=[DAYS[0].date()]))
    q = BarQuery(["AAA.SH", "CCC.SZ"], "2020-01-02", "2020-01-31")
    gaps = svc.find_gaps(q)
    assert gaps == svc.find_gaps(["AAA.SH", "CCC.SZ"], "2020-01-02", "2020-01-31")
    assert [(g.symbol, g.bars) for g in gaps] == [("CCC.SZ", 22)]
    assert svc.missing(q)["CCC.SZ"].size == 22
    got = svc.get_bars(q)
    assert got["symbol"].value_counts().to_dict() == {"AAA.SH": 22, "CCC.SZ": 22}
    assert svc.backfill(q).gaps == []
    with pytest.raises(ValueError, match="parameter 'symbols' is required"):
        svc.find_gaps(BarQuery(None, "2020-01-02"))
    with pytest.raises(ValueError, match="parameter 'start' is required"):
        svc.get_bars(BarQuery("AAA.SH"))


def test_cli_validates_through_the_query(tmp_path: Path) -> None:
    db = str(tmp_path / "q.duckdb")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "export",
            str(tmp_path / "o.csv"),
            "--start",
            "2020-02-01",
            "--end",
            "2020-01-01",
            "--db",
            db,
        ],
    )
    assert res.exit_code == 1
    assert res.output.startswith("error: parameters 'start'/'end'") and "after end" in res.output
    res = runner.invoke(app, ["gaps", "AAA.SH", "--start", "2020-01-01", "-p", "1M", "--db", db])
    assert res.exit_code == 1 and "case-sensitive" in res.output
    res = runner.invoke(app, ["gaps", "", "--start", "2020-01-01", "--db", db])
    assert res.exit_code == 1 and "parameter 'symbols'" in res.output
