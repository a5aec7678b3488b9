"""Helpers of the server tests: the shared server's handle, sample files, waiting for runs."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Starlette's TestClient still uses httpx; the deprecation is about a future release.
warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402

from bt_server import Settings  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
MULTI = ROOT / "examples" / "data" / "multi_asset.csv"
STRATEGIES = HERE / "strategies"
TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass
class Server:
    client: TestClient
    app: Any
    settings: Settings
    tokens: dict[str, str]
    sample_id: str

    def h(self, who: str = "alice", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def submit(self, who: str = "alice", **body: Any) -> str:
        body.setdefault("strategy", "sma_cross")
        body.setdefault("data", {"dataset_id": self.sample_id})
        r = self.client.post("/runs", headers=self.h(who), json=body)
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def wait(self, run_id: str, who: str = "alice", timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.client.get(f"/runs/{run_id}", headers=self.h(who))
            assert r.status_code == 200, r.text
            job = r.json()
            if job["status"] in TERMINAL:
                return job
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not finish in {timeout} s: {job}")

    def run(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        return self.wait(self.submit(who, **body), who)


def make_store(path: Path) -> Path:
    from bt_data import BarStore

    store = BarStore(path)
    store.import_csv(MULTI, period="1d")
    return path


def make_vendor(folder: Path) -> Path:
    """A files provider folder with one symbol that the store does not have."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(SAMPLE).head(40)
    df.insert(0, "symbol", "NEW.SH")
    df.to_csv(folder / "NEW.SH.csv", index=False)
    return folder


# ----------------------------------------------------------------------------- real processes
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(name: str) -> str:
    """A console script of this environment (bt, bt-server)."""
    import sys

    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed in {path.parent}"
    return str(path)


class ServerProcess:
    """``<command> serve`` in a child process (output to a log file), stopped on exit."""

    def __init__(self, args: list[str], log: Path, port: int) -> None:
        self.args = args
        self.log = log
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: Any = None

    def start(self, timeout: float = 120) -> ServerProcess:
        import subprocess

        import httpx

        self._out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                health = httpx.get(f"{self.base}/health", timeout=1).json()
                if health["status"] == "ok":
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not start: {self.log.read_text()[-3000:]}")

    def descendants(self) -> list[int]:
        import psutil

        return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def kill9(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except Exception:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return int(self.proc.returncode)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_all_gone(pids: list[int], timeout: float = 20) -> list[int]:
    import psutil

    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [
            p
            for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return []
        time.sleep(0.1)
    return alive
