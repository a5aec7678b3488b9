"""``bt app`` / ``bt-app``: start the Streamlit app; ``--with-server`` also starts a local
bt-server (its bundled sample dataset, a fresh user token) as a child process and stops it
when the app stops.

The server is another program here, started by its command line: this package never
imports bt-server (or bt-core, or the engine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from bt_app import ENV_TOKEN, ENV_URL

MAIN = Path(__file__).resolve().parent / "main.py"

app = typer.Typer(name="bt-app", add_completion=False, help="pyrust-bt's web app (Streamlit).")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code=2)


def _server_command() -> list[str]:
    script = Path(sys.executable).parent / "bt-server"
    if script.exists():
        return [str(script)]
    found = shutil.which("bt-server")
    if found is None:
        _fail("--with-server needs bt-server installed (pip install bt-server)")
    return [found]


class LocalServer:
    """``bt-server serve`` on a free port with its own data directory and a user token."""

    def __init__(
        self, data_dir: Path, port: int, workers: int, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.env = env  # the server's environment (BT_SERVER_* settings); None: this one
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self, timeout: float = 120.0) -> LocalServer:
        import httpx

        command = _server_command()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            [*command, "token", "create", "app-user", "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
            env=self.env,
        )
        if made.returncode != 0 or not made.stdout.strip():
            _fail(f"could not create a token: {made.stderr.strip() or made.stdout.strip()}")
        self.token = made.stdout.strip().splitlines()[0]
        out = open(self.log, "ab")  # noqa: SIM115 - the child writes to it until it stops
        self.proc = subprocess.Popen(
            [
                *command,
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _fail(f"bt-server exited at start; its log:\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        _fail(f"bt-server did not answer within {timeout:g} s; see {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _stop_on_sigterm() -> None:
    # SIGTERM (a service manager, a test) stops the app like Ctrl-C: children are stopped too.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_app(
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8501,
    host: Annotated[str, typer.Option(help="Address the app listens on.")] = "127.0.0.1",
    with_server: Annotated[
        bool,
        typer.Option(
            "--with-server", help="Also start a local bt-server (sample dataset, a token)."
        ),
    ] = False,
    api_url: Annotated[
        str | None, typer.Option(help=f"bt-server's URL (else ${ENV_URL}; or the sidebar).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help=f"API token (else ${ENV_TOKEN}; or the sidebar).")
    ] = None,
    server_port: Annotated[
        int | None, typer.Option(help="--with-server: its port (default: a free one).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="--with-server: its data directory (default: a temporary one)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="--with-server: worker processes.")] = 2,
) -> None:
    """Start the web app (Streamlit); with --with-server, a local bt-server as well."""
    env = dict(os.environ)
    if api_url:
        env[ENV_URL] = api_url
    if token:
        env[ENV_TOKEN] = token
    _stop_on_sigterm()
    server: LocalServer | None = None
    temp: Path | None = None
    app_proc: subprocess.Popen[bytes] | None = None
    try:
        if with_server:
            if data_dir is None:
                temp = Path(tempfile.mkdtemp(prefix="bt-app-server-"))
            server = LocalServer(data_dir or temp or Path(), server_port or free_port(), workers)
            server.start()
            env[ENV_URL], env[ENV_TOKEN] = server.url, server.token
            print(
                f"bt app: bt-server on {server.url} (data in {server.data_dir}, log {server.log})",
                flush=True,
            )
        print(f"bt app: open http://{host}:{port}", flush=True)
        app_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(MAIN),
                "--server.port",
                str(port),
                "--server.address",
                host,
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "viewer",
            ],
            env=env,
        )
        code = app_proc.wait()
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise typer.Exit(code=code)
    except KeyboardInterrupt:
        pass
    finally:
        if app_proc is not None:
            _stop(app_proc)
        if server is not None:
            server.stop()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


app.command("run")(run_app)


def main() -> None:
    """Entry point of the ``bt-app`` console script (``bt-app [--with-server]``)."""
    app()


__all__ = ["LocalServer", "app", "free_port", "main", "run_app"]
