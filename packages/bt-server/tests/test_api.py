"""Every endpoint through the TestClient: auth, ownership, runs and their results, datasets,
store data, backfill, live events, cancellation, limits."""

from __future__ import annotations

import io
import time
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from srvkit import SAMPLE, STRATEGIES, Server

from bt_server import Settings, create_app


# ----------------------------------------------------------------------------- auth
def test_health_needs_no_token(server: Server) -> None:
    r = server.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["workers"] == 2 and body["schema_version"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer btk_000000000000_" + "a" * 43},
    ],
)
def test_no_or_bad_token_is_401(server: Server, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/runs"),
        ("GET", "/strategies"),
        ("POST", "/runs"),
        ("GET", "/datasets"),
        ("GET", "/data/symbols"),
    ]:
        r = server.client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (path, r.text)
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_401(server: Server) -> None:
    svc = server.app.state.services
    token_id, token = svc.tokens.create("carol", "user")
    h = {"Authorization": f"Bearer {token}"}
    assert server.client.get("/runs", headers=h).status_code == 200
    assert svc.db.revoke_tokens(token_id) == 1  # as `bt-server token revoke` does
    from bt_server.auth import VERIFY_CACHE_SECONDS

    time.sleep(VERIFY_CACHE_SECONDS + 0.1)  # a revocation takes effect within this time
    assert server.client.get("/runs", headers=h).status_code == 401


def test_tokens_are_stored_hashed(server: Server) -> None:
    rows = server.app.state.services.db.list_tokens()
    stored = " ".join(str(v) for r in rows for v in r.values())
    for token in server.tokens.values():
        secret = token[len("btk_") + 13 :]  # after "btk_<12 hex id>_"
        assert len(secret) >= 40 and token not in stored and secret not in stored


def test_user_token_cannot_backfill(server: Server) -> None:
    r = server.client.post(
        "/data/backfill", headers=server.h(), json={"symbols": ["NEW.SH"], "start": "2019-01-01"}
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_rate_limit_is_per_token_with_retry_after(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path, rate_limit=1, rate_burst=3, workers=1))
    _, token = app.state.services.tokens.create("dave")
    _, other = app.state.services.tokens.create("erin")
    client = TestClient(app)  # no lifespan: no workers needed to answer GET /strategies
    codes = [
        client.get("/strategies", headers={"Authorization": f"Bearer {token}"}).status_code
        for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    r = client.get("/strategies", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert (
        client.get("/strategies", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    )


def test_cors_is_closed_by_default_and_configurable(server: Server, tmp_path) -> None:
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    r = server.client.options("/runs", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    app = create_app(Settings(data_dir=tmp_path, cors_origins=["http://app.example"]))
    r = TestClient(app).options("/runs", headers={**pre, "Origin": "http://app.example"})
    assert r.headers["access-control-allow-origin"] == "http://app.example"


# ----------------------------------------------------------------------------- strategies
def test_strategies_have_parameter_schemas(server: Server) -> None:
    r = server.client.get("/strategies", headers=server.h())
    assert r.status_code == 200
    by_id = {s["id"]: s for s in r.json()}
    assert {"sma_cross", "server_strategies.PyCross", "server_strategies.Boom"} <= set(by_id)
    py = by_id["server_strategies.PyCross"]["parameters"]["properties"]
    assert py["fast"] == {"default": 10, "title": "Fast", "type": "integer"}
    assert py["order_size"]["type"] == "number" and py["order_size"]["default"] == 100.0
    assert py["long_only"]["type"] == "boolean" and py["label"]["type"] == "string"
    assert by_id["sma_cross"]["kind"] == "builtin"
    assert by_id["server_strategies.PyCross"]["description"].startswith("Python SMA cross")


def test_builtin_parameters_with_none_defaults_are_typed(server: Server) -> None:
    import bt_core

    r = server.client.get("/strategies", headers=server.h())
    by_id = {s["id"]: s for s in r.json()}
    props = by_id["sma_cross"]["parameters"]["properties"]
    number_or_null = [{"exclusiveMinimum": 0, "type": "number"}, {"type": "null"}]
    assert props["size"]["anyOf"] == number_or_null and props["size"]["default"] is None
    assert props["pct"]["anyOf"] == number_or_null
    # Every built-in parameter whose default is None has a type of its own.
    for name, defaults in bt_core.BUILTINS.items():
        for key, value in defaults.items():
            if value is None:
                types = {
                    t.get("type") for t in by_id[name]["parameters"]["properties"][key]["anyOf"]
                }
                assert types and types <= {"number", "integer", "null"}, (name, key, types)


@pytest.mark.parametrize("size", ["2", True, 0, -1.5, [1]])
def test_builtin_size_of_the_wrong_type_is_refused(server: Server, size: Any) -> None:
    r = server.client.post(
        "/runs",
        headers=server.h(),
        json={
            "strategy": "sma_cross",
            "params": {"size": size},
            "data": {"dataset_id": server.sample_id},
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_parameters"
    assert r.json()["errors"][0]["path"][:3] == ["body", "params", "size"]


def test_builtin_size_as_a_number_runs(server: Server) -> None:
    import bt_core

    job = server.run(params={"fast": 5, "slow": 20, "size": 3})
    local = bt_core.Backtest(str(SAMPLE), "sma_cross").run(fast=5, slow=20, size=3)
    assert job["status"] == "succeeded" and job["stats"]["n_trades"] == len(local.trades) > 0
    assert job["stats"]["total_return"] == local.stats["total_return"]


# ----------------------------------------------------------------------------- runs
def test_run_lifecycle_and_results(server: Server) -> None:
    c = server.client
    r = c.post(
        "/runs",
        headers=server.h(),
        json={
            "strategy": "server_strategies.PyCross",
            "params": {"fast": 5, "slow": 20},
            "config": {"cash": 50_000, "commission": 0.001},
            "data": {"source": "dataset", "dataset_id": server.sample_id},
            "tags": ["lifecycle", "py"],
        },
    )
    assert r.status_code == 202
    assert r.headers["location"] == f"/runs/{r.json()['id']}"
    job = server.wait(r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["error"] is None
    assert job["params"] == {"fast": 5, "slow": 20}
    assert job["config"]["cash"] == 50_000 and job["config"]["fill_on"] == "next_open"
    assert job["tags"] == ["lifecycle", "py"]
    assert job["summary"]["bars"] == 1304 and job["summary"]["trades"] > 0
    assert job["stats"]["n_trades"] == job["summary"]["trades"]
    rid = job["id"]

    eq = c.get(f"/runs/{rid}/equity", headers=server.h()).json()
    assert eq["total"] == 1304 and len(eq["items"]) == 1304
    assert eq["items"][0] == {"datetime": "2019-01-01T00:00:00.000000Z", "equity": 50_000.0}
    assert eq["items"][-1]["equity"] == pytest.approx(job["summary"]["final_equity"])
    small = c.get(f"/runs/{rid}/equity?points=10", headers=server.h()).json()
    assert len(small["items"]) == 10 and small["items"][-1] == eq["items"][-1]

    trades = c.get(f"/runs/{rid}/trades?limit=3&offset=1", headers=server.h())
    assert trades.status_code == 200
    page = trades.json()
    assert page["total"] == job["summary"]["trades"] and len(page["items"]) == 3
    assert page["offset"] == 1 and trades.headers["x-total-count"] == str(page["total"])
    all_trades = c.get(f"/runs/{rid}/trades?limit=100000", headers=server.h()).json()["items"]
    assert page["items"] == all_trades[1:4]
    assert isinstance(all_trades[0]["duration"], float)

    csv = c.get(f"/runs/{rid}/fills", headers=server.h(Accept="text/csv"))
    assert csv.headers["content-type"].startswith("text/csv")
    fills = pd.read_csv(io.StringIO(csv.text))
    assert len(fills) == job["summary"]["fills"]
    assert list(fills.columns[:4]) == ["order_id", "symbol", "datetime", "side"]

    pqr = c.get(f"/runs/{rid}/orders", headers=server.h(Accept="application/vnd.apache.parquet"))
    assert pqr.headers["content-type"] == "application/vnd.apache.parquet"
    orders = pq.read_table(io.BytesIO(pqr.content)).to_pandas()
    assert len(orders) == job["summary"]["orders"] and "reason_code" in orders.columns

    best = c.get(
        f"/runs/{rid}/orders?limit=1", headers=server.h(Accept="text/csv;q=0.5, application/json")
    )
    assert best.headers["content-type"].startswith("application/json")
    bad = c.get(f"/runs/{rid}/orders", headers=server.h(Accept="image/png"))
    assert bad.status_code == 406 and bad.json()["code"] == "not_acceptable"

    report = c.get(f"/runs/{rid}/report", headers=server.h())
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text.lower() and "plotly" in report.text.lower()
    again = c.get(f"/runs/{rid}/report", headers=server.h())
    assert again.text == report.text


def test_other_users_get_404_for_everything(server: Server) -> None:
    rid = server.run()["id"]
    c = server.client
    for method, path in [
        ("GET", f"/runs/{rid}"),
        ("GET", f"/runs/{rid}/equity"),
        ("GET", f"/runs/{rid}/fills"),
        ("GET", f"/runs/{rid}/orders"),
        ("GET", f"/runs/{rid}/trades"),
        ("GET", f"/runs/{rid}/report"),
        ("POST", f"/runs/{rid}/cancel"),
        ("POST", f"/runs/{rid}/resubmit"),
        ("DELETE", f"/runs/{rid}"),
    ]:
        r = c.request(method, path, headers=server.h("bob"))
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["code"] == "not_found"
    assert rid not in {j["id"] for j in c.get("/runs", headers=server.h("bob")).json()["items"]}
    assert c.get(f"/runs/{rid}", headers=server.h()).status_code == 200


def test_list_runs_paginates_and_filters(server: Server) -> None:
    svc = server.app.state.services
    _, token = svc.tokens.create("lister")
    server.tokens["lister"] = token
    ids = [server.submit("lister", tags=["batch", f"n{i}"]) for i in range(5)]
    failing = server.submit("lister", strategy="server_strategies.Boom", tags=["batch"])
    for i in [*ids, failing]:
        server.wait(i, "lister")
    c = server.client
    page1 = c.get("/runs?limit=2", headers=server.h("lister")).json()
    page2 = c.get("/runs?limit=2&offset=2", headers=server.h("lister")).json()
    page4 = c.get("/runs?limit=2&offset=6", headers=server.h("lister")).json()
    assert page1["total"] == 6 and len(page1["items"]) == 2 and page4["items"] == []
    listed = [j["id"] for j in page1["items"] + page2["items"]]
    assert len(set(listed)) == 4
    assert listed[0] == failing  # newest first
    assert "equity" not in page1["items"][0]
    failed = c.get("/runs?status=failed", headers=server.h("lister")).json()
    assert [j["id"] for j in failed["items"]] == [failing]
    tagged = c.get("/runs?tag=n3", headers=server.h("lister")).json()
    assert [j["id"] for j in tagged["items"]] == [ids[3]]
    by_strategy = c.get("/runs?strategy=server_strategies.Boom", headers=server.h("lister")).json()
    assert by_strategy["total"] == 1
    future = c.get(
        "/runs", params={"created_after": "2999-01-01T00:00:00Z"}, headers=server.h("lister")
    ).json()
    past = c.get(
        "/runs", params={"created_before": "2000-01-01T00:00:00Z"}, headers=server.h("lister")
    ).json()
    assert future["total"] == 0 and past["total"] == 0
    bad = c.get("/runs?status=bogus", headers=server.h("lister"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == ["query", "status"]


def test_a_run_that_raises_fails_with_code_and_fields(server: Server) -> None:
    job = server.run(strategy="server_strategies.Boom", params={"at_bar": 7})
    assert job["status"] == "failed"
    err = job["error"]
    assert err["code"] == "strategy_error" and err["kind"] == "strategy"
    assert err["fields"]["bar"] == 7 and err["fields"]["exception"] == "ValueError"
    assert "Traceback" not in err["message"]
    r = server.client.get(f"/runs/{job['id']}/equity", headers=server.h())
    assert r.status_code == 409 and r.json()["code"] == "no_results"


def test_a_bad_parameter_value_fails_the_run_with_its_name(server: Server) -> None:
    job = server.run(params={"fast": 0})
    assert job["status"] == "failed" and job["error"]["code"] == "parameter_error"
    assert "fast" in job["error"]["message"]


def test_a_run_over_its_time_limit_is_stopped(server: Server) -> None:
    started = time.monotonic()
    job = server.run(strategy="server_strategies.Slow", timeout=1.0)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "time_limit" and job["error"]["fields"]["timeout"] == 1.0
    assert time.monotonic() - started < 15  # 1304 bars x 20 ms would take 26 s
    assert server.run()["status"] == "succeeded"  # the replacement worker works


def test_a_run_over_its_memory_limit_fails(server: Server) -> None:
    job = server.run(strategy="server_strategies.Hog", params={"mb": 2048})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "memory_limit", job["error"]
    assert server.run()["status"] == "succeeded"


def test_cancel_stops_a_running_run(server: Server) -> None:
    rid = server.submit(strategy="server_strategies.Slow", params={"delay": 0.05})
    deadline = time.monotonic() + 30
    while server.client.get(f"/runs/{rid}", headers=server.h()).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    r = server.client.post(f"/runs/{rid}/cancel", headers=server.h())
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # The worker process was killed: the pool's processes are all alive and idle again.
    svc = server.app.state.services
    assert server.run()["status"] == "succeeded"
    assert svc.pool.running() == 0
    again = server.client.post(f"/runs/{rid}/cancel", headers=server.h())
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"


def test_resubmit_and_delete(server: Server) -> None:
    old = server.run(params={"fast": 4, "slow": 12}, tags=["again"])
    r = server.client.post(f"/runs/{old['id']}/resubmit", headers=server.h())
    assert r.status_code == 202
    new = server.wait(r.json()["id"])
    assert new["resubmitted_from"] == old["id"] and new["params"] == old["params"]
    assert new["tags"] == ["again"] and new["stats"] == old["stats"]
    assert server.client.delete(f"/runs/{old['id']}", headers=server.h()).status_code == 204
    assert server.client.get(f"/runs/{old['id']}", headers=server.h()).status_code == 404
    assert not (server.settings.data_dir / "runs" / old["id"]).exists()


def test_delete_of_an_active_run_is_409(server: Server) -> None:
    rid = server.submit(strategy="server_strategies.Slow", params={"delay": 0.05})
    r = server.client.delete(f"/runs/{rid}", headers=server.h())
    assert r.status_code == 409 and r.json()["code"] == "run_active"
    server.client.post(f"/runs/{rid}/cancel", headers=server.h())


def test_run_equals_a_local_backtest(server: Server) -> None:
    import bt_core

    job = server.run(params={"fast": 7, "slow": 21}, config={"commission": 0.0005})
    local = bt_core.Backtest(str(SAMPLE), "sma_cross", commission=0.0005).run(fast=7, slow=21)
    assert job["summary"]["final_equity"] == local.final_equity
    eq = server.client.get(f"/runs/{job['id']}/equity", headers=server.h()).json()["items"]
    assert [p["equity"] for p in eq] == local.equity.tolist()


# ----------------------------------------------------------------------------- a full queue
def test_a_full_queue_is_429_with_retry_after(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, workers=1, queue_size=2, strategy_dirs=[STRATEGIES])
    app = create_app(settings)
    _, token = app.state.services.tokens.create("fred")
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as c:
        sample = c.get("/datasets", headers=h).json()["items"][0]["id"]
        body = {
            "strategy": "server_strategies.Slow",
            "params": {"delay": 0.05},
            "data": {"dataset_id": sample},
        }
        codes, ids = [], []
        for _ in range(6):
            r = c.post("/runs", headers=h, json=body)
            codes.append(r.status_code)
            if r.status_code == 202:
                ids.append(r.json()["id"])
            else:
                assert r.json()["code"] == "queue_full"
                assert int(r.headers["retry-after"]) >= 1
        # one running (once the worker took it) plus two waiting
        assert codes.count(202) in (2, 3) and 429 in codes
        listed = c.get("/runs", headers=h).json()
        assert listed["total"] == len(ids)  # a refused run leaves no record
        for i in ids:
            c.post(f"/runs/{i}/cancel", headers=h)
        assert {c.get(f"/runs/{i}", headers=h).json()["status"] for i in ids} == {"cancelled"}


# ----------------------------------------------------------------------------- datasets
def test_upload_csv_and_parquet_and_run_on_them(server: Server) -> None:
    c = server.client
    r = c.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("bars.csv", SAMPLE.read_bytes(), "text/csv")},
        data={"symbol": "ABC"},
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["symbols"] == ["ABC"] and d["n_bars"] == 1304 and d["format"] == "csv"
    assert d["shared"] is False and r.headers["location"] == f"/datasets/{d['id']}"
    assert d["start"].startswith("2019-01-01")
    buf = io.BytesIO()
    pd.read_csv(SAMPLE).to_parquet(buf)
    p = c.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("x.bin", buf.getvalue(), "application/octet-stream")},
        data={"name": "my parquet"},
    )
    assert p.status_code == 201 and p.json()["format"] == "parquet"
    assert p.json()["name"] == "my parquet"
    job = server.run(data={"dataset_id": d["id"]})
    assert job["status"] == "succeeded" and job["summary"]["symbols"] == ["ABC"]
    job2 = server.run(data={"dataset_id": p.json()["id"]})
    assert job2["summary"]["final_equity"] == job["summary"]["final_equity"]
    listed = {x["id"] for x in c.get("/datasets", headers=server.h()).json()["items"]}
    assert {d["id"], p.json()["id"], server.sample_id} <= listed
    assert c.get(f"/datasets/{d['id']}", headers=server.h()).json() == d


def test_datasets_belong_to_their_uploader(server: Server) -> None:
    c = server.client
    d = c.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("bars.csv", SAMPLE.read_bytes(), "text/csv")},
    ).json()
    assert c.get(f"/datasets/{d['id']}", headers=server.h("bob")).status_code == 404
    assert c.delete(f"/datasets/{d['id']}", headers=server.h("bob")).status_code == 404
    assert d["id"] not in {
        x["id"] for x in c.get("/datasets", headers=server.h("bob")).json()["items"]
    }
    r = c.post(
        "/runs",
        headers=server.h("bob"),
        json={"strategy": "sma_cross", "data": {"dataset_id": d["id"]}},
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_dataset"
    assert r.json()["errors"][0]["path"] == ["body", "data", "dataset_id"]
    assert c.delete(f"/datasets/{d['id']}", headers=server.h()).status_code == 204
    assert c.get(f"/datasets/{d['id']}", headers=server.h()).status_code == 404
    assert not list((server.settings.data_dir / "datasets").glob(f"{d['id']}.*"))


def test_shared_sample_is_for_everyone_and_only_admins_delete_it(server: Server) -> None:
    c = server.client
    for who in ("alice", "bob", "admin"):
        ids = {x["id"] for x in c.get("/datasets", headers=server.h(who)).json()["items"]}
        assert server.sample_id in ids
    r = c.delete(f"/datasets/{server.sample_id}", headers=server.h("bob"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_a_dataset_in_use_cannot_be_deleted(server: Server) -> None:
    c = server.client
    d = c.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("bars.csv", SAMPLE.read_bytes(), "text/csv")},
    ).json()
    rid = server.submit(
        strategy="server_strategies.Slow", params={"delay": 0.05}, data={"dataset_id": d["id"]}
    )
    r = c.delete(f"/datasets/{d['id']}", headers=server.h())
    assert r.status_code == 409 and r.json()["code"] == "dataset_in_use"
    c.post(f"/runs/{rid}/cancel", headers=server.h())
    assert c.delete(f"/datasets/{d['id']}", headers=server.h()).status_code == 204


def test_datasets_paginate(server: Server) -> None:
    r = server.client.get("/datasets?limit=1&offset=0", headers=server.h())
    body = r.json()
    assert len(body["items"]) == 1 and body["total"] >= 1 and body["limit"] == 1


# ----------------------------------------------------------------------------- store data
def test_store_symbols_coverage_and_a_run_on_stored_bars(server: Server) -> None:
    c = server.client
    syms = c.get("/data/symbols", headers=server.h()).json()["symbols"]
    assert len(syms) == 4
    cov = c.get("/data/coverage", params={"symbols": syms[:2]}, headers=server.h()).json()
    assert [row["symbol"] for row in cov["items"]] == syms[:2]
    assert cov["items"][0]["period"] == "1d" and cov["items"][0]["count"] > 1000
    assert c.get("/data/symbols?period=1m", headers=server.h()).json()["symbols"] == []
    bad = c.get("/data/symbols?period=2d", headers=server.h())
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_period"
    job = server.run(
        data={"source": "store", "symbols": syms[:2], "start": "2020-01-01", "end": "2020-12-31"},
    )
    assert job["status"] == "succeeded", job
    assert job["summary"]["symbols"] == syms[:2]
    assert job["summary"]["start"].startswith("2020-01")
    missing = server.run(data={"source": "store", "symbols": ["NOPE.SH"]})
    assert missing["status"] == "failed" and missing["error"]["code"] == "data_error"
    backwards = c.post(
        "/runs",
        headers=server.h(),
        json={
            "strategy": "sma_cross",
            "data": {"symbols": syms[:1], "start": "2021-01-01", "end": "2020-01-01"},
        },
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "invalid_range"


def test_admin_backfill_with_progress(server: Server) -> None:
    c = server.client
    r = c.post(
        "/data/backfill",
        headers=server.h("admin"),
        json={"symbols": ["NEW.SH"], "start": "2019-01-01", "end": "2019-02-28"},
    )
    assert r.status_code == 202, r.text
    loc = r.headers["location"]
    deadline = time.monotonic() + 60
    while True:
        job = c.get(loc, headers=server.h("admin")).json()
        if job["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["summary"]["bars_written"] == 40
    assert "NEW.SH" in c.get("/data/symbols", headers=server.h()).json()["symbols"]
    assert c.get(loc, headers=server.h("alice")).status_code == 403


# ----------------------------------------------------------------------------- live events
def test_websocket_follows_a_run_to_the_end(server: Server) -> None:
    rid = server.submit(strategy="server_strategies.Slow", params={"delay": 0.001})
    events = []
    with server.client.websocket_connect(f"/runs/{rid}/events", headers=server.h()) as ws:
        while True:
            ev = ws.receive_json()
            events.append(ev)
            if ev["type"] == "status" and ev["status"] in ("succeeded", "failed"):
                break
    kinds = [e["type"] for e in events]
    assert kinds[0] == "status" and events[-1]["status"] == "succeeded"
    assert "equity" in kinds
    eq = next(e for e in events if e["type"] == "equity")
    assert 2 <= len(eq["equity"]) <= 200 and len(eq["datetime"]) == len(eq["equity"])
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress and progress[-1] <= 1.0
    assert events[-1]["stats"]["n_trades"] == 0
    # equity samples while it ran (a Python strategy), in time order, then the whole curve
    samples = [e for e in events if e["type"] == "equity_sample"]
    assert samples, kinds
    times = [t for e in samples for t in e["datetime"]]
    assert times == sorted(times) and len(times) >= 10
    assert all(v == 100_000.0 for e in samples for v in e["equity"])  # Slow never trades
    assert kinds.index("equity_sample") < kinds.index("equity")


def test_websocket_of_a_finished_run_sends_its_state(server: Server) -> None:
    rid = server.run()["id"]
    with server.client.websocket_connect(
        f"/runs/{rid}/events?token={server.tokens['alice']}"
    ) as ws:
        ev = ws.receive_json()
    assert ev["status"] == "succeeded" and ev["stats"] is not None


@pytest.mark.parametrize("who,code", [(None, "unauthorized"), ("bob", "not_found")])
def test_websocket_refuses_strangers(server: Server, who: str | None, code: str) -> None:
    rid = server.run()["id"]
    headers = server.h(who) if who else {}
    with server.client.websocket_connect(f"/runs/{rid}/events", headers=headers) as ws:
        ev = ws.receive_json()
        assert ev["type"] == "error" and ev["code"] == code


# ----------------------------------------------------------------------------- optimisations
def _wait_opt(server: Server, oid: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.client.get(f"/optimizations/{oid}", headers=server.h()).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(job)


def test_optimization_grid_best_params_trials_report(server: Server) -> None:
    import bt_core

    c = server.client
    r = c.post(
        "/optimizations",
        headers=server.h(),
        json={
            "strategy": "sma_cross",
            "space": {"fast": "5:15:5", "slow": [20, 30]},
            "data": {"dataset_id": server.sample_id},
            "tags": ["opt"],
        },
    )
    assert r.status_code == 202, r.text
    oid = r.json()["id"]
    assert r.headers["location"] == f"/optimizations/{oid}"
    job = _wait_opt(server, oid)
    assert job["status"] == "succeeded", job
    local = bt_core.Backtest(str(SAMPLE), "sma_cross").optimize(
        {"fast": "5:15:5", "slow": [20, 30]}, n_jobs=1, backend="sequential", progress=False
    )
    assert job["summary"]["best_params"] == local.best_params
    assert job["summary"]["n_trials"] == 6 and job["summary"]["objectives"] == ["sharpe"]
    assert job["trials"][0]["fast"] == local.best_params["fast"]
    assert job["trials"][0]["score"] == local.best_score
    trials = c.get(f"/optimizations/{oid}/trials", headers=server.h(Accept="text/csv"))
    assert len(pd.read_csv(io.StringIO(trials.text))) == 6
    report = c.get(f"/optimizations/{oid}/report", headers=server.h())
    assert report.status_code == 200 and "plotly" in report.text.lower()
    listed = c.get("/optimizations?tag=opt", headers=server.h()).json()
    assert [o["id"] for o in listed["items"]] == [oid] and listed["items"][0]["trials"] is None
    assert c.get(f"/optimizations/{oid}", headers=server.h("bob")).status_code == 404
    assert c.get(f"/runs/{oid}", headers=server.h()).status_code == 404  # another kind
    with c.websocket_connect(f"/optimizations/{oid}/events", headers=server.h()) as ws:
        assert ws.receive_json()["status"] == "succeeded"
    assert c.delete(f"/optimizations/{oid}", headers=server.h()).status_code == 204
    assert c.get(f"/optimizations/{oid}", headers=server.h()).status_code == 404


@pytest.mark.parametrize(
    "change,code,path",
    [
        ({"space": {"nope": [1, 2]}}, "unknown_parameter", ["body", "space", "nope"]),
        ({"space": {"fast": "5:x"}}, "invalid_space", ["body", "space", "fast"]),
        ({"space": {"fast": "1:100000:1"}}, "too_many_trials", ["body", "space"]),
        ({"trials": 5}, "trials_with_grid", ["body", "trials"]),
        ({"method": "random", "trials": 10**9}, "too_many_trials", ["body", "trials"]),
        ({"maximize": ["sharpe", "cagr"]}, "several_objectives", ["body", "method"]),
        ({"params": {"fast": 3}}, "fixed_and_searched", ["body", "params", "fast"]),
        ({"params": {"slow": "x"}}, "invalid_parameters", ["body", "params", "slow"]),
        ({"strategy": "../x"}, "invalid_request", ["body", "strategy"]),
    ],
)
def test_optimization_bad_requests(server: Server, change: dict, code: str, path: list) -> None:
    body = {
        "strategy": "sma_cross",
        "space": {"fast": [3, 5]},
        "data": {"dataset_id": server.sample_id},
        **change,
    }
    r = server.client.post("/optimizations", headers=server.h(), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["errors"][0]["path"] == path


def test_optimization_cancel(server: Server) -> None:
    c = server.client
    r = c.post(
        "/optimizations",
        headers=server.h(),
        json={
            "strategy": "server_strategies.Slow",
            "space": {"delay": [0.05, 0.06]},
            "data": {"dataset_id": server.sample_id},
        },
    )
    oid = r.json()["id"]
    out = c.post(f"/optimizations/{oid}/cancel", headers=server.h()).json()
    assert out["status"] == "cancelled"
    assert c.get(f"/optimizations/{oid}/trials", headers=server.h()).status_code == 409


def test_optimization_progress_and_trials_while_running(server: Server) -> None:
    c = server.client
    seconds = [0.4, 0.41, 0.42, 0.43]
    r = c.post(
        "/optimizations",
        headers=server.h(),
        json={
            "strategy": "server_strategies.Nap",
            "space": {"seconds": seconds},
            "data": {"dataset_id": server.sample_id},
        },
    )
    oid = r.json()["id"]
    events: list[dict] = []
    seen_running: list[dict] = []
    with c.websocket_connect(f"/optimizations/{oid}/events", headers=server.h()) as ws:
        while True:
            ev = ws.receive_json()
            events.append(ev)
            if ev["type"] == "trial" and ev["done"] == 1:
                # Three more trials of 0.4 s each to go: the record is still running.
                seen_running.append(c.get(f"/optimizations/{oid}", headers=server.h()).json())
                live = c.get(f"/optimizations/{oid}/trials", headers=server.h())
                seen_running.append(live.json())
            if ev["type"] == "status" and ev["status"] in ("succeeded", "failed", "cancelled"):
                break
    assert events[-1]["status"] == "succeeded", events[-1]
    trials = [e for e in events if e["type"] == "trial"]
    assert [e["done"] for e in trials] == [1, 2, 3, 4] and {e["total"] for e in trials} == {4}
    assert sorted(e["row"]["seconds"] for e in trials) == seconds
    assert all(e["row"]["error"] is None and "sharpe" in e["row"] for e in trials)
    progress = [e["progress"] for e in events if e["type"] == "progress"]
    assert progress and progress == sorted(progress) and 0 < progress[0] < 1
    running, page = seen_running
    assert running["status"] == "running" and 0 < running["progress"] < 1
    assert [t["trial"] for t in running["trials"]] == [trials[0]["row"]["trial"]]
    assert running["trials"][0] == trials[0]["row"]
    assert page["total"] >= 1 and page["items"][0] == trials[0]["row"]
    final = _wait_opt(server, oid)
    assert final["progress"] == 1.0 and len(final["trials"]) == 4
    by_trial = {t["trial"]: t for t in final["trials"]}
    for e in trials:
        assert by_trial[e["row"]["trial"]]["score"] == e["row"]["score"]


def test_live_equity_sampling_does_not_change_a_python_run(server: Server) -> None:
    import importlib.util

    import bt_core

    spec = importlib.util.spec_from_file_location("_local_ss", STRATEGIES / "server_strategies.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    job = server.run(strategy="server_strategies.PyCross", params={"fast": 6, "slow": 25})
    local = bt_core.Backtest(str(SAMPLE), mod.PyCross).run(fast=6, slow=25)
    eq = server.client.get(f"/runs/{job['id']}/equity", headers=server.h()).json()["items"]
    assert [p["equity"] for p in eq] == local.equity.tolist()
    assert job["stats"]["n_trades"] == len(local.trades) > 0
