"""One shared in-process server for the API tests: a data directory with a small bt-data
store, the test strategy folder, a files provider for backfills, two workers; and one local
Ray instance (two CPUs) for the whole session, for the Ray executor's tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The tests import their helpers (srvkit) from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient  # noqa: E402
from srvkit import STRATEGIES, Server, make_store, make_vendor  # noqa: E402

from bt_server import Settings, create_app  # noqa: E402


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("server")
    settings = Settings(
        data_dir=base / "data",
        store_path=make_store(base / "bars.duckdb"),
        workers=2,
        queue_size=64,
        run_timeout=60,
        run_memory_mb=512,
        max_upload_mb=1,
        rate_limit=10_000,
        rate_burst=10_000,
        strategy_dirs=[STRATEGIES],
        backfill_provider="files",
        backfill_files_dir=make_vendor(base / "vendor"),
    )
    app = create_app(settings)
    svc = app.state.services
    tokens = {
        "alice": svc.tokens.create("alice", "user")[1],
        "bob": svc.tokens.create("bob", "user")[1],
        "admin": svc.tokens.create("root", "admin")[1],
    }
    with TestClient(app) as client:
        assert svc.pool.started.wait(120), "the workers did not start"
        items = client.get("/datasets", headers={"Authorization": f"Bearer {tokens['alice']}"})
        sample = [d for d in items.json()["items"] if d["name"] == "sample"]
        yield Server(client, app, settings, tokens, sample[0]["id"])


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    # As bt-server's Ray executor does: a local instance's workers run in this environment.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'bt-server[ray]')")
    if not ray.is_initialized():
        try:
            ray.init(
                num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
            )
        except Exception as e:  # pragma: no cover - depends on the machine
            pytest.skip(f"a local Ray instance cannot start here: {type(e).__name__}: {e}")
    yield ray
    ray.shutdown()
