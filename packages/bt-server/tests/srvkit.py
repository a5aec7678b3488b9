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
