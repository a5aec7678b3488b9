"""A real server killed with SIGKILL while runs are queued and running: after a restart every
finished run and upload is intact, the others are ``interrupted`` and can be resubmitted, and
no worker outlived its server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from srvkit import SAMPLE, STRATEGIES, ServerProcess, free_port, script, wait_all_gone


def _config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        f'port = {port}\ndata_dir = "{tmp_path / "data"}"\nworkers = 1\n'
        f'strategy_dirs = ["{STRATEGIES}"]\nrate_limit = 1000\n'
    )
    return cfg


def _wait(client: httpx.Client, rid: str, want: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/runs/{rid}").json()
        if job["status"] in want:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_kill_9_loses_nothing_finished(tmp_path: Path) -> None:
    port = free_port()
    cfg = _config(tmp_path, port)
    token = subprocess.run(
        [script("bt-server"), "token", "create", "tester", "--config", str(cfg)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = ServerProcess(
        [script("bt-server"), "serve", "--config", str(cfg)], tmp_path / "log1.txt", port
    ).start()
    h = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=h, timeout=30) as c:
        sample = c.get("/datasets").json()["items"][0]["id"]
        upload = c.post(
            "/datasets", files={"file": ("mine.csv", SAMPLE.read_bytes(), "text/csv")}
        ).json()
        done = c.post(
            "/runs",
            json={"strategy": "sma_cross", "data": {"dataset_id": sample}, "tags": ["keep"]},
        ).json()["id"]
        finished = _wait(c, done, {"succeeded"})
        trades = c.get(f"/runs/{done}/trades").json()
        slow = {
            "strategy": "server_strategies.Slow",
            "params": {"delay": 0.05},
            "data": {"dataset_id": upload["id"]},
        }
        running = c.post("/runs", json=slow).json()["id"]
        _wait(c, running, {"running"})
        queued = [c.post("/runs", json=slow).json()["id"] for _ in range(2)]
        assert {c.get(f"/runs/{q}").json()["status"] for q in queued} == {"queued"}
        helpers = server.descendants()
        assert helpers, "the server has no worker processes"

    server.kill9()
    assert wait_all_gone(helpers) == [], "worker processes outlived the server"

    server = ServerProcess(
        [script("bt-server"), "serve", "--config", str(cfg)], tmp_path / "log2.txt", port
    ).start()
    try:
        with httpx.Client(base_url=server.base, headers=h, timeout=30) as c:
            again = c.get(f"/runs/{done}").json()
            assert again == finished
            assert c.get(f"/runs/{done}/trades").json() == trades
            assert c.get(f"/runs/{done}/report").status_code == 200
            assert c.get(f"/datasets/{upload['id']}").json() == upload
            for rid in [running, *queued]:
                job = c.get(f"/runs/{rid}").json()
                assert job["status"] == "interrupted", job
                assert job["error"]["code"] == "interrupted"
                assert c.get(f"/runs/{rid}/equity").json()["code"] == "no_results"
            r = c.post(f"/runs/{running}/resubmit")
            assert r.status_code == 202
            new = r.json()["id"]
            _wait(c, new, {"running"})
            assert c.post(f"/runs/{new}/cancel").json()["status"] == "cancelled"
            listed = c.get("/runs?limit=100").json()
            assert listed["total"] == 5
            # nothing half-written was left behind
            data = tmp_path / "data"
            assert not [p for p in (data / "runs").iterdir() if p.name.startswith(".tmp")]
            assert sorted(p.name for p in (data / "runs").iterdir()) == [done]
    finally:
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it: status -15 is normal.
        assert server.stop() in (0, -15)
    log = (tmp_path / "log2.txt").read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log
