"""Fault-testing findings: a full disk, files that are not stores, read-only stores.

Each test reproduces one reported fault and checks both the error the user sees and that what
was stored before is still there, unchanged, afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from bt_data import BarStore

DISK_FULL = 'IO Error: Could not write file "bars.duckdb.wal": No space left on device'


def minute_bars(symbol: str, n: int, start: str = "2020-01-02 01:31", level: float = 10.0):
    """``n`` valid one-minute bars of ``symbol`` (UTC) at a constant price ``level``."""
    px = np.full(n, level)
    return pd.DataFrame(
        {
            "symbol": symbol,
            "datetime": pd.date_range(start, periods=n, freq="min", tz="UTC"),
            "open": px,
            "high": px + 1,
            "low": px - 1,
            "close": px,
            "volume": np.ones(n),
        }
    )


def snapshot(store: BarStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Everything a test stores: minute bars (with extra columns) and the absent keys."""
    absent = store.absent().drop(columns="recorded_at")
    return store.read(period="1m", extra=True), absent


def assert_same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]):
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])


def notes(exc: BaseException) -> str:
    return " ".join(getattr(exc, "__notes__", []))


# ---------------------------------------------------------------------- 3b: a full disk
class DiskFullConnection:
    """A real DuckDB connection on which the first statement starting with ``trigger`` fails
    the way it does when the disk is full.

    A failing COMMIT has already been rolled back by DuckDB when it raises (that is why the
    store's ROLLBACK then reported "no transaction is active"), so the fake rolls the real
    transaction back before raising. Any other failing statement aborts the real transaction,
    after which DuckDB refuses every statement but ROLLBACK; the fake does that by running a
    statement that really fails.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, trigger: str) -> None:
        self._con = con
        self._trigger = trigger
        self.fired = 0

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if not self.fired and " ".join(sql.split()).upper().startswith(self._trigger):
            self.fired += 1
            if self._trigger == "COMMIT":
                self._con.execute("ROLLBACK")
            else:
                with contextlib.suppress(duckdb.Error):
                    self._con.execute("SELECT CAST('x' AS INTEGER)")
            raise duckdb.IOException(DISK_FULL)
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def failing_on(store: BarStore, trigger: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make every connection ``store`` opens a :class:`DiskFullConnection`; returns them."""
    opened: list[Any] = []
    real_open = store._open

    def fake_open(write: bool) -> Any:
        con = DiskFullConnection(real_open(write), trigger)
        opened.append(con)
        return con

    monkeypatch.setattr(store, "_open", fake_open)
    return opened


@pytest.fixture
def filled(store_path: Path) -> tuple[BarStore, tuple[pd.DataFrame, pd.DataFrame]]:
    """A store holding 50 bars and one absent key, and its snapshot."""
    store = BarStore(store_path)
    store.write(minute_bars("AAA.SH", 50), period="1m")
    gone = pd.DataFrame({"symbol": ["BBB.SH"], "datetime": [pd.Timestamp("2020-01-02 01:31")]})
    store.write_with_absent(None, gone, period="1m", adjust="none", source="test")
    return store, snapshot(store)


@pytest.mark.parametrize(
    "trigger", ["COMMIT", "DELETE FROM BARS", "DELETE FROM ABSENT_BARS", "INSERT INTO ABSENT_BARS"]
)
def test_disk_full_inside_a_write_reports_the_real_cause_and_keeps_the_store(
    trigger: str,
    filled: tuple[BarStore, tuple[pd.DataFrame, pd.DataFrame]],
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, before = filled
    opened = failing_on(store, trigger, monkeypatch)
    # Overlapping bars (so stored keys are deleted first) plus absence notes: one write that
    # reaches every statement above.
    newer = minute_bars("AAA.SH", 80, level=20.0)
    gone = pd.DataFrame({"symbol": ["CCC.SH"], "datetime": [pd.Timestamp("2020-01-02 01:31")]})
    with pytest.raises(duckdb.IOException) as info:
        store.write_with_absent(newer, gone, period="1m", adjust="none", source="feed")
    assert str(info.value) == DISK_FULL
    assert sum(c.fired for c in opened) == 1
    if trigger == "COMMIT":
        assert "no transaction is active" in notes(info.value)
    monkeypatch.undo()
    assert_same(snapshot(BarStore(store_path)), before)
    BarStore(store_path).check_integrity()
    # The store is usable again once the disk is.
    assert store.write_with_absent(newer, gone, period="1m", adjust="none", source="feed") == 80


@pytest.mark.parametrize("how", ["import_csv", "write"])
def test_disk_full_at_commit_of_an_import_reports_the_real_cause(
    how: str,
    filled: tuple[BarStore, tuple[pd.DataFrame, pd.DataFrame]],
    store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, before = filled
    newer = minute_bars("AAA.SH", 80, level=20.0)
    csv = tmp_path / "newer.csv"
    newer.to_csv(csv, index=False)
    failing_on(store, "COMMIT", monkeypatch)
    with pytest.raises(duckdb.IOException, match="No space left on device") as info:
        if how == "import_csv":
            store.import_csv(csv, period="1m")
        else:
            store.write(newer, period="1m")
    assert "rollback" not in str(info.value).lower()
    monkeypatch.undo()
    assert_same(snapshot(BarStore(store_path)), before)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB tmpfs mounted under the test's directory (Linux, root with CAP_SYS_ADMIN)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs mounts are Linux-only")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        pytest.skip("no mount command to create a small tmpfs")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_really_full_disk_reports_no_space_and_keeps_the_store(tiny_fs: Path) -> None:
    path = tiny_fs / "bars.duckdb"
    store = BarStore(path)
    store.write(minute_bars("AAA.SH", 1000), period="1m")
    before = snapshot(store)
    filler = tiny_fs / "filler"
    free = os.statvfs(tiny_fs).f_bavail * os.statvfs(tiny_fs).f_frsize
    filler.write_bytes(b"\0" * max(free - 64 * 1024, 0))
    # Too big for the 64 KiB left: DuckDB fails writing its WAL at COMMIT.
    with pytest.raises(duckdb.Error) as info:
        store.write(minute_bars("BBB.SH", 20_000), period="1m")
    assert "No space left on device" in str(info.value)
    assert "rollback" not in str(info.value).lower()
    filler.unlink()
    after = BarStore(path)
    assert_same(snapshot(after), before)
    after.check_integrity()
    assert after.write(minute_bars("BBB.SH", 20_000), period="1m") == 20_000
