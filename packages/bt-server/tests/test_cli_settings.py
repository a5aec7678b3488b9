"""`bt-server token create|list|revoke`, `bt serve` in the `bt` command, and the settings
sources (defaults, TOML file, environment, arguments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bt_server import Settings, SettingsError
from bt_server.auth import TokenService, load_key
from bt_server.cli import app
from bt_server.db import SCHEMA_VERSION, Database, SchemaTooNewError

runner = CliRunner()


def test_token_create_list_revoke(tmp_path: Path) -> None:
    d = str(tmp_path)
    made = runner.invoke(app, ["token", "create", "alice", "--data-dir", d])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("btk_")
    admin = runner.invoke(app, ["token", "create", "root", "--admin", "--data-dir", d])
    assert admin.exit_code == 0
    service = TokenService(Database(tmp_path / "server.sqlite3"), load_key(tmp_path, None))
    who = service.verify(token)
    assert who is not None and who.user == "alice" and who.scope == "user"
    listed = runner.invoke(app, ["token", "list", "--data-dir", d])
    assert listed.exit_code == 0 and "alice" in listed.output and "root" in listed.output
    assert token not in listed.output
    assert runner.invoke(app, ["token", "revoke", "alice", "--data-dir", d]).exit_code == 0
    # a server that had just verified it trusts that for VERIFY_CACHE_SECONDS; a fresh look
    # at the record refuses it
    fresh = TokenService(Database(tmp_path / "server.sqlite3"), load_key(tmp_path, None))
    assert fresh.verify(token) is None
    again = runner.invoke(app, ["token", "revoke", "alice", "--data-dir", d])
    assert again.exit_code == 2 and "no active token" in again.output
    bad = runner.invoke(app, ["token", "create", "../evil", "--data-dir", d])
    assert bad.exit_code == 2 and "user name" in bad.output


def test_the_key_file_is_private_and_stable(tmp_path: Path) -> None:
    k1 = load_key(tmp_path, None)
    assert load_key(tmp_path, None) == k1 and len(k1) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    assert load_key(tmp_path, "configured") == b"configured"


def test_bt_has_serve() -> None:
    from bt_core.cli import app as bt_app

    res = runner.invoke(bt_app, ["serve", "--help"])
    assert res.exit_code == 0 and "--port" in res.output and "--data-dir" in res.output


def test_settings_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.host == "127.0.0.1" and s.cors_origins == [] and s.data_dir == Path("data/server")
    cfg = tmp_path / "s.toml"
    cfg.write_text('port = 9001\nworkers = 3\ncors_origins = ["http://a.example"]\n')
    assert Settings.load(cfg).port == 9001
    monkeypatch.setenv("BT_SERVER_PORT", "9002")
    monkeypatch.setenv("BT_SERVER_STRATEGY_DIRS", '["/srv/strategies"]')
    s = Settings.load(cfg)
    assert s.port == 9002 and s.workers == 3 and s.strategy_dirs == [Path("/srv/strategies")]
    assert Settings.load(cfg, port=9003).port == 9003
    monkeypatch.setenv("BT_SERVER_CONFIG", str(cfg))
    assert Settings.load().workers == 3
    with pytest.raises(SettingsError, match="not found"):
        Settings.load(tmp_path / "missing.toml")
    cfg.write_text("port = [\n")
    with pytest.raises(SettingsError, match="cannot read"):
        Settings.load(cfg)
    cfg.write_text("bogus = 1\n")
    with pytest.raises(SettingsError, match="bogus"):
        Settings.load(cfg)
    monkeypatch.delenv("BT_SERVER_CONFIG")
    monkeypatch.setenv("BT_SERVER_WORKERS", "0")
    with pytest.raises(SettingsError, match="workers"):
        Settings.load()


def test_serve_refuses_bad_settings(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "--config", str(tmp_path / "none.toml")])
    assert res.exit_code == 2 and "not found" in res.output


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    db = Database(tmp_path / "server.sqlite3")
    assert db.schema_version() == SCHEMA_VERSION
    with db.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    db.close()
    before = (tmp_path / "server.sqlite3").read_bytes()
    with pytest.raises(SchemaTooNewError):
        Database(tmp_path / "server.sqlite3")
    assert (tmp_path / "server.sqlite3").read_bytes() == before


def test_one_server_per_data_directory(tmp_path: Path) -> None:
    from bt_server import create_app
    from bt_server.app import DataDirInUse

    first = create_app(Settings(data_dir=tmp_path, workers=1))
    with pytest.raises(DataDirInUse, match="another bt-server"):
        create_app(Settings(data_dir=tmp_path, workers=1))
    res = runner.invoke(app, ["serve", "--data-dir", str(tmp_path), "--port", "1"])
    assert res.exit_code == 2 and "another bt-server" in res.output
    # tokens can still be made while it runs
    assert runner.invoke(app, ["token", "create", "x", "--data-dir", str(tmp_path)]).exit_code == 0
    assert first.state.services.db.list_tokens()
