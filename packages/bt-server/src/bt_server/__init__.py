"""bt-server: a self-hosted backtest service for pyrust-bt.

from bt_server import Settings, create_app
app = create_app(Settings(data_dir="data/server", workers=2))   # an ASGI app for uvicorn

Or from the shell: ``bt serve`` / ``bt-server serve``; ``bt-server token create NAME``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bt_server.settings import Settings, SettingsError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bt_server.app import create_app


def __getattr__(name: str) -> Any:
    # FastAPI is imported only when an app is built: `bt --help` mounts `bt serve` from here
    # and must stay quick.
    if name == "create_app":
        from bt_server.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["Settings", "SettingsError", "__version__", "create_app"]
