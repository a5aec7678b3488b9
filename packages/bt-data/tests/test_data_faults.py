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
from typer.testing import CliRunner

from bt_data import BarStore, NotAStoreError, StoreReadOnlyError
from bt_data.cli import app

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


# ---------------------------------------------------------------------- 3c: not a store
def files_state(directory: Path) -> dict[str, tuple[int, bytes]]:
    """Every file in ``directory``: (mtime in ns, bytes)."""
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.iterdir())}


def foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE prices AS SELECT 1 AS id, 9.5 AS px")
    con.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"symbol,datetime,open,high,low,close,volume\nA,2020-01-02,1,2,0.5,1,1\n", "not a DuckDB"),
        (b"", "an empty file"),
        (b"DUCK", "not a DuckDB"),  # the magic at the wrong place, and too short
        (bytes(range(256)) * 64, "not a DuckDB"),
    ],
    ids=["csv", "empty", "short", "binary"],
)
def test_a_file_that_is_not_a_duckdb_database_is_refused_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bars.csv"
    path.write_bytes(content)
    before = files_state(tmp_path)
    with pytest.raises(NotAStoreError, match=message) as info:
        BarStore(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert files_state(tmp_path) == before  # same bytes and mtime, no .lock or .wal beside it


def test_another_programs_duckdb_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    foreign_duckdb(path)
    before = (path.stat().st_mtime_ns, path.read_bytes())
    with pytest.raises(
        NotAStoreError, match="no schema_version table .it holds main.prices"
    ) as info:
        BarStore(path)
    assert str(path) in str(info.value)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT * FROM prices").fetchall() == [(1, 9.5)]
    con.close()
    # A table called schema_version that is not bt-data's is no pass either.
    odd = tmp_path / "odd.duckdb"
    con = duckdb.connect(str(odd))
    con.execute("CREATE TABLE schema_version (name VARCHAR)")
    con.close()
    with pytest.raises(NotAStoreError, match="not bt-data's"):
        BarStore(odd)


def test_a_directory_as_the_store_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAStoreError, match="is a directory"):
        BarStore(tmp_path)


def test_an_empty_duckdb_database_becomes_a_store(tmp_path: Path) -> None:
    """Decision: a DuckDB database with no tables and no views holds nothing to lose, so it is
    initialised (as `duckdb new.duckdb` and then bt-data would expect)."""
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    store = BarStore(path)
    assert store.schema_version() == 2 and store.count() == 0
    assert store.write(minute_bars("AAA.SH", 3), period="1m") == 3
    assert BarStore(path).count() == 3


def test_opening_an_up_to_date_store_writes_nothing(store_path: Path) -> None:
    BarStore(store_path).write(minute_bars("AAA.SH", 3), period="1m")
    before = files_state(store_path.parent)
    store = BarStore(store_path)
    assert store.count() == 3
    assert files_state(store_path.parent) == before


# ---------------------------------------------------------------------- 3a: read-only stores
@contextlib.contextmanager
def read_only_view(directory: Path) -> Iterator[Path]:
    """A path through which ``directory`` is really read-only for this process: the directory
    itself chmod'ed 0555 for an ordinary user; for root, whom permission bits do not stop, a
    read-only bind mount of it (writes fail with EROFS). Skips where neither is possible."""
    if sys.platform == "win32":
        pytest.skip("POSIX permissions and mounts")
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(mode)
        return
    view = directory.with_name(directory.name + "-ro")
    view.mkdir()
    try:
        bound = subprocess.run(
            ["mount", "--bind", str(directory), str(view)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("running as root (chmod does not stop root) and there is no mount command")
    if bound.returncode != 0:
        pytest.skip(
            "running as root (chmod does not stop root) and a read-only bind mount is not "
            f"allowed here: {bound.stderr.strip()}"
        )
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(view)], capture_output=True, text=True
        )
        if ro.returncode != 0:
            pytest.skip(f"cannot remount the bind read-only: {ro.stderr.strip()}")
        yield view
    finally:
        if subprocess.run(["umount", str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)


class ConnectSpy:
    """Records the ``read_only`` flag of every ``duckdb.connect`` call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.flags: list[bool] = []
        real = duckdb.connect

        def connect(database: Any = ":memory:", read_only: bool = False, **kw: Any) -> Any:
            self.flags.append(read_only)
            return real(database, read_only=read_only, **kw)

        monkeypatch.setattr(duckdb, "connect", connect)


def check_read_only_store(path: Path, source: Path, tmp_path: Path, spy: ConnectSpy) -> None:
    """Everything a reader does works on ``path`` and matches ``source``; every write fails with
    StoreReadOnlyError naming the path; nothing in the directory changes."""
    before = files_state(path.parent)
    store = BarStore(path)
    original = BarStore(source)
    pd.testing.assert_frame_equal(
        store.read(period="1m", extra=True), original.read(period="1m", extra=True)
    )
    pd.testing.assert_frame_equal(store.coverage(), original.coverage())
    assert store.symbols() == ["AAA.SH"] and store.count() == 50 and store.schema_version() == 2
    assert len(store.absent()) == 1
    store.check_integrity()
    assert store.export(tmp_path / "out.csv", period="1m") == 50
    spy.flags.clear()
    store.read(period="1m")
    assert spy.flags == [True]  # reads connect read-only
    newer = minute_bars("AAA.SH", 5, level=20.0)
    csv = tmp_path / "newer.csv"
    newer.to_csv(csv, index=False)
    gone = pd.DataFrame({"symbol": ["ZZZ.SH"], "datetime": [pd.Timestamp("2020-01-02")]})
    writes = {
        "import_csv": lambda: store.import_csv(csv, period="1m"),
        "write": lambda: store.write(newer, period="1m"),
        "write_with_absent": lambda: store.write_with_absent(
            newer, gone, period="1m", adjust="none", source="t"
        ),
        "delete": lambda: store.delete("AAA.SH", period="1m"),
        "forget_absent": lambda: store.forget_absent(),
    }
    for name, write in writes.items():
        with pytest.raises(StoreReadOnlyError, match="is read-only") as info:
            write()
        assert str(path) in str(info.value) and info.value.path == str(path), name
    assert files_state(path.parent) == before
    with pytest.raises(StoreReadOnlyError, match="cannot create store"):
        BarStore(path.parent / "new.duckdb")
    assert not (path.parent / "new.duckdb").exists()


@pytest.fixture
def source_store(tmp_path: Path) -> Path:
    """A store with 50 minute bars and one absent key in its own directory."""
    directory = tmp_path / "store"
    directory.mkdir()
    path = directory / "bars.duckdb"
    store = BarStore(path)
    store.write(minute_bars("AAA.SH", 50), period="1m")
    gone = pd.DataFrame({"symbol": ["BBB.SH"], "datetime": [pd.Timestamp("2020-01-02 01:31")]})
    store.write_with_absent(None, gone, period="1m", adjust="none", source="test")
    return path


@pytest.mark.parametrize("lock_file", ["present", "absent"])
def test_a_store_in_a_read_only_directory_can_be_read_but_not_written(
    source_store: Path, tmp_path: Path, lock_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "bars.duckdb").write_bytes(source_store.read_bytes())
    if lock_file == "present":
        (copy / "bars.duckdb.lock").write_bytes(b"")
    spy = ConnectSpy(monkeypatch)
    with read_only_view(copy) as view:
        check_read_only_store(view / "bars.duckdb", source_store, tmp_path, spy)
        assert (view / "bars.duckdb.lock").exists() == (lock_file == "present")


def test_read_only_directory_simulated_with_os_access(
    source_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same checks with the directory made read-only only in what ``os.access`` answers.

    This runs everywhere, including as root without mount rights, where chmod cannot stop
    writes: DuckDB could still write here, so the test shows that bt-data itself decides from
    ``os.access`` — it neither creates the lock file nor opens DuckDB read-write to read, and
    refuses writes with StoreReadOnlyError before touching anything."""
    directory = source_store.parent
    (directory / "bars.duckdb.lock").unlink()
    real_access = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        inside = Path(os.path.abspath(path)) in (directory, *directory.iterdir())
        if mode & os.W_OK and (inside or Path(os.path.abspath(path)).parent == directory):
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    spy = ConnectSpy(monkeypatch)
    copy = tmp_path / "reference.duckdb"
    copy.write_bytes(source_store.read_bytes())
    check_read_only_store(source_store, copy, tmp_path, spy)
    assert not (directory / "bars.duckdb.lock").exists()


def test_a_reader_without_the_lock_file_waits_for_a_writer(
    source_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why running without our lock file is safe for readers of a read-only directory: DuckDB's
    own lock on the database file keeps the reader out while another program writes, and the
    store retries until the writer is done, so it never sees a half-written state."""
    directory = source_store.parent
    (directory / "bars.duckdb.lock").unlink()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw),
    )
    store = BarStore(source_store)
    ready = directory.parent / "writer-ready"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute('BEGIN')\n"
            "con.execute(\"DELETE FROM bars WHERE ts > '2020-01-02 01:40'\")\n"
            "open(sys.argv[2], 'w').close()\n"
            "time.sleep(1.0)\n"
            "con.execute('COMMIT')\n"
            "con.close()\n",
            str(source_store),
            str(ready),
        ]
    )
    try:
        while not ready.exists():
            assert writer.poll() is None, "writer died"
        # Opened while the writer holds the file: this read can only succeed after it closed.
        assert store.count() == 10
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert not (directory / "bars.duckdb.lock").exists()


# ---------------------------------------------------------------------- 3d: the command line
def run_cli(*args: str | Path) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(res: Any, status: int, *needles: str) -> None:
    assert res.exit_code == status, res.output
    assert isinstance(res.exception, SystemExit)  # an exit, not an uncaught exception
    assert "Traceback" not in res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """A FileProvider folder with daily bars of FILE.SH for the first weeks of 2020."""
    root = tmp_path / "files"
    root.mkdir()
    days = pd.bdate_range("2020-01-02", "2020-01-17")
    px = np.linspace(10, 11, len(days))
    pd.DataFrame(
        {"datetime": days, "open": px, "high": px + 1, "low": px - 1, "close": px, "volume": 1.0}
    ).to_csv(root / "FILE.SH.csv", index=False)
    return root


def cli_commands(tmp_path: Path, files_dir: Path) -> dict[str, list[str | Path]]:
    """One invocation of every command, each of which needs the store."""
    csv = tmp_path / "import.csv"
    minute_bars("NEW.SH", 3).to_csv(csv, index=False)
    return {
        "info": ["info", "--check"],
        "coverage": ["coverage"],
        "gaps": ["gaps", "FILE.SH", "--start", "2020-01-02", "--end", "2020-01-17"],
        "export": ["export", tmp_path / "out.parquet"],
        "import": ["import", csv, "--period", "1m"],
        "backfill": [
            "backfill",
            "FILE.SH",
            "--start",
            "2020-01-02",
            "--end",
            "2020-01-17",
            "--provider",
            "files",
            "--files-dir",
            files_dir,
            "--calendar",
            "weekday",
            "--no-progress",
        ],
    }


def test_cli_on_a_file_that_is_not_a_store_exits_2_with_one_line(
    tmp_path: Path, files_dir: Path
) -> None:
    db = tmp_path / "long-name-so-that-a-wrapping-console-would-split-the-error-line" / "bars.csv"
    db.parent.mkdir()
    db.write_text("symbol,datetime,open,high,low,close,volume\nA,2020-01-02,1,2,0.5,1,1\n")
    before = files_state(db.parent)
    for name, args in cli_commands(tmp_path, files_dir).items():
        res = run_cli(*args, "--db", db)
        assert_one_line_error(res, 2, str(db), "not a DuckDB database")
        assert files_state(db.parent) == before, name


def test_cli_on_a_read_only_store_reads_and_refuses_writes_with_exit_2(
    source_store: Path, tmp_path: Path, files_dir: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "bars.duckdb").write_bytes(source_store.read_bytes())
    commands = cli_commands(tmp_path, files_dir)
    with read_only_view(copy) as view:
        db = view / "bars.duckdb"
        before = files_state(view)
        for name in ("info", "coverage", "gaps", "export"):
            res = run_cli(*commands[name], "--db", db)
            assert res.exit_code == 0, (name, res.output)
        assert "integrity: OK" in run_cli("info", "--check", "--db", db).output
        for name in ("import", "backfill"):
            res = run_cli(*commands[name], "--db", db)
            assert_one_line_error(res, 2, str(db), "is read-only")
        res = run_cli(*commands["import"], "--db", view / "new.duckdb")
        assert_one_line_error(res, 2, "cannot create store", str(view / "new.duckdb"))
        assert files_state(view) == before


def test_cli_on_a_full_disk_prints_the_real_cause_on_one_line(
    store_path: Path, tmp_path: Path, files_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    BarStore(store_path)
    real_open = BarStore._open
    monkeypatch.setattr(
        BarStore, "_open", lambda self, write: DiskFullConnection(real_open(self, write), "COMMIT")
    )
    res = run_cli(*cli_commands(tmp_path, files_dir)["import"], "--db", store_path)
    assert_one_line_error(res, 1, "No space left on device")
    assert "rollback" not in res.output.lower()
