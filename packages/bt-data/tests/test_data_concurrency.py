"""Two real processes writing to one store at once: nothing corrupted, duplicated or lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bt_data import BarStore

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np, pandas as pd
    from bt_data import BarStore, FileProvider, MarketDataService

    db, go, tag, files = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    store = BarStore(db, lock_timeout=120)
    days = pd.bdate_range("2020-01-01", periods=25)
    while not go.exists():  # start both writers together
        time.sleep(0.005)
    for i in range(5):
        # Own symbol: grows by 5 days per round. Shared symbol: both write the same keys,
        # each with its own price level, so a mixed batch would be visible.
        own = days[i * 5:(i + 1) * 5]
        level = 100.0 if tag == "A" else 200.0
        for sym, dd, lvl in ((f"OWN{tag}.SH", own, level + i), ("SHARED.SH", days, level)):
            n = len(dd)
            px = np.full(n, lvl)
            store.write(pd.DataFrame({"symbol": sym, "datetime": dd, "open": px,
                                      "high": px + 1, "low": px - 1, "close": px,
                                      "volume": np.full(n, float(i))}), period="1d")
    # And a backfill through the service, from files, at the same time as the other process.
    svc = MarketDataService(store, FileProvider(files))
    svc.backfill(f"FILE{tag}.SZ", "2020-01-01", "2020-02-25")
    print("done", tag)
    """
)


def test_two_processes_write_and_backfill_concurrently(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    BarStore(db)  # create the schema once
    files = tmp_path / "files"
    files.mkdir()
    days = pd.bdate_range("2020-01-01", "2020-02-25")
    for tag in "AB":
        px = np.linspace(10, 12, len(days))
        pd.DataFrame(
            {
                "datetime": days,
                "open": px,
                "high": px + 0.5,
                "low": px - 0.5,
                "close": px,
                "volume": 1.0,
            }
        ).to_csv(files / f"FILE{tag}.SZ.csv", index=False)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(go), tag, str(files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in "AB"
    ]
    time.sleep(0.3)
    go.touch()
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("done")

    store = BarStore(db)
    store.check_integrity()
    cov = store.coverage().set_index("symbol")["count"].to_dict()
    assert cov == {
        "OWNA.SH": 25,
        "OWNB.SH": 25,
        "SHARED.SH": 25,
        "FILEA.SZ": len(days),
        "FILEB.SZ": len(days),
    }
    for tag, level in (("A", 100.0), ("B", 200.0)):
        own = store.read(f"OWN{tag}.SH")
        assert own["close"].tolist() == [level + i for i in range(5) for _ in range(5)]
    # The shared symbol holds one writer's last batch whole, never a mix of both.
    shared = store.read("SHARED.SH")
    assert shared["close"].nunique() == 1 and shared["close"].iloc[0] in (100.0, 200.0)
    assert shared["volume"].tolist() == [4.0] * 25


def test_a_writer_waits_for_the_lock_and_times_out_clearly(tmp_path: Path) -> None:
    from bt_data._lock import FileLock, lock_path_for

    db = tmp_path / "locked.duckdb"
    BarStore(db)
    code = textwrap.dedent(
        """
        import sys
        from bt_data import BarStore, StoreLockedError
        try:
            BarStore(sys.argv[1], lock_timeout=0.5)
        except StoreLockedError as exc:
            print("locked:", exc)
        """
    )
    with FileLock(lock_path_for(str(db)), timeout=5).hold(exclusive=True):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr
    assert "locked:" in proc.stdout and "another process is writing" in proc.stdout
    # Once released, the same call succeeds.
    assert BarStore(db, lock_timeout=0.5).count() == 0
