"""BarStore: schema, upsert, transactions, reads, imports and every bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bt_data import (
    ADJUSTS,
    PERIODS,
    BarStore,
    DataValidationError,
    SchemaVersionError,
    UnknownAdjustError,
    UnknownPeriodError,
)
from bt_data.store import DB_ENV_VAR

CsvWriter = Callable[[str, str], Path]
GOOD = """
symbol,datetime,open,high,low,close,volume
AAA.SH,2020-01-02,10,11,9,10.5,100
AAA.SH,2020-01-03,10.5,12,10,11,200
BBB.SZ,2020-01-02,20,21,19,20.5,300
"""


def snapshot(store: BarStore) -> pd.DataFrame:
    return pd.concat(
        [store.read(period=p, adjust=a, extra=True) for p in ("1d", "1m") for a in ("none",)],
        ignore_index=True,
    )


def test_default_path_env_and_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DB_ENV_VAR, raising=False)
    assert BarStore().path == os.path.join("data", "backtest.duckdb")
    assert (tmp_path / "data" / "backtest.duckdb").exists()
    monkeypatch.setenv(DB_ENV_VAR, str(tmp_path / "env.duckdb"))
    assert BarStore().path == str(tmp_path / "env.duckdb")
    assert BarStore(tmp_path / "arg.duckdb").path == str(tmp_path / "arg.duckdb")


def test_schema_version_and_newer_schema_refused(store_path: Path) -> None:
    store = BarStore(store_path)
    assert store.schema_version() == 2
    import duckdb

    con = duckdb.connect(str(store_path))
    con.execute("INSERT INTO schema_version VALUES (99, now()::TIMESTAMP)")
    con.close()
    with pytest.raises(SchemaVersionError, match="99"):
        BarStore(store_path)


def test_import_and_read_canonical_format(store_path: Path, csv_writer: CsvWriter) -> None:
    store = BarStore(store_path)
    assert store.import_csv(csv_writer("a.csv", GOOD), period="1d") == 3
    df = store.read()
    assert list(df.columns) == [
        "symbol",
        "datetime",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "amount",
    ]
    assert str(df["datetime"].dtype) == "datetime64[ns, UTC]"
    assert df["symbol"].tolist() == ["AAA.SH", "AAA.SH", "BBB.SZ"]
    assert df["datetime"].tolist() == [
        pd.Timestamp("2020-01-02", tz="UTC"),
        pd.Timestamp("2020-01-03", tz="UTC"),
        pd.Timestamp("2020-01-02", tz="UTC"),
    ]
    assert df["close"].tolist() == [10.5, 11.0, 20.5]
    assert df["amount"].isna().all()  # the file had no amount: unknown, not zero
    assert store.symbols() == ["AAA.SH", "BBB.SZ"]
    assert store.read("AAA.SH", start="2020-01-03")["close"].tolist() == [11.0]
    assert store.read("AAA.SH", end="2020-01-02")["close"].tolist() == [10.5]
    table = store.read_arrow("AAA.SH")
    assert str(table.schema.field("datetime").type) == "timestamp[ns, tz=UTC]"
    cov = store.coverage()
    assert cov[["symbol", "count"]].values.tolist() == [["AAA.SH", 2], ["BBB.SZ", 1]]
    assert cov.loc[0, "last"] == pd.Timestamp("2020-01-03", tz="UTC")


def test_upsert_replaces_corrected_bar(store_path: Path, csv_writer: CsvWriter) -> None:
    store = BarStore(store_path)
    store.import_csv(csv_writer("a.csv", GOOD), period="1d")
    fixed = csv_writer(
        "fix.csv",
        """
        symbol,datetime,open,high,low,close,volume,amount
        AAA.SH,2020-01-03,10.6,12.5,10.1,11.9,250,2975
        AAA.SH,2020-01-06,11.9,12,11,11.5,90,1035
        """,
    )
    assert store.import_csv(fixed, period="1d") == 2
    df = store.read("AAA.SH")
    assert df["close"].tolist() == [10.5, 11.9, 11.5]
    assert df["volume"].tolist() == [100.0, 250.0, 90.0]
    assert np.isnan(df["amount"].iloc[0]) and df["amount"].iloc[1] == 2975.0
    assert store.count() == 4
    store.check_integrity()


def test_periods_and_adjustments_are_separate_and_case_sensitive(
    store_path: Path, csv_writer: CsvWriter
) -> None:
    store = BarStore(store_path)
    path = csv_writer("a.csv", GOOD)
    store.import_csv(path, period="1mon")
    store.import_csv(path, period="1d", adjust="front")
    assert store.read(period="1m").empty  # minute bars never see month bars
    assert len(store.read(period="1mon")) == 3
    assert store.read(period="1d").empty and len(store.read(period="1d", adjust="front")) == 3
    with pytest.raises(UnknownPeriodError, match="case-sensitive"):
        store.import_csv(path, period="1M")
    with pytest.raises(UnknownPeriodError):
        store.read(period="daily")
    with pytest.raises(UnknownAdjustError):
        store.import_csv(path, period="1d", adjust="qfq")
    assert set(PERIODS) >= {"1m", "1mon"} and "none" in ADJUSTS


def test_intraday_times_with_tz_and_formats(store_path: Path, csv_writer: CsvWriter) -> None:
    store = BarStore(store_path)
    path = csv_writer(
        "m.csv",
        """
        time,o,h,l,c,v
        20200102093100,10,11,9,10,1
        20200102093200,10,11,9,10,1
        """,
    )
    store.import_csv(
        path,
        period="1m",
        symbol="AAA.SH",
        columns={
            "time": "datetime",
            "o": "open",
            "h": "high",
            "l": "low",
            "c": "close",
            "v": "volume",
        },
        date_format="%Y%m%d%H%M%S",
        tz="Asia/Shanghai",
    )
    got = store.read("AAA.SH", period="1m")["datetime"].tolist()
    assert got == [
        pd.Timestamp("2020-01-02 01:31", tz="UTC"),
        pd.Timestamp("2020-01-02 01:32", tz="UTC"),
    ]
    # Epoch milliseconds of Beijing midnight are the 2020-01-02 session for daily bars.
    epoch = csv_writer("e.csv", "datetime,open,high,low,close,volume\n1577894400000,1,1,1,1,1")
    store.import_csv(
        epoch, period="1d", symbol="AAA.SH", date_format="epoch_ms", tz="Asia/Shanghai"
    )
    assert store.read("AAA.SH")["datetime"].tolist() == [pd.Timestamp("2020-01-02", tz="UTC")]
    # An explicit offset wins over tz.
    off = csv_writer(
        "o.csv", "datetime,open,high,low,close,volume\n2020-01-02T09:33:00+08:00,1,1,1,1,1"
    )
    store.import_csv(off, period="1m", symbol="BBB.SH", tz="America/New_York")
    assert store.read("BBB.SH", period="1m")["datetime"].tolist() == [
        pd.Timestamp("2020-01-02 01:33", tz="UTC")
    ]


def test_write_dataframe_and_parquet_roundtrip(
    store_path: Path, tmp_path: Path, bars_factory: Callable[..., pd.DataFrame]
) -> None:
    store = BarStore(store_path)
    df = bars_factory("AAA.SH", pd.bdate_range("2021-01-04", periods=30))
    df["datetime"] = df["datetime"].dt.tz_localize("UTC")
    assert store.write(df, period="1d") == 30
    out = tmp_path / "x.parquet"
    assert store.export(out) == 30
    other = BarStore(tmp_path / "other.duckdb")
    assert other.import_parquet(out, period="1d") == 30
    pd.testing.assert_frame_equal(store.read(), other.read())
    csv_out = tmp_path / "x.csv"
    store.export(csv_out)
    third = BarStore(":memory:")
    third.import_csv(csv_out, period="1d")
    pd.testing.assert_frame_equal(store.read(), third.read())
    back = store.read()
    pd.testing.assert_series_equal(back["close"], df["close"], check_names=False)


def test_failing_batch_rolls_back(store_path: Path, csv_writer: CsvWriter) -> None:
    store = BarStore(store_path)
    store.import_csv(csv_writer("a.csv", GOOD), period="1d")
    before = snapshot(store)

    def boom() -> None:
        raise RuntimeError("disk full halfway")

    store._fault_hook = boom
    fix = csv_writer("b.csv", GOOD.replace("10.5,100", "99,100").replace("11,9,", "111,9,"))
    with pytest.raises(RuntimeError, match="halfway"):
        store.import_csv(fix, period="1d")
    pd.testing.assert_frame_equal(snapshot(store), before)
    store._fault_hook = None
    store.import_csv(fix, period="1d")
    assert snapshot(store)["close"].tolist() != before["close"].tolist()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_writer_leaves_store_unchanged(store_path: Path, csv_writer: CsvWriter) -> None:
    store = BarStore(store_path)
    store.import_csv(csv_writer("a.csv", GOOD), period="1d")
    before = snapshot(store)
    new = csv_writer("n.csv", GOOD.replace("AAA", "CCC").replace("BBB", "AAA"))
    code = (
        "import os, signal, sys\n"
        "from bt_data import BarStore\n"
        "s = BarStore(sys.argv[1])\n"
        "s._fault_hook = lambda: os.kill(os.getpid(), signal.SIGKILL)\n"
        "s.import_csv(sys.argv[2], period='1d')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(store_path), str(new)], timeout=120)
    assert proc.returncode == -9
    after = BarStore(store_path)
    pd.testing.assert_frame_equal(snapshot(after), before)
    after.check_integrity()


BAD_CASES = {
    "missing_column": (
        "symbol,datetime,open,high,low,volume\nAAA.SH,2020-01-02,1,2,0.5,10",
        "missing required column.s. close",
        None,
        "close",
    ),
    "duplicate": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,1\n"
        "AAA.SH,2020-01-03,1,2,0.5,1,1\nAAA.SH,2020-01-02,1,2,0.5,1,1",
        "duplicate timestamp",
        3,
        "datetime",
    ),
    "nan_price": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,1\n"
        "AAA.SH,2020-01-03,1,2,0.5,NaN,1",
        "NaN",
        2,
        "close",
    ),
    "empty_price": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,,2,0.5,1,1",
        "missing",
        1,
        "open",
    ),
    "negative_price": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,1\n"
        "AAA.SH,2020-01-03,1,2,-0.5,1,1",
        "negative price",
        2,
        "low",
    ),
    "high_below_low": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,0.4,0.5,1,1",
        "high is below low",
        1,
        "high",
    ),
    "bad_date": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,1\n"
        "AAA.SH,2020-13-45,1,2,0.5,1,1",
        "unparsable date",
        2,
        "datetime",
    ),
    "text_price": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,1\n"
        "AAA.SH,2020-01-03,1,abc,0.5,1,1",
        "does not convert",
        2,
        "high",
    ),
    "negative_volume": (
        "symbol,datetime,open,high,low,close,volume\nAAA.SH,2020-01-02,1,2,0.5,1,-5",
        "negative volume",
        1,
        "volume",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_row_column_and_writes_nothing(
    case: str, store_path: Path, csv_writer: CsvWriter
) -> None:
    text, message, row, column = BAD_CASES[case]
    store = BarStore(store_path)
    store.import_csv(csv_writer("good.csv", GOOD), period="1d")
    before = snapshot(store)
    path = csv_writer(f"{case}.csv", text)
    with pytest.raises(DataValidationError, match=message) as info:
        store.import_csv(path, period="1d")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.source == str(path) and str(path) in str(err)
    assert err.row == row
    assert err.column == column
    pd.testing.assert_frame_equal(snapshot(store), before)


def test_bad_dataframe_row_is_reported(
    store_path: Path, bars_factory: Callable[..., pd.DataFrame]
) -> None:
    store = BarStore(store_path)
    df = bars_factory("AAA.SH", pd.bdate_range("2021-01-04", periods=5))
    df.loc[3, "high"] = df.loc[3, "low"] - 1
    with pytest.raises(DataValidationError, match="high is below low") as info:
        store.write(df, period="1d", source="my frame")
    assert (info.value.row, info.value.column, info.value.source) == (4, "high", "my frame")
    assert store.count() == 0


def test_symbol_argument_and_symbol_column_conflict(
    store_path: Path, csv_writer: CsvWriter
) -> None:
    store = BarStore(store_path)
    with pytest.raises(DataValidationError, match="pass one or the other"):
        store.import_csv(csv_writer("a.csv", GOOD), period="1d", symbol="AAA.SH")
    with pytest.raises(DataValidationError, match="does not have"):
        store.import_csv(csv_writer("a.csv", GOOD), period="1d", columns={"nope": "volume"})
    with pytest.raises(FileNotFoundError):
        store.import_csv(csv_writer("a.csv", GOOD).with_name("missing.csv"), period="1d")


def test_sample_files_import(store_path: Path) -> None:
    root = Path(__file__).resolve().parents[3] / "examples" / "data"
    store = BarStore(store_path)
    n = store.import_csv(root / "multi_asset.csv", period="1d")
    assert n == len(pd.read_csv(root / "multi_asset.csv"))
    assert store.import_csv(root / "sample.csv", period="1d", symbol="SAMPLE") > 0
    store.check_integrity()


def test_error_rows_are_exact_beyond_the_sniffer_sample(tmp_path: Path) -> None:
    n = 50_000
    days = pd.date_range("2000-01-01", periods=n, freq="D")
    frame = pd.DataFrame(
        {
            "symbol": "AAA.SH",
            "datetime": days.strftime("%Y-%m-%d"),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 10,
        }
    )
    bad_hl = frame.copy()
    bad_hl.loc[39_999, "high"] = 0.1  # data row 40,000
    bad_hl.to_csv(tmp_path / "hl.csv", index=False)
    store = BarStore(tmp_path / "s.duckdb")
    with pytest.raises(DataValidationError) as info:
        store.import_csv(tmp_path / "hl.csv", period="1d")
    assert (info.value.row, info.value.column) == (40_000, "high")
    assert "line 40001" in str(info.value)
    bad_num = frame.astype({"close": object})
    bad_num.loc[44_999, "close"] = "n/a?"
    bad_num.to_csv(tmp_path / "num.csv", index=False)
    with pytest.raises(DataValidationError, match="does not convert") as info:
        store.import_csv(tmp_path / "num.csv", period="1d")
    assert (info.value.row, info.value.column) == (45_000, "close")
    bad_date = frame.copy()
    bad_date.loc[30_000, "datetime"] = "2099-02-30"
    bad_date.to_csv(tmp_path / "date.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        store.import_csv(tmp_path / "date.csv", period="1d")
    assert info.value.row == 30_001 and info.value.column == "datetime"
    assert store.count() == 0


def test_semicolon_csv_and_writing_over_an_absent_key(
    store_path: Path, csv_writer: CsvWriter
) -> None:
    store = BarStore(store_path)
    store.write_with_absent(
        None,
        pd.DataFrame({"symbol": ["AAA.SH"], "datetime": [pd.Timestamp("2020-01-02")]}),
        period="1d",
        adjust="none",
        source="test",
    )
    assert len(store.absent()) == 1
    path = csv_writer(
        "s.csv", "symbol;datetime;open;high;low;close;volume\nAAA.SH;2020-01-02;1;2;0.5;1.5;10"
    )
    assert store.import_csv(path, period="1d") == 1
    assert store.absent().empty  # a stored bar is no longer "absent"
    store.check_integrity()


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.sampled_from(["A.SH", "B.SZ", "C.SH"]), st.integers(0, 12)),
        min_size=1,
        max_size=25,
    )
)
def test_duplicate_keys_are_rejected_exactly_when_present(keys: list[tuple[str, int]]) -> None:
    # Any order: blocks per symbol, interleaved, sorted or not; the fast path and the GROUP BY
    # fallback must agree with a plain set count.
    n = len(keys)
    frame = pd.DataFrame(
        {
            "symbol": [k[0] for k in keys],
            "datetime": [pd.Timestamp("2021-01-04") + pd.Timedelta(days=k[1]) for k in keys],
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": np.ones(n),
        }
    )
    store = BarStore(":memory:")
    if len(set(keys)) < n:
        with pytest.raises(DataValidationError, match="duplicate timestamp"):
            store.write(frame, period="1d")
        assert store.count() == 0
    else:
        assert store.write(frame, period="1d") == n


def test_parquet_with_tz_aware_times_and_a_bad_row(tmp_path: Path) -> None:
    stamps = pd.date_range("2020-01-02 09:31", periods=4, freq="min", tz="Asia/Shanghai")
    frame = pd.DataFrame(
        {
            "symbol": "AAA.SH",
            "datetime": stamps,
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 1.0,
            "amount": 10.0,
        }
    )
    frame.to_parquet(tmp_path / "ok.parquet")
    store = BarStore(tmp_path / "p.duckdb")
    assert store.import_parquet(tmp_path / "ok.parquet", period="1m", tz="America/New_York") == 4
    got = store.read("AAA.SH", period="1m")
    assert got["datetime"].tolist() == list(stamps.tz_convert("UTC"))
    bad = frame.copy()
    bad.loc[2, "open"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match="NaN") as info:
        store.import_parquet(tmp_path / "bad.parquet", period="1m")
    assert (info.value.row, info.value.column) == (3, "open")
    with pytest.raises(FileNotFoundError):
        store.import_parquet(tmp_path / "none.parquet", period="1m")
