"""The ``bt-server`` command (``serve``, ``token create|list|revoke``); ``bt serve`` is the
same ``serve``, mounted by bt-core's ``bt`` command when bt-server is installed.

Token commands work on the data directory directly (the run store allows it while a server
is running), so an admin on the host needs no token to make the first ones.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bt_server.settings import Settings, SettingsError

app = typer.Typer(
    name="bt-server",
    help="pyrust-bt's backtest server. `bt-server serve`; `bt-server token create NAME`.",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (else $BT_SERVER_CONFIG)."),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Run store, results and uploads (default: data/server)."),
]


def _fail(message: object) -> NoReturn:
    # One plain line, never a traceback: the message says what is wrong.
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code=2)


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return Settings.load(config, **overrides)
    except SettingsError as e:
        _fail(e)


def _tokens(settings: Settings):  # type: ignore[no-untyped-def]
    from bt_server.auth import TokenService, load_key
    from bt_server.db import Database, SchemaTooNewError

    try:
        db = Database(settings.db_path)
    except SchemaTooNewError as e:
        _fail(e)
    secret = settings.secret.get_secret_value() if settings.secret else None
    return TokenService(db, load_key(settings.data_dir, secret))


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8000].")] = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    config: ConfigOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Start the backtest server (uvicorn). The first start prints an admin token once."""
    settings = _settings(config, host=host, port=port, data_dir=data_dir, workers=workers)
    import uvicorn

    from bt_server.app import DataDirInUse, create_app
    from bt_server.db import SchemaTooNewError

    try:
        api = create_app(settings)
    except (SchemaTooNewError, DataDirInUse, SettingsError) as e:
        _fail(e)
    tokens = api.state.services.tokens
    if not tokens.db.has_active_admin():
        _, token = tokens.create("admin", "admin")
        print(
            "bt-server: created the first admin token (shown once; keep it):\n"
            f"  {token}\n"
            "More: bt-server token create NAME [--admin]",
            flush=True,
        )
    print(
        f"bt-server: data in {settings.data_dir}; API on http://{settings.host}:{settings.port}"
        " (docs at /docs)",
        flush=True,
    )
    uvicorn.run(api, host=settings.host, port=settings.port, log_level=log_level)


app.command("serve")(serve)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The user the token acts for.")],
    admin: Annotated[bool, typer.Option("--admin", help="Admin scope (default: user).")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a token and print it (once: only its hash is kept)."""
    service = _tokens(_settings(config, data_dir=data_dir))
    try:
        token_id, token = service.create(name, "admin" if admin else "user")
    except ValueError as e:
        _fail(e)
    print(token, flush=True)
    print(
        f"token {token_id} for {name} ({'admin' if admin else 'user'}); it is not shown again",
        file=sys.stderr,
    )


def _when(v: float | None) -> str:
    if v is None:
        return "-"
    return dt.datetime.fromtimestamp(v, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@token_app.command("list")
def token_list(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """List tokens (ids, users, scopes; never the tokens themselves)."""
    from rich.console import Console
    from rich.table import Table

    service = _tokens(_settings(config, data_dir=data_dir))
    table = Table(show_header=True, header_style="bold")
    for col in ("id", "user", "scope", "created", "last used", "revoked"):
        table.add_column(col)
    for t in service.db.list_tokens():
        table.add_row(
            t["id"],
            t["user"],
            t["scope"],
            _when(t["created_at"]),
            _when(t["last_used_at"]),
            _when(t["revoked_at"]),
        )
    Console().print(table)


@token_app.command("revoke")
def token_revoke(
    which: Annotated[str, typer.Argument(help="A token id, or a user (all of its tokens).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token, or every token of a user."""
    service = _tokens(_settings(config, data_dir=data_dir))
    n = service.db.revoke_tokens(which)
    if n == 0:
        _fail(f"no active token with id or user {which!r}")
    print(f"revoked {n} token(s)", flush=True)


def main() -> None:
    """Entry point of the ``bt-server`` console script."""
    app()


__all__ = ["app", "main", "serve"]
