"""One live bt-server for the app's tests: ``bt-server serve`` in a child process on a free
port (a data directory with the bundled sample dataset, a small bt-data store, a user token),
reached over real HTTP exactly as the app reaches a deployed server."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests import their helpers (appkit) from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from appkit import HERE, MULTI, Live  # noqa: E402

from bt_app import ENV_TOKEN, ENV_URL  # noqa: E402
from bt_app.cli import LocalServer, free_port  # noqa: E402
from bt_app.client import BtClient  # noqa: E402


def _store(path: Path) -> Path:
    # Setting up the server's store is the test's job (bt-data); the app never imports it.
    from bt_data import BarStore

    BarStore(path).import_csv(MULTI, period="1d")
    return path


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if shutil.which("bt-server", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("bt-server is not installed in this environment")
    base = tmp_path_factory.mktemp("app-server")
    env = dict(os.environ)
    env.update(
        BT_SERVER_STORE_PATH=str(_store(base / "bars.duckdb")),
        BT_SERVER_RATE_LIMIT="10000",
        BT_SERVER_RATE_BURST="10000",
        BT_SERVER_RUN_TIMEOUT="120",
        BT_SERVER_MAX_UPLOAD_MB="4",
        # Small, so a test can fill it and see the 429 (the other tests submit one at a time).
        BT_SERVER_QUEUE_SIZE="3",
        BT_SERVER_STRATEGY_DIRS=json.dumps([str(HERE / "strategies")]),
    )
    server = LocalServer(base / "data", free_port(), workers=2, env=env).start()
    try:
        with BtClient(server.url, server.token) as c:
            sample = next(d for d in c.datasets() if d["name"] == "sample")
        old = {k: os.environ.get(k) for k in (ENV_URL, ENV_TOKEN)}
        # AppTest runs the pages in this process: they read the server from here.
        os.environ[ENV_URL], os.environ[ENV_TOKEN] = server.url, server.token
        yield Live(server.url, server.token, server.data_dir, sample["id"])
    finally:
        for k, v in locals().get("old", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
