"""Hostile and broken input: every answer is a clear 4xx with a code and a field path, and
nothing stored is touched."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from srvkit import SAMPLE, Server

TRAVERSALS = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "%2e%2e%2fetc%2fpasswd",
    "a/../../b",
    "file:///etc/passwd",
    "\x00",
]


def _body(server: Server, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {"strategy": "sma_cross", "data": {"dataset_id": server.sample_id}}
    body.update(changes)
    return body


def _post(server: Server, body: object) -> tuple[int, dict[str, object]]:
    r = server.client.post("/runs", headers=server.h(), json=body)
    return r.status_code, r.json()


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_path_traversal_in_every_string_field_of_a_run(server: Server, evil: str) -> None:
    before = server.client.get("/runs", headers=server.h()).json()["total"]
    cases = {
        ("body", "strategy"): _body(server, strategy=evil),
        ("body", "data", "dataset_id"): _body(server, data={"dataset_id": evil}),
        ("body", "data", "symbol"): _body(
            server, data={"dataset_id": server.sample_id, "symbol": evil}
        ),
        ("body", "data", "symbols", 0): _body(server, data={"source": "store", "symbols": [evil]}),
        ("body", "data", "start"): _body(
            server, data={"source": "store", "symbols": ["A"], "start": evil}
        ),
        ("body", "tags", 0): _body(server, tags=[evil]),
        ("body", "config", "fill_on"): _body(server, config={"fill_on": evil}),
        ("body", "params", "fast"): _body(server, params={"fast": evil}),
        ("body", "params", evil): _body(server, params={evil: 1}),
    }
    for path, body in cases.items():
        status, err = _post(server, body)
        assert status == 422, (path, err)
        assert err["code"] in ("invalid_request", "invalid_parameters", "unknown_strategy"), err
        # The error names the field (a union's branch may stand between, e.g. data.store.*).
        paths = [e["path"] for e in err["errors"]]  # type: ignore[union-attr]
        assert any(p[:2] == list(path[:2]) and path[-1] in p for p in paths), (path, paths)
    assert server.client.get("/runs", headers=server.h()).json()["total"] == before


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_path_traversal_in_paths_and_queries(server: Server, evil: str) -> None:
    from urllib.parse import quote

    c = server.client
    e = quote(evil, safe="/%")  # as a client would send it; "/" stays a separator
    for url in (f"/runs/{e}", f"/runs/{e}/equity", f"/datasets/{e}"):
        r = c.get(url, headers=server.h())
        assert r.status_code in (404, 422), (url, r.text)
        assert r.json()["code"] in ("not_found", "invalid_request")
    for params in ({"tag": evil}, {"strategy": evil}, {"status": evil}):
        r = c.get("/runs", params=params, headers=server.h())
        assert r.status_code == 422 and r.json()["errors"][0]["path"][0] == "query"
    r = c.get("/data/coverage", params={"symbols": [evil]}, headers=server.h())
    assert r.status_code == 422
    r = c.get("/data/symbols", params={"period": evil}, headers=server.h())
    assert r.status_code == 422


def test_an_upload_name_is_a_label_never_a_path(server: Server) -> None:
    r = server.client.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("../../../../tmp/evil.csv", SAMPLE.read_bytes(), "text/csv")},
    )
    assert r.status_code == 201
    d = r.json()
    assert d["name"] == "evil.csv"
    stored = list((server.settings.data_dir / "datasets").glob(f"{d['id']}.*"))
    assert [p.name for p in stored] == [f"{d['id']}.csv"]
    r = server.client.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("x.csv", SAMPLE.read_bytes(), "text/csv")},
        data={"symbol": "../x"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == ["body", "symbol"]


def test_unknown_strategy(server: Server) -> None:
    status, err = _post(server, _body(server, strategy="no_such"))
    assert status == 422 and err["code"] == "unknown_strategy"
    assert err["errors"][0]["path"] == ["body", "strategy"]  # type: ignore[index]


@pytest.mark.parametrize(
    "params,path,code",
    [
        ({"fast": "10"}, "fast", "int_type"),
        ({"fast": 10.0}, "fast", "int_type"),
        ({"fast": True}, "fast", "int_type"),
        ({"fast": [1]}, "fast", "int_type"),
        ({"nope": 1}, "nope", "extra_forbidden"),
    ],
)
def test_parameters_of_the_wrong_type(
    server: Server, params: dict[str, object], path: str, code: str
) -> None:
    status, err = _post(server, _body(server, params=params))
    assert status == 422 and err["code"] == "invalid_parameters"
    assert err["errors"][0] == {  # type: ignore[index]
        "path": ["body", "params", path],
        "code": code,
        "message": err["errors"][0]["message"],  # type: ignore[index]
    }


def test_python_strategy_parameter_types(server: Server) -> None:
    s = "server_strategies.PyCross"
    for params, field in [
        ({"order_size": "1"}, "order_size"),
        ({"long_only": 1}, "long_only"),
        ({"label": 3}, "label"),
    ]:
        status, err = _post(server, _body(server, strategy=s, params=params))
        assert status == 422 and err["errors"][0]["path"] == ["body", "params", field]  # type: ignore[index]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers(server: Server, literal: str) -> None:
    sid = server.sample_id
    for text, path in [
        (
            f'{{"strategy":"sma_cross","data":{{"dataset_id":"{sid}"}},"config":{{"cash":{literal}}}}}',
            ["body", "config", "cash"],
        ),
        (
            f'{{"strategy":"server_strategies.PyCross","data":{{"dataset_id":"{sid}"}},'
            f'"params":{{"order_size":{literal}}}}}',
            ["body", "params", "order_size"],
        ),
        (
            f'{{"strategy":"sma_cross","data":{{"dataset_id":"{sid}"}},"timeout":{literal}}}',
            ["body", "timeout"],
        ),
    ]:
        r = server.client.post(
            "/runs", content=text, headers=server.h(**{"Content-Type": "application/json"})
        )
        assert r.status_code == 422, (text, r.text)
        assert r.json()["errors"][0]["path"] == path


def test_malformed_and_misshapen_json(server: Server) -> None:
    h = server.h(**{"Content-Type": "application/json"})
    for text in ["{", "[]", "null", '"x"', '{"strategy": "sma_cross"}', "{'a': 1}"]:
        r = server.client.post("/runs", content=text, headers=h)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", text
    status, err = _post(server, _body(server, extra=1))
    assert status == 422 and err["errors"][0]["path"] == ["body", "extra"]  # type: ignore[index]
    status, err = _post(server, _body(server, config={"cash": 1, "leverage": 3}))
    assert status == 422 and err["errors"][0]["path"] == ["body", "config", "leverage"]  # type: ignore[index]
    status, err = _post(server, _body(server, timeout=10_000))
    assert status == 422 and err["code"] == "timeout_too_long"


def test_oversized_requests_are_413(server: Server) -> None:
    big = b"x" * (server.settings.max_upload_bytes + 10)
    r = server.client.post(
        "/datasets", headers=server.h(), files={"file": ("big.csv", big, "text/csv")}
    )
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"
    body = json.dumps(_body(server, tags=["t"] * 5, params={"x": "y" * 400_000}))
    r = server.client.post(
        "/runs", content=body, headers=server.h(**{"Content-Type": "application/json"})
    )
    assert r.status_code == 413

    def chunks():  # no Content-Length: the limit is enforced while the body streams in
        for _ in range(400):
            yield b" " * 1024

    r = server.client.post(
        "/runs", content=chunks(), headers=server.h(**{"Content-Type": "application/json"})
    )
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"


@pytest.mark.parametrize(
    "name,content,ctype,code,status",
    [
        ("empty.csv", b"", "text/csv", "data_error", 422),
        ("nocols.csv", b"a,b\n1,2\n", "text/csv", "data_error", 422),
        ("bad.parquet", b"PAR1 this is not parquet", "application/octet-stream", "data_error", 422),
        ("junk.csv", bytes(range(256)) * 20, "text/csv", "data_error", 422),
        ("img.png", b"\x89PNG\r\n", "image/png", "unsupported_media_type", 415),
    ],
)
def test_malformed_uploads(
    server: Server, name: str, content: bytes, ctype: str, code: str, status: int
) -> None:
    before = server.client.get("/datasets", headers=server.h()).json()["total"]
    r = server.client.post("/datasets", headers=server.h(), files={"file": (name, content, ctype)})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert r.json()["errors"][0]["path"] == ["body", "file"]
    assert "Traceback" not in r.text and str(server.settings.data_dir) not in r.text
    assert server.client.get("/datasets", headers=server.h()).json()["total"] == before


def test_bad_bars_name_row_and_column_like_bt_run(server: Server) -> None:
    df = pd.read_csv(SAMPLE)
    df.loc[5, "close"] = -1.0
    r = server.client.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("neg.csv", df.to_csv(index=False).encode(), "text/csv")},
    )
    assert r.status_code == 422 and r.json()["code"] == "data_error"
    fields = r.json()["fields"]
    assert fields.get("row") == 5 and fields.get("column") == "close"
    import bt_core

    with pytest.raises(bt_core.DataError) as local:
        bt_core.load_data(df)
    assert local.value.fields["row"] == 5 and local.value.fields["column"] == "close"
    dup = pd.concat([df.head(3), df.head(1)])
    r = server.client.post(
        "/datasets",
        headers=server.h(),
        files={"file": ("dup.csv", dup.to_csv(index=False).encode(), "text/csv")},
    )
    assert r.status_code == 422 and r.json()["code"] == "data_error"


def test_missing_upload_field(server: Server) -> None:
    r = server.client.post("/datasets", headers=server.h(), data={"name": "x"})
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == ["body", "file"]
    buf = io.BytesIO(b"not multipart")
    r = server.client.post(
        "/datasets", headers=server.h(**{"Content-Type": "text/csv"}), content=buf.getvalue()
    )
    assert r.status_code == 422
