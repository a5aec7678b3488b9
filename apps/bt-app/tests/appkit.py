"""Helpers of the app's tests: where things are, the live server's handle, the chromium check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bt_app.client import BtClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SAMPLE = ROOT / "examples" / "data" / "sample.csv"
MULTI = ROOT / "examples" / "data" / "multi_asset.csv"
APP = ROOT / "apps" / "bt-app" / "src" / "bt_app"
MAIN = APP / "main.py"


@dataclass
class Live:
    url: str
    token: str
    data_dir: Path
    sample_id: str

    def client(self) -> BtClient:
        return BtClient(self.url, self.token, timeout=60)
