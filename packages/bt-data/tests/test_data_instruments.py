"""The instrument table: upsert, validation naming row and column, nothing half-written,
the schema migration, and the xtdata provider filling it from get_instrument_detail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from bt_data import BarStore, MarketDataService
from bt_data.errors import DataValidationError, ProviderError
from bt_data.providers.xtdata import XtDataProvider

# The fake module (conftest.FakeXtData); conftest is not importable under importlib mode.
FakeXtData = Any


def test_upsert_replaces_each_symbols_row_and_is_idempotent(store_path: Path) -> None:
    store = BarStore(store_path)
    rows = {
        "600000.SH": {"st": False, "listing_date": "1999-11-10", "name": "Bank", "tick": 0.01},
        "688981.SH": {"board": "star", "min_size": 200, "lot": 1},
    }
    assert store.write_instruments(rows) == 2
    assert store.write_instruments(rows) == 2
    got = store.read_instruments()
    assert got["symbol"].tolist() == ["600000.SH", "688981.SH"]
    assert got.loc[0, "listing_date"] == pd.Timestamp("1999-11-10")
    assert got.loc[1, "board"] == "star" and got.loc[1, "min_size"] == 200.0
    assert bool(got.loc[0, "st"]) is False and pd.isna(got.loc[1, "st"])
    # A later row of a symbol replaces the stored one; the others stay.
    store.write_instruments(pd.DataFrame({"symbol": ["600000.SH"], "st": [True]}))
    got = store.read_instruments("600000.SH")
    assert len(got) == 1 and bool(got.loc[0, "st"]) is True and got.loc[0, "name"] is None
    assert len(BarStore(store_path).read_instruments()) == 2


@pytest.mark.parametrize(
    ("row", "column", "match"),
    [
        ({"symbol": "X", "board": "moon"}, "board", "board must be one of"),
        ({"symbol": "X", "lot": 0}, "lot", "lot must be a finite number > 0"),
        ({"symbol": "X", "tick": "a"}, "tick", "tick must be a number"),
        ({"symbol": "X", "listing_date": "someday"}, "listing_date", "must be a date"),
        ({"symbol": "X", "st": "maybe"}, "st", "st must be true or false"),
        ({"symbol": "X", "colour": 1}, "colour", "unknown column"),
        ({"symbol": ""}, "symbol", "non-empty"),
        ({"symbol": "600000.SH"}, "symbol", "repeats row 1"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(
    store_path: Path, row: dict[str, object], column: str, match: str
) -> None:
    store = BarStore(store_path)
    with pytest.raises(DataValidationError, match=match) as e:
        store.write_instruments([{"symbol": "600000.SH"}, row])
    assert e.value.row == 2 and e.value.column == column
    assert store.read_instruments().empty


def test_a_version_1_store_gains_the_table(store_path: Path) -> None:
    BarStore(store_path)
    con = duckdb.connect(str(store_path))
    con.execute("DROP TABLE instruments")
    con.execute("DELETE FROM schema_version WHERE version = 2")
    con.close()
    store = BarStore(store_path)
    assert store.schema_version() == 2
    assert store.write_instruments({"600000.SH": {"tick": 0.01}}) == 1


def test_xtdata_fills_the_table_from_instrument_details(
    store_path: Path, fake_xt: FakeXtData
) -> None:
    details = {
        "600000.SH": {"InstrumentName": "PF Bank", "OpenDate": "19991110", "PriceTick": 0.01},
        "600001.SH": {"InstrumentName": "*ST Demo", "OpenDate": 0, "PriceTick": 0.01},
    }
    fake_xt.get_instrument_detail = details.get  # type: ignore[attr-defined]
    service = MarketDataService(BarStore(store_path), XtDataProvider(xtdata=fake_xt))
    service.write_instruments({"600000.SH": {"board": "main", "lot": 100}})
    assert service.update_instruments(["600000.SH", "600001.SH", "999999.SH"]) == 2
    got = service.instruments().set_index("symbol")
    assert got.loc["600000.SH", "listing_date"] == pd.Timestamp(dt.date(1999, 11, 10))
    assert got.loc["600000.SH", "name"] == "PF Bank"
    # Facts the provider does not give keep their stored values.
    assert got.loc["600000.SH", "board"] == "main" and got.loc["600000.SH", "lot"] == 100.0
    assert bool(got.loc["600001.SH", "st"]) is True
    assert pd.isna(got.loc["600001.SH", "listing_date"])


def test_update_needs_a_provider_with_instrument_facts(store_path: Path) -> None:
    with pytest.raises(ProviderError, match="no instrument facts"):
        MarketDataService(BarStore(store_path)).update_instruments(["600000.SH"])
