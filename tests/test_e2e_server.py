"""End to end, as a team would use bt-server: `bt serve` in a real process with no settings
file, the admin token it prints once, a user token from `bt-server token create`, a run on
the bundled sample followed over the WebSocket, its results fetched, the server stopped."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from websockets.sync.client import connect

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it; closed with the process
    proc = subprocess.Popen(
        [str(BIN / "bt"), "serve", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(log.read_text())


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


@pytest.mark.skipif(not (BIN / "bt").exists(), reason="the bt command is not installed")
def test_bt_serve_run_follow_fetch_stop(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "server.log"
    proc = _start(tmp_path, port, log)
    try:
        printed = re.findall(r"btk_[0-9a-f]{12}_[A-Za-z0-9_-]+", log.read_text())
        assert len(printed) == 1, log.read_text()  # the first admin token, shown once
        admin = printed[0]
        # the defaults: a local data directory under the working directory
        data_dir = tmp_path / "data" / "server"
        assert (data_dir / "server.sqlite3").exists()
        token = subprocess.run(
            [str(BIN / "bt-server"), "token", "create", "researcher", "--data-dir", str(data_dir)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        base = f"http://127.0.0.1:{port}"
        h = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            assert httpx.get(f"{base}/runs").status_code == 401
            assert c.get("/docs").status_code == 200
            assert c.get("/health").json()["workers"] == 1
            assert (
                httpx.get(f"{base}/runs", headers={"Authorization": f"Bearer {admin}"}).status_code
                == 200
            )
            sample = next(d for d in c.get("/datasets").json()["items"] if d["name"] == "sample")
            r = c.post(
                "/runs",
                json={
                    "strategy": "sma_cross",
                    "params": {"fast": 10, "slow": 30},
                    "config": {"commission": 0.0005},
                    "data": {"dataset_id": sample["id"]},
                },
            )
            assert r.status_code == 202
            rid = r.json()["id"]
            events = []
            with connect(
                f"ws://127.0.0.1:{port}/runs/{rid}/events", additional_headers=h, open_timeout=30
            ) as ws:
                for message in ws:
                    events.append(json.loads(message))
            assert events[-1]["type"] == "status" and events[-1]["status"] == "succeeded"
            run = c.get(f"/runs/{rid}").json()
            assert run["status"] == "succeeded" and run["stats"]["n_trades"] > 0
            trades = c.get(f"/runs/{rid}/trades").json()
            assert trades["total"] == run["stats"]["n_trades"]
            equity = pd.read_csv(
                io.StringIO(c.get(f"/runs/{rid}/equity", headers={"Accept": "text/csv"}).text)
            )
            assert len(equity) == sample["n_bars"]
            assert equity["equity"].iloc[-1] == pytest.approx(run["summary"]["final_equity"])
            assert "<html" in c.get(f"/runs/{rid}/report").text.lower()
    finally:
        status = _stop(proc)
    assert status in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()

    # A second start finds its admin token and prints none.
    proc = _start(tmp_path, port, log)
    try:
        assert len(re.findall(r"btk_[0-9a-f]{12}_", log.read_text())) == 1
    finally:
        _stop(proc)
