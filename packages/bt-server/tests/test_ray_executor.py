"""The Ray executor against a local Ray instance (started once for the session, two CPUs):
the same records and results as the process executor (the shared ``server``), progress and
trials streamed, cancellation and the time limit, the data put in the object store once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from srvkit import STRATEGIES, TERMINAL, Server, make_store, make_vendor

from bt_server import Settings, create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def ray_server(ray_local: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("ray-server")
    settings = Settings(
        data_dir=base / "data",
        store_path=make_store(base / "bars.duckdb"),
        workers=2,
        queue_size=16,
        run_timeout=60,
        run_memory_mb=256,
        rate_limit=10_000,
        rate_burst=10_000,
        strategy_dirs=[STRATEGIES],
        backfill_provider="files",
        backfill_files_dir=make_vendor(base / "vendor"),
        executor="ray",
    )
    app = create_app(settings)
    svc = app.state.services
    from bt_server.ray_executor import RayPool

    assert isinstance(svc.pool, RayPool)
    tokens = {
        "alice": svc.tokens.create("alice", "user")[1],
        "admin": svc.tokens.create("root", "admin")[1],
    }
    with TestClient(app) as client:
        assert svc.pool.started.wait(120), "the Ray executor did not start"
        items = client.get("/datasets", headers={"Authorization": f"Bearer {tokens['alice']}"})
        sample = [d for d in items.json()["items"] if d["name"] == "sample"]
        yield Server(client, app, settings, tokens, sample[0]["id"])


def _results(srv: Server, job: dict[str, Any]) -> dict[str, Any]:
    c, rid = srv.client, job["id"]
    out: dict[str, Any] = {"stats": job["stats"], "summary": job["summary"]}
    for name in ("equity", "fills", "orders", "trades"):
        r = c.get(
            f"/runs/{rid}/{name}",
            headers=srv.h(),
            params={} if name == "equity" else {"limit": 100_000},
        )
        assert r.status_code == 200, r.text
        out[name] = r.json()["items"]
    return out


@pytest.mark.parametrize(
    "body",
    [
        {
            "strategy": "sma_cross",
            "params": {"fast": 5, "slow": 20},
            "config": {"commission": 0.001},
        },
        {"strategy": "server_strategies.PyCross", "params": {"fast": 6, "slow": 25}},
        {
            "strategy": "sma_cross",
            "data": {"source": "store", "symbols": ["600000.SH", "000001.SZ"]},
        },
    ],
    ids=["builtin", "folder_class", "store_bars"],
)
def test_a_run_on_ray_equals_the_process_executors(
    ray_server: Server, server: Server, body: dict[str, Any]
) -> None:
    if "data" not in body:
        a = ray_server.run(**body, data={"dataset_id": ray_server.sample_id})
        b = server.run(**body, data={"dataset_id": server.sample_id})
    else:
        a, b = ray_server.run(**body), server.run(**body)
    assert a["status"] == b["status"] == "succeeded", (a["error"], b["error"])
    ra, rb = _results(ray_server, a), _results(server, b)
    assert ra["stats"] == rb["stats"]
    assert ra == rb
    report = ray_server.client.get(f"/runs/{a['id']}/report", headers=ray_server.h())
    assert report.status_code == 200


def test_a_failing_run_on_ray_has_the_process_executors_error(
    ray_server: Server, server: Server
) -> None:
    body = {"strategy": "server_strategies.Boom", "params": {"at_bar": 15}}
    a = ray_server.run(**body, data={"dataset_id": ray_server.sample_id})
    b = server.run(**body, data={"dataset_id": server.sample_id})
    assert a["status"] == b["status"] == "failed"
    assert a["error"] == b["error"] and a["error"]["code"] == "strategy_error"


def _wait_opt(srv: Server, oid: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = srv.client.get(f"/optimizations/{oid}", headers=srv.h()).json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_an_optimisation_on_ray_streams_trials_and_equals_the_process_executors(
    ray_server: Server, server: Server, ray_local: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    puts: list[Any] = []
    real_put = ray_local.put
    monkeypatch.setattr(ray_local, "put", lambda v, **kw: puts.append(v) or real_put(v, **kw))
    body = {"strategy": "sma_cross", "space": {"fast": [3, 5, 8], "slow": [20, 30]}}
    ids = []
    for srv in (ray_server, server):
        r = srv.client.post(
            "/optimizations", headers=srv.h(), json={**body, "data": {"dataset_id": srv.sample_id}}
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    with ray_server.client.websocket_connect(
        f"/optimizations/{ids[0]}/events", headers=ray_server.h()
    ) as ws:
        events = []
        while not (events and events[-1]["type"] == "status" and events[-1]["status"] in TERMINAL):
            events.append(ws.receive_json())
    a, b = _wait_opt(ray_server, ids[0]), _wait_opt(server, ids[1])
    assert a["status"] == b["status"] == "succeeded", a["error"]
    assert len(puts) == 1 and puts[0][0] == "dataset"  # the data went to the object store once
    # Unless the optimisation had finished before the socket was open, its trials streamed.
    trials = [e for e in events if e["type"] == "trial"]
    if events[0]["status"] != "succeeded":
        assert [e["done"] for e in trials] == list(range(1, 7))
    assert a["summary"] == b["summary"]
    drop = ["duration_s"]
    ta = pd.DataFrame(a["trials"]).drop(columns=drop)
    tb = pd.DataFrame(b["trials"]).drop(columns=drop)
    pd.testing.assert_frame_equal(ta, tb)
    csv = ray_server.client.get(f"/optimizations/{ids[0]}/report", headers=ray_server.h())
    assert csv.status_code == 200 and "plotly" in csv.text.lower()


def test_ray_cancellation_and_time_limit(ray_server: Server) -> None:
    c = ray_server.client
    slow = {"strategy": "server_strategies.Slow", "params": {"delay": 0.05}}
    rid = ray_server.submit(**slow)
    deadline = time.monotonic() + 60
    while c.get(f"/runs/{rid}", headers=ray_server.h()).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    out = c.post(f"/runs/{rid}/cancel", headers=ray_server.h()).json()
    assert out["status"] == "cancelled"
    job = ray_server.run(**slow, timeout=1.5)
    assert job["status"] == "failed" and job["error"]["code"] == "time_limit"
    assert not (Path(ray_server.settings.data_dir) / "runs" / job["id"]).exists()
    # The slots are free again: a quick run still goes through.
    assert ray_server.run()["status"] == "succeeded"


def test_the_executor_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bt_server.settings import SettingsError

    monkeypatch.setenv("BT_SERVER_EXECUTOR", "ray")
    monkeypatch.setenv("BT_SERVER_RAY_ADDRESS", "10.0.0.5:6379")
    s = Settings.load(data_dir=tmp_path)
    assert s.executor == "ray" and s.ray_address == "10.0.0.5:6379"
    monkeypatch.setenv("BT_SERVER_EXECUTOR", "dask")
    with pytest.raises(SettingsError, match="executor"):
        Settings.load(data_dir=tmp_path)


def test_a_backfill_on_ray_writes_the_servers_store(ray_server: Server) -> None:
    c = ray_server.client
    r = c.post(
        "/data/backfill",
        headers=ray_server.h("admin"),
        json={"symbols": ["NEW.SH"], "start": "2019-01-01", "end": "2019-02-28"},
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while (job := c.get(r.headers["location"], headers=ray_server.h("admin")).json())[
        "status"
    ] not in TERMINAL:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["summary"]["bars_written"] == 40
    assert "NEW.SH" in c.get("/data/symbols", headers=ray_server.h()).json()["symbols"]


def test_a_job_over_its_memory_limit_on_ray_is_stopped(ray_server: Server) -> None:
    job = ray_server.run(strategy="server_strategies.HogHold", params={"mb": 400, "hold": 5.0})
    assert job["status"] == "failed" and job["error"]["code"] == "memory_limit", job
    assert job["error"]["fields"] == {"limit_mb": 256}
    assert ray_server.run()["status"] == "succeeded"


def test_executor_ray_without_ray_is_a_clear_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    from bt_server.settings import SettingsError

    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(SettingsError, match=r"executor.*bt-server\[ray\]"):
        create_app(Settings(data_dir=tmp_path, executor="ray", sample_dataset=False))
